"""The built-in development OpenID provider over HTTP: discovery, JWKS, the code flow with PKCE
and nonce, UserInfo, logout, and the requests it must refuse."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.crypto.vault import Vault
from portal.db.models import StaffUser
from portal.devtools.devidp import dev_client, dev_idp_router
from portal.devtools.seed import seed_demo
from portal.web.app import create_app

BASE = "http://127.0.0.1:8000"
ISSUER = BASE + "/dev-idp"
MARIA = "maria.lopez@harbor-lead.example"
SAM = "sam.okafor@cedar-recovery.example"


@pytest.fixture
def seeded(session_factory: sessionmaker[Session], vault: Vault) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer=ISSUER, vault=vault)
    return session_factory


@pytest.fixture
def client(settings: Settings, seeded: sessionmaker[Session]) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings), base_url=BASE) as test_client:
        test_client.follow_redirects = False  # the redirects are what is tested
        yield test_client


def staff_id(sessions: sessionmaker[Session], email: str) -> int:
    with sessions() as session:
        found = session.scalar(select(StaffUser.id).where(StaffUser.email == email))
    assert found is not None
    return found


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(settings: Settings, challenge: str | None, **overrides: str) -> dict[str, str]:
    client_id, _, redirect_uri = dev_client(settings)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": "openid profile email groups", "state": secrets.token_urlsafe(16),
              "nonce": secrets.token_urlsafe(16)}
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return params | overrides


def hidden_fields(page: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    assert "_csrf_token" in fields
    return fields


def pick(client: TestClient[Any], params: dict[str, str], persona: int) -> httpx.Response:
    page = client.get("/dev-idp/authorize", params=params)
    assert page.status_code == 200, page.text
    return client.post("/dev-idp/authorize", data={**hidden_fields(page.text),
                                                   "persona": str(persona)})


def get_code(client: TestClient[Any], settings: Settings, sessions: sessionmaker[Session],
             email: str = MARIA) -> tuple[str, str, dict[str, str]]:
    verifier, challenge = pkce_pair()
    params = authorize_params(settings, challenge)
    answer = pick(client, params, staff_id(sessions, email))
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(dev_client(settings)[2] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [params["state"]]
    return query["code"][0], verifier, params


def exchange(client: TestClient[Any], settings: Settings, code: str,
             verifier: str | None) -> httpx.Response:
    client_id, secret, redirect_uri = dev_client(settings)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return client.post("/dev-idp/token", data=form, auth=(client_id, secret))


def test_discovery_document_describes_the_provider(client: TestClient[Any]) -> None:
    doc = client.get("/dev-idp/.well-known/openid-configuration").json()
    assert doc["issuer"] == ISSUER
    for name, path in [("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                       ("userinfo_endpoint", "/userinfo"), ("jwks_uri", "/jwks"),
                       ("end_session_endpoint", "/logout")]:
        assert doc[name] == ISSUER + path
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert "openid" in doc["scopes_supported"]
    assert doc["token_endpoint_auth_methods_supported"] == ["client_secret_basic",
                                                            "client_secret_post"]
    assert {"sub", "email", "name", "groups", "organization", "nonce"} <= set(
        doc["claims_supported"])


def test_jwks_publishes_only_the_public_key_and_it_persists(
        client: TestClient[Any], settings: Settings) -> None:
    keys = client.get("/dev-idp/jwks").json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] and "d" not in key and "p" not in key
    pem = settings.data_dir / "dev-idp-signing.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    # A restart keeps the key (and so the kid): tokens already issued still verify.
    with TestClient(create_app(settings), base_url=BASE) as again:
        assert again.get("/dev-idp/jwks").json()["keys"][0]["kid"] == key["kid"]


def test_authorization_code_flow_with_pkce_and_nonce(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    page = client.get("/dev-idp/authorize", params=authorize_params(settings, pkce_pair()[1]))
    assert page.status_code == 200
    assert "Development sign-in: demo personas, not a real identity provider" in page.text
    assert "<h2 id=\"org-1\">Cedar Recovery Services</h2>" in page.text
    assert "Harbor LEAD Case Management</h2>" in page.text
    assert "Sign in as Maria Lopez" in page.text and "Sign in as Sam Okafor" in page.text
    assert "case manager" in page.text
    assert "<script>" not in page.text and "style=" not in page.text

    code, verifier, params = get_code(client, settings, seeded)
    tokens = exchange(client, settings, code, verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert tokens.headers["cache-control"] == "no-store"

    jwks = KeySet.import_key_set(client.get("/dev-idp/jwks").json())
    id_token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    assert id_token.header["kid"] == jwks.keys[0].kid
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": dev_client(settings)[0]},
        nonce={"essential": True, "value": params["nonce"]},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True, "value": MARIA},
    ).validate(id_token.claims)
    claims = id_token.claims
    assert claims["groups"] == ["lead-case-managers"]
    assert claims["organization"] == "harbor-lead"
    assert claims["email"] == MARIA and claims["name"] == "Maria Lopez"
    assert claims["exp"] - claims["iat"] == 300
    assert isinstance(claims["auth_time"], int)

    info = client.get("/dev-idp/userinfo",
                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert info.json() == {"sub": MARIA, "email": MARIA, "name": "Maria Lopez",
                           "groups": ["lead-case-managers"], "organization": "harbor-lead"}


def test_client_secret_post_works_and_a_wrong_secret_is_refused(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    client_id, secret, redirect_uri = dev_client(settings)
    code, verifier, _ = get_code(client, settings, seeded, SAM)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, "client_id": client_id}
    refused = client.post("/dev-idp/token", data=form, auth=(client_id, "not-the-secret"))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    code, verifier, _ = get_code(client, settings, seeded, SAM)
    form |= {"code": code, "code_verifier": verifier, "client_secret": secret}
    answer = client.post("/dev-idp/token", data=form)
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["id_token"],
                        KeySet.import_key_set(client.get("/dev-idp/jwks").json())).claims
    assert claims["groups"] == ["lead-counselors"]
    assert claims["organization"] == "cedar-recovery"


def test_userinfo_needs_a_token_this_provider_issued(client: TestClient[Any]) -> None:
    missing = client.get("/dev-idp/userinfo")
    assert missing.status_code == 401
    forged = client.get("/dev-idp/userinfo", headers={"Authorization": "Bearer made-up"})
    assert forged.status_code == 401 and forged.json()["error"] == "invalid_token"
    assert "www-authenticate" in forged.headers


def test_a_wrong_code_verifier_is_rejected(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    code, _, _ = get_code(client, settings, seeded)
    answer = exchange(client, settings, code, pkce_pair()[0])
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert "id_token" not in answer.text
    code, _, _ = get_code(client, settings, seeded)
    without = exchange(client, settings, code, None)
    assert without.status_code == 400 and "access_token" not in without.json()


def test_a_code_cannot_be_used_twice(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    code, verifier, _ = get_code(client, settings, seeded)
    first = exchange(client, settings, code, verifier)
    assert first.status_code == 200
    second = exchange(client, settings, code, verifier)
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    # The replay revokes what the code had yielded.
    info = client.get("/dev-idp/userinfo",
                      headers={"Authorization": f"Bearer {first.json()['access_token']}"})
    assert info.status_code == 401


def test_a_missing_code_challenge_is_rejected(
        client: TestClient[Any], settings: Settings) -> None:
    params = authorize_params(settings, None)
    answer = client.get("/dev-idp/authorize", params=params)
    # The redirect URI is the registered one, so the error goes back to the client (RFC 6749).
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(dev_client(settings)[2] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["error"] == ["invalid_request"]
    assert "code_challenge" in query["error_description"][0]
    assert query["state"] == [params["state"]]
    assert "code" not in query
    plain = client.get("/dev-idp/authorize", params=authorize_params(
        settings, pkce_pair()[1], code_challenge_method="plain"))
    assert plain.status_code == 302
    assert parse_qs(urlsplit(plain.headers["location"]).query)["error"] == ["invalid_request"]


def test_a_missing_nonce_is_rejected(client: TestClient[Any], settings: Settings) -> None:
    params = authorize_params(settings, pkce_pair()[1])
    del params["nonce"]
    answer = client.get("/dev-idp/authorize", params=params)
    assert answer.status_code == 302
    assert "nonce" in parse_qs(urlsplit(answer.headers["location"]).query)[
        "error_description"][0]


def test_an_unregistered_redirect_uri_is_refused_without_redirect(
        client: TestClient[Any], settings: Settings) -> None:
    params = authorize_params(settings, pkce_pair()[1],
                              redirect_uri="https://attacker.example/callback")
    answer = client.get("/dev-idp/authorize", params=params)
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "attacker.example/callback" in answer.text  # the page says which URI was refused
    assert "Traceback" not in answer.text
    # The same holds for the form post: no code goes to an unregistered URI.
    page = client.get("/dev-idp/authorize", params=authorize_params(settings, pkce_pair()[1]))
    fields = hidden_fields(page.text) | {"redirect_uri": "https://attacker.example/callback",
                                         "persona": "1"}
    posted = client.post("/dev-idp/authorize", data=fields)
    assert posted.status_code == 400 and "location" not in posted.headers


def test_an_unknown_client_gets_a_page_not_a_redirect(
        client: TestClient[Any], settings: Settings) -> None:
    answer = client.get("/dev-idp/authorize", params=authorize_params(
        settings, pkce_pair()[1], client_id="someone-else"))
    assert answer.status_code == 400
    assert "location" not in answer.headers
    assert "client does not exist" in answer.text


def test_only_the_code_flow_with_openid_is_offered(
        client: TestClient[Any], settings: Settings) -> None:
    implicit = client.get("/dev-idp/authorize", params=authorize_params(
        settings, pkce_pair()[1], response_type="token"))
    assert implicit.status_code == 302
    query = parse_qs(urlsplit(implicit.headers["location"]).query)
    assert query["error"] == ["unsupported_response_type"]
    assert "access_token" not in implicit.headers["location"]
    plain_oauth = client.get("/dev-idp/authorize", params=authorize_params(
        settings, pkce_pair()[1], scope="email"))
    assert parse_qs(urlsplit(plain_oauth.headers["location"]).query)["error"] == [
        "invalid_scope"]


def test_a_suspended_user_cannot_be_picked(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    with seeded.begin() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.email == SAM)).one()
        user.status = "suspended"
        sam = user.id
    page = client.get("/dev-idp/authorize", params=authorize_params(settings, pkce_pair()[1]))
    assert "Sign in as Sam Okafor" not in page.text
    assert "Sam Okafor" in page.text and "Suspended" in page.text
    answer = client.post("/dev-idp/authorize",
                         data={**hidden_fields(page.text), "persona": str(sam)})
    assert answer.status_code == 403
    assert "location" not in answer.headers
    assert "suspended" in answer.text


def test_the_persona_form_needs_the_csrf_token(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    page = client.get("/dev-idp/authorize", params=authorize_params(settings, pkce_pair()[1]))
    fields = hidden_fields(page.text)
    del fields["_csrf_token"]
    answer = client.post("/dev-idp/authorize",
                         data={**fields, "persona": str(staff_id(seeded, MARIA))})
    assert answer.status_code == 403
    assert "location" not in answer.headers


def test_logout_redirects_only_into_the_portal(
        client: TestClient[Any], settings: Settings, seeded: sessionmaker[Session]) -> None:
    code, verifier, _ = get_code(client, settings, seeded)
    tokens = exchange(client, settings, code, verifier).json()
    back = BASE + "/auth/logged-out"
    answer = client.get("/dev-idp/logout", params={
        "post_logout_redirect_uri": back, "id_token_hint": tokens["id_token"], "state": "s1"})
    assert answer.status_code == 302
    assert answer.headers["location"] == back + "?" + urlencode({"state": "s1"})
    # Signing out ends what the provider had issued to the persona.
    info = client.get("/dev-idp/userinfo",
                      headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 401
    for elsewhere in ("https://attacker.example/", BASE + ".attacker.example/"):
        page = client.get("/dev-idp/logout", params={"post_logout_redirect_uri": elsewhere})
        assert page.status_code == 200
        assert "signed out of the development provider" in page.text.lower()
    assert client.get("/dev-idp/logout").status_code == 200


def test_refuses_production_and_a_disabled_setting(
        tmp_path: Path, session_factory: sessionmaker[Session]) -> None:
    production = Settings(env="production", dev_idp=False, data_dir=tmp_path,
                          secret_key="x" * 40,
                          database_url="postgresql+psycopg://portal@127.0.0.1/portal",
                          audit_signing_key_file=tmp_path / "audit.pem",
                          data_key_file=tmp_path / "data.key")
    with pytest.raises(RuntimeError, match="cannot run in production"):
        dev_idp_router(production, session_factory)
    # Even if a production configuration somehow had the development sign-in switched on.
    object.__setattr__(production, "dev_idp", True)
    with pytest.raises(RuntimeError, match="cannot run in production"):
        dev_idp_router(production, session_factory)
    disabled = Settings(env="development", dev_idp=False, data_dir=tmp_path)
    with pytest.raises(RuntimeError, match="disabled"):
        dev_idp_router(disabled, session_factory)
    assert not (tmp_path / "dev-idp-signing.pem").exists()
    # The development settings themselves are accepted.
    assert dev_idp_router(Settings(env="development", data_dir=tmp_path),
                          session_factory).path == "/dev-idp"
