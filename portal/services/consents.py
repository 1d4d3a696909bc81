"""Consent use cases: listing today; capture, signing and revocation build on the domain rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.db import models as m
from portal.db import repositories as repo


def consent_summaries(session: Session, participant_id: uuid.UUID,
                      at: datetime) -> list[dict[str, Any]]:
    """`[{"id", "kind", "status", "provisions", "expires", "revocable_after"}]`, newest first."""
    rows = session.scalars(
        select(m.Consent).where(m.Consent.participant_id == participant_id)
        .options(selectinload(m.Consent.provisions))
        .order_by(m.Consent.created_at.desc(), m.Consent.id)).all()
    out = []
    for row in rows:
        d = repo.directive(row)
        out.append({
            "id": d.id, "kind": d.kind.value, "status": d.status_at(at).value, "version": d.version,
            "provisions": [{
                "effect": p.effect.value, "disclosers": sorted(p.disclosers),
                "recipients": sorted(p.recipients), "categories": sorted(p.categories),
                "purposes": sorted(p.purposes),
                "period": [p.period_start.isoformat() if p.period_start else None,
                           p.period_end.isoformat() if p.period_end else None]}
                for p in d.provisions],
            "expires": d.expires_on.isoformat() if d.expires_on else d.expiry_event,
            "revocable_after": (d.revocable_after.isoformat() if d.revocable_after
                                else d.revocable_after_event),
        })
    return out
