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
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.crypto.vault import Vault
from portal.db import models as m
from portal.db.audit_chain import AuditLog
from portal.db.types import utcnow
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
MAX_FAILURES = 5
LOCK_MINUTES = 15


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
    authenticator stop working and any lock is lifted."""
    code = new_enrolment_code()
    credential = session.get(m.ParticipantCredential, participant.id)
    if credential is None:
        credential = m.ParticipantCredential(participant_id=participant.id)
        session.add(credential)
    credential.enrolment_code_hash = HASHER.hash(_normalise_code(code))
    credential.enrolment_code_expires_at = utcnow() + timedelta(hours=hours)
    credential.passphrase_hash = None
    credential.totp_secret_enc = None
    credential.failed_attempts = 0
    credential.locked_until = None
    credential.updated_at = utcnow()
    session.execute(delete(m.WebSession).where(m.WebSession.participant_id == participant.id))
    audit.append(session, staff_event(
        AuditAction.AUTH_ENROLMENT_CODE_ISSUE, by, meta, participant_id=participant.id,
        detail={"expires_at": credential.enrolment_code_expires_at.isoformat()}))
    return code


def _check_lock(credential: m.ParticipantCredential, now: datetime) -> None:
    if credential.locked_until is not None and credential.locked_until > now:
        minutes = max(1, int((credential.locked_until - now).total_seconds() // 60) + 1)
        raise SignInRefused("locked", f"Too many tries. Please wait {minutes} minutes, or ask "
                                      "your case manager to reset your sign-in.",
                            params={"minutes": minutes})


def _fail(session: Session, audit: AuditLog, credential: m.ParticipantCredential | None,
          meta: RequestMeta, code: str, message: str) -> SignInRefused:
    """Count a failure (locking after MAX_FAILURES, with growing lock times)."""
    participant_id = credential.participant_id if credential else None
    audit.append(session, request_event(
        AuditAction.AUTH_LOGIN_FAILURE, meta, decision="deny", reasons=(code,),
        participant_id=participant_id, detail={"kind": "participant"}))
    if credential is not None:
        credential.failed_attempts += 1
        if credential.failed_attempts >= MAX_FAILURES:
            lock = LOCK_MINUTES * 2 ** min(credential.failed_attempts - MAX_FAILURES, 6)
            credential.locked_until = utcnow() + timedelta(minutes=lock)
            audit.append(session, request_event(
                AuditAction.AUTH_LOCKOUT, meta, decision="deny", participant_id=participant_id,
                detail={"minutes": lock, "failures": credential.failed_attempts}))
    return SignInRefused(code, message)


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


def enrol(session: Session, audit: AuditLog, vault: Vault, public_id: str, code: str,
          username: str, passphrase: str, meta: RequestMeta) -> m.Participant:
    """Use a one-time code to choose a username and passphrase. Raises SignInRefused; the
    caller must commit even then, so that the failure and its count are kept."""
    username = username.strip().lower()
    participant = session.scalar(select(m.Participant).where(
        m.Participant.public_id == public_id.strip().upper()))
    credential = session.get(m.ParticipantCredential, participant.id) if participant else None
    if credential is None or credential.enrolment_code_hash is None:
        raise _fail(session, audit, credential, meta, "bad_enrolment_code",
                    "That ID and code do not match. Check the slip from your case manager.")
    now = utcnow()
    _check_lock(credential, now)
    try:
        HASHER.verify(credential.enrolment_code_hash, _normalise_code(code))
    except (VerificationError, InvalidHashError):
        raise _fail(session, audit, credential, meta, "bad_enrolment_code",
                    "That ID and code do not match. Check the slip from your case "
                    "manager.") from None
    if participant is not None and participant.status == ParticipantStatus.EXITED.value:
        # An exit from LEAD ends the codes issued before it (and the consents that end on it).
        raise _fail(session, audit, credential, meta, "participant_exited",
                    "You have left LEAD, so this code no longer works.")
    if credential.enrolment_code_expires_at is None or credential.enrolment_code_expires_at < now:
        raise _fail(session, audit, credential, meta, "expired_enrolment_code",
                    "That code has expired. Ask your case manager for a new one.")
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
    credential.failed_attempts = 0
    credential.locked_until = None
    credential.updated_at = now
    assert participant is not None
    audit.append(session, participant_event(
        AuditAction.AUTH_ENROLMENT_CODE_USE, participant, meta, decision="permit"))
    return participant


def authenticate_participant(session: Session, audit: AuditLog, vault: Vault, username: str,
                             passphrase: str, totp_code: str | None,
                             meta: RequestMeta) -> m.Participant:
    credential = session.scalar(select(m.ParticipantCredential).where(
        m.ParticipantCredential.username_bidx == username_index(vault, session, username)))
    wrong = "That username and passphrase do not match."
    if credential is None or credential.passphrase_hash is None:
        # Same work as a real check, so timing does not reveal which usernames exist.
        _burn(passphrase)
        raise _fail(session, audit, None, meta, "bad_credentials", wrong)
    _check_lock(credential, utcnow())
    try:
        HASHER.verify(credential.passphrase_hash, passphrase)
    except (VerificationError, InvalidHashError):
        raise _fail(session, audit, credential, meta, "bad_credentials", wrong) from None
    totp_secret = vault.ready(session).open(credential, "totp_secret")
    if totp_secret:
        if not totp_code:
            raise SignInRefused("totp_required", "Enter the 6-digit code from your "
                                                 "authenticator app.")
        if not pyotp.TOTP(totp_secret).verify(totp_code.strip(), valid_window=1):
            raise _fail(session, audit, credential, meta, "bad_totp",
                        "That 6-digit code is not right. Codes change every 30 seconds.")
    credential.failed_attempts = 0
    credential.locked_until = None
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


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name="LEAD Partner Portal")


def add_totp(session: Session, audit: AuditLog, vault: Vault, participant: m.Participant,
             secret: str, code: str, meta: RequestMeta) -> None:
    """Turn on the authenticator app once the participant proves it shows the right code."""
    if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
        raise SignInRefused("bad_totp", "That 6-digit code is not right. Check the app and "
                                        "try again.")
    credential = session.get(m.ParticipantCredential, participant.id)
    if credential is None:
        raise SignInRefused("no_credential", "Set up your sign-in first.")
    vault.ready(session).seal(credential, {"totp_secret": secret})
    audit.append(session, participant_event(AuditAction.AUTH_TOTP_ADD, participant, meta))


def username_index(vault: Vault, session: Session, username: str) -> str:
    return vault.ready(session).blind_index("username", username.strip().lower())


def set_demo_credentials(session: Session, vault: Vault, participant_id: uuid.UUID,
                         username: str, passphrase: str) -> None:
    """Demo data only: a participant who has already enrolled."""
    session.add(m.ParticipantCredential(participant_id=participant_id,
                                        username_bidx=username_index(vault, session, username),
                                        passphrase_hash=HASHER.hash(passphrase)))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
