"""Access use cases: decide, explain and break-glass, each audited in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from portal.crypto.vault import Vault
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import AuditLog
from portal.db.types import utcnow
from portal.domain.audit import AuditAction
from portal.domain.consent import EVENT_LABELS, ConsentKind, event_of
from portal.domain.decision import AccessRequest, Decision, Obligation, decide
from portal.domain.explain import Names, sentence
from portal.domain.permissions import Permission, permitted
from portal.domain.ports import RolePolicy
from portal.domain.vocabulary import Action, DataCategory, Purpose
from portal.kernel.errors import InvalidInput, Refused
from portal.kernel.events import decision_detail, request_event
from portal.kernel.request import RequestMeta

CONSENT_KIND_LABELS = {
    ConsentKind.ROI: "multi-party release",
    ConsentKind.PART2: "42 CFR Part 2 consent",
    ConsentKind.PART2_TPO: "42 CFR Part 2 consent for treatment, payment and operations",
    ConsentKind.PART2_CRIMINAL_JUSTICE: "42 CFR 2.35 criminal-justice consent",
}


def user_may(policy: RolePolicy, user: m.StaffUser, permission: Permission) -> bool:
    """The role policy lets this staff user do this (an unknown stored role counts for
    nothing: fail closed)."""
    try:
        actor = repo.actor(user)
    except ValueError:
        return False
    return permitted(policy, actor, permission).allowed


@dataclass(frozen=True, slots=True)
class SourceExplanation:
    organization: str
    organization_name: str
    decision: Decision
    text: str


@dataclass(frozen=True, slots=True)
class Explanation:
    user: str
    participant: str
    category: DataCategory
    purpose: Purpose
    action: Action
    has_records: bool
    sources: tuple[SourceExplanation, ...] = field(default=())

    @property
    def decision(self) -> Literal["permit", "deny"]:
        return "permit" if any(s.decision.permitted for s in self.sources) else "deny"

    def as_json(self) -> dict[str, Any]:
        first_permit = next((s.decision for s in self.sources if s.decision.permitted), None)
        lead = first_permit or (self.sources[0].decision if self.sources else None)
        reasons: list[str] = []
        obligations: list[str] = []
        for s in self.sources:
            reasons += [r.value for r in s.decision.reasons if r.value not in reasons]
            if s.decision.permitted:
                obligations += [o.value for o in s.decision.obligations
                                if o.value not in obligations]
        return {
            "decision": self.decision, "reasons": reasons,
            "policy_rule": lead.policy_rule if lead else None,
            "consent_id": first_permit.consent_id if first_permit else None,
            "obligations": obligations,
            "user": self.user, "participant": self.participant, "category": self.category.value,
            "purpose": self.purpose.value, "action": self.action.value,
            "has_records": self.has_records,
            "sources": [{
                "organization": s.organization, "decision": s.decision.decision,
                "reasons": [r.value for r in s.decision.reasons],
                "policy_rule": s.decision.policy_rule, "consent_id": s.decision.consent_id,
                "provision": s.decision.provision,
                "break_glass_grant": s.decision.break_glass_grant,
                "obligations": [o.value for o in s.decision.obligations],
                "explanation": s.text} for s in self.sources],
        }

    def text(self) -> str:
        lines = [s.text for s in self.sources]
        if not self.has_records:
            lines.insert(0, f"There is no {self.category.info.label.lower()} information about "
                            f"{self.participant} yet; this is what would apply to information "
                            "from each care-team organization.")
        notices = {o for s in self.sources if s.decision.permitted for o in s.decision.obligations}
        lines += [o.text for o in sorted(notices) if o.text]
        return "\n".join(lines)


class AccessService:
    def __init__(self, policy: RolePolicy, audit: AuditLog, vault: Vault,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.policy = policy
        self.audit = audit
        self.vault = vault
        self.clock = clock

    def explain(self, session: Session, user: m.StaffUser, participant: m.Participant,
                category: DataCategory, purpose: Purpose, action: Action,
                meta: RequestMeta) -> Explanation:
        """Decide for each organization whose information is in play, and audit the question."""
        at = self.clock()
        actor = repo.actor(user)
        context = repo.load_context(session, participant.id, user_id=user.id, at=at)
        orgs = repo.Organizations.load(session)
        source_ids = repo.source_organizations(session, participant.id, category)
        has_records = bool(source_ids)
        if not source_ids:
            team = {link.organization_slug for link in context.care_team}
            source_ids = sorted(i for i, o in orgs.by_id.items() if o.slug in team)
        consents = {c.id: c for c in context.consents}
        sources = []
        for org_id in source_ids:
            source = orgs.by_id[org_id]
            request = AccessRequest(actor=actor, participant_id=str(participant.id),
                                    category=category, action=action, purpose=purpose, at=at,
                                    source=source)
            decision = decide(request, context, self.policy)
            consent_words = ""
            if decision.consent_id in consents:
                c = consents[decision.consent_id]
                event = event_of(c.expiry_event)
                until = (f"until {c.expires_on.isoformat()}" if c.expires_on
                         else f"until {EVENT_LABELS[event]}" if event else "")
                consent_words = f"the {CONSENT_KIND_LABELS[c.kind]} {until}"
            names = Names(participant=participant.public_id, source=source.name,
                          recipient=actor.organization.name, consent=consent_words)
            sources.append(SourceExplanation(source.slug, source.name, decision,
                                             sentence(decision, request, names)))
        explanation = Explanation(user=user.email, participant=participant.public_id,
                                  category=category, purpose=purpose, action=action,
                                  has_records=has_records, sources=tuple(sources))
        self.audit.append(session, request_event(
            AuditAction("decision:explain"), meta, participant_id=participant.id,
            category=category.value, purpose=purpose.value,
            decision=explanation.decision,
            reasons=tuple(explanation.as_json()["reasons"]),
            consent_ids=tuple(sorted({s.decision.consent_id for s in sources
                                      if s.decision.consent_id})),
            policy_version=self.policy.version,
            detail={"explained_for": user.email, "action": action.value,
                    "sources": {s.organization: s.decision.decision for s in sources},
                    **decision_detail(at, context, (s.decision.consent_id for s in sources
                                                    if s.decision.consent_id))}))
        return explanation

    def grant_break_glass(self, session: Session, user: m.StaffUser, participant: m.Participant,
                          *, reason: str, emergency_nature: str, facility: str,
                          minutes: int, meta: RequestMeta) -> m.BreakGlassGrant:
        """Emergency access under 42 CFR 2.51: time-boxed, recorded and queued for review."""
        problems = []
        if not reason.strip():
            problems.append("a reason is required")
        if not emergency_nature.strip():
            problems.append("the nature of the emergency is required (42 CFR 2.51(c))")
        if not 1 <= minutes <= 240:
            problems.append("emergency access lasts between 1 minute and 4 hours")
        if problems:
            raise InvalidInput(*problems)
        actor = repo.actor(user)
        allowed = permitted(self.policy, actor, Permission.BREAK_GLASS_CREATE).allowed
        at = self.clock()
        event = request_event(
            AuditAction("break_glass:grant:create"), meta,
            actor_user_id=user.id, actor_organization=actor.organization.slug,
            actor_roles=tuple(sorted(actor.roles)), participant_id=participant.id,
            purpose=Purpose.ETREAT.value,
            decision="permit" if allowed else "deny",
            reasons=("break_glass",) if allowed else ("no_role_permission",),
            policy_version=self.policy.version,
            # The reason, the nature of the emergency and the facility are sealed on the
            # grant, which the event names; free text is never put in the log.
            detail={"minutes": minutes})
        if not allowed:
            self.audit.append(session, event)
            raise Refused("your role may not use emergency access")
        grant = m.BreakGlassGrant(
            id=uuid.uuid4(), staff_user_id=user.id, organization_id=user.organization_id,
            participant_id=participant.id, started_at=at,
            expires_at=at + timedelta(minutes=minutes))
        self.vault.ready(session).seal(grant, {
            "reason": reason.strip(), "emergency_nature": emergency_nature.strip(),
            "facility": facility.strip()})
        session.add(grant)
        session.flush()
        self.audit.append(session, replace(
            event, record_ids=(str(grant.id),),
            detail={**event.detail, "break_glass_grant": str(grant.id),
                    "expires_at": grant.expires_at.isoformat()}))
        return grant


def obligations_text(decision: Decision) -> list[str]:
    return [o.text for o in decision.obligations if o is not Obligation.AUDIT]
