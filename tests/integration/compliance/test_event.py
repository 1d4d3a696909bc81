"""One audit event in full: every field escaped, its place in the chain checked, the read
audited; an event that is not there is not found."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from portal.compliance import event
from portal.domain.audit import GENESIS_HASH
from portal.kernel.errors import NotFound
from tests.integration.compliance.conftest import ALEX, META, RENEE, Demo, Viewer


def _detail(world: Demo, seq: int, chain: str = "main") -> event.EventDetail:
    with world.as_staff(RENEE) as (session, renee):
        return event.event_detail(session, world.services, renee, META, chain, seq)


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def test_an_event_in_full_with_its_place_in_the_chain(world: Demo, alex_view: Viewer) -> None:
    first = world.append(alex_view(actor=ALEX + "\n", detail={
        "disclosers": ["cedar-recovery"], "note": "line\x1b[31m", "n": 3}))
    second = world.append(alex_view())

    shown = _detail(world, first)
    assert (shown.chain, shown.seq, shown.head_seq) == ("main", first, second)
    assert shown.action == "record:view" and shown.participant == "LP-1001"
    assert shown.hash_matches and shown.links_back
    assert shown.prev_hash == GENESIS_HASH
    fields = dict(shown.fields)
    assert fields["actor"] == ALEX + "\\n"  # escaped for display
    assert fields["participant_id"] == f"{world.participant_id('LP-1001')} (LP-1001)"
    assert fields["actor_roles"] == "housing_navigator"
    assert fields["decision"] == "permit"
    assert fields["session_id"] == ""  # None shows as nothing
    assert fields["occurred_at"].endswith("Z")
    assert not {"detail", "prev_hash", "hash"} & set(fields)
    assert shown.detail == [("disclosers", '["cedar-recovery"]'), ("n", "3"),
                            ("note", "line\\x1b[31m")]

    later = _detail(world, second)
    assert later.links_back and later.prev_hash == shown.hash
    (read, _) = world.events("audit:event:view")
    assert read.actor == RENEE and read.participant_id == world.participant_id("LP-1001")
    assert read.detail == {"view": "event", "chain": "main", "seq": first}
    assert read.purpose == "HOPERAT" and read.decision == "permit"


def test_an_event_without_a_participant_shows_none(world: Demo, alex_view: Viewer) -> None:
    seq = world.append(alex_view(participant_id=None))
    shown = _detail(world, seq)
    assert shown.participant == ""
    assert dict(shown.fields)["participant_id"] == ""
    (read,) = world.events("audit:event:view")
    assert read.participant_id is None


def test_a_missing_event_is_not_found_and_nothing_is_logged(world: Demo,
                                                            alex_view: Viewer) -> None:
    seq = world.append(alex_view())
    for chain, missing in (("main", seq + 5), ("other", seq)):
        with pytest.raises(NotFound, match=f"{chain}:{missing}"):
            _detail(world, missing, chain)
    assert world.events("audit:event:view") == []


def test_tampering_shows_in_the_detail(world: Demo, alex_view: Viewer, engine: Engine) -> None:
    seqs = [world.append(alex_view()) for _ in range(3)]
    _sql(engine, "UPDATE audit_event SET purpose = 'TREAT' WHERE seq = :s", s=seqs[1])
    altered = _detail(world, seqs[1])
    assert not altered.hash_matches and altered.links_back
    # A recomputed hash would break the next event's link instead.
    _sql(engine, "UPDATE audit_event SET hash = :h WHERE seq = :s", h="f" * 64, s=seqs[1])
    assert not _detail(world, seqs[2]).links_back
    # A deleted predecessor: nothing to link back to.
    _sql(engine, "DELETE FROM audit_event WHERE seq = :s", s=seqs[1])
    assert not _detail(world, seqs[2]).links_back


def test_details_that_cannot_be_hashed_or_dumped_are_still_shown(
        world: Demo, alex_view: Viewer, engine: Engine) -> None:
    seq = world.append(alex_view())
    # A float cannot be hashed (its text differs between JSON libraries).
    _sql(engine, "UPDATE audit_event SET detail = :d WHERE seq = :s",
         d='{"ratio": 1.5, "list": [1, 2]}', s=seq)
    shown = _detail(world, seq)
    assert not shown.hash_matches
    assert shown.detail == [("list", "[1,2]"), ("ratio", "1.5")]
    # A detail that is not an object is shown under an empty key; an integer beyond 64 bits
    # is shown as Python writes it.
    _sql(engine, "UPDATE audit_event SET detail = :d WHERE seq = :s",
         d=f"[{2**70}]", s=seq)
    assert _detail(world, seq).detail == [("", f"[{2**70}]")]
