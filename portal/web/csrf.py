"""CSRF tokens bound to the browser's session (double submit, signed, per session).

Litestar's CSRF middleware checks that the token in a form (or the `x-csrftoken` header)
matches the CSRF cookie, and that the cookie was signed with the portal's secret. A pair
issued to anyone passes anywhere: someone who can plant cookies in a victim's browser (a
sibling subdomain, a forced sign-in) could plant their own pair too. Here a token also signs
a hash of the session cookie it was issued with, so:

- a token issued to one session is refused in another, and one issued before sign-in (bound
  to no session, like every signed-out browser's) is refused once the session exists;
- after sign-in (the session cookie changes) the old CSRF cookie is stale: the next page
  issues a new one, and a form from before sign-in is refused;
- the session cookie itself never appears in the token, only a hash inside an HMAC.

A token that is not ASCII is simply not a match (403): `secrets.compare_digest` raises on
non-ASCII strings, which answered 500 on every form in Litestar 2.x.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

NONCE_LENGTH = 64  # hex characters


class PortalCSRFMiddleware(CSRFMiddleware):
    def __init__(self, app: ASGIApp, config: CSRFConfig, session_cookie: str) -> None:
        super().__init__(app, config)
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or should_bypass_middleware(
                scope=scope, scopes=self.scopes,
                exclude_opt_key=self.config.exclude_from_csrf_key,
                exclude_path_pattern=self.exclude):
            await self.app(scope, receive, send)
            return
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        binding = _binding(request.cookies.get(self.session_cookie))
        cookie = request.cookies.get(self.config.cookie_name)
        if cookie is not None and not self._valid(cookie, binding):
            cookie = None  # issued to another session, or to none: replaced below
        state = ScopeState.from_scope(scope)
        if request.method in self.config.safe_methods:
            token = state.csrf_token = cookie or self._issue(binding)
            await self.app(scope, receive, self.create_send_wrapper(
                send=send, csrf_cookie=cookie, token=token))
            return
        submitted = request.headers.get(self.config.header_name)
        content_type, _ = request.content_type
        if not submitted and content_type in {RequestEncodingType.URL_ENCODED,
                                              RequestEncodingType.MULTI_PART}:
            submitted = (await request.form()).get("_csrf_token")
        if not (isinstance(submitted, str) and cookie is not None and submitted.isascii()
                and secrets.compare_digest(submitted, cookie)):
            raise PermissionDeniedException("CSRF token verification failed")
        state.csrf_token = submitted
        await self.app(scope, receive, send)

    def _issue(self, binding: str) -> str:
        nonce = secrets.token_hex(NONCE_LENGTH // 2)
        return nonce + self._sign(nonce, binding)

    def _valid(self, token: str, binding: str) -> bool:
        if not token.isascii() or len(token) <= NONCE_LENGTH:
            return False
        nonce, signature = token[:NONCE_LENGTH], token[NONCE_LENGTH:]
        return secrets.compare_digest(signature, self._sign(nonce, binding))

    def _sign(self, nonce: str, binding: str) -> str:
        return hmac.new(self.config.secret.encode(), f"{nonce}.{binding}".encode(),
                        hashlib.sha256).hexdigest()


def _binding(session_cookie: str | None) -> str:
    """What a token is bound to: a hash of the session cookie ("" before sign-in)."""
    if not session_cookie:
        return ""
    return hashlib.sha256(session_cookie.encode("utf-8", "surrogateescape")).hexdigest()
