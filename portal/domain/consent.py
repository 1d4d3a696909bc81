"""Consent directives (modelled on FHIR Consent) and their 42 CFR Part 2 rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType

from portal.domain.vocabulary import JUSTICE_SECTORS, PART2_CATEGORIES, DataCategory, Purpose


class ConsentKind(StrEnum):
    ROI = "roi"  # multi-party release of information (non-Part 2)
    PART2 = "part2"  # 42 CFR 2.31 written consent naming recipients
    PART2_TPO = "part2_tpo"  # 42 CFR 2.33(b) single consent for treatment, payment, operations
    PART2_CRIMINAL_JUSTICE = "part2_criminal_justice"  # 42 CFR 2.35

    @property
    def is_part2(self) -> bool:
        return self is not ConsentKind.ROI


class ConsentStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered_in_error"


class ConsentEvent(StrEnum):
    """Events a consent may end on (42 CFR 2.31(a)(7)) or, for a 2.35 consent, become
    revocable at (2.35(c)): recorded facts that decide() evaluates, never free text."""

    LEAD_EXIT = "lead_exit"  # the participant's participation in LEAD ended
    FINAL_DISPOSITION = "final_disposition"  # the final disposition of their case
    TREATMENT_EPISODE_END = "treatment_episode_end"  # the end of a treatment episode


# What has happened to a participant, and on which day (loaded with the decision context).
Occurred = Mapping[ConsentEvent, date]
NOTHING_OCCURRED: Occurred = MappingProxyType({})


def event_of(value: str | None) -> ConsentEvent | None:
    """The event a stored code names; None for no code or one outside the vocabulary."""
    try:
        return ConsentEvent(value) if value else None
    except ValueError:
        return None


def has_occurred(value: str | None, occurred: Occurred, day: date) -> bool:
    event = event_of(value)
    return event is not None and event in occurred and occurred[event] <= day


class ProvisionEffect(StrEnum):
    PERMIT = "permit"
    DENY = "deny"


class SignatureMethod(StrEnum):
    TYPED = "typed"  # typed full name with explicit agreement, on the device
    DRAWN = "drawn"  # typed name plus a drawn signature
    WET_INK_SCAN = "wet_ink_scan"  # uploaded scan of a signed paper form


class SignerRelation(StrEnum):
    SELF = "self"
    GUARDIAN = "guardian"  # minor's parent or guardian
    AUTHORIZED_REPRESENTATIVE = "authorized_representative"


# --- The directive as the domain sees it ------------------------------------------------------

NOTICE_PART2 = (
    "42 CFR part 2 prohibits unauthorized use or disclosure of these records."  # 42 CFR 2.32(a)(1)
)
SUD_WORDS = ("substance use", "sud", "alcohol", "drug", "sustancias", "opioid")


@dataclass(frozen=True, slots=True)
class Provision:
    """One rule of a consent. References are ``org:<slug>`` or ``sector:<sector>``."""

    effect: ProvisionEffect
    disclosers: frozenset[str]
    recipients: frozenset[str]
    categories: frozenset[DataCategory]
    purposes: frozenset[Purpose]
    period_start: date | None = None
    period_end: date | None = None

    def in_period(self, day: date) -> bool:
        return (self.period_start is None or self.period_start <= day) and (
            self.period_end is None or day <= self.period_end
        )


@dataclass(frozen=True, slots=True)
class Signature:
    method: SignatureMethod
    signer_name: str
    signer_relation: SignerRelation
    signed_at: datetime
    witness_user_id: int | None = None


@dataclass(frozen=True, slots=True)
class Directive:
    """A consent directive: everything decide() and the lifecycle rules need to know."""

    id: str
    participant_id: str
    kind: ConsentKind
    status: ConsentStatus
    provisions: tuple[Provision, ...]
    information_description: str = ""
    revocation_statement: str = ""
    # 42 CFR 2.31(a)(10): a TPO consent's statements on redisclosure and on refusing to sign.
    tpo_statement: str = ""
    expires_on: date | None = None
    expiry_event: str | None = None
    signature: Signature | None = None
    revocable_after: date | None = None
    revocable_after_event: str | None = None
    revoked_at: datetime | None = None
    version: int = 1
    supersedes_id: str | None = None

    def status_at(self, at: datetime, occurred: Occurred = NOTHING_OCCURRED) -> ConsentStatus:
        """Expiry is evaluated at decision time, never by a batch job (42 CFR 2.31(a)(7)): by
        its date, or by its event once that event is recorded as having happened."""
        if self.status is ConsentStatus.ACTIVE and (
            (self.expires_on is not None and at.date() > self.expires_on)
            or has_occurred(self.expiry_event, occurred, at.date())
        ):
            return ConsentStatus.EXPIRED
        return self.status

    @property
    def covers_part2(self) -> bool:
        return self.kind.is_part2 or any(
            c in PART2_CATEGORIES for p in self.provisions for c in p.categories
        )


class ConsentError(ValueError):
    """A refused consent change; ``problems`` lists each reason in words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def missing_elements(d: Directive) -> list[str]:
    """The 42 CFR 2.31(a) elements a directive lacks (empty when it may become active)."""
    missing: list[str] = []
    permits = [p for p in d.provisions if p.effect is ProvisionEffect.PERMIT]
    if not d.participant_id:
        missing.append("the patient's name (42 CFR 2.31(a)(1))")
    if not permits or any(not p.disclosers for p in permits):
        missing.append("who may disclose (42 CFR 2.31(a)(2))")
    if not d.information_description.strip() or any(not p.categories for p in permits):
        missing.append("how much and what kind of information (42 CFR 2.31(a)(3))")
    elif d.covers_part2 and not any(w in d.information_description.lower() for w in SUD_WORDS):
        missing.append("an explicit statement that substance use disorder information is "
                       "included (42 CFR 2.31(a)(3))")
    if not permits or any(not p.recipients for p in permits):
        missing.append("who may receive it (42 CFR 2.31(a)(4))")
    if not permits or any(not p.purposes for p in permits):
        missing.append("the purpose of each disclosure (42 CFR 2.31(a)(5))")
    if not d.revocation_statement.strip():
        missing.append("the right to revoke and how (42 CFR 2.31(a)(6))")
    if d.expires_on is None and event_of(d.expiry_event) is None:
        missing.append("an expiration date or event (42 CFR 2.31(a)(7))")
    if d.signature is None or not d.signature.signer_name.strip():
        missing.append("the signature of the patient or representative (42 CFR 2.31(a)(8))")
    if d.signature is None:
        missing.append("the date signed (42 CFR 2.31(a)(9))")
    if d.kind is ConsentKind.PART2_CRIMINAL_JUSTICE:
        missing.extend(_criminal_justice_problems(permits))
    if d.kind is ConsentKind.PART2_TPO and not d.tpo_statement.strip():
        missing.append("the statements that records disclosed for treatment, payment and "
                       "operations may be redisclosed and may no longer be protected by "
                       "42 CFR Part 2, and what happens if the patient refuses to sign "
                       "(42 CFR 2.31(a)(10))")
    return missing


def _criminal_justice_problems(permits: list[Provision]) -> list[str]:
    # 42 CFR 2.35(a)-(b): only to the justice agency that made treatment a condition, and only
    # to monitor progress.
    problems = []
    for p in permits:
        if any(not _is_justice_ref(r) for r in p.recipients):
            problems.append("a criminal-justice consent may name only justice agencies as "
                            "recipients (42 CFR 2.35(a))")
            break
    if any(p.purposes != {Purpose.LEADMON} for p in permits):
        problems.append("a criminal-justice consent may be used only to monitor progress "
                        "(42 CFR 2.35(d))")
    return problems


def _is_justice_ref(ref: str) -> bool:
    kind, _, value = ref.partition(":")
    if kind == "sector":
        return value in {s.value for s in JUSTICE_SECTORS}
    # Organization references are checked against the organization's sector by the service.
    return kind == "org"


def activate(d: Directive, signature: Signature) -> Directive:
    """draft -> active, once signed and complete."""
    if d.status is not ConsentStatus.DRAFT:
        raise ConsentError([f"only a draft can be signed; this consent is {d.status.value}"])
    signed = replace(d, signature=signature)
    problems = missing_elements(signed)
    if problems:
        raise ConsentError(problems)
    if d.expires_on is not None and d.expires_on < signature.signed_at.date():
        raise ConsentError(["the expiration date is already past"])
    return replace(signed, status=ConsentStatus.ACTIVE)


EVENT_LABELS = {
    ConsentEvent.LEAD_EXIT: "the end of participation in LEAD",
    ConsentEvent.FINAL_DISPOSITION: "the final disposition of the case",
    ConsentEvent.TREATMENT_EPISODE_END: "the end of the treatment episode",
}


def revocable_from(d: Directive) -> str | None:
    """When a 42 CFR 2.35 consent becomes revocable, in words (None when revocable now)."""
    parts = []
    if d.revocable_after is not None:
        parts.append(d.revocable_after.isoformat())
    if (event := event_of(d.revocable_after_event)) is not None:
        parts.append(EVENT_LABELS[event])
    return " or ".join(parts) or None


def revoke(d: Directive, at: datetime, occurred: Occurred = NOTHING_OCCURRED) -> Directive:
    """active -> revoked; a 42 CFR 2.35(c) consent not before its stated time or event (the
    event counts once it is recorded as having happened)."""
    if d.status_at(at, occurred) is not ConsentStatus.ACTIVE:
        raise ConsentError([f"only an active consent can be revoked; this one is "
                            f"{d.status_at(at, occurred).value}"])
    if d.kind is ConsentKind.PART2_CRIMINAL_JUSTICE:
        date_passed = d.revocable_after is not None and at.date() >= d.revocable_after
        event_passed = has_occurred(d.revocable_after_event, occurred, at.date())
        restricted = d.revocable_after is not None or d.revocable_after_event is not None
        if restricted and not (date_passed or event_passed):
            raise ConsentError([
                f"this criminal-justice consent cannot be revoked until {revocable_from(d)} "
                "(42 CFR 2.35(c)); it was made a condition of your case"])
    return replace(d, status=ConsentStatus.REVOKED, revoked_at=at)


def supersede(old: Directive, new: Directive) -> tuple[Directive, Directive]:
    """A change to an active consent is a new version; the old one becomes superseded."""
    if old.status is not ConsentStatus.ACTIVE:
        raise ConsentError([f"only an active consent can be superseded; this one is "
                            f"{old.status.value}"])
    if new.status is not ConsentStatus.ACTIVE:
        raise ConsentError(["the new version must be signed before it replaces the old one"])
    if new.participant_id != old.participant_id:
        raise ConsentError(["a new version must be for the same participant"])
    return (replace(old, status=ConsentStatus.SUPERSEDED),
            replace(new, version=old.version + 1, supersedes_id=old.id))


def ensure_editable(d: Directive) -> None:
    """Only drafts change in place; an active consent is never edited."""
    if d.status is not ConsentStatus.DRAFT:
        raise ConsentError([f"a {d.status.value} consent cannot be edited; make a new version"])
