"""Factories for domain objects: organizations, actors, consents, contexts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from portal.domain.consent import (
    ConsentKind,
    ConsentStatus,
    Directive,
    Provision,
    ProvisionEffect,
    Signature,
    SignatureMethod,
    SignerRelation,
)
from portal.domain.decision import AccessRequest, Actor, CareTeamLink, Organization
from portal.domain.decision import ParticipantContext as Context
from portal.domain.vocabulary import Action, DataCategory, Purpose, Role, Sector

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
PID = "5b0f7c1e-0000-4000-8000-000000000001"

HARBOR = Organization("harbor-lead", Sector.CASE_MANAGEMENT, name="Harbor LEAD Case Management")
CEDAR = Organization("cedar-recovery", Sector.SUD_TREATMENT, part2_program=True,
                     name="Cedar Recovery Services")
NORTHSIDE = Organization("northside-bh", Sector.MENTAL_HEALTH, name="Northside Behavioral Health")
HOPE = Organization("hope-housing", Sector.HOUSING, name="Hope Housing Collaborative")
PROBATION = Organization("riverton-probation", Sector.PROBATION, name="Adult Probation")
POLICE = Organization("riverton-pd", Sector.POLICE, name="Riverton Police Department")
OUTSIDER = Organization("elsewhere-housing", Sector.HOUSING, name="Elsewhere Housing")
ORGS = (HARBOR, CEDAR, NORTHSIDE, HOPE, PROBATION, POLICE, OUTSIDER)
TEAM = (HARBOR, CEDAR, NORTHSIDE, HOPE, PROBATION, POLICE)

ROLE_OF = {
    HARBOR.slug: Role.CASE_MANAGER, CEDAR.slug: Role.COUNSELOR, NORTHSIDE.slug: Role.CLINICIAN,
    HOPE.slug: Role.HOUSING_NAVIGATOR, PROBATION.slug: Role.PROBATION_OFFICER,
    POLICE.slug: Role.POLICE_OFFICER, OUTSIDER.slug: Role.HOUSING_NAVIGATOR,
}


def actor(org: Organization, role: Role | None = None, user_id: int = 1) -> Actor:
    return Actor(user_id=user_id, organization=org, roles=frozenset({role or ROLE_OF[org.slug]}))


def provision(effect: str = "permit", disclosers: tuple[Organization, ...] = (HARBOR,),
              recipients: tuple[Organization, ...] = (HOPE,),
              categories: tuple[DataCategory, ...] = (DataCategory.HOUSING,),
              purposes: tuple[Purpose, ...] = (Purpose.CAREMGT,),
              period_start: date | None = None, period_end: date | None = None) -> Provision:
    return Provision(ProvisionEffect(effect), frozenset(f"org:{o.slug}" for o in disclosers),
                     frozenset(f"org:{o.slug}" for o in recipients), frozenset(categories),
                     frozenset(purposes), period_start, period_end)


def consent(*provisions: Provision, kind: ConsentKind = ConsentKind.ROI,
            status: ConsentStatus = ConsentStatus.ACTIVE, cid: str = "c1",
            expires_on: date | None = TODAY + timedelta(days=365), signed: bool = True,
            description: str = "Housing and substance use disorder (SUD) information.",
            **kwargs: object) -> Directive:
    signature = Signature(SignatureMethod.TYPED, "Marcus Reed", SignerRelation.SELF,
                          NOW - timedelta(days=30)) if signed else None
    return Directive(id=cid, participant_id=PID, kind=kind, status=status,
                     provisions=tuple(provisions) or (provision(),),
                     information_description=description,
                     revocation_statement="You may revoke this at any time.",
                     expires_on=expires_on, signature=signature, **kwargs)  # type: ignore[arg-type]


def context(*consents: Directive, team: tuple[Organization, ...] = TEAM,
            **kwargs: object) -> Context:
    return Context(participant_id=PID,
                   care_team=tuple(CareTeamLink(o.slug, TODAY - timedelta(days=60))
                                   for o in team),
                   consents=consents, **kwargs)  # type: ignore[arg-type]


def request(who: Actor, category: DataCategory, source: Organization,
            purpose: Purpose = Purpose.CAREMGT, action: Action = Action.VIEW,
            at: datetime = NOW) -> AccessRequest:
    return AccessRequest(actor=who, participant_id=PID, category=category, action=action,
                         purpose=purpose, at=at, source=source)
