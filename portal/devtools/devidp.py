"""The built-in development OpenID Connect provider: demo personas, for the embedded demo only.

It is built on Authlib's provider classes: an ``AuthorizationServer`` subclass wired to Litestar,
Authlib's ``AuthorizationCodeGrant`` with its ``OpenIDCode`` (nonce required) and
``CodeChallenge`` (PKCE, S256 only, always required) extensions, a ``BearerTokenGenerator`` and a
``ResourceProtector`` with a ``BearerTokenValidator`` for the UserInfo endpoint. ID tokens are
signed with joserfc (Authlib 1.9 itself encodes them with joserfc; ``authlib.jose`` is not used).

The portal signs in through it with exactly the same relying-party code as through a real
provider; the provider only replaces the "who are you" step with a persona picker.

Codes, access tokens and seen nonces live in this process's memory: codes are single use and
expire after 60 seconds, access tokens after an hour. That is fine for the one-worker demo; with
several workers a code issued by one would be unknown to the others, which is one more reason this
provider refuses to run in production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped, unused-ignore]
    AuthorizationCodeGrant,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    JsonPayload,
    JsonRequest,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
    UnsupportedResponseTypeError,
    list_to_scope,
    scope_to_list,
)
from authlib.oauth2.rfc6750 import (  # type: ignore[import-untyped, unused-ignore]
    BearerTokenGenerator,
    BearerTokenValidator,
    InvalidTokenError,
)
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped, unused-ignore]
from authlib.oidc.core import OpenIDCode, UserInfo  # type: ignore[import-untyped, unused-ignore]
from authlib.oidc.core.models import (  # type: ignore[import-untyped, unused-ignore]
    AuthorizationCodeMixin,
)
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from litestar import Request, Response, Router, get, post
from litestar.params import RawBody
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db.models import StaffUser
from portal.domain.vocabulary import StaffStatus
from portal.policy.casbin_policy import load_role_mapping

log = logging.getLogger(__name__)

CLIENT_ID = "lead-portal-dev"
CALLBACK_PATH = "/auth/callback/dev"
CODE_SECONDS = 60
ACCESS_TOKEN_SECONDS = 3600
ID_TOKEN_SECONDS = 300
# How long a nonce is remembered, so that an authorization request cannot be replayed.
NONCE_SECONDS = 3600
SIGNING_ALG = "RS256"
SIGNING_KEY_FILE = "dev-idp-signing.pem"
SCOPES = ["openid", "profile", "email", "groups"]
CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
          "email", "name", "groups", "organization"]
_NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
# Form fields of the persona form that are not part of the authorization request.
_FORM_ONLY = {"persona", "_csrf_token"}


def issuer_of(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/dev-idp"


def dev_client(settings: Settings) -> tuple[str, str, str]:
    """The one client registered at the development provider: (id, secret, redirect URI).

    The secret is derived from the portal's secret key, so the relying party and the provider
    agree on it without any configuration.
    """
    secret = hmac.new(settings.secret_key.encode(), b"dev-idp-client", hashlib.sha256).hexdigest()
    return CLIENT_ID, secret, settings.base_url.rstrip("/") + CALLBACK_PATH


def load_signing_key(path: Path) -> RSAKey:
    """The provider's RSA key (PEM, mode 0600), created on first use; its kid is the RFC 7638
    thumbprint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        key = RSAKey.import_key(path.read_bytes())
    except FileNotFoundError:
        key = RSAKey.generate_key(2048)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: use theirs
            key = RSAKey.import_key(path.read_bytes())
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.as_pem(private=True))
    if not key.is_private:
        raise RuntimeError(f"{path} does not hold a private RSA key; delete it to make a new one")
    return RSAKey.import_key(key.as_dict(private=True),
                             {"kid": key.thumbprint(), "use": "sig", "alg": SIGNING_ALG})


# --- people -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persona:
    """A staff user as the development provider shows and asserts them (a detached snapshot)."""

    id: int
    subject: str
    email: str
    name: str
    organization_slug: str
    organization_name: str
    roles: tuple[str, ...]
    status: str

    @property
    def suspended(self) -> bool:
        return self.status == StaffStatus.SUSPENDED.value


def _persona(user: StaffUser) -> Persona:
    return Persona(id=user.id, subject=user.subject, email=user.email, name=user.display_name,
                   organization_slug=user.organization.slug,
                   organization_name=user.organization.name,
                   roles=tuple(user.role_names), status=user.status)


# --- Authlib models -----------------------------------------------------------------------


@dataclass(frozen=True)
class DevClient(ClientMixin):  # type: ignore[misc, unused-ignore]
    """The relying party (the portal itself): confidential, code flow only."""

    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = scope_to_list(scope) or []
        if "openid" not in requested:
            return None  # this is an OpenID provider: Authlib answers invalid_scope
        return str(list_to_scope([s for s in requested if s in SCOPES]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(self.client_secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc, unused-ignore]
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user_id: int
    nonce: str | None
    auth_time: int
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class AccessToken(TokenMixin):  # type: ignore[misc, unused-ignore]
    access_token: str
    client_id: str
    scope: str
    user_id: int
    issued_at: float
    expires_in: int
    code: str
    revoked: bool = False

    def check_client(self, client: DevClient) -> bool:
        return self.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> int:
        return self.user_id


class MemoryStore:
    """Codes, access tokens and nonces, in this process's memory (single process only)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, AuthorizationCode] = {}
        self._spent: dict[str, float] = {}  # used codes, remembered to detect a replay
        self._tokens: dict[str, AccessToken] = {}
        self._nonces: dict[tuple[str, str], float] = {}

    def _purge(self, now: float) -> None:
        self._codes = {k: c for k, c in self._codes.items() if c.expires_at > now}
        self._spent = {k: t for k, t in self._spent.items() if t > now}
        self._tokens = {k: t for k, t in self._tokens.items() if not t.is_expired()}
        self._nonces = {k: t for k, t in self._nonces.items() if t > now}

    def add_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            now = self.clock()
            self._purge(now)
            self._codes[code.code] = code
            if code.nonce:
                self._nonces[(code.client_id, code.nonce)] = now + NONCE_SECONDS

    def take_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """The code, removed at once: it cannot be used again, even if this attempt fails.

        Presenting a used code again revokes the tokens issued for it (RFC 6749 section 4.1.2).
        """
        with self._lock:
            now = self.clock()
            if code in self._spent:
                for token in self._tokens.values():
                    if token.code == code:
                        token.revoked = True
                return None
            found = self._codes.pop(code, None)
            if found is None:
                return None
            self._spent[code] = now + ACCESS_TOKEN_SECONDS
            if found.expires_at <= now or found.client_id != client_id:
                return None
            return found

    def nonce_seen(self, client_id: str, nonce: str) -> bool:
        with self._lock:
            return self._nonces.get((client_id, nonce), 0) > self.clock()

    def add_token(self, token: AccessToken) -> None:
        with self._lock:
            self._purge(self.clock())
            self._tokens[token.access_token] = token

    def get_token(self, access_token: str) -> AccessToken | None:
        with self._lock:
            return self._tokens.get(access_token)

    def revoke_user(self, user_id: int) -> None:
        with self._lock:
            for token in self._tokens.values():
                if token.user_id == user_id:
                    token.revoked = True


# --- Authlib wired to Litestar ------------------------------------------------------------


@dataclass(frozen=True)
class HttpRequest:
    """What Authlib needs of an HTTP request; built by the handlers from Litestar's request."""

    method: str
    url: str
    headers: Mapping[str, str]
    params: list[tuple[str, str]]
    body: bytes = b""


class _Payload(OAuth2Payload):  # type: ignore[misc, unused-ignore]
    def __init__(self, params: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in params:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _OAuth2Request(OAuth2Request):  # type: ignore[misc, unused-ignore]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.url, headers=http.headers)
        self.payload = _Payload(http.params)
        self._values = dict(self.payload.data)
        self._method = http.method

    @property
    def args(self) -> dict[str, str]:
        return self._values if self._method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self._values if self._method == "POST" else {}


class _JsonPayload(JsonPayload):  # type: ignore[misc, unused-ignore]
    def __init__(self, body: bytes) -> None:
        self._body = body

    @property
    def data(self) -> Any:
        return json.loads(self._body or b"{}")


class _JsonRequest(JsonRequest):  # type: ignore[misc, unused-ignore]
    def __init__(self, http: HttpRequest) -> None:
        super().__init__(http.method, http.url, http.headers)
        self.payload = _JsonPayload(http.body)


class DevAuthorizationServer(AuthorizationServer):  # type: ignore[misc, unused-ignore]
    """Authlib's authorization server with its framework hooks implemented for Litestar."""

    def __init__(self, provider: DevProvider) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.provider = provider
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=_new_access_token, expires_generator=ACCESS_TOKEN_SECONDS))
        self.register_grant(DevAuthorizationCodeGrant, [
            DevOpenIDCode(provider),
            S256CodeChallenge(required=True),
        ])

    def validate_requested_scope(self, scope: str | None) -> None:
        """Unknown scopes are ignored (OpenID Connect Core 3.1.2.1); the client keeps the known
        ones and requires ``openid``."""

    def query_client(self, client_id: str) -> DevClient | None:
        client = self.provider.client
        return client if client_id == client.client_id else None

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.provider.store.add_token(AccessToken(
            access_token=token["access_token"], client_id=request.client.get_client_id(),
            scope=token.get("scope", ""), user_id=request.user.id, issued_at=time.time(),
            expires_in=int(token["expires_in"]), code=request.authorization_code.code))

    def create_oauth2_request(self, request: HttpRequest | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _OAuth2Request(request)

    def create_json_request(self, request: HttpRequest) -> JsonRequest:
        return _JsonRequest(request)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> Response[bytes]:
        media_type = "application/json"
        extra: dict[str, str] = {}
        for name, value in headers:
            if name.lower() == "content-type":
                media_type = value
            else:
                extra[name] = value
        content = json.dumps(body) if isinstance(body, dict) else str(body or "")
        return Response(content.encode(), status_code=status, headers=extra,
                        media_type=media_type)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        log.debug("development provider: %s", name)


def _new_access_token(**_: Any) -> str:
    return secrets.token_urlsafe(32)


class DevAuthorizationCodeGrant(AuthorizationCodeGrant):  # type: ignore[misc, unused-ignore]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic",
                                                        "client_secret_post"]

    @property
    def provider(self) -> DevProvider:
        server: DevAuthorizationServer = self.server
        return server.provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        now = time.time()
        self.provider.store.add_code(AuthorizationCode(
            code=code, client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri, scope=request.scope,
            user_id=request.user.id, nonce=data.get("nonce"), auth_time=int(now),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            expires_at=now + CODE_SECONDS))

    def query_authorization_code(self, code: str, client: DevClient) -> AuthorizationCode | None:
        return self.provider.store.take_code(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing left to do: query_authorization_code already removed the code."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Persona | None:
        persona = self.provider.persona(authorization_code.user_id)
        if persona is None or persona.suspended:
            return None  # suspended since the code was issued: Authlib answers invalid_grant
        return persona


class DevOpenIDCode(OpenIDCode):  # type: ignore[misc, unused-ignore]
    """OpenID Connect for the code grant: nonce required, ID token signed RS256 (joserfc).

    Authlib 1.9 deprecates ``get_jwt_config`` (it warns); its replacements are implemented
    instead: the key, the algorithm, the header (with kid) and the issuer/audience/expiry claims.
    """

    def __init__(self, provider: DevProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return self.provider.store.nonce_seen(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: DevClient) -> RSAKey:
        return self.provider.key

    def get_client_algorithm(self, client: DevClient) -> str:
        return SIGNING_ALG

    def get_encode_header(self, client: DevClient) -> dict[str, str]:
        return {"alg": SIGNING_ALG, "typ": "JWT", "kid": self.provider.kid}

    def get_client_claims(self, client: DevClient) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.provider.issuer, "aud": client.get_client_id(), "iat": now,
                "exp": now + ID_TOKEN_SECONDS}

    def generate_user_info(self, user: Persona, scope: str) -> UserInfo:
        return UserInfo(self.provider.claims(user))


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc, unused-ignore]
    """PKCE for every authorization request, S256 only (Authlib alone would accept a
    confidential client without it, and "plain")."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: DevAuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE with S256 is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class DevBearerTokenValidator(BearerTokenValidator):  # type: ignore[misc, unused-ignore]
    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store

    def authenticate_token(self, token_string: str) -> AccessToken | None:
        return self.store.get_token(token_string)


# --- the provider -------------------------------------------------------------------------


@dataclass
class DevProvider:
    settings: Settings
    sessions: sessionmaker[Session]
    store: MemoryStore = field(default_factory=MemoryStore)

    def __post_init__(self) -> None:
        self.issuer = issuer_of(self.settings)
        self.client = DevClient(*dev_client(self.settings))
        self.key = load_signing_key(self.settings.data_dir / SIGNING_KEY_FILE)
        self.kid = str(self.key.kid)
        mapping = load_role_mapping(self.settings.policies_dir / "role_mapping.csv")
        groups: dict[str, list[str]] = defaultdict(list)
        for group, role in mapping.items():
            groups[role.value].append(group)
        self.groups_of_role = {role: sorted(names) for role, names in groups.items()}
        self.server = DevAuthorizationServer(self)
        self.protector = ResourceProtector()
        self.protector.register_token_validator(DevBearerTokenValidator(self.store))

    def personas(self) -> list[Persona]:
        with self.sessions() as session:
            users = session.scalars(select(StaffUser).where(StaffUser.issuer == self.issuer))
            found = [_persona(user) for user in users]
        return sorted(found, key=lambda p: (p.organization_name, p.name))

    def persona(self, user_id: int) -> Persona | None:
        with self.sessions() as session:
            user = session.get(StaffUser, user_id)
            if user is None or user.issuer != self.issuer:
                return None
            return _persona(user)

    def claims(self, persona: Persona) -> dict[str, Any]:
        groups = sorted({g for role in persona.roles for g in self.groups_of_role.get(role, [])})
        return {"sub": persona.subject, "email": persona.email, "name": persona.name,
                "groups": groups, "organization": persona.organization_slug}

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [SIGNING_ALG],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "claims_supported": CLAIMS,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def is_portal_url(self, url: str) -> bool:
        base = self.settings.base_url.rstrip("/")
        return url == base or url.startswith(base + "/")

    def id_token_subject(self, id_token: str) -> str | None:
        """The subject of an ID token this provider signed (expired or not), else None."""
        try:
            token = jwt.decode(id_token, self.key, algorithms=[SIGNING_ALG])
        except (JoseError, ValueError):
            return None
        if token.claims.get("iss") != self.issuer:
            return None
        sub = token.claims.get("sub")
        return sub if isinstance(sub, str) else None

    def sign_out(self, subject: str) -> None:
        with self.sessions() as session:
            user_id = session.scalar(select(StaffUser.id).where(
                StaffUser.issuer == self.issuer, StaffUser.subject == subject))
        if user_id is not None:
            self.store.revoke_user(user_id)


# --- handlers -----------------------------------------------------------------------------


def _http(request: Request[Any, Any, Any], params: list[tuple[str, str]],
          body: bytes = b"") -> HttpRequest:
    return HttpRequest(method=request.method, url=str(request.url), headers=request.headers,
                       params=params, body=body)


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return []


def _page(name: str, status_code: int = 200, **context: Any) -> Template:
    return Template(f"devidp/{name}", context=context, status_code=status_code,
                    headers=_NO_STORE)


def _error_page(status: int, title: str, detail: str, next_step: str) -> Template:
    return _page("error.html", status, status=status, title=title, detail=detail,
                 next_step=next_step)


def dev_idp_router(settings: Settings, sessions: sessionmaker[Session]) -> Router:
    """The development provider, mounted at /dev-idp. Refuses production and a disabled setting."""
    if settings.is_production:
        raise RuntimeError("The development sign-in provider cannot run in production "
                           "(PORTAL_ENV=production); configure a real OpenID provider instead.")
    if not settings.dev_idp:
        raise RuntimeError("The development sign-in provider is disabled (PORTAL_DEV_IDP=false).")
    provider = DevProvider(settings, sessions)
    server = provider.server

    def authorization_error(error: OAuth2Error) -> Response[Any]:
        """To the client when Authlib has checked its redirect URI, else a page for the user."""
        if isinstance(error, UnsupportedResponseTypeError):
            # Authlib 1.9 swaps this error's message and response type; say it plainly.
            error.description = "Only response_type=code is supported."
        if getattr(error, "redirect_uri", None):
            response: Response[Any] = server.handle_error_response(None, error)
            return response
        status = int(error.status_code)
        reason = error.description or str(error.error).replace("_", " ")
        return _error_page(
            status if 400 <= status < 500 else 400,
            "This sign-in request cannot be completed",
            f"The request from the portal was refused: {reason}",
            "Go back to the portal and start signing in again. If this keeps happening, the "
            "portal's sign-in settings need fixing; tell your administrator.")

    def malformed() -> Response[Any]:
        return _error_page(400, "This sign-in request cannot be completed",
                           "The request from the portal was malformed.",
                           "Go back to the portal and start signing in again.")

    @get("/.well-known/openid-configuration", sync_to_thread=False)
    def discovery() -> Response[dict[str, Any]]:
        return Response(provider.metadata(), headers={"cache-control": "max-age=300"})

    @get("/jwks", sync_to_thread=False)
    def jwks() -> Response[dict[str, Any]]:
        return Response(provider.jwks(), headers={"cache-control": "max-age=300"})

    @get("/authorize", sync_to_thread=True)
    def authorize_page(request: Request[Any, Any, Any]) -> Response[Any]:
        params = list(request.query_params.multi_items())
        try:
            server.get_consent_grant(_http(request, params), end_user=None)
        except OAuth2Error as error:
            return authorization_error(error)
        except ValueError:  # Authlib refuses to echo characters an OAuth error may not hold
            return malformed()
        organizations: dict[str, list[Persona]] = defaultdict(list)
        for persona in provider.personas():
            organizations[persona.organization_name].append(persona)
        return _page("authorize.html", params=params, organizations=organizations,
                     issuer=provider.issuer)

    @post("/authorize", sync_to_thread=True)
    def authorize_submit(request: Request[Any, Any, Any], body: RawBody) -> Response[Any]:
        form = _form(body)
        params = [(k, v) for k, v in form if k not in _FORM_ONLY]
        chosen = [v for k, v in form if k == "persona"]
        try:
            grant = server.get_consent_grant(_http(request, params, body), end_user=None)
        except OAuth2Error as error:
            return authorization_error(error)
        except ValueError:
            return malformed()
        persona = (provider.persona(int(chosen[0])) if len(chosen) == 1 and chosen[0].isascii()
                   and chosen[0].isdigit() and len(chosen[0]) < 10 else None)
        if persona is None:
            return _error_page(400, "Choose a persona", "No demo persona was chosen.",
                               "Go back and press one of the sign-in buttons.")
        if persona.suspended:
            return _error_page(403, "This persona is suspended",
                               f"{persona.name}'s account is suspended, so they cannot sign in.",
                               "Go back and choose another persona.")
        response: Response[Any] = server.create_authorization_response(
            grant.request, grant_user=persona, grant=grant)
        return response

    @post("/token", sync_to_thread=True)
    def token(request: Request[Any, Any, Any], body: RawBody) -> Response[Any]:
        try:
            response: Response[Any] = server.create_token_response(
                _http(request, _form(body), body))
        except OAuth2Error as error:  # raised before Authlib's own handling (insecure transport)
            response = server.handle_error_response(None, error)
        return response

    @get("/userinfo", sync_to_thread=True)
    def userinfo(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            oauth_request = server.create_oauth2_request(_http(request, []))
            access: AccessToken = provider.protector.validate_request(["openid"], oauth_request)
            persona = provider.persona(access.user_id)
            if persona is None or persona.suspended:
                access.revoked = True
                raise InvalidTokenError("The user of this token can no longer sign in.")
        except OAuth2Error as error:
            response: Response[Any] = server.handle_error_response(None, error)
            return response
        return Response(provider.claims(persona), headers=_NO_STORE)

    @get("/logout", sync_to_thread=True)
    def logout(request: Request[Any, Any, Any]) -> Response[Any]:
        query = request.query_params
        hint = query.get("id_token_hint")
        subject = provider.id_token_subject(hint) if hint else None
        if subject:
            provider.sign_out(subject)
        target = query.get("post_logout_redirect_uri")
        # The spec forbids redirecting on a bad request (here: a hint we did not sign).
        if target and provider.is_portal_url(target) and not (hint and subject is None):
            if state := query.get("state"):
                parts = urlsplit(target)
                joined = "&".join(p for p in (parts.query, urlencode({"state": state})) if p)
                target = parts._replace(query=joined).geturl()
            return Response(b"", status_code=302, headers={"location": target, **_NO_STORE})
        return _page("signed_out.html", portal_url=settings.base_url.rstrip("/") + "/")

    return Router(path="/dev-idp", route_handlers=[
        discovery, jwks, authorize_page, authorize_submit, token, userinfo, logout,
    ])
