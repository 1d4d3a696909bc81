"""The OpenID Connect relying party without a network: provider configuration, discovery and
keys through a mock transport, the start of the flow, the callback's early refusals, and every
check of the ID token."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from portal.auth import oidc
from portal.auth.oidc import LoginError, PendingLogin, ProviderConfig, RelyingParty
from portal.config import Settings, SettingsError

ISSUER = "https://idp.example/realms/lead"
CLIENT = "lead-portal"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
ROTATED = ECKey.generate_key("P-256", parameters={"kid": "k2"})
NOW = 1_900_000_000


# --- configuration -----------------------------------------------------------------------------


def _providers(tmp_path: Path, entries: Any, *, dev: bool = False) -> list[ProviderConfig]:
    path = tmp_path / "providers.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return oidc.load_providers(Settings(env="test", data_dir=tmp_path, dev_idp=dev,
                                        oidc_providers_file=path))


GOOD = {"id": "harbor", "name": "Harbor", "issuer": ISSUER + "/", "client_id": CLIENT,
        "client_secret": "s3cret"}


def test_providers_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEDAR_SECRET", "from-env")
    cedar = {"id": "cedar-idp", "name": "Cedar", "issuer": "https://cedar.example",
             "client_id": "c", "client_secret_env": "CEDAR_SECRET", "groups_claim": "roles",
             "organization_claim": None, "organization": "cedar-recovery",
             "scope": "openid", "discovery_url": "http://idp:8080"}
    harbor, cedar_p = _providers(tmp_path, [GOOD, cedar])
    assert harbor == ProviderConfig(id="harbor", name="Harbor", issuer=ISSUER,
                                    client_id=CLIENT, client_secret="s3cret",
                                    organization_claim=None)
    assert (cedar_p.client_secret, cedar_p.groups_claim, cedar_p.organization,
            cedar_p.scope, cedar_p.discovery_url) == (
        "from-env", "roles", "cedar-recovery", "openid", "http://idp:8080")
    # With the development provider enabled, it comes last.
    *_, dev = _providers(tmp_path, [GOOD], dev=True)
    assert dev.id == "dev" and dev.issuer.endswith("/dev-idp") and dev.client_secret
    assert oidc.load_providers(Settings(env="test", data_dir=tmp_path, dev_idp=False)) == []


@pytest.mark.parametrize(("entries", "message"), [
    ("not json", "cannot read"),
    ({"id": "x"}, "must be a JSON list"),
    (["x"], "provider 1 is not an object"),
    ([{"id": "x", "name": "X"}], "provider 1 lacks issuer, client_id"),
    ([{**GOOD, "client_secret": ""}], "provider harbor: no client secret (set "
                                      "client_secret_env)"),
    ([{**GOOD, "client_secret": "", "client_secret_env": "UNSET_VAR_FOR_TEST"}],
     "(set UNSET_VAR_FOR_TEST)"),
    ([{**GOOD, "id": "dev"}], "must be letters, digits, dashes and not 'dev'"),
    ([{**GOOD, "id": "a b"}], "must be letters, digits"),
    ([GOOD, GOOD], "provider ids must be unique"),
])
def test_bad_provider_files_are_refused(tmp_path: Path, entries: Any, message: str) -> None:
    with pytest.raises(SettingsError, match="PORTAL_OIDC_PROVIDERS") as refused:
        _providers(tmp_path, entries)
    assert message in str(refused.value)


def test_an_unreadable_provider_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        oidc.load_providers(Settings(env="test", data_dir=tmp_path, dev_idp=False,
                                     oidc_providers_file=tmp_path / "missing.json"))


def _production(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings that pass every other production check."""
    return Settings(env="production", data_dir=tmp_path, secret_key="p" * 40, dev_idp=False,
                    database_url="postgresql+psycopg://portal:pw@db:5432/portal",
                    audit_signing_key_file=tmp_path / "audit.key",
                    data_key_file=tmp_path / "data.key", **overrides)


@pytest.mark.parametrize(("entry", "setting", "url"), [
    ({**GOOD, "issuer": "http://idp.example/realms/lead"}, "issuer",
     "http://idp.example/realms/lead"),
    ({**GOOD, "discovery_url": "http://keycloak:8080/realms/lead"}, "discovery_url",
     "http://keycloak:8080/realms/lead"),
    ({**GOOD, "issuer": "HTTPS-ish://idp.example"}, "issuer", "HTTPS-ish://idp.example"),
    ({**GOOD, "discovery_url": "https:///realms/lead"}, "discovery_url", "https:///realms/lead"),
])
def test_production_refuses_a_provider_that_is_not_https(
        tmp_path: Path, entry: dict[str, str], setting: str, url: str) -> None:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps([{**GOOD, "id": "cedar"}, entry]))
    with pytest.raises(SettingsError) as refused:
        oidc.load_providers(_production(tmp_path, oidc_providers_file=path))
    message = str(refused.value)
    assert refused.value.variable == "PORTAL_OIDC_PROVIDERS"
    assert message == (f"PORTAL_OIDC_PROVIDERS: provider harbor: {setting} must be an "
                       f"https:// URL in production, not {url!r}")
    assert "\n" not in message


def test_production_accepts_https_providers_and_test_and_development_allow_http(
        tmp_path: Path) -> None:
    https = {**GOOD, "discovery_url": "https://keycloak:8443/realms/lead"}
    path = tmp_path / "providers.json"
    path.write_text(json.dumps([https]))
    [loaded] = oidc.load_providers(_production(tmp_path, oidc_providers_file=path))
    assert (loaded.issuer, loaded.discovery_url) == (ISSUER, https["discovery_url"])
    # The development provider and the test providers are http on loopback.
    plain = {**GOOD, "issuer": "http://127.0.0.1:9400/realms/lead",
             "discovery_url": "http://127.0.0.1:9400/realms/lead"}
    path.write_text(json.dumps([plain]))
    for env in ("test", "development"):
        providers = oidc.load_providers(Settings(env=env, data_dir=tmp_path,  # type: ignore[arg-type]
                                                 oidc_providers_file=path))
        assert [(p.id, p.issuer.split(":")[0]) for p in providers] == [
            ("harbor", "http"), ("dev", "http")]


def test_portal_serve_refuses_to_start_on_an_http_provider_in_production(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from portal.cli import main

    path = tmp_path / "providers.json"
    path.write_text(json.dumps([{**GOOD, "id": "keycloak",
                                 "issuer": "http://keycloak:8080/realms/lead"}]))
    env = {"PORTAL_ENV": "production", "PORTAL_SECRET_KEY": "p" * 40, "PORTAL_DEV_IDP": "false",
           # Nothing listens there: the refusal comes before the database is asked.
           "PORTAL_DATABASE_URL": "postgresql+psycopg://portal:pw@127.0.0.1:9/portal",
           "PORTAL_AUDIT_SIGNING_KEY_FILE": str(tmp_path / "audit.key"),
           "PORTAL_DATA_KEY_FILE": str(tmp_path / "data.key"),
           "PORTAL_OIDC_PROVIDERS": str(path)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert result.stderr == ("error: PORTAL_OIDC_PROVIDERS: provider keycloak: issuer must be "
                             "an https:// URL in production, not "
                             "'http://keycloak:8080/realms/lead'\n")
    # An unreadable CA file is refused the same way.
    path.write_text(json.dumps([GOOD]))
    monkeypatch.setenv("PORTAL_OIDC_CA_FILE", str(tmp_path / "missing-ca.crt"))
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: PORTAL_OIDC_CA_FILE: cannot read CA certificates")
    assert result.stderr.count("\n") == 1


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate")
    assert oidc.tls_context(Settings(env="test", data_dir=tmp_path)) is None
    with pytest.raises(SettingsError, match="PORTAL_OIDC_CA_FILE: cannot read CA"):
        oidc.tls_context(Settings(env="test", data_dir=tmp_path,
                                  oidc_ca_file=tmp_path / "ca.crt"))


# --- discovery and keys ------------------------------------------------------------------------


class Provider:
    """Answers discovery and JWKS requests, and counts them."""

    def __init__(self) -> None:
        self.issuer = ISSUER
        self.keys = [KEY]
        self.requests: list[str] = []
        self.fail: int | None = None
        self.body: Any = None
        self.userinfo_endpoint: str | None = None
        self.token: tuple[int, dict[str, Any]] = (400, {"error": "invalid_grant"})
        self.userinfo: dict[str, Any] = {}
        self.forms: list[dict[str, list[str]]] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request.url.path)
        if self.fail is not None:
            return httpx2.Response(self.fail)
        if self.body is not None:
            return httpx2.Response(200, content=self.body)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            document = {"issuer": self.issuer, "jwks_uri": "https://idp.example/jwks",
                        "authorization_endpoint": "https://idp.example/auth",
                        "token_endpoint": "https://idp.example/token"}
            if self.userinfo_endpoint:
                document["userinfo_endpoint"] = self.userinfo_endpoint
            return httpx2.Response(200, json=document)
        if request.url.path == "/token":
            self.forms.append(parse_qs(request.content.decode()))
            status, body = self.token
            return httpx2.Response(status, json=body)
        if request.url.path == "/userinfo":
            assert request.headers["authorization"] == "Bearer at-1"
            return httpx2.Response(200, json=self.userinfo)
        return httpx2.Response(200, json=KeySet(self.keys).as_dict())


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Provider:
    return Provider()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def rp(provider: Provider, clock: Clock) -> RelyingParty:
    config = ProviderConfig(id="harbor", name="Harbor", issuer=ISSUER, client_id=CLIENT,
                            client_secret="s3cret")
    return RelyingParty(config, "https://portal.example/auth/callback/harbor",
                        http=lambda: httpx2.Client(transport=httpx2.MockTransport(
                            provider.handle)), clock=clock)


def test_discovery_is_cached_and_checks_the_issuer(rp: RelyingParty, provider: Provider) -> None:
    assert rp.metadata()["token_endpoint"] == "https://idp.example/token"
    rp.metadata()
    assert provider.requests == ["/realms/lead/.well-known/openid-configuration"]

    provider.issuer = "https://evil.example"
    fresh = RelyingParty(rp.provider, rp.redirect_uri, http=rp.http, clock=rp.clock)
    with pytest.raises(LoginError) as refused:
        fresh.metadata()
    assert refused.value.code == "discovery_issuer_mismatch"


def test_discovery_through_an_internal_url(rp: RelyingParty, provider: Provider) -> None:
    internal = RelyingParty(ProviderConfig(
        id="h", name="H", issuer=ISSUER, client_id=CLIENT, client_secret="s",
        discovery_url="http://keycloak:8080/realms/lead/"), rp.redirect_uri, http=rp.http)
    internal.metadata()
    assert provider.requests == ["/realms/lead/.well-known/openid-configuration"]


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri",
                                      "userinfo_endpoint", "end_session_endpoint"])
def test_production_refuses_a_discovery_document_naming_an_http_endpoint(
        rp: RelyingParty, provider: Provider, endpoint: str) -> None:
    document = {"issuer": ISSUER, "jwks_uri": "https://idp.example/jwks",
                "authorization_endpoint": "https://idp.example/auth",
                "token_endpoint": "https://idp.example/token",
                "userinfo_endpoint": "https://idp.example/userinfo",
                "end_session_endpoint": "https://idp.example/logout"}
    provider.body = json.dumps({**document, endpoint: "http://idp.example/x"}).encode()
    # Outside production the same document is used (test providers are http on loopback).
    assert rp.metadata()[endpoint] == "http://idp.example/x"
    strict = RelyingParty(rp.provider, rp.redirect_uri, http=rp.http, require_https=True)
    with pytest.raises(LoginError) as refused:
        strict.metadata()
    assert refused.value.code == "discovery_not_https" and endpoint in refused.value.message
    provider.body = json.dumps(document).encode()
    assert RelyingParty(rp.provider, rp.redirect_uri, http=rp.http,
                        require_https=True).metadata() == document


@pytest.mark.parametrize(("fail", "body", "code"), [
    (503, None, "provider_unreachable"), (None, b"not json", "provider_unreachable"),
    (None, b"[1, 2]", "provider_bad_response")])
def test_a_provider_that_does_not_answer_properly(rp: RelyingParty, provider: Provider,
                                                  fail: int | None, body: bytes | None,
                                                  code: str) -> None:
    provider.fail, provider.body = fail, body
    with pytest.raises(LoginError) as refused:
        rp.metadata()
    assert refused.value.code == code and refused.value.message


def test_keys_are_refetched_at_most_once_a_minute(rp: RelyingParty, provider: Provider,
                                                  clock: Clock) -> None:
    first = rp._key_set()
    assert rp._key_set() is first
    clock.now += 30
    assert rp._key_set(refresh=True) is first  # too soon
    clock.now += 31
    assert rp._key_set(refresh=True) is not first
    assert provider.requests.count("/jwks") == 2


# --- the flow ----------------------------------------------------------------------------------


def test_begin_sends_state_nonce_and_a_pkce_challenge(rp: RelyingParty) -> None:
    url, pending = rp.begin()
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://idp.example/auth"
    assert (query["state"], query["nonce"]) == (pending.state, pending.nonce)
    assert query["client_id"] == CLIENT and query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert pending.code_verifier not in url
    assert query["redirect_uri"] == "https://portal.example/auth/callback/harbor"
    assert query["scope"] == "openid email profile"


PENDING = PendingLogin(state="st", nonce="nn", code_verifier="v" * 64)


@pytest.mark.parametrize(("params", "code"), [
    ({"error": "access_denied", "state": "st"}, "provider_error"),
    ({"code": "c", "state": "other"}, "state_mismatch"),
    ({"code": "c"}, "state_mismatch"),
    ({"state": "st"}, "missing_code"),
])
def test_the_callback_refuses_early(rp: RelyingParty, provider: Provider,
                                    params: dict[str, str], code: str) -> None:
    with pytest.raises(LoginError) as refused:
        rp.complete(PENDING, params)
    assert refused.value.code == code
    assert provider.requests == []  # nothing was asked of the provider


# --- the ID token ------------------------------------------------------------------------------


def _id_token(key: Any = KEY, **changes: Any) -> str:
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "maria", "aud": CLIENT, "iat": NOW,
                              "exp": NOW + 300, "nonce": "nn"}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def test_a_good_id_token(rp: RelyingParty) -> None:
    claims = rp.validate_id_token(_id_token(), "nn")
    assert claims["sub"] == "maria"
    assert rp.validate_id_token(_id_token(aud=[CLIENT, "x"], azp=CLIENT), "nn")["azp"] == CLIENT


def test_a_rotated_key_is_fetched(rp: RelyingParty, provider: Provider, clock: Clock) -> None:
    rp._key_set()
    provider.keys = [KEY, ROTATED]
    clock.now += 61
    assert rp.validate_id_token(_id_token(ROTATED), "nn")["sub"] == "maria"


@pytest.mark.parametrize(("token", "message"), [
    (lambda: _id_token(nonce="other"), "could not be verified"),
    (lambda: _id_token(nonce=None), "could not be verified"),
    (lambda: _id_token(iss="https://evil.example"), "could not be verified"),
    (lambda: _id_token(exp=NOW - 61), "could not be verified"),
    (lambda: _id_token(ECKey.generate_key("P-256", parameters={"kid": "k1"})),
     "could not be verified"),
    (lambda: _id_token(aud="someone-else"), "not for this portal"),
    (lambda: _id_token(aud=[CLIENT, "x"]), "not for this portal"),  # several: azp needed
    (lambda: _id_token(aud=[CLIENT, "x"], azp="x"), "not for this portal"),
    (lambda: _id_token(iat=NOW - oidc.MAX_ID_TOKEN_AGE_SECONDS - 1,
                       exp=NOW + 60), "too old"),
    (lambda: _id_token(sub=""), "could not be verified"),  # an empty sub is missing
])
def test_rejected_id_tokens(rp: RelyingParty, token: Any, message: str) -> None:
    with pytest.raises(LoginError, match=message) as refused:
        rp.validate_id_token(token(), "nn")
    assert refused.value.code == "invalid_id_token"
    assert str(refused.value).startswith("invalid_id_token: ")


# --- the code exchange -------------------------------------------------------------------------


@pytest.fixture
def exchange(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> Provider:
    """The portal's own OAuth client, talking to the mock provider."""
    real = oidc.OAuth2Client
    monkeypatch.setattr(oidc, "OAuth2Client", lambda *args, **kwargs: real(
        *args, transport=httpx2.MockTransport(provider.handle), **kwargs))
    provider.token = (200, {"access_token": "at-1", "token_type": "Bearer", "expires_in": 300,
                            "id_token": _id_token(email="m@harbor.example")})
    return provider


CALLBACK = {"code": "the-code", "state": "st"}


def test_the_code_is_exchanged_and_the_identity_merged(rp: RelyingParty,
                                                       exchange: Provider) -> None:
    exchange.userinfo_endpoint = "https://idp.example/userinfo"
    exchange.userinfo = {"sub": "maria", "groups": "lead-case-managers",
                         "organization": "harbor-lead", "name": "Maria Lopez",
                         "email": "ignored@example"}  # the ID token's claims win
    identity = rp.complete(PENDING, CALLBACK)
    assert identity == oidc.Identity(
        issuer=ISSUER, subject="maria", email="m@harbor.example", name="Maria Lopez",
        groups=("lead-case-managers",), organization="harbor-lead",
        id_token=exchange.token[1]["id_token"])
    (form,) = exchange.forms
    assert form["code"] == ["the-code"] and form["code_verifier"] == ["v" * 64]
    assert form["grant_type"] == ["authorization_code"]


def test_a_fixed_organization_and_no_userinfo(rp: RelyingParty, exchange: Provider) -> None:
    fixed = RelyingParty(ProviderConfig(id="cedar", name="C", issuer=ISSUER, client_id=CLIENT,
                                        client_secret="s", organization="cedar-recovery",
                                        organization_claim=None),
                         rp.redirect_uri, http=rp.http, clock=rp.clock)
    identity = fixed.complete(PENDING, CALLBACK)
    assert (identity.organization, identity.groups, identity.name) == (
        "cedar-recovery", (), "m@harbor.example")
    unlinked = RelyingParty(replace(fixed.provider, organization=None),
                            rp.redirect_uri, http=rp.http, clock=rp.clock)
    assert unlinked.complete(PENDING, CALLBACK).organization is None


@pytest.mark.parametrize(("token", "userinfo", "code"), [
    ((400, {"error": "invalid_grant"}), None, "token_request_failed"),
    ((200, {"access_token": "at-1", "token_type": "Bearer"}), None, "missing_id_token"),
    (None, {"sub": "someone-else"}, "userinfo_sub_mismatch"),
])
def test_a_failed_exchange(rp: RelyingParty, exchange: Provider, token: Any, userinfo: Any,
                           code: str) -> None:
    if token is not None:
        exchange.token = token
    if userinfo is not None:
        exchange.userinfo_endpoint = "https://idp.example/userinfo"
        exchange.userinfo = userinfo
    with pytest.raises(LoginError) as refused:
        rp.complete(PENDING, CALLBACK)
    assert refused.value.code == code
