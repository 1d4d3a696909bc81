"""Data key rotation: make a new key version, re-encrypt stored values in batches, retire old
versions. Safe while the portal serves: each batch is its own short transaction, and rows are
picked by their key version, so an interrupted run simply continues where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, lazyload, sessionmaker

from portal.crypto.vault import Vault
from portal.db import models as m
from portal.db.types import utcnow

# Every encrypted column, by model (the row id each value is bound to is ``row.id``).
ENCRYPTED: list[tuple[type[Any], list[str]]] = [
    (m.Participant, ["given_name", "family_name", "date_of_birth"]),
    (m.Record, ["title", "body"]),
    (m.Goal, ["summary", "detail", "status_note"]),
    (m.GoalUpdate, ["note"]),
    (m.Consent, ["signer_name"]),
    (m.ConsentDocument, ["content"]),
    (m.ConsentRequest, ["note"]),
    (m.Referral, ["given_name", "family_name", "date_of_birth", "where_to_find",
                  "decline_reason"]),
    (m.BreakGlassGrant, ["reason", "emergency_nature", "facility", "review_notes"]),
    (m.ParticipantCredential, ["totp_secret", "totp_pending"]),
    (m.ShownOnce, ["payload"]),
]


class KeyRotationError(Exception):
    pass


def rotate(session: Session, vault: Vault) -> int:
    """A new data key version; new values are encrypted under it from now on."""
    version = vault.ready(session).add_key(session, "field")
    vault.load(session)
    return version


def pending(session: Session, vault: Vault) -> dict[str, int]:
    """Rows per table still under an older key version."""
    current = vault.ready(session).current_version
    return {model.__tablename__: session.scalar(
        select(func.count()).select_from(model).where(model.key_version < current)) or 0
        for model, _ in ENCRYPTED}


def reencrypt(factory: sessionmaker[Session], vault: Vault, *, batch_size: int = 500,
              progress: Callable[[int], None] | None = None) -> int:
    """Re-encrypt every value under an older key with the current one; returns rows done."""
    done = 0
    for model, columns in ENCRYPTED:
        while True:
            with factory.begin() as session:
                current = vault.ready(session).current_version
                query = (select(model).where(model.key_version < current)
                         .options(lazyload("*")).limit(batch_size))
                if session.get_bind().dialect.name == "postgresql":
                    # Rows being re-encrypted by another run are skipped, not waited for.
                    query = query.with_for_update(skip_locked=True, of=model)
                rows = session.scalars(query).all()
                for row in rows:
                    values = {}
                    for column in columns:
                        blob = getattr(row, f"{column}_enc")
                        values[column] = None if blob is None else vault.decrypt(
                            blob, table=model.__tablename__, column=column, row_id=row.id)
                    vault.seal(row, values)  # type: ignore[arg-type]
            done += len(rows)
            if progress and rows:
                progress(len(rows))
            if len(rows) < batch_size:
                break
    return done


def retire(session: Session, vault: Vault, version: int) -> None:
    """After re-encryption, an old version stops decrypting anything at all."""
    vault.ready(session)
    key = session.get(m.DataKey, version)
    # Field and blind-index keys share one sequence of versions (`portal keys list`).
    if key is None:
        raise KeyRotationError(f"there is no data key version {version}")
    if key.purpose != "field":
        fields = session.scalars(select(m.DataKey.version).where(
            m.DataKey.purpose == "field", m.DataKey.retired_at.is_(None),
            m.DataKey.version != vault.current_version).order_by(m.DataKey.version)).all()
        retirable = ", ".join(map(str, fields)) or "none"
        raise KeyRotationError(
            f"version {version} is the {key.purpose.replace('_', '-')} key (it keys the search "
            f"indexes and is never rotated), so it cannot be retired; old field key versions "
            f"that can be: {retirable}")
    if version == vault.current_version:
        raise KeyRotationError(f"version {version} is the current key; rotate first")
    if key.retired_at is not None:
        raise KeyRotationError(f"version {version} is already retired")
    still = {model.__tablename__: n for model, _ in ENCRYPTED if (n := session.scalar(
        select(func.count()).select_from(model).where(model.key_version == version)) or 0)}
    if still:
        raise KeyRotationError(f"values are still under version {version} ({still}); run "
                               "`portal keys reencrypt` first")
    key.retired_at = utcnow()
    session.flush()
    vault.load(session)


def key_versions(session: Session) -> list[dict[str, Any]]:
    return [{"version": k.version, "purpose": k.purpose, "kek_id": k.kek_id,
             "created_at": k.created_at.isoformat(),
             "retired_at": k.retired_at.isoformat() if k.retired_at else None}
            for k in session.scalars(select(m.DataKey).order_by(m.DataKey.version))]
