"""The compose stack's local CA (`portal keys local-tls`, portal/crypto/local_tls.py), and the
portal verifying a real TLS server with it the way it verifies its identity providers
(PORTAL_OIDC_CA_FILE -> oidc.tls_context -> RelyingParty)."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from joserfc.jwk import ECKey, KeySet

from portal.auth import oidc
from portal.auth.oidc import LoginError, ProviderConfig, RelyingParty
from portal.cli import main
from portal.config import Settings
from portal.crypto import local_tls

NAMES = ["keycloak", "localhost", "127.0.0.1"]


def issue(tmp_path: Path, names: list[str] = NAMES, sub: str = "tls") -> tuple[Path, Path]:
    ca_dir, server_dir = tmp_path / sub / "ca", tmp_path / sub / "keycloak"
    result = CliRunner().invoke(main, ["keys", "local-tls", "--ca-dir", str(ca_dir),
                                       "--server-dir", str(server_dir), *names])
    assert result.exit_code == 0, result.output
    return ca_dir, server_dir


def load(ca_dir: Path, server_dir: Path) -> tuple[x509.Certificate, x509.Certificate, bytes]:
    return (x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes()),
            x509.load_pem_x509_certificate((server_dir / "server.crt").read_bytes()),
            (server_dir / "server.key").read_bytes())


def test_the_server_certificate_is_for_the_names_and_signed_by_the_ca(tmp_path: Path) -> None:
    ca_dir, server_dir = issue(tmp_path)
    ca, cert, key_pem = load(ca_dir, server_dir)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["keycloak", "localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == \
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key() == cert.public_key()
    # Keycloak (uid 1000, group 0) reads the key through its group; nobody else can.
    assert stat.S_IMODE((server_dir / "server.key").stat().st_mode) == 0o640
    assert stat.S_IMODE((ca_dir / "ca.crt").stat().st_mode) == 0o644
    # The CA's private key is not kept anywhere.
    written = sorted(p.name for p in (tmp_path / "tls").rglob("*") if p.is_file())
    assert written == ["ca.crt", "server.crt", "server.key"]


def test_good_certificates_are_kept_and_others_replaced(tmp_path: Path) -> None:
    ca_dir, server_dir = issue(tmp_path)
    first = load(ca_dir, server_dir)
    issue(tmp_path)  # every start of the stack runs it again
    assert load(ca_dir, server_dir) == first
    # Another name, a key that does not match, a certificate near its end: made anew.
    issue(tmp_path, [*NAMES, "sso.internal"])
    second = load(ca_dir, server_dir)
    assert second[0] != first[0] and second[2] != first[2]
    (server_dir / "server.key").write_bytes(first[2])
    assert local_tls.ensure(ca_dir, server_dir, NAMES)
    assert local_tls.ensure(ca_dir, server_dir, NAMES) is False
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=local_tls.SERVER_DAYS
                                                     - local_tls.RENEW_DAYS + 1)
    assert local_tls.ensure(ca_dir, server_dir, NAMES, now=later)


@pytest.mark.parametrize("name", ["", "bad name", "x-.example", "a" * 64, "under_score.example"])
def test_names_that_cannot_be_in_a_certificate(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(main, ["keys", "local-tls", "--ca-dir", str(tmp_path / "c"),
                                       "--server-dir", str(tmp_path / "s"), "localhost", name])
    assert result.exit_code == 2
    assert "neither a host name nor an IP address" in result.stderr
    assert not (tmp_path / "c").exists()


# --- a real TLS server, verified the way the portal verifies its providers ---------------------

KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})


class _Provider(http.server.BaseHTTPRequestHandler):
    issuer = ""

    def do_GET(self) -> None:
        if self.path.endswith("/.well-known/openid-configuration"):
            body = {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/certs",
                    "authorization_endpoint": f"{self.issuer}/auth",
                    "token_endpoint": f"{self.issuer}/token"}
        else:
            body = KeySet([KEY]).as_dict(private=False)
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # the token endpoint
        self.rfile.read(int(self.headers["Content-Length"]))
        data = json.dumps({"access_token": "at-1", "token_type": "Bearer",
                           "expires_in": 60}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(server_dir: Path) -> Iterator[int]:
    """An OpenID provider's discovery and keys over TLS on 127.0.0.1, with the certificate
    and key in SERVER_DIR; yields the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_dir / "server.crt", server_dir / "server.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    _Provider.issuer = f"https://localhost:{port}/realms/lead"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def relying_party(port: int, ca_file: Path | None, host: str = "localhost") -> RelyingParty:
    settings = Settings(env="test", data_dir=ca_file.parent if ca_file else Path("."),
                        oidc_ca_file=ca_file)
    provider = ProviderConfig(id="keycloak", name="K", issuer=_Provider.issuer,
                              client_id="lead-portal", client_secret="s",
                              discovery_url=f"https://{host}:{port}/realms/lead")
    return RelyingParty(provider, "http://localhost:8000/auth/callback/keycloak",
                        tls=oidc.tls_context(settings), require_https=True)


def test_the_portal_verifies_a_tls_server_with_the_local_ca(tmp_path: Path) -> None:
    ca_dir, server_dir = issue(tmp_path)
    with serving(server_dir) as port:
        for host in ("localhost", "127.0.0.1"):
            rp = relying_party(port, ca_dir / "ca.crt", host)
            assert rp.metadata()["issuer"] == f"https://localhost:{port}/realms/lead"
            assert rp._key_set().get_by_kid("k1").thumbprint() == KEY.thumbprint()
            # The token request goes through Authlib's client, configured the same way.
            with rp._client() as client:
                token = client.fetch_token(rp.metadata()["token_endpoint"], code="c",
                                           code_verifier="v" * 43,
                                           grant_type="authorization_code")
            assert token["access_token"] == "at-1"


def refused(rp: RelyingParty) -> str:
    with pytest.raises(LoginError) as refusal:
        rp.metadata()
    assert refusal.value.code == "provider_unreachable"
    return str(refusal.value.__cause__)


def test_without_the_ca_or_for_another_name_the_server_is_not_trusted(tmp_path: Path) -> None:
    ca_dir, server_dir = issue(tmp_path)
    other_ca = issue(tmp_path, sub="other")[0] / "ca.crt"
    with serving(server_dir) as port:
        assert "CERTIFICATE_VERIFY_FAILED" in refused(relying_party(port, None))
        assert "CERTIFICATE_VERIFY_FAILED" in refused(relying_party(port, other_ca))
        assert relying_party(port, ca_dir / "ca.crt").metadata()
    # A certificate for keycloak alone does not do for localhost.
    ca_dir, server_dir = issue(tmp_path, ["keycloak"], sub="keycloak-only")
    with serving(server_dir) as port:
        assert "Hostname mismatch" in refused(relying_party(port, ca_dir / "ca.crt"))
        with relying_party(port, ca_dir / "ca.crt")._client() as client, \
                pytest.raises(httpx2.ConnectError, match="Hostname mismatch"):
            client.fetch_token(f"https://localhost:{port}/realms/lead/token", code="c",
                               grant_type="authorization_code")
