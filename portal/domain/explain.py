"""Plain-language explanations of decisions, in the same words for every kind of user."""

from __future__ import annotations

from dataclasses import dataclass

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
