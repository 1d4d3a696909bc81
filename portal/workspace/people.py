"""Participants' identifiers: exact-match search through blind indexes, and names that fail
safe (a value that cannot be decrypted is shown as unavailable, and the failure is audited)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portal.crypto.vault import DecryptionError, PersonName, Vault, normalise_name
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import AuditLog
from portal.domain import public_ids
from portal.domain.audit import AuditAction
from portal.kernel.events import request_event
from portal.kernel.request import RequestMeta

_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y")


def parse_date(text: str) -> date | None:
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
    return None


def search_condition(vault: Vault, query: str) -> object | None:
    """The WHERE clause for an exact search by full name, family name or date of birth."""
    query = query.strip()
    if not query:
        return None
    born = parse_date(query)
    if born is not None:
        return m.Participant.dob_bidx == vault.blind_index("dob", born.isoformat())
    name = normalise_name(query)
    by_name = [m.Participant.name_bidx == vault.blind_index("name", name),
               m.Participant.family_bidx == vault.blind_index("family", name)]
    # An id as a person types it ("lp 7k3m xp9f", "LP-1001"); it may also be a name.
    forms = public_ids.stored_forms(query)
    return or_(m.Participant.public_id.in_(forms), *by_name) if forms else or_(*by_name)


def by_public_id(session: Session, public_id: str) -> m.Participant | None:
    return repo.participant_by_public_id(session, public_id)


def find(session: Session, vault: Vault, query: str) -> list[m.Participant]:
    condition = search_condition(vault.ready(session), query)
    if condition is None:
        return []
    return list(session.scalars(select(m.Participant).where(condition)  # type: ignore[arg-type]
                                .order_by(m.Participant.public_id)))


def name_or_none(session: Session, vault: Vault, audit: AuditLog, participant: m.Participant,
                 meta: RequestMeta) -> PersonName | None:
    """The participant's name, or None (audited) when it cannot be decrypted."""
    try:
        return vault.ready(session).open_participant(participant)
    except DecryptionError as exc:
        audit.append(session, request_event(
            AuditAction.CRYPTO_DECRYPT_FAILURE, meta, participant_id=participant.id,
            reasons=(exc.reason,),
            detail={"table": exc.table, "column": exc.column}))
        return None
