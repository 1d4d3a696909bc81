"""Plain-language explanations of decisions, in the same words for every kind of user."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from portal.domain.decision import AccessRequest, Decision, Reason
from portal.domain.vocabulary import PURPOSE_LABELS, Role

ROLE_LABELS: dict[Role, str] = {
    Role.CASE_MANAGER: "case manager", Role.COUNSELOR: "counselor", Role.CLINICIAN: "clinician",
    Role.HOUSING_NAVIGATOR: "housing navigator", Role.POLICE_OFFICER: "police officer",
    Role.PROSECUTOR: "prosecutor", Role.PROBATION_OFFICER: "probation officer",
    Role.COURT_LIAISON: "court liaison", Role.DEFENDER: "defender",
    Role.COMPLIANCE_OFFICER: "compliance officer", Role.ORG_ADMIN: "organization administrator",
}

ACTION_VERBS = {"view": "see", "create": "add", "export": "export"}


@dataclass(frozen=True, slots=True)
class Names:
    """Human names for what a decision refers to (the domain only knows slugs and ids)."""

    participant: str
    source: str  # the authoring organization's name
    recipient: str  # the requesting user's organization's name
    consent: str = ""  # e.g. "the multi-party release signed 2026-10-01, until 2027-10-01"
    break_glass_until: str = ""


def reason_text(reason: Reason, request: AccessRequest, names: Names) -> str:
    category = request.category.info.label.lower()
    purpose = PURPOSE_LABELS.get(request.purpose, str(request.purpose))
    roles = ", ".join(ROLE_LABELS.get(r, str(r)) for r in sorted(request.actor.roles))
    texts = {
        Reason.OWN_ORGANIZATION: f"{names.recipient} recorded this itself, so no consent is "
                                 "needed",
        Reason.CONSENT: f"{names.participant} agreed to share it: {names.consent or 'a consent'}",
        Reason.BREAK_GLASS: "you have emergency (break-glass) access"
                            + (f" until {names.break_glass_until}" if names.break_glass_until
                               else "") + "; a compliance officer will review it",
        Reason.NO_ROLE_PERMISSION: f"the program's role policy does not let a {roles} at "
                                   f"{names.recipient} {ACTION_VERBS.get(request.action, 'use')} "
                                   f"{category} information for {purpose}",
        Reason.NOT_ON_CARE_TEAM: f"{names.recipient} is not on {names.participant}'s care team "
                                 "and you have no emergency access",
        Reason.NO_CONSENT: f"no consent from {names.participant} shares {category} information "
                           f"from {names.source} with {names.recipient} for {purpose}",
        Reason.CONSENT_REVOKED: f"{names.participant} revoked the consent that shared it",
        Reason.CONSENT_EXPIRED: "the consent that shared it has expired",
        Reason.CONSENT_INVALID: "the consent that would share it is missing required parts "
                                "(42 CFR 2.31) and cannot be used",
        Reason.DENIED_BY_PROVISION: f"{names.participant}'s consent says it must not be shared "
                                    f"with {names.recipient}",
        Reason.GOLDEN_RULE: "justice partners never see health, mental health or substance use "
                            "information (the LEAD Golden Rule)",
        Reason.PART2_CONSENT_REQUIRED: "it is substance use treatment information protected by "
                                       "42 CFR Part 2, which needs a Part 2 consent naming "
                                       f"{names.recipient}"
                                       + (" (for a justice agency, a 42 CFR 2.35 consent for "
                                          "monitoring)" if request.actor.organization.sector
                                          .is_justice else ""),
        Reason.ACCOUNT_SUSPENDED: "your account is suspended",
        Reason.ERROR: "the portal could not make a safe decision, so it withheld the "
                      "information",
    }
    return texts[reason]


def sentence(decision: Decision, request: AccessRequest, names: Names) -> str:
    """One sentence a case manager understands."""
    category = request.category.info.label.lower()
    verb = ACTION_VERBS.get(request.action, "use")
    because = "; ".join(reason_text(r, request, names) for r in decision.reasons)
    if decision.permitted:
        return (f"Yes: {names.recipient} may {verb} {category} information about "
                f"{names.participant} from {names.source}, because {because}.")
    return (f"No: {names.recipient} may not {verb} {category} information about "
            f"{names.participant} from {names.source}, because {because}.")


# --- what a withheld section says, to whom -----------------------------------------------------


class Reader(StrEnum):
    """Who reads a withheld section: what they can do about it differs."""

    CONSENT_TAKER = "consent_taker"  # captures consents with the participant (case manager)
    TEAM = "team"  # other care-team staff: the participant's case manager asks
    JUSTICE = "justice"  # justice partners: the Golden Rule; 42 CFR 2.35 for monitoring
    EMERGENCY = "emergency"  # break-glass access (42 CFR 2.51), not on the care team


class Withheld(StrEnum):
    """The one line a withheld section shows (a page words each in the reader's language).
    None says whether anything exists: each holds for any participant."""

    CONSENT = "consent"  # other agencies' information needs the participant's consent
    GOLDEN_RULE = "golden_rule"  # justice partners never see it
    ROLE = "role"  # the reader's role does not use it; no consent changes that
    EMERGENCY = "emergency"  # emergency access does not cover it
    ERROR = "error"  # could not be decided safely


CONSENT_REASONS = frozenset({
    Reason.NO_CONSENT, Reason.PART2_CONSENT_REQUIRED, Reason.CONSENT_REVOKED,
    Reason.CONSENT_EXPIRED, Reason.CONSENT_INVALID, Reason.DENIED_BY_PROVISION})
# Which reason a section's line and "Why?" speak of when sources differ (the firmest first).
REASON_ORDER = (Reason.ERROR, Reason.ACCOUNT_SUSPENDED, Reason.GOLDEN_RULE,
                Reason.NO_ROLE_PERMISSION, Reason.NOT_ON_CARE_TEAM,
                Reason.DENIED_BY_PROVISION, Reason.CONSENT_REVOKED, Reason.CONSENT_EXPIRED,
                Reason.CONSENT_INVALID, Reason.NO_CONSENT, Reason.PART2_CONSENT_REQUIRED)


def leading_reason(reasons: Iterable[Reason]) -> Reason:
    present = set(reasons)
    return next((r for r in REASON_ORDER if r in present), Reason.ERROR)


def withheld_line(reason: Reason, reader: Reader) -> Withheld:
    if reason is Reason.GOLDEN_RULE:
        return Withheld.GOLDEN_RULE
    if reason in CONSENT_REASONS:
        return Withheld.CONSENT
    if reader is Reader.EMERGENCY and reason in (Reason.NO_ROLE_PERMISSION,
                                                 Reason.NOT_ON_CARE_TEAM):
        return Withheld.EMERGENCY
    if reason is Reason.NO_ROLE_PERMISSION:
        return Withheld.ROLE
    return Withheld.ERROR


def _consent_kind(reason: Reason) -> str:
    return ("a Part 2 consent (42 CFR Part 2)" if reason is Reason.PART2_CONSENT_REQUIRED
            else "a release of information")


ASKABLE = frozenset({Reason.NO_CONSENT, Reason.PART2_CONSENT_REQUIRED, Reason.CONSENT_EXPIRED})


def next_steps(steps: list[tuple[Reason, Names]], request: AccessRequest,
               reader: Reader) -> str:
    """``next_step`` for each reason (the leading one first); a case manager who could ask
    for several consents (a release for some agencies, a Part 2 consent for a Part 2
    program's) reads one sentence naming each."""
    if not steps:
        return ""
    askable = [(r, n) for r, n in steps if r in ASKABLE]
    if reader is Reader.CONSENT_TAKER and len(askable) > 1 and len(askable) == len(steps):
        (first, names), rest = askable[0], askable[1:]
        sentence = next_step(first, request, names, reader)
        head, tail = sentence.split(". It is their choice", 1)
        more = "".join(f", and {_consent_kind(r)} that lets {n.source} share it too"
                       for r, n in rest)
        return f"{head}{more}. It is their choice{tail}"
    return " ".join(dict.fromkeys(next_step(r, request, n, reader) for r, n in steps))


def next_step(reason: Reason, request: AccessRequest, names: Names, reader: Reader) -> str:
    """What the reader can do about a withheld section, in one or two sentences: a case
    manager is told which consent to ask the participant for; others whom to ask; where no
    consent can change it, that. ``names.source``: the care-team agencies whose information
    it would be (decided for every member, so it never tells whether anything exists)."""
    category = request.category.info.label.lower()
    purpose = PURPOSE_LABELS.get(request.purpose, str(request.purpose))
    who, recipient, sources = names.participant, names.recipient, names.source
    justice = request.actor.organization.sector.is_justice
    if reason is Reason.GOLDEN_RULE:
        return ("No consent can change this: it protects the participant from care "
                "information being used against them.")
    if reason is Reason.NO_ROLE_PERMISSION:
        if reader is Reader.EMERGENCY:
            return ("Emergency access covers only what treating the emergency needs; no "
                    "consent is asked for.")
        return ("No consent changes this: the program's role policy keeps each role to the "
                "information it needs (minimum necessary).")
    if reason is Reason.NOT_ON_CARE_TEAM:
        return "Only agencies on the participant's care team see their information."
    if reason in (Reason.ERROR, Reason.ACCOUNT_SUSPENDED):
        return "Try again later; if it keeps happening, tell your organization's administrator."
    if reader is Reader.CONSENT_TAKER:
        if reason is Reason.DENIED_BY_PROVISION:
            return (f"{who} has said it must not be shared with {recipient}. Only they can "
                    "change that: if it would help their care, ask whether they want to.")
        if reason is Reason.CONSENT_REVOKED:
            return (f"{who} took back the consent that shared it. If it would help their "
                    "care, ask whether they want to sign a new one; it is their choice.")
        if reason is Reason.CONSENT_INVALID:
            return ("Review the consent with them on the Consents page and have them sign a "
                    "complete one.")
        again = " again" if reason is Reason.CONSENT_EXPIRED else ""
        return (f"To see it, ask {who} whether they want to sign{again} "
                f"{_consent_kind(reason)} that lets {sources} share {category} information "
                f"with {recipient} for {purpose}. It is their choice, and refusing costs "
                "them nothing.")
    if justice:
        return ("It is shared only under the participant's release for care coordination; "
                "their case manager can tell you what it covers. The participant decides.")
    if reader is Reader.EMERGENCY:
        return ("Emergency access covers only what treating the emergency needs; no consent "
                "is asked for.")
    return (f"If you need it, ask {who}'s case manager: they can ask {who} for a consent "
            f"that lets {sources} share {category} information with {recipient}. The "
            "participant decides.")
