"""Litestar's CSRF middleware, answering 403 instead of 500 for a token that is not ASCII.

Litestar compares tokens with `secrets.compare_digest`, which raises TypeError on a string with
non-ASCII characters, so a valid token with one such character appended answered 500 on every
form (litestar 2.x, `CSRFMiddleware._decode_csrf_token`). A token is hex, so anything else is
simply not a match."""

from __future__ import annotations

from litestar.middleware.csrf import CSRFMiddleware


class PortalCSRFMiddleware(CSRFMiddleware):
    def _csrf_tokens_match(self, request_csrf_token: str, cookie_csrf_token: str) -> bool:
        if not (request_csrf_token.isascii() and cookie_csrf_token.isascii()):
            return False
        return super()._csrf_tokens_match(request_csrf_token, cookie_csrf_token)
