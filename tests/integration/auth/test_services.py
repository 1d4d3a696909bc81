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

    code = _issue(demo, services)  # lifts any wait on the ID
    assert _refused(_enrol, demo, services, "WRONG-CODE-0000").code == "bad_enrolment_code"
    assert _throttle(demo, "enrol", "LP-1003").failures == 1

    choice = _refused(_enrol, demo, services, code, username="x", passphrase="short")
    assert choice.code == "invalid_choice"
    assert choice.problems == ("passphrase_short", "username_invalid")
    assert "at least 10 characters" in choice.message
    choice = _refused(_enrol, demo, services, code, username="bad name!",
                      passphrase="p" * 201)
    assert choice.problems == ("passphrase_long", "username_invalid")
    # Choice problems are not failed attempts; the code still works.
    assert _throttle(demo, "enrol", "LP-1003").failures == 1
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


def _throttle(factory: sessionmaker[Session], scope: str, key: str) -> m.SignInThrottle:
    with factory() as session:
        row = session.get(m.SignInThrottle, (scope, key))
        assert row is not None, (scope, key)
        return row


def _account_key(services: Services, factory: sessionmaker[Session], username: str) -> str:
    with factory() as session:
        return service.username_index(services.vault, session, username)


def _end_wait(factory: sessionmaker[Session], scope: str, key: str) -> None:
    """The wait runs out (the clock is not the test's to move)."""
    with factory.begin() as session:
        row = session.get(m.SignInThrottle, (scope, key))
        assert row is not None and row.blocked_until is not None
        row.blocked_until = utcnow() - timedelta(seconds=1)


def _wait_of(row: m.SignInThrottle) -> timedelta:
    assert row.blocked_until is not None
    return row.blocked_until - row.last_failure_at


def test_failures_make_the_account_wait_longer_each_time_up_to_a_cap(
        demo: sessionmaker[Session], services: Services) -> None:
    code = _issue(demo, services)
    _enrol(demo, services, code)
    account = _account_key(services, demo, "darnell")

    def sign_in(passphrase: str, meta: RequestMeta = META) -> m.Participant:
        return _committed(demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, "darnell", passphrase, None, meta))

    for _ in range(service.MAX_FAILURES - 1):
        assert _refused(sign_in, "wrong passphrase").code == "bad_credentials"
    assert _throttle(demo, "account", account).blocked_until is None  # free tries
    assert _refused(sign_in, "wrong passphrase").code == "bad_credentials"
    (lockout,) = _events(demo, "auth:lockout")
    assert lockout.detail == {"scope": "account", "failures": 5, "seconds": 60}
    assert lockout.decision == "deny" and lockout.participant_id is not None
    assert _wait_of(_throttle(demo, "account", account)) == timedelta(minutes=1)
    # During the wait even the right passphrase gets the same answer as a wrong one, and
    # tries are not counted: a stranger cannot make the wait longer by trying more.
    paused = _refused(sign_in, "a long enough phrase")
    assert (paused.code, paused.message) == ("bad_credentials", service.WRONG)
    _refused(sign_in, "wrong again")
    assert _throttle(demo, "account", account).failures == 5
    assert _events(demo, "auth:login:failure")[-1].reasons == ["waiting"]
    # Every failure names the account by a keyed hash of the username, never the name.
    failures = _events(demo, "auth:login:failure")
    assert {e.actor for e in failures} == {service.username_actor(account)}
    assert all("darnell" not in e.actor and "darnell" not in str(e.detail) for e in failures)

    waits = []
    for _ in range(6):  # each wait runs out; the next failure doubles it, up to 15 minutes
        _end_wait(demo, "account", account)
        _refused(sign_in, "still wrong")
        waits.append(_wait_of(_throttle(demo, "account", account)))
    assert waits == [timedelta(minutes=m) for m in (2, 4, 8, 15, 15, 15)]
    assert [e.detail["seconds"] for e in _events(demo, "auth:lockout")] == [
        60, 120, 240, 480, 900, 900, 900]

    # After a wait the right passphrase works, and the account's count is forgotten.
    _end_wait(demo, "account", account)
    assert sign_in("a long enough phrase").public_id == "LP-1003"
    with demo() as session:
        assert session.get(m.SignInThrottle, ("account", account)) is None
    # The address's count is separate, and a success does not clear it.
    assert _throttle(demo, "address", _address(services, demo, META)).failures == 11


def _address(services: Services, factory: sessionmaker[Session], meta: RequestMeta) -> str:
    with factory() as session:
        return service._address_key(services.vault, session, meta)


def test_a_new_code_lifts_the_wait_and_ends_sessions(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    code = _issue(demo, services)
    _enrol(demo, services, code)
    account = _account_key(services, demo, "darnell")
    for _ in range(service.MAX_FAILURES):
        _refused(_committed, demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, "darnell", "wrong one", None, META))
    assert _throttle(demo, "account", account).blocked_until is not None
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1003")
        assert p is not None
        token = SessionManager(services.settings, services.audit).start(
            session, participant_id=p.id)
    _issue(demo, services)
    reset = _credential(demo, "LP-1003")
    assert reset.passphrase_hash is None and reset.totp_pending_enc is None
    with demo() as session:
        assert session.get(m.SignInThrottle, ("account", account)) is None
    with demo.begin() as session:
        assert SessionManager(services.settings, services.audit).resolve(session, token) is None


def test_an_address_with_many_failures_waits_whoever_it_tries(
        demo: sessionmaker[Session], services: Services) -> None:
    """Guessing across many usernames from one address: after the address's free tries,
    every try from it waits (with the same answer), while other addresses sign in."""
    attacker = RequestMeta(actor="anonymous", client_address="203.0.113.9")
    rule = service.THROTTLE["address"]

    def sign_in(username: str, passphrase: str, meta: RequestMeta) -> m.Participant:
        return _committed(demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, username, passphrase, None, meta))

    for n in range(rule.free):
        assert _refused(sign_in, f"guess{n}", "some passphrase", attacker).code == \
            "bad_credentials"
    row = _throttle(demo, "address", _address(services, demo, attacker))
    assert row.failures == rule.free and _wait_of(row) == rule.first
    # Marcus's right passphrase, from that address: the same answer as any wrong one.
    refused = _refused(sign_in, "marcus", "river stone morning", attacker)
    assert (refused.code, refused.message) == ("bad_credentials", service.WRONG)
    # From another address he signs in; the attacker's address wait was audited, with no
    # participant named.
    assert sign_in("marcus", "river stone morning", META).public_id == "LP-1001"
    (lockout,) = _events(demo, "auth:lockout")
    assert lockout.participant_id is None and lockout.detail["scope"] == "address"
    # No single made-up username was tried often enough to wait.
    assert all(e.detail["scope"] == "address" for e in _events(demo, "auth:lockout"))


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


def _marcus(session: Session) -> m.Participant:
    marcus = repo.participant_by_public_id(session, "LP-1001")
    assert marcus is not None
    return marcus


def _other_code(totp: pyotp.TOTP) -> str:
    """A well-formed code that is not valid now (nor 30 seconds either side)."""
    near = {totp.at(utcnow() + timedelta(seconds=s)) for s in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


def test_the_portal_makes_the_key_and_keeps_it_until_confirmed(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        first = service.second_step(session, services.vault, _marcus(session))
    assert not first.on and first.pending and len(first.pending) == 32
    with demo.begin() as session:  # the next visit shows the same key
        assert service.second_step(session, services.vault, _marcus(session)) == first
    stored = _credential(demo, "LP-1001").totp_pending_enc
    assert stored is not None and first.pending.encode() not in stored  # encrypted
    assert "issuer=LEAD%20Partner%20Portal" in service.totp_uri(first.pending, "LP-1001")
    totp = pyotp.TOTP(first.pending)

    def add(passphrase: str, code: str) -> m.Participant:
        def run(session: Session) -> m.Participant:
            marcus = _marcus(session)
            service.add_totp(session, services.audit, services.vault, marcus, passphrase,
                             code, META)
            return marcus
        return _committed(demo, run)

    # Bad input of every kind is a refusal (never an error), and changes nothing.
    for code in ("", "12345", "abcdef", "1234567", "١٢٣٤٥٦", _other_code(totp)):
        assert _refused(add, "river stone morning", code).code == "bad_totp", code
    assert _refused(add, "not my passphrase", totp.now()).code == "bad_passphrase"
    assert _events(demo, "auth:totp:add") == []
    assert _credential(demo, "LP-1001").totp_secret_enc is None

    add("river stone morning", f" {totp.now()} ")
    (added,) = _events(demo, "auth:totp:add")
    assert added.actor == "LP-1001"
    after = _credential(demo, "LP-1001")
    assert after.totp_secret_enc is not None and after.totp_pending_enc is None
    assert _refused(add, "river stone morning", totp.now()).code == "totp_already_on"

    def sign_in(code: str | None) -> m.Participant:
        return _committed(demo, lambda session: service.authenticate_participant(
            session, services.audit, services.vault, "marcus", "river stone morning", code,
            META))

    assert _refused(sign_in, None).code == "totp_required"
    assert _refused(sign_in, _other_code(totp)).code == "bad_totp"
    assert sign_in(totp.now()).public_id == "LP-1001"
    assert _events(demo, "auth:login:success")[-1].detail == {"kind": "participant",
                                                             "totp": True}


def test_turning_the_app_off_needs_the_passphrase_and_a_code(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        key = service.second_step(session, services.vault, _marcus(session)).pending
        assert key is not None
        service.add_totp(session, services.audit, services.vault, _marcus(session),
                         "river stone morning", pyotp.TOTP(key).now(), META)
    totp = pyotp.TOTP(key)

    def remove(passphrase: str, code: str) -> m.Participant:
        def run(session: Session) -> m.Participant:
            marcus = _marcus(session)
            service.remove_totp(session, services.audit, services.vault, marcus, passphrase,
                                code, META)
            return marcus
        return _committed(demo, run)

    assert _refused(remove, "not my passphrase", totp.now()).code == "bad_passphrase"
    assert _refused(remove, "river stone morning", "").code == "bad_totp"
    assert _refused(remove, "river stone morning", _other_code(totp)).code == "bad_totp"
    assert _events(demo, "auth:totp:remove") == []
    assert _credential(demo, "LP-1001").totp_secret_enc is not None
    remove("river stone morning", totp.now())
    (removed,) = _events(demo, "auth:totp:remove")
    assert removed.actor == "LP-1001"
    assert _refused(remove, "river stone morning", totp.now()).code == "totp_not_on"
    with demo.begin() as session:  # a new key, not the old one, when added again
        again = service.second_step(session, services.vault, _marcus(session))
    assert not again.on and again.pending != key
    # The case manager's notices, newest first.
    with demo() as session:
        notices = service.sign_in_notices(session, "lp-1001")
    assert [n.change for n in notices] == ["totp_removed", "totp_added"]
    assert notices[0].on == utcnow().date()


def test_wrong_passphrases_on_the_security_page_count_and_then_wait(
        demo: sessionmaker[Session], services: Services) -> None:
    """A stolen session cannot try passphrases without limit."""
    with demo.begin() as session:
        key = service.second_step(session, services.vault, _marcus(session)).pending
    assert key is not None

    def add(passphrase: str) -> m.Participant:
        def run(session: Session) -> m.Participant:
            marcus = _marcus(session)
            service.add_totp(session, services.audit, services.vault, marcus, passphrase,
                             pyotp.TOTP(key).now(), META)
            return marcus
        return _committed(demo, run)

    for _ in range(service.MAX_FAILURES):
        assert _refused(add, "a guess at it").code == "bad_passphrase"
    waiting = _refused(add, "river stone morning")
    assert waiting.code == "locked" and "wait a few minutes" in waiting.message
    with demo() as session:
        assert [n.change for n in service.sign_in_notices(session, "LP-1001")] == ["paused"]


def test_an_authenticator_needs_a_credential_first(demo: sessionmaker[Session],
                                                   services: Services) -> None:
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1005")
        assert p is not None
        assert _refused(service.second_step, session, services.vault, p).code == \
            "no_credential"
        refused = _refused(service.add_totp, session, services.audit, services.vault, p,
                           "a passphrase", "123456", META)
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


def test_a_failed_sign_in_under_an_unknown_username_logs_its_keyed_hash(
        demo: sessionmaker[Session], services: Services) -> None:
    for username in ("Not.A.Real.Name ", "not.a.real.name", "someone.else"):
        _refused(_committed, demo, lambda session, u=username: service.authenticate_participant(
            session, services.audit, services.vault, u, "whatever it was", None, META))
    actors = [e.actor for e in _events(demo, "auth:login:failure")]
    # The same username (however typed) gives the same hash, another gives another; the hash
    # is keyed (the vault's blind-index key), so it cannot be found by hashing guesses.
    assert actors[0] == actors[1] != actors[2]
    assert actors[0] == service.username_actor(_account_key(services, demo, "not.a.real.name"))
    assert re.fullmatch(r"participant:hmac:[0-9a-f]{64}", actors[0])
    assert not any("real" in a or "someone" in a for a in actors)
    # The attempts are still counted against that account (the throttle keys by the index).
    assert _throttle(demo, "account", _account_key(services, demo, "not.a.real.name")
                     ).failures == 2


def test_a_failed_enrolment_logs_a_participant_id_never_other_typed_text(
        demo: sessionmaker[Session], services: Services) -> None:
    for typed in ("LP-1003", "Darnell Brooks"):
        _refused(_committed, demo, lambda session, t=typed: service.enrol(
            session, services.audit, services.vault, t, "WRONG-CODE", "darnell",
            "a long enough phrase", META))
    known, unknown = (e.actor for e in _events(demo, "auth:login:failure"))
    assert known == "participant:LP-1003"
    assert re.fullmatch(r"participant:hmac:[0-9a-f]{64}", unknown)
