"""Audit events, built in one place: every use case records what it does with one of these and
`AuditLog.append` (portal/db/audit_chain.py), in the transaction of the access it records."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from portal.db import models as m
from portal.domain.audit import AuditAction, NewAuditEvent, format_time
from portal.domain.decision import ParticipantContext, Reason
from portal.kernel.request import RequestMeta


def request_event(action: AuditAction, meta: RequestMeta, **fields: Any) -> NewAuditEvent:
    """An event with the request's metadata, whose actor is whoever made the request (before
    sign-in, the CLI) unless `fields` names another (the builders below, or the user a sign-in
    has just found)."""
    return NewAuditEvent(**{"action": action, "actor": meta.actor, "session_id": meta.session_id,
                            "client_address": meta.client_address,
                            "request_id": meta.request_id, **fields})


class OrganizationRef(Protocol):
    @property
    def slug(self) -> str: ...


class StaffRef(Protocol):
    """What an event records of a staff user: a ``StaffUser`` row, or anything shaped like one
    (a pure function's input, say)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def organization(self) -> OrganizationRef: ...

    @property
    def role_names(self) -> list[str]: ...


def staff_event(action: AuditAction, user: StaffRef, meta: RequestMeta,
                **fields: Any) -> NewAuditEvent:
    """An audit event whose actor is a staff user, from their request."""
    return request_event(action, meta, actor=user.email, actor_user_id=user.id,
                         actor_organization=user.organization.slug,
                         actor_roles=tuple(user.role_names), **fields)


def participant_event(action: AuditAction, participant: m.Participant, meta: RequestMeta,
                      **fields: Any) -> NewAuditEvent:
    """An event whose actor is a signed-in participant, about themselves."""
    return request_event(action, meta, actor=participant.public_id,
                         participant_id=participant.id, **fields)


def refusal_event(action: AuditAction, user: StaffRef, meta: RequestMeta,
                  participant_id: uuid.UUID, reason: Reason,
                  policy_version: str) -> NewAuditEvent:
    """A refused attempt on a participant who exists (answered "not found"); the participant
    may be told of it (policies/accounting.csv)."""
    return staff_event(action, user, meta, participant_id=participant_id, decision="deny",
                       reasons=(reason.value,), policy_version=policy_version)


def decision_detail(decided_at: datetime, context: ParticipantContext,
                    consent_ids: Iterable[str] = ()) -> dict[str, Any]:
    """What an event says of the decision it records, for ordering it by commit rather than
    by clock: when it was made, the audit chain's head as read just before its consents were
    (``observed_seq``; see repositories.load_contexts) and the version of each consent it
    relied on. A decision whose ``observed_seq`` is below a revocation's seq read the consent
    before that revocation committed, however late its own event was written."""
    wanted = set(consent_ids)
    versions: Mapping[str, int] = {c.id: c.version for c in context.consents if c.id in wanted}
    return {"decided_at": format_time(decided_at), "observed_seq": context.observed_seq,
            "consent_versions": dict(sorted(versions.items()))}
