"""A signing OpenID issuer written for the tests: it serves real HTTP and signs whatever ID token
a test asks for, so that the relying party's checks can be attacked one by one."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class ForgedOP:
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(
        2048, parameters={"kid": "k1"}, private=True))
    # What the token endpoint answers: a function of (claims defaults) -> id_token string.
    make_id_token: Callable[[dict[str, Any]], str] | None = None
    userinfo_sub: str | None = None
    # code -> (PKCE challenge, nonce), registered by the test for each authorization
    challenges: dict[str, tuple[str, str]] = field(default_factory=dict)
    jwks_fetches: int = 0
    client_id: str = "forged-client"
    client_secret: str = "forged-secret"
    issuer: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> ForgedOP:
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/.well-known/openid-configuration":
                    self._json(200, {
                        "issuer": op.issuer, "authorization_endpoint": f"{op.issuer}/authorize",
                        "token_endpoint": f"{op.issuer}/token",
                        "userinfo_endpoint": f"{op.issuer}/userinfo",
                        "end_session_endpoint": f"{op.issuer}/logout",
                        "jwks_uri": f"{op.issuer}/jwks", "response_types_supported": ["code"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "subject_types_supported": ["public"]})
                elif path == "/jwks":
                    op.jwks_fetches += 1
                    self._json(200, {"keys": [op.key.as_dict(private=False)]})
                elif path == "/userinfo":
                    self._json(200, {"sub": op.userinfo_sub or "alice",
                                     "email": "alice@harbor-lead.example"})
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                auth = self.headers.get("authorization", "")
                expected = base64.b64encode(
                    f"{op.client_id}:{op.client_secret}".encode()).decode()
                if auth != f"Basic {expected}":
                    self._json(401, {"error": "invalid_client"})
                    return
                code = form.get("code", "")
                if code not in op.challenges:
                    self._json(400, {"error": "invalid_grant"})
                    return
                challenge, nonce = op.challenges.pop(code)
                verifier = form.get("code_verifier", "")
                computed = base64.urlsafe_b64encode(
                    hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if computed != challenge:
                    self._json(400, {"error": "invalid_grant",
                                     "error_description": "PKCE verification failed"})
                    return
                now = int(time.time())
                claims = {"iss": op.issuer, "sub": "alice", "aud": op.client_id, "iat": now,
                          "exp": now + 300, "nonce": nonce, "email": "alice@harbor-lead.example",
                          "name": "Alice Example", "groups": ["lead-case-managers"],
                          "organization": "harbor-lead"}
                token = (op.make_id_token or op.sign)(claims)
                self._json(200, {"access_token": "at-" + code, "token_type": "Bearer",
                                 "expires_in": 300, "id_token": token})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None,
             header: dict[str, Any] | None = None) -> str:
        key = key or self.key
        return jwt.encode(header or {"alg": "RS256", "kid": key.kid}, claims, key)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
