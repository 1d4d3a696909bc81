"""Participant sign-in and hardened sessions over HTTP: one-time codes, lockout, rotation,
timeouts, CSRF, cookie attributes and security headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher, Type
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.service import MAX_FAILURES, dummy_hash, issue_enrolment_code, token_hash
from portal.config import Settings
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.devtools.seed import seed_demo
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.web.app import create_app

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer=BASE + "/dev-idp", vault=services.vault)
    return session_factory


def _client(settings: Settings, base_url: str = BASE) -> TestClient[Any]:
    app_settings = Settings(env="test", database_url=settings.database_url,
                            data_key_file=settings.data_key_file,
                            data_dir=settings.data_dir, dev_idp=False, base_url=base_url)
    return TestClient(create_app(app_settings), base_url=base_url)


@pytest.fixture
def client(settings: Settings, demo: sessionmaker[Session]) -> Iterator[TestClient[Any]]:
    with _client(settings) as test_client:
        yield test_client


def csrf(client: TestClient[Any], path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def login(client: TestClient[Any], username: str, passphrase: str) -> Any:
    token = csrf(client, "/me/login")
    return client.post("/me/login", data={"username": username, "passphrase": passphrase,
                                          "_csrf_token": token}, follow_redirects=False)


def events(factory: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with factory() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                              .order_by(m.AuditEvent.seq)))


def test_demo_participant_signs_in_and_sees_only_their_page(
        client: TestClient[Any], demo: sessionmaker[Session]) -> None:
    response = login(client, "marcus", "river stone morning")
    assert response.status_code in (302, 303), response.text
    home = client.get("/me")
    assert home.status_code == 200
    assert "Hello, Marcus" in home.text
    assert "Angela" not in home.text
    assert events(demo, "auth:login:success")[-1].actor == "LP-1001"


def test_spanish_everywhere_on_the_participant_side(client: TestClient[Any]) -> None:
    page = client.get("/me/login?lang=es")
    assert '<html lang="es">' in page.text
    assert "Frase de contraseña" in page.text
    assert "lang=es" in page.headers["set-cookie"]
    assert "Entrar" in client.get("/me/login").text  # remembered
    # What goes wrong is said in Spanish too: a refused sign-in, a bad enrolment, a 404.
    refused = login(client, "marcus", "not my passphrase")
    assert "Ese nombre de usuario y esa frase de contraseña no coinciden." in refused.text
    token = csrf(client, "/me/enrol")
    bad = client.post("/me/enrol", data={"participant_id": "LP-1003", "code": "nope",
                                         "username": "x", "passphrase": "short",
                                         "_csrf_token": token})
    assert "Esa identificación y ese código no coinciden" in bad.text
    missing = client.get("/me/nothing-here")
    assert missing.status_code == 404 and "No encontramos esa página" in missing.text


def _answer(response: Any, *typed: str) -> tuple[int, str]:
    """What a sign-in answer shows: its status and the page's main part, with what differs on
    every page or by what was typed (the CSRF token, the username or id echoed back into the
    form) taken out."""
    main = re.search(r"<main.*?</main>", response.text, re.S)
    assert main, response.text
    text = re.sub(r'name="_csrf_token" value="[^"]+"', 'name="_csrf_token" value=""',
                  main.group(0))
    for value in typed:
        text = text.replace(f'value="{value}"', 'value=""')
    return response.status_code, text


def _pause(factory: sessionmaker[Session], rows: str = "account") -> list[m.SignInThrottle]:
    with factory() as s:
        return list(s.scalars(select(m.SignInThrottle).where(m.SignInThrottle.scope == rows)))


def test_unknown_paused_and_wrong_get_the_very_same_answer(
        client: TestClient[Any], demo: sessionmaker[Session]) -> None:
    """Issue 20, item 6: nothing tells a made-up username from a real one, or a paused account
    from a wrong passphrase; the status and the page are byte for byte the same."""
    wrong = _answer(login(client, "marcus", "not my passphrase"), "marcus")
    unknown = _answer(login(client, "nobody-here", "whatever passphrase"), "nobody-here")
    for _ in range(MAX_FAILURES - 1):
        login(client, "marcus", "not my passphrase")
    assert sorted(r.blocked_until is not None for r in _pause(demo)) == [False, True]
    # Marcus's account waits now: even his right passphrase gets the same answer.
    paused = _answer(login(client, "marcus", "river stone morning"), "marcus")
    assert wrong[0] == unknown[0] == paused[0] == 401
    assert wrong[1] == unknown[1] == paused[1]
    assert "That username and passphrase do not match." in paused[1]
    # A made-up username tried as often waits just the same, so that is no tell either.
    for _ in range(MAX_FAILURES):
        login(client, "nobody-here", "whatever passphrase")
    assert len(_pause(demo)) == 2
    assert _answer(login(client, "nobody-here", "whatever passphrase"),
                   "nobody-here") == paused
    # In Spanish, the same for all three too.
    client.get("/me/login?lang=es")
    spanish = [_answer(login(client, name, words), name) for name, words in (
        ("marcus", "river stone morning"), ("nobody-here", "x"), ("otra-persona", "y"))]
    assert spanish[0] == spanish[1] == spanish[2]
    assert "no coinciden" in spanish[0][1]


def test_enrolment_answers_an_unknown_id_and_a_paused_one_alike(
        client: TestClient[Any], demo: sessionmaker[Session], services: Services) -> None:
    """Enrolment is guessed by participant id: an id that does not exist, a wrong code and an
    id whose tries must wait all get the same status and page."""
    code = _issue(demo, services)  # LP-1003 has a code
    unknown = _answer(enrol(client, "LP-9999", "AAAA-BBBB-CCCC", "someone"), "someone",
                      "LP-9999")
    wrong = _answer(enrol(client, "LP-1003", "AAAA-BBBB-CCCC", "someone"), "someone",
                    "LP-1003")
    for _ in range(MAX_FAILURES - 1):
        enrol(client, "LP-1003", "AAAA-BBBB-CCCC", "someone")
    assert any(row.blocked_until is not None for row in _pause(demo, "enrol"))
    # Now even the right code waits, with the same answer as a wrong one.
    paused = _answer(enrol(client, "LP-1003", code, "someone"), "someone", "LP-1003")
    assert unknown == wrong == paused and unknown[0] == 400
    assert "That ID and code do not match" in paused[1]
    assert events(demo, "auth:enrolment_code:use") == []


def test_waits_grow_with_each_failure_and_end(client: TestClient[Any],
                                              demo: sessionmaker[Session]) -> None:
    """A failure past the free tries makes the account wait 1 minute, then 2, 4, ... up to 15;
    tries during a wait change nothing; after it the right passphrase works."""
    for _ in range(MAX_FAILURES):
        assert login(client, "marcus", "not my passphrase").status_code == 401
    waits = []
    for _ in range(3):
        (row,) = _pause(demo)
        assert row.blocked_until is not None
        waits.append(row.blocked_until - row.last_failure_at)
        login(client, "marcus", "river stone morning")  # during the wait: not counted
        assert _pause(demo)[0].failures == row.failures
        with demo.begin() as s:  # the wait runs out
            s.execute(update(m.SignInThrottle).values(blocked_until=utcnow()
                                                      - timedelta(seconds=1)))
        login(client, "marcus", "not my passphrase")
    assert waits == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert [e.detail["seconds"] for e in events(demo, "auth:lockout")] == [60, 120, 240, 480]
    assert all(e.participant_id is not None for e in events(demo, "auth:lockout"))
    with demo.begin() as s:
        s.execute(update(m.SignInThrottle).values(blocked_until=utcnow()
                                                  - timedelta(seconds=1)))
    assert login(client, "marcus", "river stone morning").status_code in (302, 303)
    assert _pause(demo) == []


def test_the_case_manager_sees_pauses_and_second_step_changes(
        client: TestClient[Any], demo: sessionmaker[Session],
        as_user: Any) -> None:
    import pyotp

    maria = as_user("maria.lopez@harbor-lead.example")
    assert "Sign-in paused" not in maria.get("/participants/LP-1001/care-team").text
    for _ in range(MAX_FAILURES):
        login(client, "marcus", "not my passphrase")
    with demo.begin() as s:
        s.execute(update(m.SignInThrottle).values(blocked_until=None))
    assert login(client, "marcus", "river stone morning").status_code in (302, 303)
    key = _key(client.get("/me/security/").text)
    assert _security_post(client, "/me/security/", "river stone morning",
                          pyotp.TOTP(key).now()).status_code in (302, 303)
    page = maria.get("/participants/LP-1001/care-team")
    assert page.status_code == 200
    today = utcnow().date().isoformat()  # the test settings' time zone is UTC
    notices = re.findall(r"<li>(Sign-in [^<]+)</li>", page.text)
    assert notices == [f"Sign-in settings changed on {today}: second step added",
                       f"Sign-in paused on {today} after repeated wrong tries. If the "
                       "participant did not make them, issue a new sign-in code."]
    # Another case manager's participant shows nothing of Marcus's.
    assert "Sign-in settings changed" not in maria.get(
        "/participants/LP-1002/care-team").text


def test_passphrases_are_hashed_with_argon2id_at_the_production_cost(
        production_hasher: PasswordHasher) -> None:
    """RFC 9106's second recommended option (the tests themselves hash more cheaply: see
    tests/conftest.py); an unknown username costs a check of the same price."""
    hasher = production_hasher
    expected = "$argon2id$v=19$m=65536,t=3,p=4$"
    assert (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        Type.ID, 3, 65536, 4)
    stored = hasher.hash("river stone morning")
    assert stored.startswith(expected) and hasher.verify(stored, "river stone morning")
    assert dummy_hash(hasher).startswith(expected)


def test_unknown_username_looks_like_a_wrong_passphrase(client: TestClient[Any]) -> None:
    response = login(client, "nobody-here", "whatever passphrase")
    assert response.status_code == 401
    assert "That username and passphrase do not match." in response.text


def _issue(factory: sessionmaker[Session], services: Services, public_id: str = "LP-1003",
           hours: int = 72) -> str:
    # The test's services, built outside any transaction: building them in here would load the
    # data keys in a second transaction, which waits for this one's lock (and now fails).
    with factory.begin() as s:
        participant = repo.participant_by_public_id(s, public_id)
        case_manager = repo.staff_by_email(s, "maria.lopez@harbor-lead.example")
        assert participant is not None and case_manager is not None
        return issue_enrolment_code(s, services.audit, participant, case_manager,
                                    RequestMeta(actor=case_manager.email), hours=hours)


def enrol(client: TestClient[Any], public_id: str, code: str, username: str,
          passphrase: str = "a long enough phrase") -> Any:
    token = csrf(client, "/me/enrol")
    return client.post("/me/enrol", data={
        "participant_id": public_id, "code": code, "username": username,
        "passphrase": passphrase, "_csrf_token": token}, follow_redirects=False)


def test_enrolment_code_is_single_use(client: TestClient[Any], demo: sessionmaker[Session],
                                      services: Services) -> None:
    code = _issue(demo, services)
    with demo() as s:
        stored = s.scalar(select(m.ParticipantCredential.enrolment_code_hash).where(
            m.ParticipantCredential.enrolment_code_hash.is_not(None)))
        assert stored is not None and code.replace("-", "") not in stored  # only a hash
    assert enrol(client, "lp-1003", code.lower(), "darnell").status_code in (302, 303)
    assert "Hello, Darnell" in client.get("/me").text
    client.cookies.clear()
    again = enrol(client, "LP-1003", code, "darnell2")
    assert again.status_code == 400
    assert "do not match" in again.text
    assert len(events(demo, "auth:enrolment_code:use")) == 1
    assert len(events(demo, "auth:enrolment_code:issue")) == 1


def test_enrolment_takes_a_grouped_id_however_it_is_typed(
        client: TestClient[Any], demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as s:
        darnell = repo.participant_by_public_id(s, "LP-1003")
        assert darnell is not None
        darnell.public_id = "LP-7K3M-XP9F"
    code = _issue(demo, services, public_id="LP-7K3M-XP9F")
    assert enrol(client, "lp 7k3m xp9f", code, "darnell").status_code in (302, 303)
    assert "Hello, Darnell" in client.get("/me").text


def test_enrolment_code_expires(client: TestClient[Any], demo: sessionmaker[Session],
                                services: Services) -> None:
    code = _issue(demo, services)
    with demo.begin() as s:
        s.execute(update(m.ParticipantCredential).values(
            enrolment_code_expires_at=utcnow() - timedelta(minutes=1)))
    response = enrol(client, "LP-1003", code, "darnell")
    assert response.status_code == 400
    assert "expired" in response.text


def test_bad_enrolment_choices_change_nothing(client: TestClient[Any],
                                              demo: sessionmaker[Session],
                                              services: Services) -> None:
    code = _issue(demo, services)
    response = enrol(client, "LP-1003", code, "marcus", passphrase="short")
    assert response.status_code == 400
    assert "taken" in response.text and "at least 10" in response.text
    # The code still works afterwards: nothing was used up.
    assert enrol(client, "LP-1003", code, "darnell").status_code in (302, 303)


def test_reissuing_a_code_resets_access(client: TestClient[Any], demo: sessionmaker[Session],
                                        services: Services) -> None:
    assert login(client, "marcus", "river stone morning").status_code in (302, 303)
    _issue(demo, services, "LP-1001")
    assert client.get("/me", follow_redirects=False).status_code in (302, 303)  # session ended
    assert login(client, "marcus", "river stone morning").status_code == 401


def test_session_id_rotates_at_sign_in(client: TestClient[Any],
                                       demo: sessionmaker[Session]) -> None:
    login(client, "marcus", "river stone morning")
    first = client.cookies.get("portal_session")
    login(client, "marcus", "river stone morning")
    second = client.cookies.get("portal_session")
    assert first and second and first != second
    with demo() as s:
        assert s.get(m.WebSession, token_hash(first)) is None
        assert s.get(m.WebSession, token_hash(second)) is not None


@pytest.mark.parametrize(("column", "reason"), [("last_seen_at", "idle_timeout"),
                                                ("expires_at", "absolute_timeout")])
def test_idle_and_absolute_timeouts(client: TestClient[Any], demo: sessionmaker[Session],
                                    column: str, reason: str) -> None:
    login(client, "marcus", "river stone morning")
    assert client.get("/me").status_code == 200
    past = utcnow() - timedelta(minutes=16)
    with demo.begin() as s:
        s.execute(update(m.WebSession).values({column: past}))
    response = client.get("/me", follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"] == "/me/login"
    expired = events(demo, "auth:session:expired")
    assert [e.reasons for e in expired] == [[reason]]
    with demo() as s:  # kept, ended, while its cookie may still arrive: it signs no one in
        (row,) = s.scalars(select(m.WebSession))
        assert row.ended_reason == reason
    assert client.get("/me", follow_redirects=False).headers["location"] == "/me/login"
    assert len(events(demo, "auth:session:expired")) == 1


def test_sign_out_ends_the_session(client: TestClient[Any], demo: sessionmaker[Session]) -> None:
    login(client, "marcus", "river stone morning")
    page = client.get("/me")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post("/auth/logout", data={"_csrf_token": token.group(1)},
                           follow_redirects=False)
    assert response.status_code in (302, 303)
    assert client.get("/me", follow_redirects=False).status_code in (302, 303)
    assert len(events(demo, "auth:logout")) == 1


def test_unsafe_requests_without_csrf_token_are_refused(
        client: TestClient[Any], demo: sessionmaker[Session]) -> None:
    client.get("/me/login")
    response = client.post("/me/login", data={"username": "marcus",
                                              "passphrase": "river stone morning"})
    assert response.status_code == 403
    assert "Traceback" not in response.text
    assert events(demo, "auth:login:success") == []
    # The htmx header form of the token is accepted too.
    token = csrf(client, "/me/login")
    response = client.post("/me/login", data={"username": "marcus",
                                              "passphrase": "river stone morning"},
                           headers={"x-csrftoken": token}, follow_redirects=False)
    assert response.status_code in (302, 303)


def test_cookie_attributes_plain_http_loopback(client: TestClient[Any]) -> None:
    response = login(client, "marcus", "river stone morning")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("portal_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


def test_cookie_attributes_over_https(settings: Settings, demo: sessionmaker[Session]) -> None:
    with _client(settings, base_url="https://portal.example") as client:
        response = login(client, "marcus", "river stone morning")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Domain" not in cookie


def test_security_headers_on_every_page(client: TestClient[Any]) -> None:
    login(client, "marcus", "river stone morning")
    for path in ("/", "/me", "/me/login", "/me/enrol", "/auth/login", "/healthz", "/nope"):
        headers = client.get(path, follow_redirects=False).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp, path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path


def _key(page: str) -> str:
    found = re.search(r'<code class="secret">([A-Z2-7]{32})</code>', page)
    assert found, page
    return found.group(1)


def _security_post(client: TestClient[Any], path: str, passphrase: str, code: str,
                   **extra: str) -> Any:
    token = csrf(client, "/me/security/")
    return client.post(path, data={"passphrase": passphrase, "code": code,
                                   "_csrf_token": token, **extra}, follow_redirects=False)


def test_adding_an_authenticator_app_then_signing_in_with_it(
        client: TestClient[Any], demo: sessionmaker[Session]) -> None:
    import pyotp

    login(client, "marcus", "river stone morning")
    page = client.get("/me/security/")
    assert 'name="secret"' not in page.text  # the browser is not given a key to send back
    secret = _key(page.text)
    totp = pyotp.TOTP(secret)
    wrong = next(c for c in ("000000", "111111", "222222") if not totp.verify(c, valid_window=1))
    assert _security_post(client, "/me/security/", "river stone morning",
                          wrong).status_code == 400
    right = _security_post(client, "/me/security/", "river stone morning", totp.now())
    assert right.status_code in (302, 303) and right.headers["location"] == "/me?totp=added"
    with demo() as s:
        stored = s.scalar(select(m.ParticipantCredential.totp_secret_enc).where(
            m.ParticipantCredential.totp_secret_enc.is_not(None)))
        assert stored is not None and secret.encode() not in stored
    assert len(events(demo, "auth:totp:add")) == 1
    client.cookies.clear()
    without = login(client, "marcus", "river stone morning")
    assert without.status_code == 401 and "6-digit code" in without.text
    form = csrf(client, "/me/login")
    with_code = client.post("/me/login", data={
        "username": "marcus", "passphrase": "river stone morning",
        "totp": totp.now(), "_csrf_token": form},
        follow_redirects=False)
    assert with_code.status_code in (302, 303)


def test_the_key_stays_the_same_across_visits_and_languages(client: TestClient[Any]) -> None:
    """Issue 18: the key changed on every visit, a language switch included."""
    login(client, "marcus", "river stone morning")
    first = _key(client.get("/me/security/").text)
    spanish = client.get("/me/security/?lang=es")
    assert "Escriba esta clave en la aplicación" in spanish.text
    assert _key(spanish.text) == first
    assert _key(client.get("/me/security/?lang=en").text) == first
    assert f"secret={first}" in client.get("/me/security/").text  # the app link, same key


def test_a_key_the_browser_sends_is_never_used(client: TestClient[Any],
                                               demo: sessionmaker[Session]) -> None:
    """Issue 20, item 5: a constant secret posted with a code valid for it used to be taken."""
    import pyotp

    login(client, "marcus", "river stone morning")
    chosen = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    response = _security_post(client, "/me/security/", "river stone morning",
                              pyotp.TOTP(chosen).now(), secret=chosen)
    assert response.status_code == 400
    assert "That 6-digit code is not right" in response.text
    assert events(demo, "auth:totp:add") == []
    with demo() as s:
        assert s.scalar(select(m.ParticipantCredential.totp_secret_enc).where(
            m.ParticipantCredential.totp_secret_enc.is_not(None))) is None


@pytest.mark.parametrize("fields", [
    {"secret": "", "code": ""}, {"secret": "ABC", "code": "123456"},
    {"secret": "not base32 at all!", "code": "12"}, {"code": "abcdef"},
    {"code": "١٢٣٤٥٦"}, {"code": "1" * 5000}, {}])
def test_bad_input_on_the_security_page_is_a_4xx_in_the_participants_language(
        client: TestClient[Any], demo: sessionmaker[Session], fields: dict[str, str]) -> None:
    """Issue 18 / issue 20, item 5: short, empty or non-base32 secrets gave 500."""
    login(client, "marcus", "river stone morning")
    key = _key(client.get("/me/security/").text)
    token = csrf(client, "/me/security/")
    for path in ("/me/security/", "/me/security/remove"):
        response = client.post(path, data={"passphrase": "river stone morning",
                                           "_csrf_token": token, **fields})
        assert 400 <= response.status_code < 500, (path, response.text)
        assert 'role="alert"' in response.text
    client.get("/me/security/?lang=es")
    spanish = client.post("/me/security/", data={"passphrase": "river stone morning",
                                                 "_csrf_token": token, **fields})
    assert spanish.status_code == 400 and "no es correcto" in spanish.text
    assert _key(spanish.text) == key  # and nothing changed
    assert events(demo, "auth:totp:add") == events(demo, "auth:totp:remove") == []


def test_a_session_alone_cannot_change_the_second_step(client: TestClient[Any],
                                                       demo: sessionmaker[Session]) -> None:
    """Issue 20, item 5: someone with the participant's open session (but not the passphrase)
    cannot add an app of their own, nor turn off the participant's."""
    import pyotp

    login(client, "marcus", "river stone morning")
    key = _key(client.get("/me/security/").text)
    totp = pyotp.TOTP(key)
    for passphrase in ("", "a guess at it"):
        refused = _security_post(client, "/me/security/", passphrase, totp.now())
        assert refused.status_code == 400 and "That passphrase is not right" in refused.text
    assert events(demo, "auth:totp:add") == []
    assert _security_post(client, "/me/security/", "river stone morning",
                          totp.now()).status_code in (302, 303)
    on = client.get("/me/security/")
    assert "Your authenticator app" in on.text and 'class="secret"' not in on.text
    for passphrase, code in (("", totp.now()), ("a guess", totp.now()),
                             ("river stone morning", "")):
        refused = _security_post(client, "/me/security/remove", passphrase, code)
        assert refused.status_code == 400, refused.text
    assert events(demo, "auth:totp:remove") == []
    # Those were five wrong tries (wrong codes for the app count too): the account waits, on
    # this page as at sign-in, so a stolen session cannot guess on and on.
    waiting = _security_post(client, "/me/security/remove", "river stone morning", totp.now())
    assert waiting.status_code == 429 and "wait a few minutes" in waiting.text
    with demo.begin() as s:  # the wait runs out
        s.execute(update(m.SignInThrottle).values(blocked_until=None))
    off = _security_post(client, "/me/security/remove", "river stone morning", totp.now())
    assert off.status_code in (302, 303)
    assert "Your authenticator app is off" in client.get(off.headers["location"]).text
    assert len(events(demo, "auth:totp:remove")) == 1
