"""Encrypt participant identifiers, record bodies and other sensitive fields at rest.

Adds the data_key table and ``<column>_enc`` columns (AES-256-GCM envelope encryption, see
portal.crypto), encrypts what is already stored, then drops the plaintext columns. Downgrade
decrypts back into plaintext columns. Existing rows need the key-encryption key
(PORTAL_DATA_KEY_FILE; development generates one in PORTAL_DATA_DIR).

Revision ID: 1113c9a6da69
Revises: 3c041bcefa23
Create Date: 2026-11-28 03:12:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.orm import Session

import portal.db.types

revision: str = "1113c9a6da69"
down_revision: str | None = "3c041bcefa23"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (primary key column, {plaintext column: (type, nullable in plaintext form)})
FIELDS: dict[str, tuple[str, dict[str, tuple[Any, bool]]]] = {
    "participant": ("id", {"given_name": (sa.String(200), False),
                           "family_name": (sa.String(200), False),
                           "date_of_birth": (sa.Date(), True)}),
    "record": ("id", {"title": (sa.String(200), False), "body": (sa.Text(), False)}),
    "goal": ("id", {"detail": (sa.Text(), False)}),
    "consent": ("id", {"signer_name": (sa.String(200), True)}),
    "consent_document": ("consent_id", {"content": (sa.LargeBinary(), False)}),
    "referral": ("id", {"given_name": (sa.String(200), False),
                        "family_name": (sa.String(200), False),
                        "date_of_birth": (sa.Date(), True)}),
    "participant_credential": ("participant_id", {"totp_secret": (sa.String(200), True)}),
}
# Columns that are NOT NULL once encrypted.
REQUIRED_ENC = {
    "participant": ["given_name_enc", "family_name_enc", "key_version", "name_bidx",
                    "family_bidx"],
    "record": ["title_enc", "body_enc", "key_version"],
    "goal": ["key_version"],
    "consent_document": ["content_enc", "key_version"],
    "referral": ["given_name_enc", "family_name_enc", "key_version"],
}
INDEXED_VERSION = ["participant", "record", "goal", "consent", "consent_document", "referral"]
SIGNED_CHECK_OLD = (
    "status NOT IN ('active', 'revoked', 'expired', 'superseded') OR (signed_at IS NOT NULL "
    "AND signer_name IS NOT NULL AND (expires_on IS NOT NULL OR expiry_event IS NOT NULL))")
SIGNED_CHECK_NEW = SIGNED_CHECK_OLD.replace("signer_name IS", "signer_name_enc IS")


def _vault(connection: sa.Connection) -> Any:
    from portal.config import Settings
    from portal.crypto.keys import key_provider
    from portal.crypto.vault import Vault

    settings = context.config.attributes.get("settings") or Settings.from_env()
    vault = Vault(key_provider(settings))
    vault.ready(Session(bind=connection))
    return vault


def _table(name: str, columns: list[str]) -> sa.TableClause:
    pk, fields = FIELDS[name]
    types: dict[str, Any] = {pk: sa.Uuid()}
    for column, (type_, _) in fields.items():
        types[column] = type_
        types[f"{column}_enc"] = sa.LargeBinary()
    types |= {"key_version": sa.Integer(), "name_bidx": sa.String(64),
              "family_bidx": sa.String(64), "dob_bidx": sa.String(64),
              "username": sa.String(64), "username_bidx": sa.String(64)}
    return sa.table(name, *(sa.column(c, types[c]) for c in columns))


def _has_rows(connection: sa.Connection) -> bool:
    return any(connection.execute(sa.text(f"SELECT 1 FROM {name} LIMIT 1")).first()  # noqa: S608
               for name in FIELDS)


def upgrade() -> None:
    op.create_table(
        "data_key",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("retired_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("purpose IN ('field', 'blind_index')", name=op.f("ck_data_key_purpose")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_data_key")),
    )
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column in fields:
                batch.add_column(sa.Column(f"{column}_enc", sa.LargeBinary(), nullable=True))
            batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))
            if name == "participant":
                for column in ("name_bidx", "family_bidx", "dob_bidx"):
                    batch.add_column(sa.Column(column, sa.String(64), nullable=True))

    with op.batch_alter_table("participant_credential") as batch:
        batch.add_column(sa.Column("username_bidx", sa.String(64), nullable=True))
    connection = op.get_bind()
    if _has_rows(connection):
        _encrypt_existing(connection)
    with op.batch_alter_table("participant_credential") as batch:
        batch.drop_constraint(op.f("uq_participant_credential_username"), type_="unique")
        batch.drop_column("username")
        batch.create_unique_constraint(op.f("uq_participant_credential_username_bidx"),
                                       ["username_bidx"])

    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            if name == "consent":
                batch.drop_constraint(op.f("ck_consent_signed_when_in_force"), type_="check")
            if name == "participant":
                batch.drop_index("ix_participant_date_of_birth")
                batch.drop_index("ix_participant_name")
                for column in ("name_bidx", "family_bidx", "dob_bidx"):
                    batch.create_index(f"ix_participant_{column}", [column])
            for column in fields:
                batch.drop_column(column)
            for column in REQUIRED_ENC.get(name, []):
                type_ = sa.String(64) if column.endswith("bidx") else (
                    sa.Integer() if column == "key_version" else sa.LargeBinary())
                batch.alter_column(column, existing_type=type_, nullable=False)
            if name in INDEXED_VERSION:
                batch.create_index(f"ix_{name}_key_version", ["key_version"])
            if name == "consent":
                batch.create_check_constraint("signed_when_in_force", SIGNED_CHECK_NEW)


def _encrypt_existing(connection: sa.Connection) -> None:
    from portal.crypto.vault import normalise_name

    vault = _vault(connection)
    version = vault.current_version
    for name, (pk, fields) in FIELDS.items():
        extra = {"participant": ["name_bidx", "family_bidx", "dob_bidx"],
                 "participant_credential": ["username_bidx"]}.get(name, [])
        table = _table(name, [pk, *fields, *(["username"] if extra == ["username_bidx"]
                                             else [])])
        target = _table(name, [pk, *(f"{c}_enc" for c in fields), "key_version", *extra])
        updates = []
        for row in connection.execute(sa.select(table)).mappings():
            values: dict[str, Any] = {"key_version": version}
            for column in fields:
                value = row[column]
                if isinstance(value, date):
                    value = value.isoformat()
                values[f"{column}_enc"] = None if value is None else vault.encrypt(
                    value, table=name, column=column, row_id=row[pk], version=version)
            if name == "participant_credential" and row["username"]:
                values["username_bidx"] = vault.blind_index("username",
                                                            row["username"].strip().lower())
            if name == "participant":
                values["name_bidx"] = vault.blind_index(
                    "name", normalise_name(f"{row['given_name']} {row['family_name']}"))
                values["family_bidx"] = vault.blind_index("family",
                                                          normalise_name(row["family_name"]))
                values["dob_bidx"] = (vault.blind_index("dob", row["date_of_birth"].isoformat())
                                      if row["date_of_birth"] else None)
            updates.append({"pk_": row[pk], **values})
        if updates:
            connection.execute(
                target.update().where(target.c[pk] == sa.bindparam("pk_")),
                updates)


def downgrade() -> None:
    # A keyed hash cannot be turned back into a username: participants who had set one up
    # sign in again with a new one-time code from their case manager.
    with op.batch_alter_table("participant_credential") as batch:
        batch.drop_constraint(op.f("uq_participant_credential_username_bidx"), type_="unique")
        batch.drop_column("username_bidx")
        batch.add_column(sa.Column("username", sa.String(64), nullable=True))
        batch.create_unique_constraint(op.f("uq_participant_credential_username"), ["username"])
    for name, (_, fields) in FIELDS.items():
        with op.batch_alter_table(name) as batch:
            for column, (type_, _) in fields.items():
                batch.add_column(sa.Column(column, type_, nullable=True))

    connection = op.get_bind()
    if _has_rows(connection):
        _decrypt_existing(connection)

    for name, (_, fields) in reversed(list(FIELDS.items())):
        with op.batch_alter_table(name) as batch:
            if name == "consent":
                batch.drop_constraint(op.f("ck_consent_signed_when_in_force"), type_="check")
            if name in INDEXED_VERSION:
                batch.drop_index(f"ix_{name}_key_version")
            if name == "participant":
                for column in ("name_bidx", "family_bidx", "dob_bidx"):
                    batch.drop_index(f"ix_participant_{column}")
                    batch.drop_column(column)
            for column, (type_, nullable) in fields.items():
                batch.drop_column(f"{column}_enc")
                if not nullable:
                    batch.alter_column(column, existing_type=type_, nullable=False)
            batch.drop_column("key_version")
            if name == "participant":
                batch.create_index("ix_participant_name", ["family_name", "given_name"])
                batch.create_index("ix_participant_date_of_birth", ["date_of_birth"])
            if name == "consent":
                batch.create_check_constraint("signed_when_in_force", SIGNED_CHECK_OLD)
    op.drop_table("data_key")


def _decrypt_existing(connection: sa.Connection) -> None:
    vault = _vault(connection)
    for name, (pk, fields) in FIELDS.items():
        source = _table(name, [pk, *(f"{c}_enc" for c in fields)])
        target = _table(name, [pk, *fields])
        updates = []
        for row in connection.execute(sa.select(source)).mappings():
            values: dict[str, Any] = {}
            for column, (type_, nullable) in fields.items():
                blob = row[f"{column}_enc"]
                if blob is None:
                    values[column] = None if nullable else ""
                    continue
                plain = vault.decrypt(blob, table=name, column=column, row_id=row[pk])
                if isinstance(type_, sa.Date):
                    values[column] = date.fromisoformat(plain.decode())
                elif isinstance(type_, sa.LargeBinary):
                    values[column] = plain
                else:
                    values[column] = plain.decode()
            updates.append({"pk_": row[pk], **values})
        if updates:
            connection.execute(target.update().where(target.c[pk] == sa.bindparam("pk_")),
                               updates)
