"""Sign-in use cases: staff identities from an OpenID provider, participants' own credentials.

Every success and failure is an audit event (CJIS 5.4.1.1: logon attempts, success and failure).
Failures are written in their own transaction by the caller so that they persist.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from portal.crypto.vault import Vault
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import AuditLog
from portal.db.types import utcnow
from portal.domain import public_ids
from portal.domain.audit import AuditAction
from portal.domain.vocabulary import ParticipantStatus, Role, StaffStatus
from portal.kernel.events import participant_event, request_event, staff_event
from portal.kernel.request import RequestMeta
from portal.policy.casbin_policy import map_groups

# argon2id with the library's defaults (RFC 9106 second recommended option).
HASHER = PasswordHasher()
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud over the phone
ENROLMENT_CODE_HOURS = 72
MIN_PASSPHRASE = 10


class SignInRefused(Exception):
    """A refused sign-in. ``code`` goes to the audit log; ``message`` (English) is safe to
    show. Participant pages show it in the participant's language instead, from ``code``,
    ``problems`` (codes of what to fix) and ``params`` (portal.web.i18n.refusal_text)."""

    def __init__(self, code: str, message: str, *, problems: tuple[str, ...] = (),
                 params: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems
        self.params = params or {}
        self.message = message


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    issuer: str
    subject: str
    email: str
    name: str
    groups: tuple[str, ...]
    organization: str | None


def record_failure(session: Session, audit: AuditLog, meta: RequestMeta, code: str,
                   **detail: object) -> None:
    audit.append(session, request_event(
        AuditAction.AUTH_LOGIN_FAILURE, meta, decision="deny", reasons=(code,), detail=detail))


def sign_in_staff(session: Session, audit: AuditLog, identity: StaffIdentity,
                  role_mapping: dict[str, Role], meta: RequestMeta,
                  provider_id: str) -> m.StaffUser:
    """Map the provider's claims to a staff user (created on first sign-in); roles follow the
    provider's groups through policies/role_mapping.csv on every sign-in."""
    roles = map_groups(role_mapping, identity.groups)
    if not roles:
        raise SignInRefused("no_mapped_role", "Your account has no role in this portal.")
    if not identity.organization:
        raise SignInRefused("no_organization", "Your account is not linked to an agency.")
    org = session.scalar(select(m.Organization).where(
        m.Organization.slug == identity.organization))
    if org is None:
        raise SignInRefused("unknown_organization",
                            "Your agency is not a partner in this portal.")
    user = session.scalar(select(m.StaffUser).where(
        m.StaffUser.issuer == identity.issuer, m.StaffUser.subject == identity.subject))
    if user is None:
        email = identity.email.strip().lower() or f"{identity.subject}@{provider_id}.invalid"
        if session.scalar(select(m.StaffUser.id).where(m.StaffUser.email == email)):
            raise SignInRefused("email_in_use", "Another account already uses your email "
                                                "address.")
        user = m.StaffUser(issuer=identity.issuer, subject=identity.subject, email=email,
                           display_name=identity.name or email, organization_id=org.id,
                           roles=[])
        session.add(user)
        session.flush()
    if user.status == StaffStatus.SUSPENDED.value:
        raise SignInRefused("suspended", "Your account is suspended in this portal.")
    if user.organization_id != org.id:
        raise SignInRefused("organization_changed",
                            "Your agency changed; an administrator must move your account.")
    before = sorted(user.role_names)
    after = sorted(r.value for r in roles)
    if before != after:
        user.roles = [m.StaffRole(role=r) for r in after]
        audit.append(session, request_event(
            AuditAction.STAFF_ROLE_CHANGE, meta, actor_user_id=user.id,
            actor_organization=org.slug, actor_roles=tuple(after),
            detail={"before": before, "after": after,
                    "source": f"identity provider {provider_id}"}))
    user.last_login_at = utcnow()
    audit.append(session, request_event(
        AuditAction.AUTH_LOGIN_SUCCESS, meta, actor=user.email, actor_user_id=user.id,
        actor_organization=org.slug, actor_roles=tuple(after), decision="permit",
        detail={"provider": provider_id}))
    return user


# --- participants ----------------------------------------------------------------------------


def new_enrolment_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def issue_enrolment_code(session: Session, audit: AuditLog, participant: m.Participant,
                         by: m.StaffUser, meta: RequestMeta, *,
                         hours: int = ENROLMENT_CODE_HOURS) -> str:
    """A one-time code, shown once, stored hashed. Also resets access: the old passphrase and
    authenticator stop working and any wait on the account or its code is lifted."""
    code = new_enrolment_code()
    credential = session.get(m.ParticipantCredential, participant.id)
    if credential is None:
        credential = m.ParticipantCredential(participant_id=participant.id)
        session.add(credential)
    credential.enrolment_code_hash = HASHER.hash(_normalise_code(code))
    credential.enrolment_code_expires_at = utcnow() + timedelta(hours=hours)
    credential.passphrase_hash = None
    credential.totp_secret_enc = None
    credential.totp_pending_enc = None
    credential.updated_at = utcnow()
    if credential.username_bidx is not None:
        _forget(session, "account", credential.username_bidx)
    _forget(session, "enrol", participant.public_id)
    session.execute(delete(m.WebSession).where(m.WebSession.participant_id == participant.id))
    audit.append(session, staff_event(
        AuditAction.AUTH_ENROLMENT_CODE_ISSUE, by, meta, participant_id=participant.id,
        detail={"expires_at": credential.enrolment_code_expires_at.isoformat()}))
    return code


# --- throttling: growing waits per client address and per account ---------------------------
#
# A wrong passphrase, an unknown username and a paused account all get the same answer, so
# trying names tells nothing. Each failure past the free ones makes the next try wait longer,
# up to a cap: a stranger who knows a username can pause that account for minutes, not hours,
# and attempts made during a wait are refused unchecked and do not lengthen it.


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    free: int  # failures before waits begin
    first: timedelta  # the first wait; each further failure doubles it
    cap: timedelta  # the longest wait
    forget: timedelta  # failures are forgotten after this long without one

    def wait(self, failures: int) -> timedelta | None:
        if failures < self.free:
            return None
        wait: timedelta = self.first * 2 ** min(failures - self.free, 16)
        return min(self.cap, wait)


MAX_FAILURES = 5
THROTTLE = {
    "account": ThrottleRule(MAX_FAILURES, timedelta(minutes=1), timedelta(minutes=15),
                            timedelta(hours=24)),
    "enrol": ThrottleRule(MAX_FAILURES, timedelta(minutes=1), timedelta(minutes=15),
                          timedelta(hours=24)),
    # One address may be a shelter's or a library's, shared by many participants.
    "address": ThrottleRule(20, timedelta(minutes=1), timedelta(hours=1), timedelta(hours=1)),
}
Keys = tuple[tuple[str, str], ...]


def _address_key(vault: Vault, session: Session, meta: RequestMeta) -> str:
    return vault.ready(session).blind_index("sign_in_address", meta.client_address or "unknown")


def _wait_left(session: Session, keys: Keys, now: datetime) -> timedelta | None:
    """How long until the longest current wait among ``keys`` ends (None: no wait)."""
    left = None
    for scope, key in keys:
        row = session.get(m.SignInThrottle, (scope, key), populate_existing=True)
        if row is not None and row.blocked_until is not None and row.blocked_until > now:
            remaining = row.blocked_until - now
            left = remaining if left is None else max(left, remaining)
    return left


def _count_failure(session: Session, scope: str, key: str,
                   now: datetime) -> tuple[int, timedelta | None]:
    """One more failure for (scope, key), under a row lock so that concurrent processes all
    count; returns the failure count and the wait it starts."""
    rule = THROTTLE[scope]
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" \
        else sqlite_insert
    session.execute(insert(m.SignInThrottle).values(
        scope=scope, key=key, failures=0, last_failure_at=now, blocked_until=None,
    ).on_conflict_do_nothing(index_elements=["scope", "key"]))
    row = session.get(m.SignInThrottle, (scope, key), with_for_update=True,
                      populate_existing=True)
    assert row is not None
    if row.last_failure_at < now - rule.forget:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    wait = rule.wait(row.failures)
    if wait is not None:
        row.blocked_until = now + wait
    return row.failures, wait


def _forget(session: Session, scope: str, key: str) -> None:
    session.execute(delete(m.SignInThrottle).where(m.SignInThrottle.scope == scope,
                                                   m.SignInThrottle.key == key))


def _prune(session: Session, now: datetime) -> None:
    """Rows of failures long forgotten (made up usernames, passing addresses) go."""
    oldest = now - max(rule.forget for rule in THROTTLE.values())
    session.execute(delete(m.SignInThrottle).where(m.SignInThrottle.last_failure_at < oldest))


def _fail(session: Session, audit: AuditLog, keys: Keys, participant_id: uuid.UUID | None,
          meta: RequestMeta, reason: str, refusal: SignInRefused) -> SignInRefused:
    """Audit a failure and count it against every key; a wait that starts is audited too, with
    the participant when the account is theirs (their case manager sees it)."""
    now = utcnow()
    audit.append(session, request_event(
        AuditAction.AUTH_LOGIN_FAILURE, meta, decision="deny", reasons=(reason,),
        participant_id=participant_id, detail={"kind": "participant"}))
    _prune(session, now)
    for scope, key in keys:
        failures, wait = _count_failure(session, scope, key, now)
        if wait is not None:
            audit.append(session, request_event(
                AuditAction.AUTH_LOCKOUT, meta, decision="deny",
                participant_id=None if scope == "address" else participant_id,
                detail={"scope": scope, "failures": failures,
                        "seconds": int(wait.total_seconds())}))
    return refusal


def _refused_while_waiting(session: Session, audit: AuditLog, participant_id: uuid.UUID | None,
                           meta: RequestMeta, refusal: SignInRefused) -> SignInRefused:
    """A try during a wait: audited, not checked and not counted (it cannot lengthen it)."""
    audit.append(session, request_event(
        AuditAction.AUTH_LOGIN_FAILURE, meta, decision="deny", reasons=("waiting",),
        participant_id=participant_id, detail={"kind": "participant"}))
    return refusal


# What can be wrong with a chosen username or passphrase, by code (English; participant pages
# show portal.web.i18n's "me.error.<code>" instead).
CHOICE_PROBLEMS = {
    "passphrase_short": f"Use at least {MIN_PASSPHRASE} characters. A few words you will "
                        "remember work well.",
    "passphrase_long": "Use at most 200 characters.",
    "username_invalid": "Choose a username of 3 to 64 letters or digits (dots and dashes are "
                        "fine).",
    "username_taken": "That username is taken. Please choose another.",
}


def check_passphrase(passphrase: str) -> list[str]:
    """Codes of CHOICE_PROBLEMS."""
    problems = []
    if len(passphrase) < MIN_PASSPHRASE:
        problems.append("passphrase_short")
    if len(passphrase) > 200:
        problems.append("passphrase_long")
    return problems


def _bad_code() -> SignInRefused:
    return SignInRefused("bad_enrolment_code", "That ID and code do not match. Check the slip "
                                               "from your case manager.")


def enrol(session: Session, audit: AuditLog, vault: Vault, public_id: str, code: str,
          username: str, passphrase: str, meta: RequestMeta) -> m.Participant:
    """Use a one-time code to choose a username and passphrase. Raises SignInRefused; the
    caller must commit even then, so that the failure and its count are kept. An unknown ID,
    a wrong code and a wait all get the same answer."""
    username = username.strip().lower()
    # The id as printed on the slip, typed however (case, spaces and dashes do not matter);
    # the per-id count is kept under one spelling, so that retyping it differently does not
    # start a fresh count.
    participant = repo.participant_by_public_id(session, public_id[:40])
    forms = public_ids.stored_forms(public_id[:40])
    id_key = participant.public_id if participant else (
        forms[-1] if forms else public_id.strip().upper()[:32])
    keys: Keys = (("address", _address_key(vault, session, meta)), ("enrol", id_key))
    credential = session.get(m.ParticipantCredential, participant.id) if participant else None
    # What was typed as the ID is logged only when it names a participant; anything else
    # (a name typed in the wrong box) by its keyed hash.
    meta = replace(meta, actor=f"participant:{participant.public_id}" if participant else
                   f"participant:hmac:{vault.ready(session).blind_index('enrol_id', public_id)}")
    participant_id = credential.participant_id if credential else None
    if _wait_left(session, keys, utcnow()) is not None:
        _burn(code)
        raise _refused_while_waiting(session, audit, participant_id, meta, _bad_code())
    if credential is None or credential.enrolment_code_hash is None:
        _burn(code)
        raise _fail(session, audit, keys, participant_id, meta, "bad_enrolment_code",
                    _bad_code())
    now = utcnow()
    try:
        HASHER.verify(credential.enrolment_code_hash, _normalise_code(code))
    except (VerificationError, InvalidHashError):
        raise _fail(session, audit, keys, participant_id, meta, "bad_enrolment_code",
                    _bad_code()) from None
    if participant is not None and participant.status == ParticipantStatus.EXITED.value:
        # An exit from LEAD ends the codes issued before it (and the consents that end on it).
        raise _fail(session, audit, keys, participant_id, meta, "participant_exited",
                    SignInRefused("participant_exited",
                                  "You have left LEAD, so this code no longer works."))
    if credential.enrolment_code_expires_at is None or credential.enrolment_code_expires_at < now:
        raise _fail(session, audit, keys, participant_id, meta, "expired_enrolment_code",
                    SignInRefused("expired_enrolment_code",
                                  "That code has expired. Ask your case manager for a new one."))
    problems = check_passphrase(passphrase)
    if not (3 <= len(username) <= 64) or not username.replace(".", "").replace("-", "").isalnum():
        problems.append("username_invalid")
    elif session.scalar(select(m.ParticipantCredential.participant_id).where(
            m.ParticipantCredential.username_bidx == username_index(vault, session, username),
            m.ParticipantCredential.participant_id != credential.participant_id)):
        problems.append("username_taken")
    if problems:
        raise SignInRefused("invalid_choice", " ".join(CHOICE_PROBLEMS[p] for p in problems),
                            problems=tuple(problems))
    credential.username_bidx = username_index(vault, session, username)
    credential.passphrase_hash = HASHER.hash(passphrase)
    credential.enrolment_code_hash = None  # single use
    credential.enrolment_code_expires_at = None
    credential.updated_at = now
    _forget(session, "enrol", id_key)
    _forget(session, "account", credential.username_bidx)
    assert participant is not None
    audit.append(session, participant_event(
        AuditAction.AUTH_ENROLMENT_CODE_USE, participant, meta, decision="permit"))
    return participant


WRONG = "That username and passphrase do not match."


def _wrong() -> SignInRefused:
    return SignInRefused("bad_credentials", WRONG)


def authenticate_participant(session: Session, audit: AuditLog, vault: Vault, username: str,
                             passphrase: str, totp_code: str | None,
                             meta: RequestMeta) -> m.Participant:
    """An unknown username, a wrong passphrase and an account or address that must wait all
    get the same refusal, after the same work (an argon2 check), so nothing tells them apart."""
    account = username_index(vault, session, username)
    # The log names the attempt by a keyed hash of the username (the blind index an account
    # is found by), never by what was typed: a mistyped passphrase in the username field, or
    # a name, must not end up in the audit log.
    meta = replace(meta, actor=username_actor(account))
    keys: Keys = (("address", _address_key(vault, session, meta)), ("account", account))
    credential = session.scalar(select(m.ParticipantCredential).where(
        m.ParticipantCredential.username_bidx == account))
    participant_id = credential.participant_id if credential else None
    if _wait_left(session, keys, utcnow()) is not None:
        _burn(passphrase)
        raise _refused_while_waiting(session, audit, participant_id, meta, _wrong())
    if credential is None or credential.passphrase_hash is None:
        # Same work as a real check, so timing does not reveal which usernames exist.
        _burn(passphrase)
        raise _fail(session, audit, keys, participant_id, meta, "bad_credentials", _wrong())
    try:
        HASHER.verify(credential.passphrase_hash, passphrase)
    except (VerificationError, InvalidHashError):
        raise _fail(session, audit, keys, participant_id, meta, "bad_credentials",
                    _wrong()) from None
    totp_secret = vault.ready(session).open(credential, "totp_secret")
    if totp_secret:
        if not totp_code:
            raise SignInRefused("totp_required", "Enter the 6-digit code from your "
                                                 "authenticator app.")
        if not code_matches(totp_secret, totp_code):
            raise _fail(session, audit, keys, participant_id, meta, "bad_totp", SignInRefused(
                "bad_totp", "That 6-digit code is not right. Codes change every 30 seconds."))
    _forget(session, "account", account)
    participant = session.get(m.Participant, credential.participant_id)
    assert participant is not None
    audit.append(session, participant_event(
        AuditAction.AUTH_LOGIN_SUCCESS, participant, meta, decision="permit",
        detail={"kind": "participant", "totp": bool(totp_secret)}))
    return participant


@functools.cache
def dummy_hash(hasher: PasswordHasher) -> str:
    """What an unknown username's passphrase is checked against, at the hasher's cost. Made
    once per process, when the web app is created (not at import: CLI commands need none)."""
    return hasher.hash("timing equaliser")


def _burn(passphrase: str) -> None:
    with contextlib.suppress(VerificationError, InvalidHashError):
        HASHER.verify(dummy_hash(HASHER), passphrase)


# --- the second step: an authenticator app (TOTP, RFC 6238) ---------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name="LEAD Partner Portal")


def code_matches(secret: str, code: str) -> bool:
    """A 6-digit code the app shows now (or 30 seconds either side); anything else is no."""
    digits = "".join(code.split())
    return len(digits) == 6 and digits.isascii() and digits.isdigit() and \
        pyotp.TOTP(secret).verify(digits, valid_window=1)


@dataclass(frozen=True, slots=True)
class SecondStep:
    """What the security page shows: whether the app is on, else the key to add."""

    on: bool
    pending: str | None = None


def _credential_of(session: Session, participant: m.Participant) -> m.ParticipantCredential:
    credential = session.get(m.ParticipantCredential, participant.id)
    if credential is None or credential.passphrase_hash is None:
        raise SignInRefused("no_credential", "Set up your sign-in first.")
    return credential


def _seal_totp(vault: Vault, credential: m.ParticipantCredential, active: str | None,
               pending: str | None) -> None:
    # Both under the row's one key version (portal.admin.keys re-encrypts them together).
    vault.seal(credential, {"totp_secret": active, "totp_pending": pending})
    credential.updated_at = utcnow()


def second_step(session: Session, vault: Vault, participant: m.Participant) -> SecondStep:
    """The security page's state. The key to add is made here by the portal, once, and kept
    encrypted until confirmed, so every visit (and a language switch) shows the same one."""
    credential = _credential_of(session, participant)
    opened = vault.ready(session)
    if opened.open(credential, "totp_secret"):
        return SecondStep(on=True)
    pending = opened.open(credential, "totp_pending")
    if pending is None:
        pending = new_totp_secret()
        _seal_totp(opened, credential, None, pending)
    return SecondStep(on=False, pending=pending)


def _reauthenticate(session: Session, audit: AuditLog, vault: Vault,
                    credential: m.ParticipantCredential, participant: m.Participant,
                    passphrase: str, meta: RequestMeta) -> None:
    """A change to how one signs in needs the passphrase again (a session left open, or
    stolen, is not enough). Wrong ones count like wrong sign-ins."""
    keys: Keys = (("address", _address_key(vault, session, meta)),
                  ("account", credential.username_bidx or str(participant.id)))
    if _wait_left(session, keys, utcnow()) is not None:
        waiting = SignInRefused("locked", "Too many wrong tries. Please wait a few minutes "
                                          "and try again.")
        raise _refused_while_waiting(session, audit, participant.id, meta, waiting)
    assert credential.passphrase_hash is not None
    try:
        HASHER.verify(credential.passphrase_hash, passphrase)
    except (VerificationError, InvalidHashError):
        raise _fail(session, audit, keys, participant.id, meta, "bad_passphrase",
                    SignInRefused("bad_passphrase", "That passphrase is not right.")) from None


def add_totp(session: Session, audit: AuditLog, vault: Vault, participant: m.Participant,
             passphrase: str, code: str, meta: RequestMeta) -> None:
    """Turn on the authenticator app with the key the portal made, once the participant gives
    their passphrase and proves the app shows the right code. The browser never sends a key."""
    credential = _credential_of(session, participant)
    opened = vault.ready(session)
    if opened.open(credential, "totp_secret"):
        raise SignInRefused("totp_already_on", "Your authenticator app is already on.")
    pending = opened.open(credential, "totp_pending")
    if pending is None:
        raise SignInRefused("totp_no_key", "Open this page again to get a key.")
    _reauthenticate(session, audit, vault, credential, participant, passphrase, meta)
    if not code_matches(pending, code):
        raise SignInRefused("bad_totp", "That 6-digit code is not right. Check the app and "
                                        "try again.")
    _seal_totp(opened, credential, pending, None)
    audit.append(session, participant_event(AuditAction.AUTH_TOTP_ADD, participant, meta))


def remove_totp(session: Session, audit: AuditLog, vault: Vault, participant: m.Participant,
                passphrase: str, code: str, meta: RequestMeta) -> None:
    """Turn the authenticator app off: needs the passphrase and a code from the app."""
    credential = _credential_of(session, participant)
    opened = vault.ready(session)
    active = opened.open(credential, "totp_secret")
    if not active:
        raise SignInRefused("totp_not_on", "You do not have an authenticator app turned on.")
    _reauthenticate(session, audit, vault, credential, participant, passphrase, meta)
    if not code_matches(active, code):
        keys: Keys = (("account", credential.username_bidx or str(participant.id)),)
        raise _fail(session, audit, keys, participant.id, meta, "bad_totp", SignInRefused(
            "bad_totp", "That 6-digit code is not right. Codes change every 30 seconds."))
    _seal_totp(opened, credential, None, None)
    audit.append(session, participant_event(AuditAction.AUTH_TOTP_REMOVE, participant, meta))


# --- what the case manager is told ------------------------------------------------------------

NOTICE_ACTIONS = {AuditAction.AUTH_TOTP_ADD.value: "totp_added",
                  AuditAction.AUTH_TOTP_REMOVE.value: "totp_removed",
                  AuditAction.AUTH_LOCKOUT.value: "paused"}


@dataclass(frozen=True, slots=True)
class SignInNotice:
    """A change to a participant's sign-in, or a pause after wrong tries, for their case
    manager: ``change`` is one of NOTICE_ACTIONS' values."""

    on: date
    change: str


def sign_in_notices(session: Session, public_id: str, tz: tzinfo = UTC, *,
                    limit: int = 5) -> list[SignInNotice]:
    """The latest, newest first, from the audit log (the record of what happened). The
    caller has already checked that the reader manages the participant."""
    participant = repo.participant_by_public_id(session, public_id)
    if participant is None:
        return []
    participant_id = participant.id
    rows = session.execute(select(m.AuditEvent.action, m.AuditEvent.occurred_at).where(
        m.AuditEvent.participant_id == participant_id,
        m.AuditEvent.action.in_(NOTICE_ACTIONS),
    ).order_by(m.AuditEvent.occurred_at.desc(), m.AuditEvent.seq.desc()).limit(10 * limit))
    notices: list[SignInNotice] = []
    for action, at in rows:
        notice = SignInNotice(on=at.astimezone(tz).date(), change=NOTICE_ACTIONS[action])
        if notice not in notices:  # one line a day for each kind (waits come in runs)
            notices.append(notice)
    return notices[:limit]


def username_index(vault: Vault, session: Session, username: str) -> str:
    return vault.ready(session).blind_index("username", username.strip().lower())


def username_actor(account: str) -> str:
    """The audit actor of a participant sign-in attempt: ``participant:`` and the keyed hash
    (HMAC-SHA256 under the blind-index key) of the username tried, so repeated tries on one
    account can be told apart from others without the log holding the name."""
    return f"participant:hmac:{account}"


def set_demo_credentials(session: Session, vault: Vault, participant_id: uuid.UUID,
                         username: str, passphrase: str) -> None:
    """Demo data only: a participant who has already enrolled."""
    session.add(m.ParticipantCredential(participant_id=participant_id,
                                        username_bidx=username_index(vault, session, username),
                                        passphrase_hash=HASHER.hash(passphrase)))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
