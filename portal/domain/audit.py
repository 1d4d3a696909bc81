"""Audit events: action tags, canonical hashing, the hash chain, signed checkpoints, verification.

The audit log is the evidence for HIPAA audit controls (45 CFR 164.312(b)) and for the
accounting of disclosures (45 CFR 164.528; 42 CFR 2.24, 2.25). Each event is hashed over the
canonical JSON of every stored field, including its sequence number and the previous event's
hash, so that altering, deleting, inserting or reordering events breaks the chain. Signed
checkpoints over the chain head, kept elsewhere, catch truncation and wholesale rewrites.

Pure Python: no web framework, no database.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS_HASH = "0" * 64
# Whole numbers outside this range lose precision in other JSON implementations (RFC 8785 3.2.2.3).
MAX_SAFE_INTEGER = 2**53 - 1


class AuditAction(StrEnum):
    """Every kind of audited event, as `scope:resource:action` tags. Kept sorted by value."""

    AUDIT_CHECKPOINTS_EXPORT = "audit:checkpoints:export"
    AUDIT_DISCLOSURES_VIEW = "audit:disclosures:view"
    AUDIT_EVENT_VIEW = "audit:event:view"
    AUDIT_EXPORT = "audit:export"
    AUDIT_VERIFY = "audit:verify"
    AUTH_ENROLMENT_CODE_ISSUE = "auth:enrolment_code:issue"
    AUTH_ENROLMENT_CODE_USE = "auth:enrolment_code:use"
    AUTH_LOCKOUT = "auth:lockout"
    AUTH_LOGIN_FAILURE = "auth:login:failure"
    AUTH_LOGIN_SUCCESS = "auth:login:success"
    AUTH_LOGOUT = "auth:logout"
    AUTH_SESSION_EXPIRED = "auth:session:expired"
    AUTH_TOTP_ADD = "auth:totp:add"
    AUTH_TOTP_REMOVE = "auth:totp:remove"
    BREAK_GLASS_GRANT_CREATE = "break_glass:grant:create"
    BREAK_GLASS_GRANT_REVIEW = "break_glass:grant:review"
    CARE_TEAM_MEMBER_ADD = "care_team:member:add"
    CARE_TEAM_MEMBER_END = "care_team:member:end"
    CONSENT_CREATE = "consent:create"
    CONSENT_REVOKE = "consent:revoke"
    CONSENT_SIGN = "consent:sign"
    CONSENT_SUPERSEDE = "consent:supersede"
    CONSENT_VIEW = "consent:view"
    CRYPTO_DECRYPT_FAILURE = "crypto:decrypt:failure"
    DECISION_EXPLAIN = "decision:explain"
    GOAL_CREATE = "goal:create"
    GOAL_UPDATE = "goal:update"
    PARTICIPANT_DISPOSITION_CREATE = "participant:disposition:create"
    PARTICIPANT_ENROL = "participant:enrol"
    PARTICIPANT_EXIT = "participant:exit"
    PARTICIPANT_VIEW = "participant:view"
    RECORD_CREATE = "record:create"
    RECORD_EXPORT = "record:export"
    RECORD_VIEW = "record:view"
    RECORD_WITHHOLD = "record:withhold"
    REFERRAL_CREATE = "referral:create"
    REFERRAL_DECIDE = "referral:decide"
    STAFF_REINSTATE = "staff:reinstate"
    STAFF_ROLE_CHANGE = "staff:role:change"
    STAFF_SUSPEND = "staff:suspend"


# Actions that disclose information to the actor (accounting of disclosures, 45 CFR 164.528).
DISCLOSING_ACTIONS = frozenset({AuditAction.RECORD_VIEW, AuditAction.RECORD_EXPORT})

Decision = Literal["permit", "deny"]


@dataclass(frozen=True)
class NewAuditEvent:
    """What a service knows about one auditable event; the log adds chain, seq, time and hashes.

    Strings are stored exactly as given (never cleaned: the log is evidence); display escapes
    them (``escape_for_display``). ``detail`` is free-form JSON: strings, whole numbers, booleans,
    null, lists and objects with ASCII keys (floats are refused: their text differs between JSON
    libraries, which would make the hash irreproducible).
    """

    action: AuditAction
    actor: str = "system"
    actor_user_id: int | None = None
    actor_organization: str | None = None
    actor_roles: tuple[str, ...] = ()
    session_id: str | None = None
    client_address: str | None = None
    participant_id: uuid.UUID | None = None
    category: str | None = None
    record_ids: tuple[str, ...] = ()
    purpose: str | None = None
    decision: Decision | None = None
    reasons: tuple[str, ...] = ()
    consent_ids: tuple[str, ...] = ()
    policy_version: str | None = None
    request_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", AuditAction(self.action))
        if self.decision not in (None, "permit", "deny"):
            raise ValueError(f"decision must be permit, deny or None, not {self.decision!r}")
        for name in ("actor_roles", "record_ids", "reasons", "consent_ids"):
            values = tuple(getattr(self, name))
            if isinstance(getattr(self, name), str) or not all(
                    isinstance(v, str) for v in values):
                raise ValueError(f"{name} must be a sequence of strings")
            object.__setattr__(self, name, values)
        if self.participant_id is not None and not isinstance(self.participant_id, uuid.UUID):
            object.__setattr__(self, "participant_id", uuid.UUID(str(self.participant_id)))
        for name in ("actor", "actor_organization", "session_id", "client_address", "category",
                     "purpose", "policy_version", "request_id", *_LIST_FIELDS):
            values = getattr(self, name)
            for value in (values if isinstance(values, tuple) else (values,)):
                # PostgreSQL text cannot hold NUL; refuse it everywhere so both backends agree.
                if isinstance(value, str) and "\x00" in value:
                    raise ValueError(f"{name} contains a NUL character")
        if (self.actor_user_id is not None and not isinstance(self.actor_user_id, int)) or \
                isinstance(self.actor_user_id, bool):
            raise ValueError("actor_user_id must be a whole number or None")
        _check_json(self.detail, "detail")
        object.__setattr__(self, "detail", dict(self.detail))


_LIST_FIELDS = ("actor_roles", "record_ids", "reasons", "consent_ids")


def _check_json(value: object, where: str) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{where}: {value} is too large for portable JSON")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise ValueError(f"{where}: keys must be ASCII strings, not {key!r}")
            _check_json(item, f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    raise ValueError(f"{where}: {type(value).__name__} is not allowed in audit detail")


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """One stored event: every column of the audit_event table."""

    chain: str
    seq: int
    occurred_at: datetime
    action: str
    actor_user_id: int | None
    actor: str
    actor_organization: str | None
    actor_roles: Sequence[str]
    session_id: str | None
    client_address: str | None
    participant_id: uuid.UUID | None
    category: str | None
    record_ids: Sequence[str]
    purpose: str | None
    decision: str | None
    reasons: Sequence[str]
    consent_ids: Sequence[str]
    policy_version: str | None
    request_id: str | None
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str


# The order of ChainedEvent's fields, which is also the column order the services select.
EVENT_FIELDS: tuple[str, ...] = tuple(ChainedEvent.__dataclass_fields__)


def chain_event(event: NewAuditEvent, *, chain: str, seq: int, occurred_at: datetime,
                prev_hash: str) -> ChainedEvent:
    """Place a new event after ``prev_hash`` at ``seq`` and compute its hash."""
    if occurred_at.utcoffset() is None:
        raise ValueError("occurred_at must be timezone-aware")
    unhashed = ChainedEvent(
        chain=chain, seq=seq, occurred_at=occurred_at.astimezone(UTC), action=event.action.value,
        actor_user_id=event.actor_user_id, actor=event.actor,
        actor_organization=event.actor_organization, actor_roles=list(event.actor_roles),
        session_id=event.session_id, client_address=event.client_address,
        participant_id=event.participant_id, category=event.category,
        record_ids=list(event.record_ids), purpose=event.purpose, decision=event.decision,
        reasons=list(event.reasons), consent_ids=list(event.consent_ids),
        policy_version=event.policy_version, request_id=event.request_id,
        detail=dict(event.detail), prev_hash=prev_hash, hash="")
    return _with_hash(unhashed, event_hash(unhashed))


def _with_hash(event: ChainedEvent, digest: str) -> ChainedEvent:
    values = {name: getattr(event, name) for name in EVENT_FIELDS}
    values["hash"] = digest
    return ChainedEvent(**values)


# --- canonical encoding ----------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """The one fixed text form of an event time: ISO 8601, UTC, microseconds, ``Z``."""
    if value.utcoffset() is None:
        raise ValueError("naive datetime in an audit event")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat() of a UTC datetime ends in "+00:00"; the fixed form ends in "Z".
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def canonical_json(value: object) -> bytes:
    """RFC 8785 canonical JSON (JCS) for the values audit events hold.

    With floats refused and object keys ASCII (NewAuditEvent checks both), orjson's sorted-key
    compact UTF-8 output is byte-identical to RFC 8785: the same string escapes, code-point key
    order equals UTF-16 order for ASCII keys, and integers print the same. A test checks this
    against the reference `rfc8785` package; orjson is used because verification of a million
    events spends most of its time here.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def event_content(event: ChainedEvent, seq: int | None = None) -> dict[str, Any]:
    """Every stored field except the hash itself (``seq`` may be overridden to test a move)."""
    user_id = event.actor_user_id
    if type(user_id) not in (int, type(None)) or type(event.seq) is not int:
        raise TypeError("seq and actor_user_id must be whole numbers")
    return {
        "action": event.action,
        "actor": event.actor,
        "actor_organization": event.actor_organization,
        "actor_roles": event.actor_roles,
        "actor_user_id": user_id,
        "category": event.category,
        "chain": event.chain,
        "client_address": event.client_address,
        "consent_ids": event.consent_ids,
        "decision": event.decision,
        "detail": event.detail,
        "occurred_at": format_time(event.occurred_at),
        "participant_id": None if event.participant_id is None else str(event.participant_id),
        "policy_version": event.policy_version,
        "prev_hash": event.prev_hash,
        "purpose": event.purpose,
        "reasons": event.reasons,
        "record_ids": event.record_ids,
        "request_id": event.request_id,
        "seq": event.seq if seq is None else seq,
        "session_id": event.session_id,
    }


def event_hash(event: ChainedEvent, seq: int | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of every stored field of the event but its hash."""
    return hashlib.sha256(canonical_json(event_content(event, seq))).hexdigest()


def _hash_or_none(event: ChainedEvent, seq: int | None = None) -> str | None:
    # A tampered row may hold values of the wrong type; that is damage, not a crash.
    try:
        return event_hash(event, seq)
    except (TypeError, ValueError, AttributeError, orjson.JSONEncodeError):
        return None


# --- checkpoints -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An Ed25519 signature over (chain, seq, head hash, signed_at)."""

    chain: str
    seq: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature: str  # hex


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_of(public_key: bytes) -> str:
    """First 16 hex characters of the SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def checkpoint_message(chain: str, seq: int, head_hash: str, signed_at: datetime) -> bytes:
    return canonical_json({"chain": chain, "head_hash": head_hash, "seq": seq,
                           "signed_at": format_time(signed_at)})


def sign_checkpoint(key: Ed25519PrivateKey, *, chain: str, seq: int, head_hash: str,
                    signed_at: datetime) -> Checkpoint:
    signature = key.sign(checkpoint_message(chain, seq, head_hash, signed_at))
    return Checkpoint(chain=chain, seq=seq, head_hash=head_hash,
                      signed_at=signed_at.astimezone(UTC), key_id=key_id_of(public_key_bytes(key)),
                      signature=signature.hex())


def checkpoint_signature_valid(checkpoint: Checkpoint, public_keys: Mapping[str, bytes]) -> bool:
    """True when a trusted key with the checkpoint's key id signed exactly these values."""
    raw = public_keys.get(checkpoint.key_id)
    if raw is None or key_id_of(raw) != checkpoint.key_id:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            bytes.fromhex(checkpoint.signature),
            checkpoint_message(checkpoint.chain, checkpoint.seq, checkpoint.head_hash,
                               checkpoint.signed_at))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


# --- verification ----------------------------------------------------------------------------


class Damage(StrEnum):
    ALTERED = "altered"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    BAD_CHECKPOINT = "bad_checkpoint"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    damage: Damage | None = None
    chain: str = "main"
    checkpoints: int = 0  # how many checkpoints were checked

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "first_bad_seq": self.first_bad_seq,
                "damage": None if self.damage is None else self.damage.value}


# How far (in sequence numbers) verification looks to explain a break: moved events are
# recognised by recomputing their hash at nearby positions.
WINDOW = 32
PROGRESS_EVERY = 10_000


def verify_chain(events: Iterable[ChainedEvent], checkpoints: Sequence[Checkpoint] = (),
                 public_keys: Mapping[str, bytes] | None = None, *, chain: str = "main",
                 progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Recompute the chain of ``events`` (in stored seq order) and check the checkpoints.

    Streams: memory is constant apart from a window of WINDOW events read ahead after a break.
    Names the first bad sequence number and the kind of damage:

    - altered: the event at that seq no longer hashes to its stored hash (or, when it does but
      the next event does not link to it, the event was rewritten with a recomputed hash);
    - deleted: that seq is missing (a gap), or later events were renumbered down to hide it;
    - inserted: a duplicate seq, or a foreign event at that seq pushed the genuine ones up;
    - reordered: the event at that seq belongs further on and the genuine one follows soon;
    - truncated: a valid checkpoint names a seq beyond the last event (first_bad_seq = last+1);
    - bad_checkpoint: a checkpoint's signature is invalid or from an untrusted key, or its head
      hash differs from the event at its seq (a rewrite with recomputed hashes).
    """
    keys = public_keys or {}
    cps = sorted((c for c in checkpoints if c.chain == chain), key=lambda c: c.seq)
    cp_index = 0
    expected, prev = 1, GENESIS_HASH
    count = 0
    reported = 0
    stream = iter(events)
    damage: tuple[Damage, int] | None = None
    for event in stream:
        count += 1
        if progress is not None and count - reported >= PROGRESS_EVERY:
            progress(count - reported)
            reported = count
        if event.seq == expected and event.prev_hash == prev and \
                _hash_or_none(event) == event.hash:
            while cp_index < len(cps) and cps[cp_index].seq <= event.seq:
                cp = cps[cp_index]
                cp_index += 1
                if cp.seq != event.seq or cp.head_hash != event.hash or \
                        not checkpoint_signature_valid(cp, keys):
                    damage = (Damage.BAD_CHECKPOINT, cp.seq)
                    break
            if damage is not None:
                break
            prev = event.hash
            expected += 1
            continue
        ahead: list[ChainedEvent] = []
        damage = _classify(event, expected, prev, _Lookahead(stream, ahead))
        count += len(ahead)
        break
    if damage is None:
        for cp in cps[cp_index:]:
            # A checkpoint beyond the last event proves events were cut off, if it is genuine.
            damage = ((Damage.TRUNCATED, expected) if checkpoint_signature_valid(cp, keys)
                      else (Damage.BAD_CHECKPOINT, cp.seq))
            break
    else:
        count += sum(1 for _ in stream)
    if progress is not None and count > reported:
        progress(count - reported)
    if damage is None:
        return VerifyResult(ok=True, events=count, chain=chain, checkpoints=len(cps))
    return VerifyResult(ok=False, events=count, first_bad_seq=damage[1], damage=damage[0],
                        chain=chain, checkpoints=len(cps))


def segment_intact(start: Checkpoint | None, events: Iterable[ChainedEvent],
                   public_keys: Mapping[str, bytes], *, head_seq: int,
                   head_hash: str) -> bool:
    """True when ``events`` (stored seq order) chain from ``start`` up to the head.

    ``start`` is the last trusted checkpoint (None: the chain's beginning); it must carry a
    valid signature from a trusted key and name the first event's hash. Every later event must
    hash to its stored hash, follow on by one and link to the one before; the last is the head.
    A checkpoint over the head is signed only when this holds (nothing unchecked is certified).
    """
    expected, prev = (1, GENESIS_HASH) if start is None else (start.seq, None)
    if start is not None and not checkpoint_signature_valid(start, public_keys):
        return False
    last: ChainedEvent | None = None
    for event in events:
        if last is not None and last.seq == head_seq:
            break  # events after the head (just written by the caller) are not in question
        if event.seq != expected or _hash_or_none(event) != event.hash:
            return False
        if prev is None:
            if start is None or event.hash != start.head_hash:
                return False
        elif event.prev_hash != prev:
            return False
        prev, expected, last = event.hash, expected + 1, event
    if last is None:
        return False
    return last.seq == head_seq and last.hash == head_hash


class _Lookahead:
    """Up to WINDOW events after a break, read on demand and remembered (for counting)."""

    def __init__(self, stream: Iterator[ChainedEvent], buffer: list[ChainedEvent]) -> None:
        self._stream = stream
        self.buffer = buffer

    def get(self, i: int) -> ChainedEvent | None:
        while len(self.buffer) <= i and len(self.buffer) < WINDOW:
            nxt = next(self._stream, None)
            if nxt is None:
                return None
            self.buffer.append(nxt)
        return self.buffer[i] if i < len(self.buffer) else None


def _origin(event: ChainedEvent) -> int | None:
    """The seq at which this event's content hashes to its stored hash (itself, or nearby)."""
    if _hash_or_none(event) == event.hash:
        return event.seq
    for distance in range(1, WINDOW + 1):
        for seq in (event.seq - distance, event.seq + distance):
            if seq >= 1 and _hash_or_none(event, seq) == event.hash:
                return seq
    return None


def _moved_up(event: ChainedEvent | None) -> bool:
    return event is not None and _origin(event) == event.seq - 1


def _classify(event: ChainedEvent, expected: int, prev: str,
              ahead: _Lookahead) -> tuple[Damage, int]:
    seq = event.seq
    if seq > expected:
        return Damage.DELETED, expected
    if seq < expected:
        return (Damage.INSERTED, seq) if seq == expected - 1 else (Damage.REORDERED, seq)
    origin = _origin(event)
    following = ahead.get(0)
    if origin == seq:
        # The event is intact but does not link to its predecessor.
        if _moved_up(following):
            return Damage.INSERTED, seq
        return Damage.ALTERED, max(seq - 1, 1)
    if origin is not None and origin < seq:
        return Damage.INSERTED, origin
    if origin is not None:
        # A later event sits here: either the genuine one follows soon (reordered) or it is
        # gone and the rest were renumbered down (deleted).
        for i in range(WINDOW):
            candidate = ahead.get(i)
            if candidate is None:
                break
            if _origin(candidate) == seq:
                return Damage.REORDERED, seq
        return Damage.DELETED, seq
    if _moved_up(following):
        return Damage.INSERTED, seq
    links_back = event.prev_hash == prev
    links_forward = following is None or following.prev_hash == event.hash
    # One changed field leaves at least one link intact; a forged row links to neither side.
    return (Damage.ALTERED, seq) if links_back or links_forward else (Damage.INSERTED, seq)


# --- accounting of disclosures ---------------------------------------------------------------

Basis = Literal["consent", "break_glass", "unrecorded"]
RevocationOrder = Literal["before", "after", "unknown"]
# A disclosure under a consent since revoked, placed by commit order (Disclosure.revocation):
# requests in flight when the revocation committed finish and are logged after it.
REVOCATION_TEXT: dict[RevocationOrder, str] = {
    "before": "decided before the revocation committed",
    "after": "decided after the revocation committed (follow up)",
    "unknown": "logged after the revocation; when it was decided is not recorded (follow up)",
}


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One line of an accounting of disclosures (45 CFR 164.528(b)(2); 42 CFR 2.24, 2.25)."""

    occurred_at: datetime
    seq: int
    action: str
    recipient: str  # the person who received it
    recipient_organization: str | None
    recipient_roles: tuple[str, ...]
    disclosers: tuple[str, ...]  # the organizations whose information it was
    category: str | None
    record_ids: tuple[str, ...]
    purpose: str | None
    # consent (consent_ids name them), break_glass (42 CFR 2.51 medical emergency), or
    # unrecorded: a permitted outside disclosure with no basis logged, for compliance to chase.
    basis: Basis
    consent_ids: tuple[str, ...]
    break_glass_grant: str | None
    # When the decision was made, and the audit chain's head as read just before it read the
    # consents (None in events written before decisions recorded them).
    decided_at: datetime | None = None
    observed_seq: int | None = None
    # Set by the accounting when a consent it cites has been revoked (by chain position,
    # never by clock): "before" (the decision read the consent before the revocation
    # committed, however late the event was written), "after" (it read the consents after:
    # never expected, for compliance to chase), "unknown" (logged after the revocation by an
    # event that does not say when its decision read the consents).
    revocation: RevocationOrder | None = None
    revocation_seq: int | None = None

    @property
    def date(self) -> date:
        return self.occurred_at.date()

    @property
    def decided_before_revocation(self) -> bool:
        return self.revocation == "before"

    @property
    def in_flight_at_revocation(self) -> bool:
        """Decided before the revocation committed but logged after it (a request that had
        read the consent was still running): what a clock would wrongly put after it."""
        return (self.decided_before_revocation and self.revocation_seq is not None
                and self.seq > self.revocation_seq)

    def as_json(self) -> dict[str, Any]:
        return {"date": self.date.isoformat(), "occurred_at": format_time(self.occurred_at),
                "seq": self.seq, "action": self.action, "recipient": self.recipient,
                "recipient_organization": self.recipient_organization,
                "recipient_roles": list(self.recipient_roles),
                "disclosers": list(self.disclosers), "category": self.category,
                "record_ids": list(self.record_ids), "purpose": self.purpose,
                "basis": self.basis, "consent_ids": list(self.consent_ids),
                "break_glass_grant": self.break_glass_grant,
                "decided_at": None if self.decided_at is None else format_time(self.decided_at),
                "observed_seq": self.observed_seq, "revocation": self.revocation,
                "revocation_seq": self.revocation_seq}


def disclosure_of(event: ChainedEvent) -> Disclosure | None:
    """The disclosure an event records, or None when it records none.

    A disclosure is a permitted record view or export whose information came from an
    organization other than the actor's own (``detail["disclosers"]``); use of one's own
    organization's records is not a disclosure.
    """
    if event.action not in DISCLOSING_ACTIONS or event.decision != "permit":
        return None
    detail = event.detail if isinstance(event.detail, Mapping) else {}
    disclosers = detail.get("disclosers") or ()
    if isinstance(disclosers, str):
        disclosers = (disclosers,)
    outside = tuple(d for d in disclosers if d != event.actor_organization)
    if not outside:
        return None
    grant = detail.get("break_glass_grant")
    basis: Basis = ("consent" if event.consent_ids else
                    "break_glass" if grant else "unrecorded")
    observed = detail.get("observed_seq")
    return Disclosure(
        occurred_at=event.occurred_at, seq=event.seq, action=event.action,
        recipient=event.actor, recipient_organization=event.actor_organization,
        recipient_roles=tuple(event.actor_roles), disclosers=outside, category=event.category,
        record_ids=tuple(event.record_ids), purpose=event.purpose, basis=basis,
        consent_ids=tuple(event.consent_ids), break_glass_grant=None if grant is None
        else str(grant), decided_at=_time_or_none(detail.get("decided_at")),
        observed_seq=observed if type(observed) is int else None)


def revocation_order(disclosure: Disclosure, revoked: Mapping[str, int]) -> Disclosure:
    """``disclosure`` placed against the revocations of the consents it cites (consent id ->
    seq of the revocation's event), by chain position: a decision that read the chain's head
    below that seq read the consents before the revocation committed. An event written
    before that seq needs no decision position to be before it."""
    seqs = [revoked[c] for c in disclosure.consent_ids if c in revoked]
    if not seqs:
        return disclosure
    first = min(seqs)
    position = disclosure.observed_seq
    order: RevocationOrder
    if disclosure.seq < first or (position is not None and position < first):
        order = "before"
    elif position is not None:
        order = "after"
    else:
        order = "unknown"
    return replace(disclosure, revocation=order, revocation_seq=first)


def _time_or_none(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


# --- display ---------------------------------------------------------------------------------


def _display_table() -> dict[int, str]:
    table: dict[int, str] = {ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r",
                             ord("\t"): "\\t"}
    invisible = [*range(0x20), 0x7F, *range(0x80, 0xA0),
                 # Bidirectional controls ("Trojan Source"), line/paragraph separators, BOM.
                 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A),
                 0x2028, 0x2029, 0xFEFF]
    for code in invisible:
        table.setdefault(code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return table


_DISPLAY = _display_table()


def escape_for_display(text: str) -> str:
    """Make control characters visible (``\\n``, ``\\x1b``...) for terminals and CSV.

    Only display is escaped; stored values are never altered. Backslashes are doubled so that
    an escape shown cannot be confused with the same characters typed literally. Characters
    outside the Basic Multilingual Plane (emoji, musical symbols) are left as they are.
    """
    return text.translate(_DISPLAY)


def escape_csv_cell(text: str) -> str:
    """escape_for_display, and neutralise spreadsheet formulas (a leading = + - @ gets a ')."""
    shown = escape_for_display(text)
    return "'" + shown if shown[:1] in ("=", "+", "-", "@") else shown
