"""segment_intact: the check made before a checkpoint is signed over a new head."""

from __future__ import annotations

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from portal.domain.audit import Checkpoint, segment_intact, sign_checkpoint
from tests.unit.domain.test_audit_chain import KEY, KEYS, T0, build, rechain, rehash


def _cp(seq: int, head_hash: str, key: Ed25519PrivateKey = KEY) -> Checkpoint:
    return sign_checkpoint(key, chain="main", seq=seq, head_hash=head_hash, signed_at=T0)


def test_an_intact_segment_from_a_trusted_checkpoint() -> None:
    events = build(9)
    start = _cp(4, events[3].hash)
    assert segment_intact(start, events[3:], KEYS, head_seq=9, head_hash=events[8].hash)
    # Events after the head (the caller's own, just written) are not in question.
    assert segment_intact(start, events[3:], KEYS, head_seq=7, head_hash=events[6].hash)


def test_from_the_beginning_without_a_checkpoint() -> None:
    events = build(5)
    assert segment_intact(None, events, KEYS, head_seq=5, head_hash=events[4].hash)
    assert not segment_intact(None, events[1:], KEYS, head_seq=5, head_hash=events[4].hash)


def test_damage_after_the_checkpoint_is_refused() -> None:
    events = build(9)
    start = _cp(4, events[3].hash)
    altered = [*events[:6], replace(events[6], actor="nobody"), *events[7:]]
    assert not segment_intact(start, altered[3:], KEYS, head_seq=9, head_hash=altered[8].hash)
    gap = [*events[3:5], *events[6:]]
    assert not segment_intact(start, gap, KEYS, head_seq=9, head_hash=events[8].hash)
    unlinked = [*events[3:6], rehash(events[6], prev_hash="f" * 64), *events[7:]]
    assert not segment_intact(start, unlinked, KEYS, head_seq=9, head_hash=events[8].hash)


def test_the_start_must_be_trusted_and_match() -> None:
    events = build(9)
    forged = rechain([replace(events[0], purpose="TREAT"), *events[1:]], 0)
    assert forged[3].hash != events[3].hash
    # A checkpoint over the genuine event does not vouch for a rewritten one at its seq.
    assert not segment_intact(_cp(4, events[3].hash), forged[3:], KEYS, head_seq=9,
                              head_hash=forged[8].hash)
    untrusted = _cp(4, events[3].hash, Ed25519PrivateKey.generate())
    assert not segment_intact(untrusted, events[3:], KEYS, head_seq=9,
                              head_hash=events[8].hash)
    # The head read under the lock must be the last event checked.
    assert not segment_intact(_cp(4, events[3].hash), events[3:], KEYS, head_seq=9,
                              head_hash=events[7].hash)
    assert not segment_intact(_cp(4, events[3].hash), [], KEYS, head_seq=9,
                              head_hash=events[8].hash)
