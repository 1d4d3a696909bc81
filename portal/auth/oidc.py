"""OpenID Connect relying party (Authlib client, joserfc tokens): one per configured provider.

Authorization code flow with PKCE (S256), state and nonce. The ID token is checked against the
provider's JWKS (signature, iss, aud, azp, exp, iat, sub, nonce); an unknown key id triggers one
JWKS refetch, at most once a minute. UserInfo's sub must equal the ID token's sub.

In production every provider URL is https: the configured issuer and internal discovery URL
when the providers are loaded (the portal does not start otherwise), and the endpoints its
discovery document names before any is used. The portal's own calls trust the system's CA
certificates plus those in PORTAL_OIDC_CA_FILE.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc6749.errors import OAuth2Error
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from portal.config import Settings, SettingsError

# Asymmetric algorithms only: "none" and HMAC (which a forger could key with the public key) are
# never accepted.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                      "ES512", "EdDSA")
JWKS_REFETCH_SECONDS = 60
CLOCK_SKEW_SECONDS = 60
MAX_ID_TOKEN_AGE_SECONDS = 600


class LoginError(Exception):
    """A sign-in that must not succeed. ``code`` is logged; ``message`` is shown."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    groups_claim: str = "groups"
    # Where the organization comes from: a claim (shared realm) or fixed (one IdP per agency).
    organization_claim: str | None = "organization"
    organization: str | None = None
    scope: str = "openid email profile"
    # Internal base URL for server-to-server calls when it differs from the issuer's host.
    discovery_url: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    issuer: str
    subject: str
    email: str
    name: str
    groups: tuple[str, ...]
    organization: str | None
    id_token: str


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    code_verifier: str


def load_providers(settings: Settings) -> list[ProviderConfig]:
    """The configured providers, plus the development provider when it is enabled."""
    providers: list[ProviderConfig] = []
    if settings.oidc_providers_file is not None:
        providers.extend(_read_providers_file(settings.oidc_providers_file))
    if settings.dev_idp:
        from portal.devtools.devidp import dev_client

        client_id, client_secret, _ = dev_client(settings)
        providers.append(ProviderConfig(
            id="dev", name="Development sign-in (demo personas)",
            issuer=settings.base_url.rstrip("/") + "/dev-idp", client_id=client_id,
            client_secret=client_secret, scope="openid email profile"))
    ids = [p.id for p in providers]
    if len(ids) != len(set(ids)):
        raise SettingsError("PORTAL_OIDC_PROVIDERS", "provider ids must be unique")
    if settings.is_production:
        for provider in providers:
            _require_https(provider)
    return providers


def _require_https(provider: ProviderConfig) -> None:
    """Production talks to identity providers over https only: a sign-in, its tokens and the
    keys that check them must not cross a network in the clear (development and test allow
    the loopback http of the development provider and the test providers)."""
    for setting, url in (("issuer", provider.issuer), ("discovery_url", provider.discovery_url)):
        if url is not None and not _is_https(url):
            raise SettingsError("PORTAL_OIDC_PROVIDERS",
                                f"provider {provider.id}: {setting} must be an https:// URL "
                                f"in production, not {url!r}")


def _is_https(url: object) -> bool:
    parts = urlsplit(url) if isinstance(url, str) else None
    return parts is not None and parts.scheme == "https" and bool(parts.hostname)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """How the portal verifies its providers' certificates: None (the HTTP client's default,
    the system's CA certificates) unless PORTAL_OIDC_CA_FILE adds a CA, such as the compose
    stack's own (`portal keys local-tls`)."""
    path = settings.oidc_ca_file
    if path is None:
        return None
    context = httpx2.create_ssl_context()  # the system's CA certificates (or SSL_CERT_FILE)
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError("PORTAL_OIDC_CA_FILE",
                            f"cannot read CA certificates (PEM) from {path}: "
                            f"{exc.strerror or exc}") from None
    return context


def _read_providers_file(path: Path) -> list[ProviderConfig]:
    var = "PORTAL_OIDC_PROVIDERS"
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(var, f"cannot read {path}: {exc}") from None
    if not isinstance(entries, list):
        raise SettingsError(var, "must be a JSON list of providers")
    providers = []
    for n, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise SettingsError(var, f"provider {n} is not an object")
        missing = [k for k in ("id", "name", "issuer", "client_id") if not entry.get(k)]
        if missing:
            raise SettingsError(var, f"provider {n} lacks {', '.join(missing)}")
        secret = entry.get("client_secret") or os.environ.get(entry.get("client_secret_env", ""))
        if not secret:
            raise SettingsError(var, f"provider {entry['id']}: no client secret (set "
                                     f"{entry.get('client_secret_env') or 'client_secret_env'})")
        if entry["id"] == "dev" or not str(entry["id"]).replace("-", "").isalnum():
            raise SettingsError(var, f"provider id {entry['id']!r} must be letters, digits, "
                                     "dashes and not 'dev'")
        providers.append(ProviderConfig(
            id=entry["id"], name=entry["name"], issuer=entry["issuer"].rstrip("/"),
            client_id=entry["client_id"], client_secret=secret,
            groups_claim=entry.get("groups_claim", "groups"),
            organization_claim=entry.get("organization_claim"),
            organization=entry.get("organization"),
            scope=entry.get("scope", "openid email profile"),
            discovery_url=entry.get("discovery_url")))
    return providers


@dataclass
class RelyingParty:
    """One provider's client. Thread-safe; discovery and keys are cached."""

    provider: ProviderConfig
    redirect_uri: str
    # The HTTP client for discovery, keys and user info; by default one verifying with `tls`.
    http: Callable[[], httpx2.Client] | None = None
    clock: Callable[[], float] = time.time
    # Extra CA certificates for the provider's server (tls_context()); None: the system's.
    tls: ssl.SSLContext | None = None
    # Production: every endpoint the discovery document names must be https.
    require_https: bool = False
    _metadata: dict[str, Any] | None = field(default=None, init=False)
    _keys: KeySet | None = field(default=None, init=False)
    _keys_fetched_at: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    # --- discovery and keys ---

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            base = (self.provider.discovery_url or self.provider.issuer).rstrip("/")
            document = self._get_json(f"{base}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != self.provider.issuer:
                raise LoginError("discovery_issuer_mismatch",
                                 "the sign-in service is misconfigured (issuer mismatch)")
            if self.require_https:
                endpoints = ("authorization_endpoint", "token_endpoint", "jwks_uri",
                             "userinfo_endpoint", "end_session_endpoint")
                insecure = [name for name in endpoints if name in document
                            and not _is_https(document[name])]
                if insecure:
                    raise LoginError("discovery_not_https",
                                     "the sign-in service is misconfigured (not https: "
                                     f"{', '.join(insecure)})")
            self._metadata = document
        return self._metadata

    def _get_json(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            with self._http() as client:
                response = client.get(url, **kwargs)
                response.raise_for_status()
                data = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise LoginError("provider_unreachable",
                             "your agency's sign-in service did not answer; try again in a "
                             "minute") from exc
        if not isinstance(data, dict):
            raise LoginError("provider_bad_response", "the sign-in service answered oddly")
        return data

    def _http(self) -> httpx2.Client:
        if self.http is not None:
            return self.http()
        return httpx2.Client(timeout=10, verify=self.tls or True)

    def _key_set(self, refresh: bool = False) -> KeySet:
        with self._lock:
            now = self.clock()
            if self._keys is None or (refresh and now - self._keys_fetched_at
                                      >= JWKS_REFETCH_SECONDS):
                self._keys = KeySet.import_key_set(
                    self._get_json(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
                self._keys_fetched_at = now
            return self._keys

    # --- the flow ---

    def begin(self) -> tuple[str, PendingLogin]:
        pending = PendingLogin(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                               code_verifier=secrets.token_urlsafe(64))
        client = self._client()
        url, _ = client.create_authorization_url(
            self.metadata()["authorization_endpoint"], state=pending.state,
            code_verifier=pending.code_verifier, nonce=pending.nonce)
        return url, pending

    def _client(self) -> OAuth2Client:
        return OAuth2Client(self.provider.client_id, self.provider.client_secret,
                            scope=self.provider.scope, redirect_uri=self.redirect_uri,
                            code_challenge_method="S256",
                            token_endpoint_auth_method="client_secret_basic",  # noqa: S106
                            timeout=10, verify=self.tls or True)

    def complete(self, pending: PendingLogin, params: Mapping[str, str]) -> Identity:
        if params.get("error"):
            raise LoginError("provider_error", "sign-in was cancelled or refused by your "
                                               "agency's sign-in service")
        if not hmac.compare_digest(params.get("state", ""), pending.state):
            raise LoginError("state_mismatch", "this sign-in link is not the one we started")
        code = params.get("code")
        if not code:
            raise LoginError("missing_code", "the sign-in service sent no authorization code")
        metadata = self.metadata()
        client = self._client()
        try:
            with client:
                token = client.fetch_token(metadata["token_endpoint"], code=code,
                                           code_verifier=pending.code_verifier,
                                           grant_type="authorization_code")
        except (OAuthError, OAuth2Error, httpx2.HTTPError, ValueError) as exc:
            raise LoginError("token_request_failed",
                             "the sign-in service refused to complete the sign-in") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise LoginError("missing_id_token", "the sign-in service sent no identity token")
        claims = self.validate_id_token(id_token, pending.nonce)
        userinfo: dict[str, Any] = {}
        if metadata.get("userinfo_endpoint") and token.get("access_token"):
            userinfo = self._get_json(
                metadata["userinfo_endpoint"],
                headers={"Authorization": f"Bearer {token['access_token']}"})
            # OpenID Connect Core 5.3.2: the sub in the UserInfo response must match.
            if userinfo.get("sub") != claims["sub"]:
                raise LoginError("userinfo_sub_mismatch",
                                 "the sign-in service's answers did not agree")
        merged = {**userinfo, **claims}
        groups = merged.get(self.provider.groups_claim) or []
        if isinstance(groups, str):
            groups = [groups]
        organization = self.provider.organization or (
            merged.get(self.provider.organization_claim) if self.provider.organization_claim
            else None)
        return Identity(issuer=self.provider.issuer, subject=str(claims["sub"]),
                        email=str(merged.get("email") or ""),
                        name=str(merged.get("name") or merged.get("email") or ""),
                        groups=tuple(str(g) for g in groups),
                        organization=str(organization) if organization else None,
                        id_token=id_token)

    def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), algorithms=ALLOWED_ALGORITHMS)
            except InvalidKeyIdError:
                # An unknown key id: the provider may have rotated keys. Refetch once.
                decoded = jwt.decode(id_token, self._key_set(refresh=True),
                                     algorithms=ALLOWED_ALGORITHMS)
            now = int(self.clock())
            registry = jwt.JWTClaimsRegistry(
                now=now, leeway=CLOCK_SKEW_SECONDS,
                iss={"essential": True, "value": self.provider.issuer},
                sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce})
            registry.validate(decoded.claims)
        except (JoseError, ValueError, KeyError) as exc:
            raise LoginError("invalid_id_token", "the identity token could not be verified") \
                from exc
        claims = dict(decoded.claims)
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.provider.client_id not in audiences:
            raise LoginError("invalid_id_token", "the identity token is not for this portal")
        if len(audiences) > 1 and claims.get("azp") != self.provider.client_id:
            raise LoginError("invalid_id_token", "the identity token is not for this portal")
        if not isinstance(claims.get("iat"), int) or claims["iat"] < now - MAX_ID_TOKEN_AGE_SECONDS:
            raise LoginError("invalid_id_token", "the identity token is too old")
        if not claims.get("sub"):
            raise LoginError("invalid_id_token", "the identity token names nobody")
        return claims
