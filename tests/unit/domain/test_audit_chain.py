"""The audit hash chain: canonical encoding, every kind of tampering named, display escaping."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.domain.audit import (
    EVENT_FIELDS,
    GENESIS_HASH,
    AuditAction,
    ChainedEvent,
    Checkpoint,
    Damage,
    NewAuditEvent,
    VerifyResult,
    canonical_json,
    chain_event,
    checkpoint_signature_valid,
    disclosure_of,
    escape_csv_cell,
    escape_for_display,
    event_content,
    event_hash,
    key_id_of,
    public_key_bytes,
    revocation_order,
    sign_checkpoint,
    verify_chain,
)

T0 = datetime(2026, 11, 28, 15, 0, 0, 123456, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = {key_id_of(public_key_bytes(KEY)): public_key_bytes(KEY)}
INJECTIONS = [
    "line one\r\nFAKE 2026-01-01 auth:login:success admin",
    "\x1b[31mred\x1b[0m and \x1b]8;;http://evil\x07link",
    "quote \" and 'single' and back\\slash, comma",
    "non-BMP 𝄞😀 and é and \u202eevil",
    "=HYPERLINK(\"http://evil\")",
]


def new_event(i: int, **changes: Any) -> NewAuditEvent:
    values: dict[str, Any] = {
        "action": AuditAction.RECORD_VIEW, "actor": f"user{i}@harbor.example",
        "actor_user_id": i, "actor_organization": "harbor-lead",
        "actor_roles": ("case_manager",), "session_id": f"s{i}", "client_address": "10.0.0.7",
        "participant_id": uuid.UUID(int=i), "category": "housing",
        "record_ids": (f"rec-{i}",), "purpose": "CAREMGT", "decision": "permit",
        "reasons": ("consent",), "consent_ids": ("c1",), "policy_version": "p" * 64,
        "request_id": f"req-{i}", "detail": {"disclosers": ["hope-housing"], "n": i}}
    values.update(changes)
    return NewAuditEvent(**values)


def build(n: int, chain: str = "main") -> list[ChainedEvent]:
    events: list[ChainedEvent] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        event = chain_event(new_event(i), chain=chain, seq=i,
                            occurred_at=T0 + timedelta(seconds=i), prev_hash=prev)
        events.append(event)
        prev = event.hash
    return events


def rehash(event: ChainedEvent, **changes: Any) -> ChainedEvent:
    changed = replace(event, **changes)
    return replace(changed, hash=event_hash(changed))


def rechain(events: list[ChainedEvent], start: int = 0) -> list[ChainedEvent]:
    """What an attacker with write access does: recompute every hash from ``start`` on."""
    out = events[:start]
    prev = out[-1].hash if out else GENESIS_HASH
    for i, event in enumerate(events[start:], start=start):
        fixed = rehash(event, seq=i + 1, prev_hash=prev)
        out.append(fixed)
        prev = fixed.hash
    return out


def checkpoint(events: list[ChainedEvent], seq: int,
               key: Ed25519PrivateKey = KEY) -> Checkpoint:
    head = events[seq - 1]
    return sign_checkpoint(key, chain="main", seq=seq, head_hash=head.hash,
                           signed_at=head.occurred_at)


def verify(events: list[ChainedEvent], checkpoints: tuple[Checkpoint, ...] = ()) -> VerifyResult:
    return verify_chain(iter(events), checkpoints, KEYS)


def damage(result: VerifyResult) -> tuple[Damage | None, int | None]:
    return result.damage, result.first_bad_seq


# --- encoding --------------------------------------------------------------------------------


def test_canonical_encoding_is_stable() -> None:
    event = build(1)[0]
    # A golden value: changing the encoding would orphan every stored chain.
    assert event.hash == "90f07693958c1879f5d188278a728cf7a80e4feb65f89ccccf4d5bac21f29374"
    assert event.prev_hash == GENESIS_HASH
    encoded = canonical_json(event_content(event))
    assert encoded == rfc8785.dumps(event_content(event))
    assert encoded.startswith(b'{"action":"record:view","actor":"user1@harbor.example",')
    assert b'"occurred_at":"2026-11-28T15:00:01.123456Z"' in encoded
    assert b" " not in encoded.replace(b"Z", b"")  # no insignificant whitespace


def test_time_always_has_microseconds_and_z() -> None:
    whole_second = chain_event(new_event(1), chain="main", seq=1,
                               occurred_at=datetime(2026, 1, 1, tzinfo=UTC), prev_hash="0" * 64)
    assert b'"occurred_at":"2026-01-01T00:00:00.000000Z"' in canonical_json(
        event_content(whole_second))
    elsewhere = datetime(2026, 1, 1, 1, 0, tzinfo=UTC).astimezone(
        datetime.now().astimezone().tzinfo)
    assert event_hash(replace(whole_second, occurred_at=datetime(2026, 1, 1, 1, 0, tzinfo=UTC))) \
        == event_hash(replace(whole_second, occurred_at=elsewhere))


def test_detail_key_order_does_not_change_the_hash() -> None:
    a = chain_event(new_event(1, detail={"a": 1, "b": [1, 2]}), chain="main", seq=1,
                    occurred_at=T0, prev_hash=GENESIS_HASH)
    b = chain_event(new_event(1, detail={"b": [1, 2], "a": 1}), chain="main", seq=1,
                    occurred_at=T0, prev_hash=GENESIS_HASH)
    assert a.hash == b.hash


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.text(st.characters(max_codepoint=127), max_size=8), children, max_size=3),
    max_leaves=8)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(actor=st.text(), detail=st.dictionaries(st.text(st.characters(max_codepoint=127)),
                                               json_values, max_size=4),
       roles=st.lists(st.text(), max_size=3))
def test_canonical_json_is_rfc8785(actor: str, detail: dict[str, Any], roles: list[str]) -> None:
    try:
        new = new_event(1, actor=actor, detail=detail, actor_roles=tuple(roles))
    except ValueError:
        return  # NUL characters are refused up front
    event = chain_event(new, chain="main", seq=1, occurred_at=T0, prev_hash=GENESIS_HASH)
    assert canonical_json(event_content(event)) == rfc8785.dumps(event_content(event))


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_round_trip_and_display_escaped(text: str) -> None:
    event = chain_event(
        new_event(1, actor=text, session_id=text, record_ids=(text,), reasons=(text,),
                  detail={"query": text, "nested": [text, {"k": text}]}),
        chain="main", seq=1, occurred_at=T0, prev_hash=GENESIS_HASH)
    assert event.actor == text  # stored faithfully, never cleaned
    # Through JSON the way a database JSON column stores it (ASCII escapes) and back.
    for dumps in (json.dumps, lambda v: json.dumps(v, ensure_ascii=False)):
        restored = replace(event, detail=json.loads(dumps(event.detail)),
                           record_ids=json.loads(dumps(list(event.record_ids))),
                           reasons=json.loads(dumps(list(event.reasons))))
        assert event_hash(restored) == event.hash
    shown = escape_for_display(text)
    assert not any(ch in shown for ch in "\r\n\x1b\x07\u202e")
    cell = escape_csv_cell(text)
    assert not cell.startswith(("=", "+", "-", "@"))


def test_display_escapes_are_visible_and_leave_non_bmp_alone() -> None:
    assert escape_for_display("a\r\nb\tc") == "a\\r\\nb\\tc"
    assert escape_for_display("\x1b[31mred") == "\\x1b[31mred"
    assert escape_for_display("\x00\x7f\x85") == "\\x00\\x7f\\x85"
    assert escape_for_display("\u202eevil\u2028") == "\\u202eevil\\u2028"
    # A typed backslash-n cannot pass for an escaped newline.
    assert escape_for_display("\\n") == "\\\\n" != escape_for_display("\n")
    assert escape_for_display("𝄞😀 \"quotes\" 'é'") == "𝄞😀 \"quotes\" 'é'"


@pytest.mark.parametrize(("text", "cell"), [
    ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("plain", "plain"), ("a=b", "a=b"), ("", ""), ("\n=1", "\\n=1"),
])
def test_csv_cells_neutralise_formulas(text: str, cell: str) -> None:
    assert escape_csv_cell(text) == cell


@pytest.mark.parametrize("changes", [
    {"detail": {"ratio": 0.5}},
    {"detail": {"é": 1}},
    {"detail": {"big": 2**60}},
    {"detail": {"when": datetime(2026, 1, 1, tzinfo=UTC)}},
    {"actor": "nul\x00byte"},
    {"decision": "maybe"},
    {"action": "record:peek"},
    {"record_ids": "not-a-tuple"},
    {"actor_user_id": True},
])
def test_new_events_refuse_what_cannot_be_stored_or_hashed(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        new_event(1, **changes)


def test_action_tags_are_sorted_and_complete() -> None:
    values = [a.value for a in AuditAction]
    assert values == sorted(values)
    assert all(":" in v and v == v.lower() for v in values)
    assert {"audit:verify", "auth:login:failure", "break_glass:grant:create",
            "consent:revoke", "record:view", "record:export", "staff:role:change",
            "crypto:decrypt:failure"} <= set(values)


# --- the chain and its damage ----------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    events = build(20)
    result = verify(events, (checkpoint(events, 10), checkpoint(events, 20)))
    assert result == VerifyResult(ok=True, events=20, checkpoints=2)
    assert verify([]) == VerifyResult(ok=True, events=0)


@pytest.mark.parametrize("position", [1, 5, 10])
def test_update_of_one_field_is_altered_at_that_seq(position: int) -> None:
    events = build(10)
    events[position - 1] = replace(events[position - 1], actor="someone-else@example")
    assert damage(verify(events)) == (Damage.ALTERED, position)


def test_update_with_that_events_hash_recomputed_is_altered_at_that_seq() -> None:
    events = build(10)
    events[3] = rehash(events[3], purpose="TREAT")
    assert damage(verify(events)) == (Damage.ALTERED, 4)


@pytest.mark.parametrize("position", [1, 2, 5, 9])
def test_delete_is_deleted_at_the_missing_seq(position: int) -> None:
    events = build(10)
    del events[position - 1]
    assert damage(verify(events)) == (Damage.DELETED, position)


def test_delete_hidden_by_renumbering_is_deleted() -> None:
    events = build(10)
    del events[4]
    events[4:] = [replace(e, seq=e.seq - 1) for e in events[4:]]
    assert damage(verify(events)) == (Damage.DELETED, 5)


@pytest.mark.parametrize("position", [1, 4, 10])
@pytest.mark.parametrize("forger", ["careless", "careful", "unlinked"])
def test_forged_event_with_renumbering_is_inserted(position: int, forger: str) -> None:
    events = build(10)
    prev = events[position - 2].hash if position > 1 else GENESIS_HASH
    forged = chain_event(new_event(666, actor="forger"), chain="main", seq=position,
                         occurred_at=T0, prev_hash=prev)
    if forger == "careless":  # neither hashes nor links
        forged = replace(forged, hash="f" * 64, prev_hash="e" * 64)
    elif forger == "unlinked":  # hashes correctly, but over a wrong previous hash
        forged = rehash(forged, prev_hash="e" * 64)
    events[position - 1:] = [forged] + [replace(e, seq=e.seq + 1)
                                        for e in events[position - 1:]]
    assert damage(verify(events)) == (Damage.INSERTED, position)


def test_duplicate_seq_is_inserted() -> None:
    events = build(6)
    twin = chain_event(new_event(666), chain="main", seq=3, occurred_at=T0,
                       prev_hash=events[1].hash)
    events.insert(3, twin)
    assert damage(verify(events)) == (Damage.INSERTED, 3)


@pytest.mark.parametrize(("first", "second"), [(1, 2), (4, 5), (9, 10), (3, 7)])
def test_swapped_events_are_reordered(first: int, second: int) -> None:
    events = build(10)
    a, b = events[first - 1], events[second - 1]
    events[first - 1], events[second - 1] = replace(b, seq=first), replace(a, seq=second)
    assert damage(verify(events)) == (Damage.REORDERED, first)


def test_truncation_is_caught_by_a_later_checkpoint() -> None:
    events = build(10)
    checkpoints = (checkpoint(events, 5), checkpoint(events, 10))
    assert damage(verify(events[:7], checkpoints)) == (Damage.TRUNCATED, 8)
    assert damage(verify([], checkpoints)) == (Damage.TRUNCATED, 1)
    # Without a checkpoint beyond the cut it cannot be seen: hence exported checkpoints.
    assert verify(events[:7], checkpoints[:1]).ok


@pytest.mark.parametrize("start", [0, 3, 7])
def test_rewrite_with_recomputed_hashes_is_a_bad_checkpoint(start: int) -> None:
    events = build(10)
    checkpoints = (checkpoint(events, 4), checkpoint(events, 8))
    events[start] = replace(events[start], purpose="TREAT")
    rewritten = rechain(events, start)
    assert verify(rewritten).ok  # the chain alone is self-consistent
    first_covering = next(c.seq for c in checkpoints if c.seq > start)
    assert damage(verify(rewritten, checkpoints)) == (Damage.BAD_CHECKPOINT, first_covering)


def test_checkpoint_with_bad_signature_or_untrusted_key_is_bad() -> None:
    events = build(10)
    good = checkpoint(events, 6)
    forged_sig = replace(good, signature=("00" * 64))
    moved = replace(good, signed_at=good.signed_at + timedelta(seconds=1))
    stranger = checkpoint(events, 6, key=Ed25519PrivateKey.generate())
    for bad in (forged_sig, moved, stranger):
        assert not checkpoint_signature_valid(bad, KEYS)
        assert damage(verify(events, (bad,))) == (Damage.BAD_CHECKPOINT, 6)
    # A forged checkpoint beyond the end does not pass for truncation.
    beyond = replace(checkpoint(events, 10), seq=12)
    assert damage(verify(events, (beyond,))) == (Damage.BAD_CHECKPOINT, 12)
    assert checkpoint_signature_valid(good, KEYS)


def test_first_damage_wins() -> None:
    events = build(10)
    checkpoints = (checkpoint(events, 9),)
    events[2] = replace(events[2], category="justice")
    del events[6]
    assert damage(verify(events, checkpoints)) == (Damage.ALTERED, 3)


def test_malformed_values_are_damage_not_a_crash() -> None:
    events = build(5)
    events[1] = replace(events[1], record_ids=[1, 2], actor_user_id="7")  # type: ignore[list-item,arg-type]
    assert damage(verify(events)) == (Damage.ALTERED, 2)


MUTABLE_FIELDS = [name for name in EVENT_FIELDS if name != "seq"]
text_or_none = st.none() | st.text(max_size=20)
strings = st.lists(st.text(max_size=8), max_size=3)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "chain": st.text(max_size=10), "action": st.text(max_size=20), "actor": st.text(),
    "prev_hash": st.text(max_size=64), "hash": st.text(max_size=64),
    "actor_user_id": st.none() | st.integers(),
    "occurred_at": st.datetimes(timezones=st.just(UTC)),
    "participant_id": st.none() | st.uuids(),
    "actor_roles": strings, "record_ids": strings, "reasons": strings, "consent_ids": strings,
    "detail": st.dictionaries(st.text(st.characters(max_codepoint=127), max_size=5),
                              json_values, max_size=3),
}


@st.composite
def single_field_change(draw: st.DrawFn) -> tuple[int, str, Any]:
    size = 8
    position = draw(st.integers(1, size))
    name = draw(st.sampled_from(MUTABLE_FIELDS))
    original = getattr(build(size)[position - 1], name)
    strategy = FIELD_VALUES.get(name, text_or_none)
    value = draw(strategy.filter(lambda v: v != original and not (
        isinstance(v, list) and list(original) == v)))
    return position, name, value


@settings(max_examples=300, deadline=None)
@given(single_field_change())
def test_any_single_field_change_is_altered_at_that_seq(change: tuple[int, str, Any]) -> None:
    position, name, value = change
    events = build(8)
    events[position - 1] = replace(events[position - 1], **{name: value})
    assert damage(verify(events)) == (Damage.ALTERED, position)


def test_verification_streams_and_reports_progress() -> None:
    count = 25_000

    def generate() -> Iterator[ChainedEvent]:
        prev = GENESIS_HASH
        for i in range(1, count + 1):
            event = chain_event(new_event(i % 50), chain="main", seq=i, occurred_at=T0,
                                prev_hash=prev)
            prev = event.hash
            yield event

    seen: list[int] = []
    result = verify_chain(generate(), (), KEYS, progress=seen.append)
    assert result.ok and result.events == count
    assert sum(seen) == count and len(seen) == 3


def test_damaged_result_still_counts_every_event() -> None:
    events = build(100)
    events[10] = replace(events[10], actor="x")
    result = verify(events)
    assert (result.ok, result.events) == (False, 100)
    assert result.as_json() == {"ok": False, "events": 100, "first_bad_seq": 11,
                                "damage": "altered"}


# --- accounting of disclosures ---------------------------------------------------------------


def test_disclosure_is_outside_information_permitted_to_view() -> None:
    base = build(1)[0]
    own = replace(base, detail={"disclosers": ["harbor-lead"]})
    denied = replace(base, decision="deny")
    consented = replace(base, detail={"disclosers": ["harbor-lead", "cedar-recovery"]})
    emergency = replace(base, consent_ids=[], detail={"disclosers": ["cedar-recovery"],
                                                      "break_glass_grant": "g1"})
    assert disclosure_of(own) is None and disclosure_of(denied) is None
    assert disclosure_of(replace(base, action="consent:view")) is None
    d = disclosure_of(consented)
    assert d is not None and d.disclosers == ("cedar-recovery",) and d.basis == "consent"
    assert d.recipient_organization == "harbor-lead" and d.consent_ids == ("c1",)
    e = disclosure_of(emergency)
    assert e is not None and e.basis == "break_glass" and e.break_glass_grant == "g1"
    unrecorded = disclosure_of(replace(emergency, detail={"disclosers": ["cedar-recovery"]}))
    assert unrecorded is not None and unrecorded.basis == "unrecorded"


def test_a_disclosure_is_placed_against_a_revocation_by_chain_position_not_clock() -> None:
    base = replace(build(1)[0], consent_ids=["c1"])

    def at(seq: int, observed: object = None) -> Any:
        detail: dict[str, Any] = {"disclosers": ["cedar-recovery"],
                                  "decided_at": "2026-11-30T15:00:00.123456Z"}
        if observed is not None:
            detail["observed_seq"] = observed
        d = disclosure_of(replace(base, seq=seq, detail=detail))
        assert d is not None
        return d

    revoked = {"c1": 50}
    # Logged after the revocation (seq 60) but decided on a chain read at 49: in flight.
    flight = revocation_order(at(60, 49), revoked)
    assert (flight.revocation, flight.revocation_seq) == ("before", 50)
    assert flight.decided_before_revocation and flight.in_flight_at_revocation
    assert flight.decided_at == datetime(2026, 11, 30, 15, 0, 0, 123456, tzinfo=UTC)
    assert flight.as_json()["decided_at"] == "2026-11-30T15:00:00.123456Z"
    # Logged before the revocation: before it, whatever it says, and not in flight.
    early = revocation_order(at(40), revoked)
    assert early.revocation == "before" and not early.in_flight_at_revocation
    # Decided on a chain that already held the revocation: after it (to follow up).
    assert revocation_order(at(61, 50), revoked).revocation == "after"
    # Logged after it by an event that does not say where its decision read the chain.
    assert revocation_order(at(62), revoked).revocation == "unknown"
    assert revocation_order(at(62, "49"), revoked).revocation == "unknown"  # not a number
    # A consent never revoked: nothing to say.
    assert revocation_order(at(62, 10), {"c2": 5}).revocation is None
