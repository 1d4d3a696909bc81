"""A small local certificate authority and one TLS server certificate signed by it, for a
self-contained stack: in docker-compose.yml Keycloak serves HTTPS with the server certificate
and the portal trusts the CA (PORTAL_OIDC_CA_FILE) for its calls to Keycloak.

The CA's private key is never written anywhere: it signs the one server certificate and is
dropped, so nothing else can ever be issued under this CA. Renewing makes a new CA as well.
A real deployment uses certificates from its own CA instead (deploy/README.md).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
SERVER_CERT = "server.crt"
SERVER_KEY = "server.key"
CA_DAYS = 3650
SERVER_DAYS = 365
# Certificates that expire sooner than this are made anew (on the next start of the stack).
RENEW_DAYS = 30
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

Name = x509.DNSName | x509.IPAddress


class LocalTLSError(ValueError):
    """A name that cannot go into a certificate."""


def subject_names(names: Sequence[str]) -> list[Name]:
    """Each name as a subjectAltName entry: an IP address, or a DNS name."""
    if not names:
        raise LocalTLSError("name at least one host name or address for the certificate")
    entries: list[Name] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        labels = name.removesuffix(".").split(".")
        if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise LocalTLSError(f"{name!r} is neither a host name nor an IP address")
        entries.append(x509.DNSName(name.lower().rstrip(".")))
    return entries


def ensure(ca_dir: Path, server_dir: Path, names: Sequence[str], *,
           now: dt.datetime | None = None) -> bool:
    """Make sure CA_DIR/ca.crt and SERVER_DIR/server.crt + server.key exist, agree, cover
    NAMES and are valid for at least RENEW_DAYS more; otherwise write new ones. True when new
    files were written, False when the existing ones are kept."""
    wanted = subject_names(names)
    now = now or dt.datetime.now(dt.UTC)
    if _current(ca_dir, server_dir, wanted, now):
        return False
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LEAD portal stack"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "LEAD portal local CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=CA_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
              encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    first = names[0].lower().rstrip(".")
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]))
              .issuer_name(ca_name)
              .public_key(key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(
                  digital_signature=True, content_commitment=False, key_encipherment=False,
                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                  crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.SubjectAlternativeName(wanted), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                  ca_ski), critical=False)
              .sign(ca_key, hashes.SHA256()))
    # The key first and the CA last: a run stopped half way leaves files that do not agree,
    # which the next run replaces.
    _write(server_dir / SERVER_KEY, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o640)
    _write(server_dir / SERVER_CERT, server.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(ca_dir / CA_CERT, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    return True


def _current(ca_dir: Path, server_dir: Path, wanted: list[Name], now: dt.datetime) -> bool:
    try:
        ca = x509.load_pem_x509_certificate((ca_dir / CA_CERT).read_bytes())
        cert = x509.load_pem_x509_certificate((server_dir / SERVER_CERT).read_bytes())
        key = serialization.load_pem_private_key((server_dir / SERVER_KEY).read_bytes(), None)
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = serialization.Encoding.PEM
    renew = now + dt.timedelta(days=RENEW_DAYS)
    return (key.public_key().public_bytes(pem, spki) == cert.public_key().public_bytes(pem, spki)
            and all(name in names for name in wanted)
            and min(ca.not_valid_after_utc, cert.not_valid_after_utc) > renew
            and max(ca.not_valid_before_utc, cert.not_valid_before_utc) <= now)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Replace PATH atomically, created with MODE from the start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode)  # not narrowed by the umask
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
