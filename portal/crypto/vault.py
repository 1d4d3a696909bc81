"""Envelope encryption of fields: AES-256-GCM, a fresh 96-bit nonce per value, and associated
data binding each ciphertext to its table, row, column and key version, so a value copied to
another row or column does not decrypt. Blind indexes are keyed HMAC-SHA256 under a separate key.

Stored form: version byte 1 | key version (4 bytes, big-endian) | nonce (12) | ciphertext+tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.crypto.keys import KeyProvider
from portal.db import models as m
from portal.db.types import utcnow

FORMAT = 1
HEADER = struct.Struct(">BI")
NONCE = 12
REFRESH_SECONDS = 60


class DecryptionError(Exception):
    """A value that cannot be decrypted here: moved, altered, or under a retired key."""

    def __init__(self, table: str, column: str, row_id: object, reason: str) -> None:
        super().__init__(f"{table}.{column} of {row_id}: {reason}")
        self.table, self.column, self.row_id, self.reason = table, column, row_id, reason


@dataclass(frozen=True, slots=True)
class PersonName:
    given: str
    family: str
    date_of_birth: date | None

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}"


@dataclass(frozen=True, slots=True)
class _Keys:
    ciphers: dict[int, AESGCM]
    current: int
    retired: frozenset[int]
    blind: bytes


def _aad(table: str, column: str, row_id: object, version: int) -> bytes:
    return f"lead-portal|{table}|{column}|{row_id}|{version}".encode()


def normalise_name(value: str) -> str:
    """Case, accents, punctuation and spacing do not matter for an exact-name search."""
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    letters = "".join(ch for ch in decomposed if ch.isalnum() or ch.isspace())
    return " ".join(letters.split())


class Vault:
    """The data keys, unwrapped in memory. Thread-safe; reloads new key versions periodically
    so that a rotation made by another process is picked up."""

    def __init__(self, provider: KeyProvider,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.provider = provider
        # Seconds, for the refresh interval only (tests move it past REFRESH_SECONDS).
        self.clock = clock
        self._keys: _Keys | None = None
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_keys(cls, provider: KeyProvider, field_keys: dict[int, bytes],
                  blind_key: bytes) -> Vault:
        """A vault over given keys, without a database (benchmarks and unit tests)."""
        vault = cls(provider)
        vault._keys = _Keys(ciphers={v: AESGCM(k) for v, k in field_keys.items()},
                            current=max(field_keys), retired=frozenset(), blind=blind_key)
        vault._loaded_at = float("inf")
        return vault

    # --- keys ---

    def load(self, session: Session) -> None:
        rows = session.scalars(select(m.DataKey).order_by(m.DataKey.version)).all()
        fields = [r for r in rows if r.purpose == "field"]
        blind = [r for r in rows if r.purpose == "blind_index"]
        if not fields or not blind:
            self._create_first_keys(session, need_field=not fields, need_blind=not blind)
            rows = session.scalars(select(m.DataKey).order_by(m.DataKey.version)).all()
            fields = [r for r in rows if r.purpose == "field"]
            blind = [r for r in rows if r.purpose == "blind_index"]
        ciphers = {r.version: AESGCM(self.provider.unwrap(r.wrapped_key)) for r in fields
                   if r.retired_at is None}
        live = [r.version for r in fields if r.retired_at is None]
        with self._lock:
            self._keys = _Keys(ciphers=ciphers, current=max(live),
                               retired=frozenset(r.version for r in fields if r.retired_at),
                               blind=self.provider.unwrap(blind[0].wrapped_key))
            self._loaded_at = self.clock()

    def _create_first_keys(self, session: Session, *, need_field: bool, need_blind: bool) -> None:
        if need_field:
            self.add_key(session, "field")
        if need_blind:
            self.add_key(session, "blind_index")
        session.flush()

    def add_key(self, session: Session, purpose: str) -> int:
        top = session.scalar(select(m.DataKey.version).order_by(m.DataKey.version.desc())
                             .limit(1)) or 0
        session.add(m.DataKey(version=top + 1, purpose=purpose,
                              wrapped_key=self.provider.wrap(AESGCM.generate_key(256)),
                              kek_id=self.provider.key_id, created_at=utcnow()))
        session.flush()
        return top + 1

    def ready(self, session: Session) -> Vault:
        """Load the keys in the caller's transaction, or reload them when a minute old, so a
        rotation made by another process is picked up. Returns the vault.

        The reload never flushes the caller's pending changes: a row half-way through a
        change (a consent marked active before its signature is sealed) must not reach the
        database, and its constraints, because the keys happened to be a minute old."""
        if self._keys is None or self.clock() - self._loaded_at > REFRESH_SECONDS:
            with session.no_autoflush:
                self.load(session)
        return self

    def keys(self) -> _Keys:
        if self._keys is None:
            raise RuntimeError("the vault's keys are not loaded (call ready(session) first)")
        return self._keys

    @property
    def current_version(self) -> int:
        return self.keys().current

    # --- values ---

    def encrypt(self, value: str | bytes, *, table: str, column: str, row_id: object,
                version: int | None = None) -> bytes:
        keys = self.keys()
        version = keys.current if version is None else version
        nonce = os.urandom(NONCE)
        plaintext = value.encode() if isinstance(value, str) else value
        sealed = keys.ciphers[version].encrypt(nonce, plaintext,
                                               _aad(table, column, row_id, version))
        return HEADER.pack(FORMAT, version) + nonce + sealed

    def decrypt(self, blob: bytes | None, *, table: str, column: str, row_id: object) -> bytes:
        if blob is None:
            raise DecryptionError(table, column, row_id, "no value stored")
        if len(blob) < HEADER.size + NONCE + 16:
            raise DecryptionError(table, column, row_id, "not an encrypted value")
        fmt, version = HEADER.unpack_from(blob)
        keys = self.keys()
        if fmt != FORMAT:
            raise DecryptionError(table, column, row_id, f"unknown format {fmt}")
        if version in keys.retired:
            raise DecryptionError(table, column, row_id, f"key version {version} is retired")
        cipher = keys.ciphers.get(version)
        if cipher is None:
            raise DecryptionError(table, column, row_id, f"unknown key version {version}")
        try:
            return cipher.decrypt(blob[HEADER.size:HEADER.size + NONCE],
                                  blob[HEADER.size + NONCE:],
                                  _aad(table, column, row_id, version))
        except InvalidTag:
            raise DecryptionError(table, column, row_id, "does not belong to this row and "
                                  "column, or was altered") from None

    def decrypt_text(self, blob: bytes | None, *, table: str, column: str,
                     row_id: object) -> str:
        return self.decrypt(blob, table=table, column=column, row_id=row_id).decode()

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed HMAC-SHA256 of a normalised value, for exact-match search."""
        digest = hmac.new(self.keys().blind, f"{kind}|{value}".encode(), hashlib.sha256)
        return digest.hexdigest()

    # --- whole rows ---

    def seal(self, row: Any, values: dict[str, str | bytes | None], *,
             version: int | None = None) -> None:
        """Encrypt columns of one ORM row into their ``<column>_enc`` attributes; the row's
        ``key_version`` says which data key its values are under."""
        version = self.current_version if version is None else version
        for column, value in values.items():
            blob = None if value is None else self.encrypt(
                value, table=row.__tablename__, column=column, row_id=row.id, version=version)
            setattr(row, f"{column}_enc", blob)
        row.key_version = version

    def seal_participant(self, row: m.Participant, given: str, family: str,
                         dob: date | None) -> None:
        self.seal(row, {"given_name": given.strip(), "family_name": family.strip(),
                        "date_of_birth": dob.isoformat() if dob else None})
        row.name_bidx = self.blind_index("name", normalise_name(f"{given} {family}"))
        row.family_bidx = self.blind_index("family", normalise_name(family))
        row.dob_bidx = self.blind_index("dob", dob.isoformat()) if dob else None

    def open_participant(self, row: m.Participant) -> PersonName:
        given = self.open(row, "given_name") or ""
        family = self.open(row, "family_name") or ""
        dob = self.open(row, "date_of_birth")
        return PersonName(given, family, date.fromisoformat(dob) if dob else None)

    def open(self, row: Any, column: str) -> str | None:
        blob = getattr(row, f"{column}_enc")
        if blob is None:
            return None
        return self.decrypt_text(blob, table=row.__tablename__, column=column, row_id=row.id)

    def open_or_none(self, row: Any, column: str) -> str | None:
        """A sealed text for display: "" when nothing is stored, None when it cannot be
        decrypted (moved, altered, under a retired key), which pages show as unavailable."""
        try:
            return self.open(row, column) or ""
        except DecryptionError:
            return None
