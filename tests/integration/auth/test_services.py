"""Sign-in use cases as services: staff identities from a provider (roles from its groups),
participants' enrolment codes, passphrases, lockouts and authenticator codes. Every success
and every failure is an audit event."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import service
from portal.auth.service import SignInRefused, StaffIdentity
from portal.auth.sessions import SessionManager
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain.vocabulary import Role
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

ISSUER = "http://127.0.0.1:8000/dev-idp"  # the demo staff's issuer
META = RequestMeta(actor="anonymous", session_id=None, client_address="10.7.7.7",
                   request_id="req-auth")
MAPPING = {"lead-case-managers": Role.CASE_MANAGER, "lead-compliance": Role.COMPLIANCE_OFFICER,
           "lead-org-admins": Role.ORG_ADMIN}
MARIA = "maria.lopez@harbor-lead.example"


def _events(factory: sessionmaker[Session], action: str | None = None) -> list[m.AuditEvent]:
    with factory() as session:
        stmt = select(m.AuditEvent).order_by(m.AuditEvent.seq)
        if action:
            stmt = stmt.where(m.AuditEvent.action == action)
        return list(session.scalars(stmt))


def _identity(**changes: object) -> StaffIdentity:
    values: dict[str, object] = {
        "issuer": "https://idp.harbor.example", "subject": "sub-1",
        "email": " New.Person@Harbor-Lead.example ", "name": "New Person",
        "groups": ("lead-case-managers", "unmapped-group"), "organization": "harbor-lead"}
    values.update(changes)
    return StaffIdentity(**values)  # type: ignore[arg-type]


def _sign_in(factory: sessionmaker[Session], services: Services,
             identity: StaffIdentity) -> m.StaffUser:
    """As the route does: a refusal is recorded in a transaction of its own."""
    try:
        with factory.begin() as session:
            return service.sign_in_staff(session, services.audit, identity, MAPPING, META,
                                         "harbor")
    except SignInRefused as refused:
        with factory.begin() as session:
            service.record_failure(session, services.audit, META, refused.code,
                                   provider="harbor")
        raise


# --- staff ------------------------------------------------------------------------------------


def test_a_first_sign_in_creates_the_account_with_mapped_roles(demo: sessionmaker[Session],
                                                               services: Services) -> None:
    user = _sign_in(demo, services, _identity())
    assert (user.email, user.display_name, user.issuer, user.subject) == (
        "new.person@harbor-lead.example", "New Person", "https://idp.harbor.example", "sub-1")
    assert user.role_names == ["case_manager"] and user.last_login_at is not None
    change, success = _events(demo)
    assert (change.action, change.actor_user_id, change.actor_roles, change.detail) == (
        "staff:role:change", user.id, ["case_manager"],
        {"before": [], "after": ["case_manager"], "source": "identity provider harbor"})
    assert (success.action, success.actor, success.decision, success.actor_organization,
            success.client_address, success.detail) == (
        "auth:login:success", "new.person@harbor-lead.example", "permit", "harbor-lead",
        "10.7.7.7", {"provider": "harbor"})

    # The next sign-in finds the same account; roles follow the groups every time.
    again = _sign_in(demo, services, _identity(groups=("lead-compliance", "lead-org-admins")))
    assert again.id == user.id
    assert sorted(again.role_names) == ["compliance_officer", "org_admin"]
    assert _events(demo, "staff:role:change")[-1].detail["before"] == ["case_manager"]
    _sign_in(demo, services, _identity(groups=("lead-org-admins", "lead-compliance")))
    assert len(_events(demo, "staff:role:change")) == 2  # unchanged roles: no event
    assert len(_events(demo, "auth:login:success")) == 3


def test_a_provider_without_an_email_gets_a_placeholder(demo: sessionmaker[Session],
                                                        services: Services) -> None:
    user = _sign_in(demo, services, _identity(email="  ", name=""))
    assert user.email == "sub-1@harbor.invalid" and user.display_name == user.email


@pytest.mark.parametrize(("identity", "code"), [
    (_identity(groups=("unmapped-group",)), "no_mapped_role"),
    (_identity(groups=()), "no_mapped_role"),
    (_identity(organization=None), "no_organization"),
    (_identity(organization="nowhere"), "unknown_organization"),
    # A new identity with the email of an existing account.
    (_identity(email=MARIA.upper()), "email_in_use"),
    # A demo account, known by its issuer and subject, at another agency now.
    (_identity(issuer=ISSUER, subject=MARIA, organization="hope-housing"),
     "organization_changed"),
])
def test_refused_staff_sign_ins_are_audited(demo: sessionmaker[Session], services: Services,
                                            identity: StaffIdentity, code: str) -> None:
    with pytest.raises(SignInRefused) as refused:
        _sign_in(demo, services, identity)
    assert refused.value.code == code and refused.value.message == str(refused.value)
    (failure,) = _events(demo, "auth:login:failure")
    assert (failure.actor, failure.decision, failure.reasons, failure.detail) == (
        "anonymous", "deny", [code], {"provider": "harbor"})
    assert _events(demo, "auth:login:success") == []
    with demo() as session:
        assert session.scalar(select(m.StaffUser).where(
            m.StaffUser.issuer == "https://idp.harbor.example")) is None


def test_a_suspended_account_cannot_sign_in(demo: sessionmaker[Session],
                                            services: Services) -> None:
    with demo.begin() as session:
        maria = repo.staff_by_email(session, MARIA)
        assert maria is not None
        maria.status = "suspended"
    with pytest.raises(SignInRefused, match="suspended") as refused:
        _sign_in(demo, services, _identity(issuer=ISSUER, subject=MARIA))
    assert refused.value.code == "suspended"
    assert _events(demo, "auth:login:failure")[0].reasons == ["suspended"]


# --- participants -----------------------------------------------------------------------------


def _issue(factory: sessionmaker[Session], services: Services, public_id: str = "LP-1003",
           hours: int = 72) -> str:
    with factory.begin() as session:
        p = repo.participant_by_public_id(session, public_id)
        maria = repo.staff_by_email(session, MARIA)
        assert p is not None and maria is not None
        return service.issue_enrolment_code(session, services.audit, p, maria,
                                            RequestMeta(actor=MARIA), hours=hours)


def _enrol(factory: sessionmaker[Session], services: Services, code: str,
           username: str = "darnell", passphrase: str = "a long enough phrase",
           public_id: str = " lp-1003 ") -> m.Participant:
    """Commits even when refused, as the route does: the failure and its count are kept."""
    return _committed(factory, lambda session: service.enrol(
        session, services.audit, services.vault, public_id, code, username, passphrase, META))


def _committed(factory: sessionmaker[Session],
               call: Callable[[Session], m.Participant]) -> m.Participant:
    refused: SignInRefused | None = None
    with factory.begin() as session:
        try:
            return call(session)
        except SignInRefused as exc:
            refused = exc
    raise refused


def _refused(call: object, *args: object, **kwargs: object) -> SignInRefused:
    with pytest.raises(SignInRefused) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return refused.value


def _credential(factory: sessionmaker[Session], public_id: str) -> m.ParticipantCredential:
    with factory() as session:
        p = repo.participant_by_public_id(session, public_id)
        assert p is not None
        credential = session.get(m.ParticipantCredential, p.id)
        assert credential is not None
        return credential


def test_enrolment_with_a_one_time_code(demo: sessionmaker[Session],
                                        services: Services) -> None:
    code = _issue(demo, services)
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}", code)
    (issued,) = _events(demo, "auth:enrolment_code:issue")
    assert issued.actor == MARIA and issued.participant_id is not None
    assert issued.detail["expires_at"] > utcnow().isoformat()
    stored = _credential(demo, "LP-1003")
    assert stored.enrolment_code_hash and code not in stored.enrolment_code_hash

    # Typed loosely: lower case, no dashes.
    p = _enrol(demo, services, code.lower().replace("-", " "), username=" Darnell.H ")
    assert p.public_id == "LP-1003"
    (used,) = _events(demo, "auth:enrolment_code:use")
    assert (used.actor, used.decision, used.participant_id) == ("LP-1003", "permit", p.id)
    after = _credential(demo, "LP-1003")
    assert after.enrolment_code_hash is None and after.passphrase_hash
    # Single use.
    refused = _refused(_enrol, demo, services, code)
    assert refused.code == "bad_enrolment_code"
    # The username is stored as a blind index; it signs in, in any case.
    with demo.begin() as session:
        who = service.authenticate_participant(session, services.audit, services.vault,
                                               "DARNELL.H", "a long enough phrase", None, META)
        assert who.public_id == "LP-1003"
    success = _events(demo, "auth:login:success")[-1]
    assert success.detail == {"kind": "participant", "totp": False}


def test_enrolment_refusals(demo: sessionmaker[Session], services: Services) -> None:
    # No code was ever issued, or no such participant: the same answer.
    for public_id in ("LP-1003", "LP-9999"):
        refused = _refused(_enrol, demo, services, "AAAA-BBBB-CCCC", public_id=public_id)
        assert refused.code == "bad_enrolment_code"
    assert [e.participant_id for e in _events(demo, "auth:login:failure")] == [None, None]

    code = _issue(demo, services)
    assert _refused(_enrol, demo, services, "WRONG-CODE-0000").code == "bad_enrolment_code"
    assert _credential(demo, "LP-1003").failed_attempts == 1

    choice = _refused(_enrol, demo, services, code, username="x", passphrase="short")
    assert choice.code == "invalid_choice"
    assert choice.problems == ("passphrase_short", "username_invalid")
    assert "at least 10 characters" in choice.message
    choice = _refused(_enrol, demo, services, code, username="bad name!",
                      passphrase="p" * 201)
    assert choice.problems == ("passphrase_long", "username_invalid")
    # Choice problems are not failed attempts; the code still works.
    assert _credential(demo, "LP-1003").failed_attempts == 1
    # The demo's Marcus already uses "marcus".
    taken = _refused(_enrol, demo, services, code, username="Marcus")
    assert taken.problems == ("username_taken",)
    _enrol(demo, services, code)


def test_an_expired_code_or_an_exited_participant(demo: sessionmaker[Session],
                                                  services: Services) -> None:
    code = _issue(demo, services, hours=0)
    assert _refused(_enrol, demo, services, code).code == "expired_enrolment_code"
    code = _issue(demo, services)
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1003")
        assert p is not None
        p.status = "exited"
    refused = _refused(_enrol, demo, services, code)
    assert refused.code == "participant_exited" and "left LEAD" in refused.message


def test_failures_lock_the_account_for_growing_times(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    code = _issue(demo, services)
    _enrol(demo, services, code)

    def sign_in(passphrase: str) -> m.Participant:
        return _committed(demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, "darnell", passphrase, None, META))

    for _ in range(service.MAX_FAILURES):
        assert _refused(sign_in, "wrong passphrase").code == "bad_credentials"
    (lockout,) = _events(demo, "auth:lockout")
    assert lockout.detail == {"minutes": 15, "failures": 5} and lockout.decision == "deny"
    locked = _refused(sign_in, "a long enough phrase")  # even the right one
    assert locked.code == "locked" and locked.params["minutes"] in (15, 16)
    assert "Please wait" in locked.message

    with demo.begin() as session:  # the lock runs out; the next failure doubles it
        p = repo.participant_by_public_id(session, "LP-1003")
        credential = session.get(m.ParticipantCredential, p.id)  # type: ignore[union-attr]
        assert credential is not None
        credential.locked_until = utcnow() - timedelta(seconds=1)
    _refused(sign_in, "still wrong")
    assert _events(demo, "auth:lockout")[-1].detail == {"minutes": 30, "failures": 6}

    # A new code from the case manager resets everything, and ends the participant's sessions.
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1003")
        assert p is not None
        token = SessionManager(services.settings, services.audit).start(
            session, participant_id=p.id)
    _issue(demo, services)
    reset = _credential(demo, "LP-1003")
    assert (reset.failed_attempts, reset.locked_until, reset.passphrase_hash) == (0, None, None)
    with demo.begin() as session:
        assert SessionManager(services.settings, services.audit).resolve(session, token) is None


def test_unknown_usernames_fail_like_wrong_passphrases(demo: sessionmaker[Session],
                                                       services: Services) -> None:
    with demo.begin() as session:
        refused = _refused(service.authenticate_participant, session, services.audit,
                           services.vault, "nobody", "whatever it is", None, META)
    assert refused.code == "bad_credentials"
    assert refused.message == "That username and passphrase do not match."
    (failure,) = _events(demo, "auth:login:failure")
    assert (failure.participant_id, failure.reasons, failure.detail) == (
        None, ["bad_credentials"], {"kind": "participant"})


def test_an_authenticator_app_is_required_once_added(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    secret = service.new_totp_secret()
    assert "issuer=LEAD%20Partner%20Portal" in service.totp_uri(secret, "marcus")
    totp = pyotp.TOTP(secret)
    with demo.begin() as session:
        marcus = repo.participant_by_public_id(session, "LP-1001")
        assert marcus is not None
        wrong = str((int(totp.now()) + 500_000) % 1_000_000).zfill(6)
        assert _refused(service.add_totp, session, services.audit, services.vault, marcus,
                        secret, wrong, META).code == "bad_totp"
        service.add_totp(session, services.audit, services.vault, marcus, secret,
                         f" {totp.now()} ", META)
    (added,) = _events(demo, "auth:totp:add")
    assert added.actor == "LP-1001"
    assert _credential(demo, "LP-1001").totp_secret_enc != b""

    def sign_in(code: str | None) -> m.Participant:
        return _committed(demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, "marcus", "river stone morning", code,
            META))

    assert _refused(sign_in, None).code == "totp_required"
    assert _refused(sign_in, "000000" if totp.now() != "000000" else "111111").code == "bad_totp"
    assert sign_in(totp.now()).public_id == "LP-1001"
    assert _events(demo, "auth:login:success")[-1].detail == {"kind": "participant",
                                                             "totp": True}
    assert _credential(demo, "LP-1001").failed_attempts == 0  # reset by the success


def test_an_authenticator_needs_a_credential_first(demo: sessionmaker[Session],
                                                   services: Services) -> None:
    secret = service.new_totp_secret()
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1005")
        assert p is not None
        refused = _refused(service.add_totp, session, services.audit, services.vault, p,
                           secret, pyotp.TOTP(secret).now(), META)
    assert refused.code == "no_credential"
    assert _events(demo, "auth:totp:add") == []


def test_passphrase_rules_and_codes() -> None:
    assert service.check_passphrase("x" * 9) == ["passphrase_short"]
    assert service.check_passphrase("x" * 10) == []
    assert service.check_passphrase("x" * 201) == ["passphrase_long"]
    codes = {service.new_enrolment_code() for _ in range(20)}
    assert len(codes) == 20
    assert not set("".join(codes)) & set("01OIL")
    assert service.token_hash("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
