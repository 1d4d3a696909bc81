"""Encrypt the free text people type: emergency-access reasons, referral locations, goals

break_glass_grant.reason, emergency_nature, facility and review_notes; referral.where_to_find
and decline_reason; goal.summary and status_note; goal_update.note become ``<column>_enc``
(AES-256-GCM bound to the row, as in 1113c9a6da69). Rows already stored are encrypted under the
key version of their row (goal, referral) or the current one (break_glass_grant, goal_update,
which gain a key_version), then the plaintext columns are dropped. Downgrade decrypts back.

The audit events already written keep their details: the hash chain covers them.

Revision ID: 7c2e5a9d1f40
Revises: 5e1f0b7c9a3d
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.orm import Session

revision: str = "7c2e5a9d1f40"
down_revision: str | None = "5e1f0b7c9a3d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (primary key type, {plaintext column: (type, NOT NULL as plaintext, NOT NULL sealed)})
FIELDS: dict[str, tuple[Any, dict[str, tuple[Any, bool, bool]]]] = {
    "break_glass_grant": (sa.Uuid(), {"reason": (sa.Text(), True, True),
                                      "emergency_nature": (sa.Text(), True, True),
                                      "facility": (sa.String(200), True, True),
                                      "review_notes": (sa.Text(), False, False)}),
    "referral": (sa.Uuid(), {"where_to_find": (sa.String(500), True, False),
                             "decline_reason": (sa.String(500), False, False)}),
    "goal": (sa.Uuid(), {"summary": (sa.String(200), True, True),
                         "status_note": (sa.String(300), True, False)}),
    "goal_update": (sa.Integer(), {"note": (sa.String(300), True, False)}),
}
# Tables without a key version until now (their rows are sealed under the current key).
NEW_VERSION = ["break_glass_grant", "goal_update"]


def _vault(connection: sa.Connection) -> Any:
    from portal.config import Settings
    from portal.crypto.keys import key_provider
    from portal.crypto.vault import Vault

    settings = context.config.attributes.get("settings") or Settings.from_env()
    vault = Vault(key_provider(settings))
    vault.ready(Session(bind=connection))
    return vault


def _table(name: str, columns: list[str]) -> sa.TableClause:
    pk_type, fields = FIELDS[name]
    types: dict[str, Any] = {"id": pk_type, "key_version": sa.Integer()}
    for column, (type_, _, _) in fields.items():
        types[column] = type_
        types[f"{column}_enc"] = sa.LargeBinary()
    return sa.table(name, *(sa.column(c, types[c]) for c in columns))


def _has_rows(connection: sa.Connection) -> bool:
    return any(connection.execute(sa.text(f"SELECT 1 FROM {name} LIMIT 1")).first()  # noqa: S608
               for name in FIELDS)


def upgrade() -> None:
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column in fields:
                batch.add_column(sa.Column(f"{column}_enc", sa.LargeBinary(), nullable=True))
            if name in NEW_VERSION:
                batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))
    connection = op.get_bind()
    if _has_rows(connection):
        _encrypt_existing(connection)
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column, (_, _, required) in fields.items():
                batch.drop_column(column)
                if required:
                    batch.alter_column(f"{column}_enc", existing_type=sa.LargeBinary(),
                                       nullable=False)
            if name in NEW_VERSION:
                batch.alter_column("key_version", existing_type=sa.Integer(), nullable=False)
                batch.create_index(f"ix_{name}_key_version", ["key_version"])


def _encrypt_existing(connection: sa.Connection) -> None:
    vault = _vault(connection)
    current = vault.current_version
    for name, (_, fields) in FIELDS.items():
        new_version = name in NEW_VERSION
        source = _table(name, ["id", *fields, *([] if new_version else ["key_version"])])
        target = _table(name, ["id", *(f"{c}_enc" for c in fields), "key_version"])
        updates = []
        for row in connection.execute(sa.select(source)).mappings():
            # A row's values are all under one key version (`portal keys reencrypt`).
            version = current if new_version else row["key_version"]
            values: dict[str, Any] = {"key_version": version}
            for column in fields:
                value = row[column]
                values[f"{column}_enc"] = None if value is None or (
                    value == "" and not FIELDS[name][1][column][2]) else vault.encrypt(
                    value, table=name, column=column, row_id=row["id"], version=version)
            updates.append({"pk_": row["id"], **values})
        if updates:
            connection.execute(target.update().where(target.c.id == sa.bindparam("pk_")),
                               updates)


def downgrade() -> None:
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column, (type_, _, _) in fields.items():
                batch.add_column(sa.Column(column, type_, nullable=True))
    connection = op.get_bind()
    if _has_rows(connection):
        _decrypt_existing(connection)
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column, (type_, required, _) in fields.items():
                batch.drop_column(f"{column}_enc")
                if required:
                    batch.alter_column(column, existing_type=type_, nullable=False)
            if name in NEW_VERSION:
                batch.drop_index(f"ix_{name}_key_version")
                batch.drop_column("key_version")


def _decrypt_existing(connection: sa.Connection) -> None:
    vault = _vault(connection)
    for name, (_, fields) in FIELDS.items():
        source = _table(name, ["id", *(f"{c}_enc" for c in fields)])
        target = _table(name, ["id", *fields])
        updates = []
        for row in connection.execute(sa.select(source)).mappings():
            values: dict[str, Any] = {}
            for column, (_, required, _) in fields.items():
                blob = row[f"{column}_enc"]
                values[column] = (vault.decrypt(blob, table=name, column=column,
                                                row_id=row["id"]).decode()
                                  if blob is not None else ("" if required else None))
            updates.append({"pk_": row["id"], **values})
        if updates:
            connection.execute(target.update().where(target.c.id == sa.bindparam("pk_")),
                               updates)
