"""Field encryption without a database: binding to row and column, formats, nonces."""

from __future__ import annotations

import os

import pytest

from portal.crypto.keys import FileKeyProvider, KeyUnavailable, write_key_file
from portal.crypto.vault import HEADER, NONCE, DecryptionError, Vault, normalise_name


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    path = tmp_path_factory.mktemp("k") / "kek"
    write_key_file(path)
    return Vault.from_keys(FileKeyProvider(path), {1: os.urandom(32)}, os.urandom(32))


def test_round_trip_and_binding(vault: Vault) -> None:
    blob = vault.encrypt("Marcus", table="participant", column="given_name", row_id="r1")
    assert b"Marcus" not in blob
    assert vault.decrypt(blob, table="participant", column="given_name", row_id="r1") == b"Marcus"
    for where in ({"table": "record", "column": "given_name", "row_id": "r1"},
                  {"table": "participant", "column": "family_name", "row_id": "r1"},
                  {"table": "participant", "column": "given_name", "row_id": "r2"}):
        with pytest.raises(DecryptionError, match="does not belong to this row and column"):
            vault.decrypt(blob, **where)


def test_altered_or_foreign_values_are_refused(vault: Vault) -> None:
    blob = bytearray(vault.encrypt("x", table="t", column="c", row_id=1))
    blob[-1] ^= 1
    with pytest.raises(DecryptionError, match="altered"):
        vault.decrypt(bytes(blob), table="t", column="c", row_id=1)
    with pytest.raises(DecryptionError, match="not an encrypted value"):
        vault.decrypt(b"plain text", table="t", column="c", row_id=1)
    unknown = HEADER.pack(1, 99) + bytes(NONCE + 20)
    with pytest.raises(DecryptionError, match="unknown key version 99"):
        vault.decrypt(unknown, table="t", column="c", row_id=1)


def test_every_nonce_is_fresh_from_the_operating_systems_random_source(
        vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    """AES-GCM is broken by a repeated nonce under one key. Each encryption takes its 96-bit
    nonce from os.urandom (the kernel's CSPRNG), a new call each time, never a counter or a
    reused value: with random nonces a repeat is a 2**-32 event only after 2**32 values."""
    drawn: list[bytes] = []
    real_urandom = os.urandom

    def recording_urandom(size: int) -> bytes:
        value = real_urandom(size)
        drawn.append(value)
        return value

    monkeypatch.setattr(os, "urandom", recording_urandom)
    blobs = [vault.encrypt(b"same value", table="t", column="c", row_id="same row")
             for _ in range(3)]
    monkeypatch.undo()
    assert [blob[HEADER.size:HEADER.size + NONCE] for blob in blobs] == drawn
    assert all(len(nonce) == NONCE == 12 for nonce in drawn)
    assert len(set(blobs)) == 3  # the same value in the same place never encrypts alike


def test_nonces_are_unique_over_ten_thousand_encryptions(vault: Vault) -> None:
    nonces = {vault.encrypt(b"v", table="t", column="c", row_id=i)[HEADER.size:HEADER.size + NONCE]
              for i in range(10_000)}
    assert len(nonces) == 10_000


def test_blind_index_is_keyed_and_normalised(vault: Vault, tmp_path: object) -> None:
    assert normalise_name("  José  O'Neil-Ruiz ") == normalise_name("jose oneilruiz")
    a = vault.blind_index("name", normalise_name("Marcus Reed"))
    assert a == vault.blind_index("name", normalise_name("MARCUS  reed"))
    assert a != vault.blind_index("family", normalise_name("Marcus Reed"))
    other = Vault.from_keys(vault.provider, {1: os.urandom(32)}, os.urandom(32))
    assert other.blind_index("name", normalise_name("Marcus Reed")) != a


def test_a_wrong_key_encryption_key_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    one, two = Path(str(tmp_path)) / "one", Path(str(tmp_path)) / "two"
    write_key_file(one)
    write_key_file(two)
    wrapped = FileKeyProvider(one).wrap(os.urandom(32))
    with pytest.raises(KeyUnavailable, match="wrong PORTAL_DATA_KEY_FILE"):
        FileKeyProvider(two).unwrap(wrapped)
    (Path(str(tmp_path)) / "bad").write_text("not base64!")
    with pytest.raises(KeyUnavailable, match="cannot read"):
        FileKeyProvider(Path(str(tmp_path)) / "bad")
