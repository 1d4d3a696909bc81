"""API bearer tokens: the header, every check of verify() with keys made here, and the staff
account a verified token names."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import api_tokens
from portal.auth.api_tokens import TokenRejected, TrustedIssuer
from portal.auth.oidc import ALLOWED_ALGORITHMS
from portal.db import repositories as repo

ISSUER = "https://idp.example/realms/lead"
CLIENT = "lead-portal"
NOW = 1_900_000_000
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})
ROTATED = ECKey.generate_key("P-256", parameters={"kid": "k2"})


class Keys:
    """An issuer's key set; after a rotation only a refresh sees the new key."""

    def __init__(self) -> None:
        self.current, self.published = KeySet([KEY]), KeySet([KEY])
        self.refreshes = 0

    def __call__(self, refresh: bool) -> KeySet:
        if refresh:
            self.refreshes += 1
            self.current = self.published
        return self.current


@pytest.fixture
def keys() -> Keys:
    return Keys()


def _issuers(keys: Keys) -> list[TrustedIssuer]:
    other = TrustedIssuer("https://other.example", "x", lambda refresh: KeySet([ROTATED]))
    return [other, TrustedIssuer(ISSUER, CLIENT, keys)]


def _token(key: Any = KEY, alg: str = "ES256", header: dict[str, Any] | None = None,
           **changes: Any) -> str:
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "maria", "aud": ["account", CLIENT],
                              "azp": CLIENT, "iat": NOW, "exp": NOW + 300}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode({"alg": alg, "kid": key.kid, **(header or {})}, claims, key,
                      algorithms=[alg])


def _verify(token: str, keys: Keys, now: float = NOW) -> api_tokens.VerifiedToken:
    return api_tokens.verify(token, _issuers(keys), algorithms=ALLOWED_ALGORITHMS, now=now)


def _code(token: str, keys: Keys, now: float = NOW) -> str:
    with pytest.raises(TokenRejected) as rejected:
        _verify(token, keys, now)
    return rejected.value.code


def test_the_bearer_header() -> None:
    assert api_tokens.bearer_token(None) is None
    assert api_tokens.bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert api_tokens.bearer_token("  bearer   abc ") == "abc"
    for bad in ("Basic dXNlcjpwdw==", "Bearer", "Bearer ", "Bearer a b", "abc"):
        with pytest.raises(TokenRejected) as rejected:
            api_tokens.bearer_token(bad)
        assert rejected.value.code == "malformed_header"
        assert "Bearer <access token>" in rejected.value.message


def test_a_good_access_token(keys: Keys) -> None:
    token = _token()
    verified = _verify(token, keys)
    assert (verified.issuer, verified.subject) == (ISSUER, "maria")
    assert verified.claims["azp"] == CLIENT and len(verified.fingerprint) == 13
    # The audience may name the portal instead of azp; RFC 9068's typ is fine.
    assert _verify(_token(aud=[CLIENT, "x"], azp=None, header={"typ": "at+jwt"}), keys)
    # Within a minute's skew either way.
    assert _verify(_token(), keys, now=NOW + 300 + 59)
    assert _verify(_token(iat=NOW + 59), keys)
    assert keys.refreshes == 0


def test_a_rotated_key_is_fetched_once_on_an_unknown_kid(keys: Keys) -> None:
    keys.published = KeySet([KEY, ROTATED])
    assert _verify(_token(ROTATED), keys).subject == "maria"
    assert keys.refreshes == 1


@pytest.mark.parametrize(("make", "code"), [
    (lambda: "x" * (api_tokens.MAX_TOKEN_LENGTH + 1), "too_long"),
    (lambda: "not a token", "malformed_token"),
    (lambda: "a.b.c", "malformed_token"),
    (lambda: _token(OctKey.generate_key(256, parameters={"kid": "k1"}), "HS256"),
     "algorithm_not_allowed"),
    (lambda: _token(iss="https://evil.example"), "unknown_issuer"),
    (lambda: _token(iss=None), "unknown_issuer"),
    # Signed by a key the issuer never published (same kid).
    (lambda: _token(ECKey.generate_key("P-256", parameters={"kid": "k1"})),
     "invalid_token:BadSignatureError"),
    (lambda: _token(RSAKey.generate_key(2048, parameters={"kid": "k9"}), "RS256"),
     "invalid_token:InvalidKeyIdError"),
    (lambda: _token(exp=NOW - 61), "invalid_token:ExpiredTokenError"),
    (lambda: _token(iat=NOW + 61), "invalid_token:InvalidClaimError"),
    (lambda: _token(sub=None), "invalid_token:MissingClaimError"),
    (lambda: _token(exp=None), "invalid_token:MissingClaimError"),
    (lambda: _token(aud="account", azp="someone-else"), "wrong_audience"),
    (lambda: _token(aud="other-api"), "wrong_audience"),  # azp alone is not enough
    (lambda: _token(exp=NOW + 25 * 3600), "too_long_lived"),
    (lambda: _token(nonce="n-1"), "not_an_access_token"),
    (lambda: _token(typ="ID"), "not_an_access_token"),
    (lambda: _token(header={"typ": "id_token+jwt"}), "not_an_access_token"),
])
def test_rejected_tokens(keys: Keys, make: Any, code: str) -> None:
    assert _code(make(), keys) == code


def test_a_payload_that_is_not_an_object(keys: Keys) -> None:
    token = jws.serialize_compact({"alg": "ES256", "kid": "k1"}, b"[1, 2]", KEY)
    assert _code(token, keys) == "malformed_token"


def test_the_messages_never_name_the_account() -> None:
    assert TokenRejected("x").message == "the access token is not valid"
    assert str(TokenRejected("some_code")) == "some_code"


def test_the_staff_account_a_token_names(demo: sessionmaker[Session]) -> None:
    def token_for(issuer: str, subject: str) -> api_tokens.VerifiedToken:
        return api_tokens.VerifiedToken(issuer=issuer, subject=subject, claims={},
                                        fingerprint="f")

    issuer = "http://127.0.0.1:8000/dev-idp"
    maria = "maria.lopez@harbor-lead.example"
    with demo.begin() as session:
        assert api_tokens.staff_for(session, token_for(issuer, maria)).email == maria
        for wrong in (token_for(issuer, "nobody"), token_for(ISSUER, maria)):
            with pytest.raises(TokenRejected) as rejected:
                api_tokens.staff_for(session, wrong)
            assert rejected.value.code == "unknown_user"
        user = repo.staff_by_email(session, maria)
        assert user is not None
        user.status = "suspended"
        session.flush()
        with pytest.raises(TokenRejected) as rejected:
            api_tokens.staff_for(session, token_for(issuer, maria))
        assert rejected.value.code == "suspended"
        assert rejected.value.message == "this portal account is suspended"

