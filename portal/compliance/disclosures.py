"""The accounting of disclosures for one participant (42 CFR 2.24, 45 CFR 164.528)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from portal.compliance import sql
from portal.compliance.console import requester
from portal.db import audit_chain as audit
from portal.db import models as m
from portal.db.types import utcnow
from portal.domain.audit import (
    REVOCATION_TEXT,
    AuditAction,
    Disclosure,
    escape_for_display,
)
from portal.domain.consent import ConsentKind
from portal.domain.vocabulary import (
    PURPOSE_LABELS,
    Purpose,
)
from portal.kernel.access import CONSENT_KIND_LABELS
from portal.kernel.errors import InvalidInput, NotFound
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# --- accounting of disclosures ---------------------------------------------------------------

DISCLOSURE_COLUMNS = ("Date and time (UTC)", "Recipient", "Recipient organization",
                      "Recipient role", "Disclosed by", "Information", "Records", "Purpose",
                      "Basis", "Consent or emergency reference")
_BASIS_TEXT = {"consent": "Participant's written consent",
               "break_glass": "Medical emergency (42 CFR 2.51)",
               "unrecorded": "No basis recorded (follow up)"}


@dataclass(frozen=True, slots=True)
class DisclosureReport:
    public_id: str
    since: date | None
    until: date | None
    generated_at: datetime
    generated_by: str
    rows: list[list[str]]  # raw cell values (escape on output)
    # For the PDF: each row's time, and each consent id's readable description.
    times: list[datetime] = field(default_factory=list)
    consents: dict[str, str] = field(default_factory=dict)

    @property
    def shown_rows(self) -> list[list[str]]:
        return [[escape_for_display(cell) for cell in row] for row in self.rows]


def _period_date(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"The {what} must be a date like 2026-11-28.") from None


def disclosure_report(session: Session, services: Services, user: m.StaffUser,
                      meta: RequestMeta, public_id: str, since_text: str = "",
                      until_text: str = "", *, output: str = "html") -> DisclosureReport:
    """The accounting of disclosures for one participant (45 CFR 164.528; 42 CFR 2.24, 2.25):
    each permitted outside view or export with date, recipient, what, purpose and basis,
    in the order the events were committed (chain position); under a consent since revoked,
    whether it was decided before the revocation committed.
    ``until`` includes that day. Audited (audit:disclosures:view) with the output format."""
    public_id = public_id.strip().upper()
    since = _period_date(since_text, "start date")
    until = _period_date(until_text, "end date")
    participant_id = audit.participant_uuid(session, public_id)
    if participant_id is None:
        raise NotFound(public_id)
    since_at = None if since is None else datetime.combine(since, time.min, tzinfo=UTC)
    until_at = None if until is None else \
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    try:
        found = audit.disclosures(session, participant_id, since_at, until_at)
    except ValueError as exc:
        raise InvalidInput(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    orgs = sql.pairs(session, select(m.Organization.slug, m.Organization.name))
    rows = []
    for d in found:
        purpose = d.purpose or ""
        with contextlib.suppress(KeyError, ValueError):
            purpose = PURPOSE_LABELS[Purpose(purpose)]
        reference = ", ".join(d.consent_ids) if d.consent_ids else (d.break_glass_grant or "")
        rows.append([
            d.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), d.recipient,
            orgs.get(d.recipient_organization or "", d.recipient_organization or ""),
            ", ".join(r.replace("_", " ") for r in d.recipient_roles),
            ", ".join(orgs.get(s, s) for s in d.disclosers), sql.category_label(d.category),
            str(len(d.record_ids)), purpose, basis_text(d), reference])
    consents = _consent_descriptions(
        session, {c for d in found for c in d.consent_ids}, orgs)
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_DISCLOSURES_VIEW, participant_id=participant_id,
        detail={"format": output, "since": None if since is None else since.isoformat(),
                "until": None if until is None else until.isoformat(), "count": len(rows)}))
    return DisclosureReport(public_id=public_id, since=since, until=until,
                            generated_at=utcnow(), generated_by=user.email, rows=rows,
                            times=[d.occurred_at for d in found], consents=consents)


def basis_text(d: Disclosure) -> str:
    """The basis in words; under a consent since revoked, when it was decided against the
    revocation ("...: decided before the revocation committed")."""
    text = _BASIS_TEXT.get(d.basis, d.basis)
    if d.revocation is None:
        return text
    return f"{text}, since revoked: {REVOCATION_TEXT[d.revocation]}"


def _consent_descriptions(session: Session, ids: set[str],
                          orgs: dict[str, str]) -> dict[str, str]:
    """"42 CFR Part 2 consent to Hope Housing, signed 2026-02-14 (version 1)" for each id."""
    wanted = []
    for text in ids:
        with contextlib.suppress(ValueError):
            wanted.append(uuid.UUID(text))
    if not wanted:
        return {}
    described = {}
    for consent in session.scalars(select(m.Consent).where(m.Consent.id.in_(wanted))):
        recipients: list[str] = []
        for provision in consent.provisions:
            if provision.effect != "permit":
                continue
            for ref in provision.recipients:
                kind, _, name = ref.partition(":")
                label = orgs.get(name, name) if kind == "org" else f"any {name} agency"
                if label not in recipients:
                    recipients.append(label)
        kind = consent.kind
        with contextlib.suppress(ValueError):
            kind = CONSENT_KIND_LABELS[ConsentKind(consent.kind)]
        text = kind[:1].upper() + kind[1:]
        if recipients:
            text += " to " + ", ".join(recipients)
        text += (f", signed {consent.signed_at:%Y-%m-%d}" if consent.signed_at
                 else ", not signed")
        described[str(consent.id)] = f"{text} (version {consent.version})"
    return described
