"""Key-encryption keys: the provider interface and the shipped file-based provider.

Data keys are random, stored in the database only wrapped (AES key wrap, RFC 3394/5649) by the
key-encryption key (KEK), which never enters the database. A KMS-backed provider can be added
behind the same interface.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from portal.config import Settings, SettingsError

log = logging.getLogger(__name__)


class KeyUnavailable(Exception):
    """A key could not be read, unwrapped or used."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a key-encryption key it never reveals."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class FileKeyProvider:
    """A 256-bit KEK read from a file holding it in base64 (as `portal keys generate-data-key`
    writes it)."""

    def __init__(self, path: Path) -> None:
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except (OSError, ValueError) as exc:
            raise KeyUnavailable(f"cannot read the data key file {path}: {exc}") from None
        if len(raw) != 32:
            raise KeyUnavailable(f"the data key file {path} must hold 32 bytes in base64")
        self._kek = raw
        self._id = hashlib.sha256(b"kek-id|" + raw).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._id

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap_with_padding(self._kek, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap_with_padding(self._kek, wrapped)
        except InvalidUnwrap:
            raise KeyUnavailable("a data key does not unwrap with this key-encryption key (wrong "
                            "PORTAL_DATA_KEY_FILE?)") from None


def write_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")


def key_provider(settings: Settings) -> FileKeyProvider:
    """The configured provider; development generates a key in the data dir (and says so)."""
    path = settings.data_key_file
    if path is None:
        if settings.is_production:
            raise SettingsError("PORTAL_DATA_KEY_FILE", "production needs a data key")
        path = settings.data_dir / "data-kek.key"
        if not path.exists():
            write_key_file(path)
            log.warning("Generated a development data key at %s; set PORTAL_DATA_KEY_FILE to a "
                        "managed key in production.", path)
    return FileKeyProvider(path)
