"""Bearer access tokens for the JSON API: a JWT from one of the configured identity providers,
checked against that provider's published keys, naming an existing, active staff account.

The checks: a compact JWS signed with an allowed asymmetric algorithm (never "none", never HMAC)
by a key in the issuer's JWKS; ``iss`` exactly a configured issuer; ``exp`` in the future and
``iat`` not in the future (a minute's leeway either way), and no more than MAX_LIFETIME_SECONDS
between them; ``sub`` present; the portal's client id in ``aud`` (RFC 9068 section 4: ``azp``
alone does not make a token meant for another API good here); and not an ID token (no
``nonce``, no ``typ: ID``): ID tokens travel in browser redirects (the sign-out hint), so they
must not work as API credentials. The subject must be an active staff account already known for
that issuer: the API never creates accounts.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import models as m
from portal.domain.vocabulary import StaffStatus

CLOCK_SKEW_SECONDS = 60
# The longest-lived access token accepted (providers issue minutes to an hour; a day at most).
MAX_LIFETIME_SECONDS = 24 * 3600
MAX_TOKEN_LENGTH = 16_384
# Header "typ" values an access token may carry (RFC 9068 and the common plain "JWT").
ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})


class TokenRejected(Exception):
    """The token does not authenticate anyone. ``code`` is for the log; ``message`` is safe to
    send back (it never says which account or key was involved)."""

    def __init__(self, code: str, message: str = "the access token is not valid") -> None:
        super().__init__(code)
        self.code = code
        self.message = message


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched: not the caller's fault, try again later."""


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One configured provider: its issuer, the portal's client id there, and its key set
    (``keys(refresh)``; ``refresh=True`` asks for a rate-limited refetch after a key rotation).
    ``keys`` raises KeysUnavailable when the provider cannot be reached."""

    issuer: str
    client_id: str
    keys: Callable[[bool], KeySet]


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    issuer: str
    subject: str
    claims: dict[str, Any]
    fingerprint: str  # a short hash of the token, for correlating audit events


def bearer_token(authorization: str | None) -> str | None:
    """The token from an ``Authorization: Bearer`` header; None when the header is absent.
    Any other scheme, or an empty token, is rejected."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise TokenRejected("malformed_header", "send 'Authorization: Bearer <access token>'")
    return token


def verify(token: str, issuers: Sequence[TrustedIssuer], *,
           algorithms: Collection[str], now: float | None = None) -> VerifiedToken:
    """The verified claims of an access token, or TokenRejected."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("too_long")
    try:
        unverified = jws.extract_compact(token.encode("ascii"))
        header = unverified.protected
        payload = json.loads(unverified.payload or b"")
    except (JoseError, ValueError, TypeError, UnicodeError):
        raise TokenRejected("malformed_token") from None
    if not isinstance(payload, dict) or not isinstance(header, dict):
        raise TokenRejected("malformed_token")
    if header.get("alg") not in algorithms:
        raise TokenRejected("algorithm_not_allowed")
    issuer = next((i for i in issuers if i.issuer == payload.get("iss")), None)
    if issuer is None:
        raise TokenRejected("unknown_issuer")
    try:
        try:
            decoded = jwt.decode(token, issuer.keys(False), algorithms=algorithms)
        except InvalidKeyIdError:
            # An unknown key id: the provider may have rotated its keys. Refetch (rate-limited).
            decoded = jwt.decode(token, issuer.keys(True), algorithms=algorithms)
        at = int(time.time() if now is None else now)
        jwt.JWTClaimsRegistry(
            now=at, leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": issuer.issuer},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRejected(f"invalid_token:{type(exc).__name__}") from None
    claims = dict(decoded.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if issuer.client_id not in audiences:
        raise TokenRejected("wrong_audience", "the access token is not for this portal")
    lifetime = claims["exp"] - claims["iat"]
    if not isinstance(lifetime, int | float) or lifetime > MAX_LIFETIME_SECONDS:
        raise TokenRejected("too_long_lived", "the access token lives too long")
    token_type = decoded.header.get("typ")
    if ("nonce" in claims or claims.get("typ") == "ID"
            or (token_type is not None and str(token_type).lower() not in ACCESS_TOKEN_TYPES)):
        raise TokenRejected("not_an_access_token", "send an access token, not an ID token")
    return VerifiedToken(issuer=issuer.issuer, subject=str(claims["sub"]), claims=claims,
                         fingerprint=hashlib.sha256(token.encode()).hexdigest()[:13])


def staff_for(session: Session, token: VerifiedToken) -> m.StaffUser:
    """The active staff account the token names (no account is ever created here)."""
    user = session.scalar(select(m.StaffUser).where(m.StaffUser.issuer == token.issuer,
                                                    m.StaffUser.subject == token.subject))
    if user is None:
        raise TokenRejected("unknown_user", "no portal account for this token; sign in to the "
                                            "portal once, or ask your administrator")
    if user.status != StaffStatus.ACTIVE.value:
        raise TokenRejected("suspended", "this portal account is suspended")
    return user
