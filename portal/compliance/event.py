"""One audit event, in full, with its neighbours in the chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from portal.compliance import sql
from portal.compliance.console import requester
from portal.compliance.sql import EVENTS
from portal.db import models as m
from portal.domain.audit import (
    EVENT_FIELDS,
    GENESIS_HASH,
    AuditAction,
    ChainedEvent,
    escape_for_display,
    event_hash,
    format_time,
)
from portal.kernel.errors import NotFound
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# --- one event -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventDetail:
    chain: str
    seq: int
    head_seq: int
    occurred_at: datetime
    action: str
    participant: str
    fields: list[tuple[str, str]]
    detail: list[tuple[str, str]]
    prev_hash: str
    hash: str
    hash_matches: bool  # the stored hash is the hash of the stored content
    links_back: bool  # prev_hash is the stored hash of the previous event (or genesis)


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return escape_for_display(value)
    try:
        return escape_for_display(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    except TypeError:
        return escape_for_display(repr(value))


def event_detail(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 chain: str, seq: int) -> EventDetail:
    """Every stored field of one event, escaped, with its place in the chain; audited."""
    row = session.get(m.AuditEvent, (chain, seq))
    if row is None:
        raise NotFound(f"{chain}:{seq}")
    event = ChainedEvent(**{name: getattr(row, name) for name in EVENT_FIELDS})
    try:
        matches = event_hash(event) == event.hash
    except (TypeError, ValueError):
        matches = False
    previous = session.scalar(select(EVENTS.c.hash).where(
        EVENTS.c.chain == chain, EVENTS.c.seq == seq - 1)) if seq > 1 else GENESIS_HASH
    head = session.scalar(select(func.max(EVENTS.c.seq)).where(EVENTS.c.chain == chain)) or seq
    public_id = ""
    if event.participant_id is not None:
        public_id = sql.public_ids(session, {event.participant_id}).get(event.participant_id, "")
    fields: list[tuple[str, str]] = []
    for name in EVENT_FIELDS:
        if name in ("detail", "prev_hash", "hash"):
            continue
        value = getattr(event, name)
        if name == "occurred_at":
            fields.append((name, format_time(value)))
        elif name == "participant_id" and value is not None:
            fields.append((name, f"{value}" + (f" ({public_id})" if public_id else "")))
        elif isinstance(value, list | tuple):
            fields.append((name, sql.display_list(value)))
        else:
            fields.append((name, sql.display(value)))
    details = event.detail if isinstance(event.detail, Mapping) else {"": event.detail}
    shown_detail = [(escape_for_display(str(k)), _json_text(v))
                    for k, v in sorted(details.items())]
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW, participant_id=event.participant_id,
        detail={"view": "event", "chain": chain, "seq": seq}))
    return EventDetail(chain=chain, seq=seq, head_seq=int(head), occurred_at=event.occurred_at,
                       action=sql.display(event.action), participant=public_id, fields=fields,
                       detail=shown_detail, prev_hash=sql.display(event.prev_hash),
                       hash=sql.display(event.hash), hash_matches=matches,
                       links_back=previous is not None and previous == event.prev_hash)
