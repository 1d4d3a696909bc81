"""Staff sign-in against a signing issuer written for the tests: every forged or broken token is
rejected, no session is created, and the failure is in the audit log. The happy path against a
real certified provider is in tests/e2e/browser/test_oidc_login.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from joserfc.jwk import RSAKey
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.devtools.seed import seed_demo
from portal.kernel.wiring import Services
from portal.web.app import create_app
from tests.e2e.forged_op import ForgedOP

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def op() -> Iterator[ForgedOP]:
    forged = ForgedOP().start()
    yield forged
    forged.stop()


@pytest.fixture
def client(settings: Settings, session_factory: sessionmaker[Session], op: ForgedOP,
           tmp_path: Path) -> Iterator[TestClient[Any]]:
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps([{
        "id": "forged", "name": "Forged Agency SSO", "issuer": op.issuer,
        "client_id": op.client_id, "client_secret": op.client_secret, "groups_claim": "groups",
        "organization_claim": "organization"}]))
    vault = Services.build(settings, session_factory).vault
    with session_factory.begin() as session:
        seed_demo(session, issuer=BASE + "/dev-idp", vault=vault)
    app_settings = Settings(env="test", database_url=settings.database_url,
                            data_key_file=settings.data_key_file,
                            data_dir=settings.data_dir, oidc_providers_file=providers,
                            dev_idp=False)
    with TestClient(create_app(app_settings), base_url=BASE) as test_client:
        yield test_client


def start(client: TestClient[Any], op: ForgedOP, code: str = "code-1") -> dict[str, str]:
    response = client.get("/auth/login/forged", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    query = {k: v[0] for k, v in parse_qs(urlparse(response.headers["location"]).query).items()}
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"] and query["state"]
    op.challenges[code] = (query["code_challenge"], query["nonce"])
    return query


def finish(client: TestClient[Any], state: str | None, code: str = "code-1") -> Any:
    params = {"code": code} | ({"state": state} if state is not None else {})
    return client.get("/auth/callback/forged", params=params, follow_redirects=False)


def failures(factory: sessionmaker[Session]) -> list[str]:
    with factory() as session:
        return [r[0] for r in session.scalars(select(m.AuditEvent.reasons).where(
            m.AuditEvent.action == "auth:login:failure").order_by(m.AuditEvent.seq))]


def sessions(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(m.WebSession)) or 0


def assert_rejected(response: Any, factory: sessionmaker[Session], code: str) -> None:
    assert response.status_code in (400, 403), response.text
    assert "Traceback" not in response.text
    assert "Try again" in response.text
    assert "portal_session" not in response.headers.get("set-cookie", "")
    assert sessions(factory) == 0
    assert failures(factory)[-1] == code


def test_a_valid_token_signs_in_and_rotates_nothing_else(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    query = start(client, op)
    response = finish(client, query["state"])
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"] == "/staff"
    cookie = response.headers["set-cookie"]
    assert "portal_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert sessions(session_factory) == 1
    home = client.get("/staff")
    assert home.status_code == 200
    assert "Alice Example" in home.text and "Harbor LEAD Case Management" in home.text
    with session_factory() as s:
        user = s.scalar(select(m.StaffUser).where(m.StaffUser.subject == "alice"))
        assert user is not None and user.role_names == ["case_manager"]
        assert s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.action == "auth:login:success")) == 1


def test_sign_out_returns_to_the_configured_address_whatever_the_host_header(
        client: TestClient[Any], op: ForgedOP) -> None:
    finish(client, start(client, op)["state"])
    token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/staff").text)
    assert token
    response = client.post("/auth/logout", data={"_csrf_token": token.group(1)},
                           headers={"host": "evil.example"}, follow_redirects=False)
    assert response.status_code in (302, 303)
    location = urlparse(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{op.issuer}/logout"
    assert parse_qs(location.query)["post_logout_redirect_uri"] == [BASE + "/"]


def _alg_none(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _hs256_with_public_key(op: ForgedOP) -> Callable[[dict[str, Any]], str]:
    def make(claims: dict[str, Any]) -> str:
        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
        payload = b64(json.dumps(claims).encode())
        secret = op.key.as_pem(private=False)
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64(signature)}"
    return make


def _claims(op: ForgedOP, change: Callable[[dict[str, Any]], None]) -> Callable[
        [dict[str, Any]], str]:
    def make(claims: dict[str, Any]) -> str:
        claims = dict(claims)
        change(claims)
        return op.sign(claims)
    return make


CASES: dict[str, Callable[[ForgedOP], Callable[[dict[str, Any]], str]]] = {
    "bad_signature": lambda op: lambda c: op.sign(
        c, RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)),
    "alg_none": lambda op: _alg_none,
    "hs256_with_public_key": _hs256_with_public_key,
    "wrong_aud": lambda op: _claims(op, lambda c: c.update(aud="someone-else")),
    "missing_aud": lambda op: _claims(op, lambda c: c.pop("aud")),
    "wrong_iss": lambda op: _claims(op, lambda c: c.update(iss="https://evil.example")),
    "expired": lambda op: _claims(op, lambda c: c.update(exp=int(time.time()) - 3600,
                                                         iat=int(time.time()) - 7200)),
    "missing_iat": lambda op: _claims(op, lambda c: c.pop("iat")),
    "missing_sub": lambda op: _claims(op, lambda c: c.pop("sub")),
    "nonce_mismatch": lambda op: _claims(op, lambda c: c.update(nonce="not-the-nonce")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forged_tokens_are_rejected(case: str, client: TestClient[Any], op: ForgedOP,
                                    session_factory: sessionmaker[Session]) -> None:
    op.make_id_token = CASES[case](op)
    query = start(client, op)
    assert_rejected(finish(client, query["state"]), session_factory, "invalid_id_token")


def test_unknown_kid_refetches_once_then_rejects(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "rotated"}, private=True)
    op.make_id_token = lambda c: op.sign(c, other)
    query = start(client, op)
    before = op.jwks_fetches
    assert_rejected(finish(client, query["state"]), session_factory, "invalid_id_token")
    assert op.jwks_fetches - before in (1, 2)  # the first fetch, plus exactly one refetch
    query = start(client, op, code="code-2")
    fetched = op.jwks_fetches
    assert_rejected(finish(client, query["state"], code="code-2"), session_factory,
                    "invalid_id_token")
    assert op.jwks_fetches == fetched  # rate-limited: no second refetch within a minute


def test_userinfo_sub_must_match(client: TestClient[Any], op: ForgedOP,
                                 session_factory: sessionmaker[Session]) -> None:
    op.userinfo_sub = "mallory"
    query = start(client, op)
    assert_rejected(finish(client, query["state"]), session_factory, "userinfo_sub_mismatch")


def test_state_is_single_use(client: TestClient[Any], op: ForgedOP,
                             session_factory: sessionmaker[Session]) -> None:
    query = start(client, op)
    assert finish(client, query["state"]).status_code in (302, 303)
    client.cookies.clear()
    with session_factory.begin() as s:
        s.execute(m.WebSession.__table__.delete())
    op.challenges["code-1"] = (query["code_challenge"], query["nonce"])
    assert_rejected(finish(client, query["state"]), session_factory, "unknown_state")


def test_missing_state(client: TestClient[Any], op: ForgedOP,
                       session_factory: sessionmaker[Session]) -> None:
    start(client, op)
    assert_rejected(finish(client, None), session_factory, "missing_state")


def test_pkce_verifier_mismatch(client: TestClient[Any], op: ForgedOP,
                                session_factory: sessionmaker[Session]) -> None:
    query = start(client, op)
    op.challenges["code-1"] = ("a-challenge-for-another-verifier", query["nonce"])
    assert_rejected(finish(client, query["state"]), session_factory, "token_request_failed")


def test_no_mapped_role_gets_a_clear_page(client: TestClient[Any], op: ForgedOP,
                                          session_factory: sessionmaker[Session]) -> None:
    op.make_id_token = _claims(op, lambda c: c.update(groups=["cafeteria-staff"]))
    query = start(client, op)
    response = finish(client, query["state"])
    assert_rejected(response, session_factory, "no_mapped_role")
    assert response.status_code == 403
    assert "contact your agency" in response.text.lower()


# --- the sign-in is bound to the browser that started it (login CSRF, RFC 9700 section 4.7) ---


def test_the_sign_in_cookie_is_short_lived_http_only_and_same_site(
        client: TestClient[Any]) -> None:
    response = client.get("/auth/login/forged", follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("portal_login=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=600" in cookie
    assert "Secure" not in cookie  # plain http on loopback (Secure over https, __Host- name)


def test_a_callback_without_the_browser_cookie_signs_nobody_in(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    query = start(client, op)
    client.cookies.delete("portal_login")
    assert_rejected(finish(client, query["state"]), session_factory, "browser_not_bound")
    # The state was used up: a second try (even with a cookie again) is refused.
    client.cookies.set("portal_login", "x" * 43)
    op.challenges["code-1"] = (query["code_challenge"], query["nonce"])
    assert_rejected(finish(client, query["state"]), session_factory, "unknown_state")


def test_a_callback_with_another_browsers_cookie_is_refused(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    query = start(client, op)
    client.cookies.set("portal_login", "another-browsers-value-0123456789abcdefghij")
    assert_rejected(finish(client, query["state"]), session_factory, "browser_mismatch")


def test_a_sign_in_started_in_one_browser_and_finished_in_another_changes_nothing(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    """The attack of issue 20: an officer's sign-in, stopped before its last redirect, opened
    in a case manager's browser. She is not signed in as the officer, and her own session
    goes on. (Two browsers: two cookie jars on one client.)"""
    # The victim's own sign-in and session.
    own = start(client, op, code="code-victim")
    assert finish(client, own["state"], code="code-victim").status_code in (302, 303)
    victim_jar = dict(client.cookies)
    # The attacker, in another browser, starts a sign-in and hands over the callback address.
    client.cookies.clear()
    attack = start(client, op, code="code-attack")
    client.cookies.clear()
    for name, value in victim_jar.items():
        client.cookies.set(name, value)
    response = finish(client, attack["state"], code="code-attack")
    assert response.status_code == 400
    assert "not started in this browser" in response.text
    assert "portal_session" not in response.headers.get("set-cookie", "")
    assert failures(session_factory)[-1] == "browser_not_bound"
    # Her session is the one she had, still signed in; nobody else's was created.
    assert client.cookies["portal_session"] == victim_jar["portal_session"]
    assert sessions(session_factory) == 1
    assert client.get("/staff").status_code == 200
    # The attacker's code was never redeemed at the provider.
    assert "code-attack" in op.challenges


def test_a_second_sign_in_started_in_another_tab_does_not_break_the_first(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    first = start(client, op, code="code-a")
    value = client.cookies["portal_login"]
    start(client, op, code="code-b")
    assert client.cookies["portal_login"] == value  # one value a browser, kept
    response = finish(client, first["state"], code="code-a")
    assert response.status_code in (302, 303), response.text
    assert sessions(session_factory) == 1
    # Used: the sign-in cookie is cleared with the answer.
    assert 'portal_login=""' in response.headers["set-cookie"] or \
        "portal_login=;" in response.headers["set-cookie"]


# --- a form posted after the session ended is kept for the same person (issue 18) -------------

FORM_PAGE = "/participants/LP-1001/consents/new"
FORM_ACTION = "/participants/LP-1001/consents/"


def _signed_in_with_csrf(client: TestClient[Any], op: ForgedOP, code: str) -> str:
    assert finish(client, start(client, op, code)["state"], code).status_code in (302, 303)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/staff").text)
    assert token
    return token.group(1)


def _time_out(factory: sessionmaker[Session]) -> None:
    with factory.begin() as s:
        for row in s.scalars(select(m.WebSession)):
            row.last_seen_at = row.last_seen_at - timedelta(hours=1)


def _consents(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(m.Consent)) or 0


def test_the_sign_in_page_says_why_it_is_shown(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    never = client.get("/staff", follow_redirects=False)
    assert never.headers["location"] == "/auth/login?why=needed"
    assert "Please sign in to open that page." in client.get(never.headers["location"]).text
    _signed_in_with_csrf(client, op, "code-1")
    _time_out(session_factory)
    ended = client.get("/staff", follow_redirects=False)
    assert ended.headers["location"] == "/auth/login?why=idle_timeout"
    page = client.get(ended.headers["location"]).text
    assert "Your session ended because nothing happened for 15 minutes." in page
    assert "Your form was kept" not in page
    # A made-up reason shows nothing.
    assert 'id="sign-in-reason"' not in client.get("/auth/login?why=<script>").text


def test_a_form_posted_after_the_idle_timeout_is_kept_and_brought_back(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    csrf = _signed_in_with_csrf(client, op, "code-1")
    consents = _consents(session_factory)
    _time_out(session_factory)
    posted = client.post(FORM_ACTION, data={
        "_csrf_token": csrf, "_kept_page": FORM_PAGE, "kind": "roi",
        "recipients": ["hope-housing", "cedar-recovery"], "expiry_event": "lead_exit"},
        follow_redirects=False)
    assert posted.status_code in (302, 303)
    assert posted.headers["location"] == "/auth/login?why=idle_timeout&kept=1"
    kept_cookie = posted.headers["set-cookie"]
    assert "portal_kept_form=" in kept_cookie and "HttpOnly" in kept_cookie
    assert "SameSite=lax" in kept_cookie
    page = client.get(posted.headers["location"]).text
    assert "Your form was kept." in page and "It was not sent" in page
    with session_factory() as s:
        (row,) = s.scalars(select(m.KeptForm))
        assert row.page == FORM_PAGE and row.action == FORM_ACTION.rstrip("/")
        assert b"hope-housing" not in row.fields_enc  # encrypted
    assert _consents(session_factory) == consents  # nothing was saved

    # Signing in again in this browser lands on the form's page, which asks for the fields.
    back = finish(client, start(client, op, "code-2")["state"], "code-2")
    assert back.headers["location"] == f"{FORM_PAGE}?kept=1"
    kept = client.get("/auth/kept-form")
    assert kept.status_code == 200
    assert kept.json() == {"action": FORM_ACTION.rstrip("/"), "page": FORM_PAGE, "fields": [
        ["kind", "roi"], ["recipients", "hope-housing"], ["recipients", "cedar-recovery"],
        ["expiry_event", "lead_exit"]]}
    # Handed over once; never submitted by the portal.
    assert client.get("/auth/kept-form").status_code == 404
    assert _consents(session_factory) == consents
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(m.KeptForm)) == 0


def test_a_form_posted_from_a_second_tab_after_the_first_found_the_timeout_is_kept(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    csrf = _signed_in_with_csrf(client, op, "code-1")
    _time_out(session_factory)
    # Another tab (or a link followed) meets the timeout first...
    assert client.get("/staff", follow_redirects=False).headers["location"] == \
        "/auth/login?why=idle_timeout"
    # ...and the form posted after it is still told how the session ended, and kept.
    posted = client.post(FORM_ACTION, data={
        "_csrf_token": csrf, "_kept_page": FORM_PAGE, "kind": "roi"}, follow_redirects=False)
    assert posted.headers["location"] == "/auth/login?why=idle_timeout&kept=1"
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(m.KeptForm)) == 1
        # The ended session signs nobody in, and the timeout was audited once.
        assert s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.action == "auth:session:expired")) == 1
    assert client.get("/staff", follow_redirects=False).status_code in (302, 303)


def test_a_kept_form_is_never_shown_to_someone_else(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    csrf = _signed_in_with_csrf(client, op, "code-1")
    _time_out(session_factory)
    posted = client.post(FORM_ACTION, data={"_csrf_token": csrf, "_kept_page": FORM_PAGE,
                                             "kind": "roi"}, follow_redirects=False)
    assert posted.headers["location"].endswith("kept=1")
    # Bob signs in on the same computer: his home page, and Alice's form is gone.
    op.make_id_token = _claims(op, lambda c: c.update(sub="bob", email="bob@harbor.example"))
    op.userinfo_sub = "bob"
    back = finish(client, start(client, op, "code-2")["state"], "code-2")
    assert back.headers["location"] == "/staff"
    assert client.get("/auth/kept-form").status_code == 404
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(m.KeptForm)) == 0


def test_nothing_is_kept_without_a_page_to_return_to_or_from_another_site(
        client: TestClient[Any], op: ForgedOP, session_factory: sessionmaker[Session]) -> None:
    csrf = _signed_in_with_csrf(client, op, "code-1")
    _time_out(session_factory)
    no_page = client.post(FORM_ACTION, data={"_csrf_token": csrf, "kind": "roi"},
                          follow_redirects=False)
    assert no_page.headers["location"] == "/auth/login?why=idle_timeout"
    csrf = _signed_in_with_csrf(client, op, "code-2")
    _time_out(session_factory)
    elsewhere = client.post(FORM_ACTION, data={"_csrf_token": csrf, "kind": "roi",
                                               "_kept_page": "//evil.example/x"},
                            follow_redirects=False)
    assert elsewhere.headers["location"] == "/auth/login?why=idle_timeout"
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(m.KeptForm)) == 0


def test_stay_signed_in_needs_a_session(client: TestClient[Any], op: ForgedOP,
                                        session_factory: sessionmaker[Session]) -> None:
    csrf = _signed_in_with_csrf(client, op, "code-1")
    extended = client.post("/auth/session/extend", headers={"x-csrftoken": csrf})
    assert extended.status_code == 200 and extended.json() == {"status": "extended"}
    _time_out(session_factory)
    late = client.post("/auth/session/extend", headers={"x-csrftoken": csrf},
                       follow_redirects=False)
    assert late.status_code in (302, 303)
    assert late.headers["location"] == "/auth/login?why=idle_timeout"
