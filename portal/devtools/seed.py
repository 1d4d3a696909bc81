"""Demo data: a fictional LEAD site (Riverton County), and synthetic participants for benchmarks.

Everything here is invented. Dates are relative to the day of seeding so that the demo always
has active, expired and revocable-later consents.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.service import set_demo_credentials
from portal.crypto.vault import Vault
from portal.db.models import (
    CareTeamMember,
    Consent,
    ConsentProvision,
    Goal,
    GoalUpdate,
    Organization,
    Participant,
    ParticipantEvent,
    Record,
    StaffRole,
    StaffUser,
)
from portal.domain.consent import (
    ConsentEvent,
    ConsentKind,
    ConsentStatus,
    SignatureMethod,
    SignerRelation,
)
from portal.domain.consent_text import CONSENT_TEXT_VERSIONS, REVOCATION_STATEMENT
from portal.domain.vocabulary import DataCategory as C
from portal.domain.vocabulary import (
    GoalDomain,
    GoalStatus,
    ParticipantStatus,
    Purpose,
    ReferralPathway,
    Role,
    Sector,
)

DEV_ISSUER_PATH = "/dev-idp"
# Demo only: (participant, username, passphrase). Never seeded in production.
DEMO_PARTICIPANT_LOGINS = [
    ("LP-1001", "marcus", "river stone morning"),
    ("LP-1002", "angela", "cielo azul tranquilo"),
]
@dataclass(frozen=True)
class OrgSeed:
    slug: str
    name: str
    sector: Sector
    part2: bool = False
    hipaa: bool = False


ORGANIZATIONS = [
    OrgSeed("harbor-lead", "Harbor LEAD Case Management", Sector.CASE_MANAGEMENT),
    OrgSeed("cedar-recovery", "Cedar Recovery Services", Sector.SUD_TREATMENT, part2=True,
            hipaa=True),
    OrgSeed("northside-bh", "Northside Behavioral Health", Sector.MENTAL_HEALTH, hipaa=True),
    OrgSeed("eastgate-clinic", "Eastgate Community Health Clinic", Sector.HEALTH, hipaa=True),
    OrgSeed("hope-housing", "Hope Housing Collaborative", Sector.HOUSING),
    OrgSeed("riverton-pd", "Riverton Police Department", Sector.POLICE),
    OrgSeed("riverton-pa", "Riverton County Prosecuting Attorney", Sector.PROSECUTION),
    OrgSeed("riverton-probation", "Riverton County Adult Probation", Sector.PROBATION),
    OrgSeed("riverton-court", "Riverton Municipal Court", Sector.COURT),
    OrgSeed("riverton-defender", "Riverton Public Defender", Sector.DEFENSE),
]


@dataclass(frozen=True)
class StaffSeed:
    email: str
    name: str
    org: str
    roles: tuple[Role, ...]


STAFF = [
    StaffSeed("maria.lopez@harbor-lead.example", "Maria Lopez", "harbor-lead",
              (Role.CASE_MANAGER,)),
    StaffSeed("dev.patel@harbor-lead.example", "Dev Patel", "harbor-lead", (Role.CASE_MANAGER,)),
    StaffSeed("olivia.chen@harbor-lead.example", "Olivia Chen", "harbor-lead", (Role.ORG_ADMIN,)),
    StaffSeed("renee.walsh@harbor-lead.example", "Renee Walsh", "harbor-lead",
              (Role.COMPLIANCE_OFFICER,)),
    StaffSeed("sam.okafor@cedar-recovery.example", "Sam Okafor", "cedar-recovery",
              (Role.COUNSELOR,)),
    StaffSeed("grace.kim@northside-bh.example", "Dr. Grace Kim", "northside-bh",
              (Role.CLINICIAN,)),
    StaffSeed("luis.moreno@eastgate-clinic.example", "Luis Moreno, NP", "eastgate-clinic",
              (Role.CLINICIAN,)),
    StaffSeed("alex.rivera@hope-housing.example", "Alex Rivera", "hope-housing",
              (Role.HOUSING_NAVIGATOR,)),
    StaffSeed("james.carter@riverton-pd.example", "Officer James Carter", "riverton-pd",
              (Role.POLICE_OFFICER,)),
    StaffSeed("priya.shah@riverton-pa.example", "Priya Shah", "riverton-pa", (Role.PROSECUTOR,)),
    StaffSeed("tom.becker@riverton-probation.example", "Tom Becker", "riverton-probation",
              (Role.PROBATION_OFFICER,)),
    StaffSeed("linda.nguyen@riverton-court.example", "Linda Nguyen", "riverton-court",
              (Role.COURT_LIAISON,)),
    StaffSeed("nadia.okonkwo@riverton-defender.example", "Nadia Okonkwo", "riverton-defender",
              (Role.DEFENDER,)),
]

# (public id, given, family, date of birth, pathway, language, care team org slugs)
PARTICIPANTS = [
    ("LP-1001", "Marcus", "Reed", date(1986, 3, 14), ReferralPathway.ARREST_DIVERSION, "en",
     ("harbor-lead", "cedar-recovery", "hope-housing", "riverton-probation", "riverton-pd")),
    ("LP-1002", "Angela", "Torres", date(1979, 11, 2), ReferralPathway.SOCIAL_CONTACT, "es",
     ("harbor-lead", "northside-bh", "hope-housing", "eastgate-clinic")),
    ("LP-1003", "Darnell", "Hughes", date(1992, 7, 23), ReferralPathway.ARREST_DIVERSION, "en",
     ("harbor-lead", "cedar-recovery", "riverton-court", "riverton-defender")),
    ("LP-1004", "Keisha", "Morgan", date(1990, 1, 9), ReferralPathway.SOCIAL_CONTACT, "en",
     ("harbor-lead", "hope-housing", "eastgate-clinic")),
    ("LP-1005", "Roberto", "Alvarez", date(1975, 5, 30), ReferralPathway.ARREST_DIVERSION, "es",
     ("harbor-lead", "cedar-recovery", "northside-bh", "riverton-probation")),
    ("LP-1006", "Tanya", "Brooks", date(1988, 9, 17), ReferralPathway.ARREST_DIVERSION, "en",
     ("harbor-lead", "riverton-pa", "hope-housing")),
    ("LP-1007", "Eli", "Whitford", date(1996, 12, 4), ReferralPathway.SOCIAL_CONTACT, "en",
     ("harbor-lead", "northside-bh")),
    ("LP-1008", "Rosa", "Jimenez", date(1983, 4, 21), ReferralPathway.ARREST_DIVERSION, "es",
     ("harbor-lead", "cedar-recovery", "hope-housing", "riverton-probation")),
    ("LP-1009", "Curtis", "Lang", date(1969, 8, 8), ReferralPathway.SOCIAL_CONTACT, "en",
     ("harbor-lead", "eastgate-clinic", "hope-housing")),
    ("LP-1010", "Jasmine", "Okoro", date(1999, 2, 27), ReferralPathway.ARREST_DIVERSION, "en",
     ("harbor-lead", "cedar-recovery", "riverton-court")),
    ("LP-1011", "Walter", "Greene", date(1972, 6, 11), ReferralPathway.SOCIAL_CONTACT, "en",
     ("harbor-lead", "northside-bh", "hope-housing", "riverton-defender")),
    ("LP-1012", "Lucia", "Fernandez", date(1994, 10, 5), ReferralPathway.ARREST_DIVERSION, "es",
     ("harbor-lead", "cedar-recovery", "northside-bh", "riverton-probation", "hope-housing")),
]

# One participant has left LEAD (their health release ended with it); one has had the final
# disposition of their case recorded (their 42 CFR 2.35 consent can now be taken back).
DEMO_EVENTS = {
    "LP-1009": ((ConsentEvent.LEAD_EXIT, 5, "completed", "maria.lopez@harbor-lead.example"),),
    "LP-1010": ((ConsentEvent.FINAL_DISPOSITION, 3, "",
                 "linda.nguyen@riverton-court.example"),),
}

# Records by category: (authoring org, title, body); {name} is the participant's given name.
RECORDS: dict[C, list[tuple[str, str, str]]] = {
    C.CONTACT: [
        ("harbor-lead", "How to reach {name}",
         "Phone: 555-01{n:02d} (prepaid, often out of minutes). Usually at the Main St day "
         "center mornings; leave messages with front desk."),
    ],
    C.CASE_PLAN: [
        ("harbor-lead", "Case plan review",
         "Reviewed goals with {name}. Priorities in order: a safe place to sleep, ID documents, "
         "then treatment intake. Next check-in Thursday."),
    ],
    C.PROGRESS: [
        ("harbor-lead", "Engagement summary",
         "{name} has met with case management 3 times this month and kept every appointment."),
        ("cedar-recovery", "Treatment engagement summary",
         "{name} is attending outpatient group twice a week."),
    ],
    C.HOUSING: [
        ("hope-housing", "Coordinated entry assessment",
         "Assessment completed; {name} is on the priority list for permanent supportive housing. "
         "Bridge shelter bed reserved at Riverside shelter."),
    ],
    C.BENEFITS: [
        ("harbor-lead", "Benefits screening",
         "Eligible for SNAP and Medicaid; application submitted with {name}; state ID appointment "
         "booked."),
    ],
    C.HEALTH: [
        ("eastgate-clinic", "Clinic visit",
         "Wound care for a foot infection; follow-up in one week. Blood pressure elevated; "
         "discussed medication."),
    ],
    C.MENTAL_HEALTH: [
        ("northside-bh", "Psychiatric evaluation",
         "Assessment for depression and trauma symptoms; starting weekly therapy with {name}."),
    ],
    C.SUD_TREATMENT: [
        ("cedar-recovery", "Intake and treatment plan",
         "Opioid use disorder; started buprenorphine. Counseling twice weekly; {name} set a "
         "goal of stabilizing before housing move-in."),
    ],
    C.JUSTICE: [
        ("riverton-pd", "Diversion referral",
         "Diverted at point of arrest (possession, under 3 g). Referred to LEAD case management."),
        ("riverton-probation", "Probation conditions",
         "Conditions: report monthly; participate in LEAD case management."),
    ],
}

GOALS = [
    (GoalDomain.SHELTER, "harbor-lead", "Shelter tonight", "Bed at Riverside shelter confirmed "
     "until Friday; needs a bus pass to get there.", GoalStatus.IN_PROGRESS, True),
    (GoalDomain.FOOD, "harbor-lead", "Food this week", "Connected to the St. Vincent pantry and "
     "SNAP emergency allotment.", GoalStatus.IN_PROGRESS, True),
    (GoalDomain.UTILITIES, "harbor-lead", "Keep the lights on", "Utility shut-off notice; "
     "LIHEAP emergency application filed.", GoalStatus.NOT_STARTED, True),
    (GoalDomain.HOUSING, "hope-housing", "Working toward housing", "Application submitted for "
     "permanent supportive housing at Cedar Court.", GoalStatus.IN_PROGRESS, False),
    (GoalDomain.TREATMENT, "cedar-recovery", "Engaged in treatment", "Buprenorphine induction "
     "done; counseling twice weekly.", GoalStatus.IN_PROGRESS, False),
    (GoalDomain.MENTAL_HEALTH, "northside-bh", "Mental health care", "Weekly therapy; "
     "medication review in a month.", GoalStatus.IN_PROGRESS, False),
    (GoalDomain.BENEFITS, "harbor-lead", "Get benefits", "SNAP approved; Medicaid pending.",
     GoalStatus.ACHIEVED, False),
    (GoalDomain.LEGAL, "riverton-defender", "Resolve open warrant", "Quash hearing requested.",
     GoalStatus.NOT_STARTED, False),
]


def _at(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=UTC)


class DemoAlreadySeeded(RuntimeError):
    pass


def repoint_dev_personas(session: Session, issuer: str) -> int:
    """Point the demo personas at the development provider served at ``issuer`` (a demo
    seeded while served on another port). Only the seeded personas of a development issuer
    move; returns how many did."""
    result = session.execute(
        update(StaffUser)
        .where(StaffUser.email.in_([s.email for s in STAFF]),
               StaffUser.subject == StaffUser.email,
               StaffUser.issuer.like(f"%{DEV_ISSUER_PATH}"), StaffUser.issuer != issuer)
        .values(issuer=issuer).execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def seed_demo(session: Session, *, issuer: str, vault: Vault,
              today: date | None = None) -> dict[str, int]:
    """Create the demo site in the caller's transaction. Raises DemoAlreadySeeded when present."""
    today = today or datetime.now(UTC).date()
    vault.ready(session)
    if session.scalar(select(Organization.id).where(Organization.slug == "harbor-lead")):
        raise DemoAlreadySeeded("the demo data is already present; nothing was changed")
    orgs: dict[str, Organization] = {}
    for o in ORGANIZATIONS:
        orgs[o.slug] = Organization(slug=o.slug, name=o.name, sector=o.sector.value,
                                    part2_program=o.part2, hipaa_covered=o.hipaa)
    session.add_all(orgs.values())
    session.flush()
    staff: dict[str, StaffUser] = {}
    for s in STAFF:
        user = StaffUser(issuer=issuer, subject=s.email, email=s.email, display_name=s.name,
                         organization_id=orgs[s.org].id,
                         roles=[StaffRole(role=r.value) for r in s.roles])
        staff[s.email] = user
    session.add_all(staff.values())
    session.flush()
    case_manager = staff["maria.lopez@harbor-lead.example"]

    counts = {"organizations": len(orgs), "staff": len(staff), "participants": 0, "records": 0,
              "goals": 0, "consents": 0}
    for n, (public_id, given, family, dob, pathway, lang, team) in enumerate(PARTICIPANTS, 1):
        enrolled = today - timedelta(days=30 + 17 * n)
        p = Participant(id=uuid.uuid4(), public_id=public_id, enrolled_on=enrolled,
                        referral_pathway=pathway.value, status="enrolled",
                        preferred_language=lang)
        vault.seal_participant(p, given, family, dob)
        session.add(p)
        session.flush()
        counts["participants"] += 1
        for slug in team:
            session.add(CareTeamMember(
                participant_id=p.id, organization_id=orgs[slug].id, start_date=enrolled,
                staff_user_id=case_manager.id if slug == "harbor-lead" else None))
        for category, items in RECORDS.items():
            for k, (author, title, body) in enumerate(items):
                # Every participant has Harbor's records; partner records only where that
                # partner is on the care team.
                if author not in team:
                    continue
                record = Record(
                    id=uuid.uuid4(), participant_id=p.id, organization_id=orgs[author].id,
                    category=category.value,
                    effective_date=today - timedelta(days=(n + k * 5) % 40))
                vault.seal(record, {"title": title.format(name=given, n=n),
                                    "body": body.format(name=given, n=n)})
                session.add(record)
                counts["records"] += 1
        for k, (domain, owner, summary, detail, status, urgent) in enumerate(GOALS):
            if owner not in team or ((n + k) % 3 == 0 and not urgent):
                continue
            if urgent and (n + k) % 2:
                continue
            goal = Goal(id=uuid.uuid4(), participant_id=p.id, organization_id=orgs[owner].id,
                        domain=domain.value, status=status.value, urgent=urgent)
            vault.seal(goal, {"summary": summary, "detail": detail,
                              "status_note": "application submitted"
                              if domain is GoalDomain.HOUSING else None})
            first = GoalUpdate(status=status.value, author_user_id=case_manager.id,
                               key_version=goal.key_version)
            goal.updates = [first]
            session.add(goal)
            session.flush()
            vault.seal(first, {"note": "Set with the participant"}, version=first.key_version)
            counts["goals"] += 1
        for consent in _demo_consents(n, p, team, today, case_manager.id):
            consent.id = uuid.uuid4()
            if consent.signed_at is not None:
                vault.seal(consent, {"signer_name": f"{given} {family}"})
            session.add(consent)
            counts["consents"] += 1
        for event, days_ago, reason, by in DEMO_EVENTS.get(public_id, ()):
            # Recorded events: consents that end on them are expired from that day on.
            session.add(ParticipantEvent(participant_id=p.id, event=event.value,
                                         occurred_on=today - timedelta(days=days_ago),
                                         reason=reason, recorded_by_user_id=staff[by].id))
            if event is ConsentEvent.LEAD_EXIT:
                p.status = ParticipantStatus.EXITED.value
    session.flush()
    # Two participants who have already set up their sign-in (README lists them).
    for public_id, username, passphrase in DEMO_PARTICIPANT_LOGINS:
        participant = session.scalar(select(Participant).where(
            Participant.public_id == public_id))
        assert participant is not None
        set_demo_credentials(session, vault, participant.id, username, passphrase)
    return counts


def _provision(effect: str, disclosers: list[str], recipients: list[str],
               categories: list[C], purposes: list[Purpose]) -> ConsentProvision:
    return ConsentProvision(effect=effect, disclosers=disclosers, recipients=recipients,
                            categories=[c.value for c in categories],
                            purposes=[p.value for p in purposes])


def _signed(consent: Consent, participant: Participant, on: date, witness: int) -> Consent:
    consent.signature_method = SignatureMethod.TYPED.value
    consent.signer_relation = SignerRelation.SELF.value
    consent.witness_user_id = witness
    consent.signed_at = _at(on)
    return consent


def _demo_consents(n: int, p: Participant, team: tuple[str, ...], today: date,
                   witness: int) -> Iterator[Consent]:
    partners = [f"org:{slug}" for slug in team if slug != "harbor-lead"]
    signed_on = p.enrolled_on or today
    common = {"participant_id": p.id, "language": p.preferred_language,
              "text_version": CONSENT_TEXT_VERSIONS[p.preferred_language],
              "revocation_statement": REVOCATION_STATEMENT,
              "created_by_user_id": witness}
    # Multi-party release among the care team for coordination (not Part 2 information).
    roi_status = {3: ConsentStatus.EXPIRED, 7: ConsentStatus.REVOKED}.get(n, ConsentStatus.ACTIVE)
    roi = Consent(
        kind=ConsentKind.ROI.value, status=roi_status.value,
        information_description="Contact details, case plan, progress, housing and benefits "
                                "information. Does not include substance use treatment records.",
        expires_on=today - timedelta(days=10) if roi_status is ConsentStatus.EXPIRED
        else today + timedelta(days=365),
        provisions=[
            _provision("permit", ["org:harbor-lead", *partners],
                       ["org:harbor-lead", *partners],
                       [C.CONTACT, C.CASE_PLAN, C.PROGRESS, C.HOUSING, C.BENEFITS],
                       [Purpose.CAREMGT, Purpose.TREAT]),
            # Justice partners see progress only (Golden Rule; minimum necessary).
            _provision("deny", ["sector:case_management", "sector:housing"],
                       ["sector:police", "sector:prosecution"], [C.CONTACT, C.HOUSING],
                       [Purpose.CAREMGT]),
        ],
        **common)
    _signed(roi, p, signed_on, witness)
    if roi_status is ConsentStatus.REVOKED:
        roi.revoked_at = _at(today - timedelta(days=5))
        roi.revoked_by = "participant"
        roi.revocation_method = "in person, told case manager"
    yield roi
    if "northside-bh" in team or "eastgate-clinic" in team:
        yield _signed(Consent(
            kind=ConsentKind.ROI.value, status=ConsentStatus.ACTIVE.value,
            information_description="Mental health and physical health information.",
            expiry_event=ConsentEvent.LEAD_EXIT.value,
            provisions=[_provision("permit", ["org:northside-bh", "org:eastgate-clinic"],
                                   ["org:harbor-lead", "org:northside-bh", "org:eastgate-clinic"],
                                   [C.MENTAL_HEALTH, C.HEALTH], [Purpose.TREAT, Purpose.CAREMGT])],
            **common), p, signed_on, witness)
    if "cedar-recovery" in team:
        # 42 CFR 2.31: names the SUD program, the recipients, and SUD information explicitly.
        part2_status = ConsentStatus.REVOKED if n == 10 else ConsentStatus.ACTIVE
        part2 = _signed(Consent(
            kind=ConsentKind.PART2.value, status=part2_status.value,
            information_description="Substance use disorder (SUD) treatment records from Cedar "
                                    "Recovery Services: attendance, treatment plan, medications.",
            expires_on=today + timedelta(days=180),
            provisions=[_provision("permit", ["org:cedar-recovery"],
                                   ["org:harbor-lead", "org:northside-bh"],
                                   [C.SUD_TREATMENT, C.PROGRESS],
                                   [Purpose.TREAT, Purpose.CAREMGT])],
            **common), p, signed_on, witness)
        if part2_status is ConsentStatus.REVOKED:
            part2.revoked_at = _at(today - timedelta(days=2))
            part2.revoked_by = "participant"
            part2.revocation_method = "in writing"
        yield part2
        justice = [s for s in team if s in ("riverton-probation", "riverton-court")]
        if justice:
            # 42 CFR 2.35: to the justice agency that made LEAD a condition of release, for
            # monitoring progress only; irrevocable until the stated date (final disposition).
            yield _signed(Consent(
                kind=ConsentKind.PART2_CRIMINAL_JUSTICE.value, status=ConsentStatus.ACTIVE.value,
                information_description="Whether I attend SUD treatment and my progress in it "
                                        "(substance use disorder information), from Cedar "
                                        "Recovery Services.",
                expires_on=today + timedelta(days=270),
                revocable_after=today + timedelta(days=90),
                revocable_after_event=ConsentEvent.FINAL_DISPOSITION.value,
                provisions=[_provision("permit", ["org:cedar-recovery"],
                                       [f"org:{s}" for s in justice], [C.PROGRESS],
                                       [Purpose.LEADMON])],
                **common), p, signed_on, witness)
    if n in (4, 9):
        # A draft waiting for the participant's signature.
        yield Consent(
            kind=ConsentKind.ROI.value, status=ConsentStatus.DRAFT.value,
            information_description="Housing information, to share with the county housing "
                                    "authority.",
            expires_on=today + timedelta(days=365),
            provisions=[_provision("permit", ["org:hope-housing"], ["sector:housing"],
                                   [C.HOUSING], [Purpose.CAREMGT])],
            **common)


GIVEN = ["James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "Jose",
         "Elizabeth", "Kevin", "Aaliyah", "Tyrone", "Mei", "Andre", "Fatima", "Hector", "Nia",
         "Samuel", "Carmen", "Dmitri", "Grace", "Omar", "Hannah"]
FAMILY = ["Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Rodriguez",
          "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
          "Jackson", "Nguyen", "Kim", "Okafor", "Patel", "Begay", "Yazzie", "Kowalski"]
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def generate_participants(
    factory: sessionmaker[Session], vault: Vault, count: int, *, batch_size: int = 1000,
    progress: Callable[[int], None] | None = None, seed: int | None = None,
) -> int:
    """Add `count` synthetic participants, one transaction per batch (a rerun adds more)."""
    rng = random.Random(seed)  # noqa: S311 (fictional data, not security-sensitive)
    today = datetime.now(UTC).date()
    with factory.begin() as session:
        vault.ready(session)
        orgs = {o.slug: o for o in session.scalars(select(Organization))}
    if "harbor-lead" not in orgs:
        raise DemoAlreadySeeded("seed the demo organizations first (portal seed-demo)")
    partners = [s for s in orgs if s != "harbor-lead"]
    done = 0
    while done < count:
        n = min(batch_size, count - done)
        people, team, records, consents, provisions = [], [], [], [], []
        for _ in range(n):
            pid = uuid.uuid4()
            given, family = rng.choice(GIVEN), rng.choice(FAMILY)
            enrolled = today - timedelta(days=rng.randint(1, 900))
            person = Participant(
                id=pid, public_id="LP-" + "".join(rng.choices(_ALPHABET, k=8)),
                enrolled_on=enrolled, status="enrolled",
                referral_pathway=rng.choice(list(ReferralPathway)).value,
                preferred_language=rng.choice(["en", "en", "es"]), created_at=datetime.now(UTC))
            vault.seal_participant(person, given, family, date(
                rng.randint(1955, 2005), rng.randint(1, 12), rng.randint(1, 28)))
            people.append({c.key: getattr(person, c.key)
                           for c in Participant.__table__.columns})
            members = ["harbor-lead", *rng.sample(partners, 2)]
            for slug in members:
                team.append({"participant_id": pid, "organization_id": orgs[slug].id,
                             "start_date": enrolled})
            for category in (C.CONTACT, C.PROGRESS, C.CASE_PLAN, rng.choice(list(C))):
                record = Record(id=uuid.uuid4(), participant_id=pid,
                                organization_id=orgs["harbor-lead"].id,
                                category=category.value, effective_date=enrolled,
                                created_at=datetime.now(UTC))
                vault.seal(record, {"title": f"{category.info.label} note",
                                    "body": f"Synthetic {category.value} note for {given}."})
                records.append({c.key: getattr(record, c.key)
                                for c in Record.__table__.columns})
            cid = uuid.uuid4()
            signer = vault.encrypt(f"{given} {family}", table="consent", column="signer_name",
                                   row_id=cid)
            consents.append({
                "id": cid, "participant_id": pid, "kind": ConsentKind.ROI.value,
                "status": ConsentStatus.ACTIVE.value, "version": 1, "language": "en",
                "text_version": CONSENT_TEXT_VERSIONS["en"],
                "information_description": "Contact, case plan and progress information.",
                "revocation_statement": REVOCATION_STATEMENT,
                "expires_on": today + timedelta(days=365), "signature_method": "typed",
                "signer_name_enc": signer, "key_version": vault.current_version,
                "signer_relation": "self",
                "signed_at": _at(enrolled), "created_at": datetime.now(UTC)})
            provisions.append({
                "consent_id": cid, "effect": "permit",
                "disclosers": [f"org:{s}" for s in members],
                "recipients": [f"org:{s}" for s in members],
                "categories": ["contact", "case_plan", "progress"],
                "purposes": ["CAREMGT"]})
        with factory.begin() as session:
            session.execute(insert(Participant), people)
            session.execute(insert(CareTeamMember), team)
            session.execute(insert(Record), records)
            session.execute(insert(Consent), consents)
            session.execute(insert(ConsentProvision), provisions)
        done += n
        if progress:
            progress(n)
    return done
