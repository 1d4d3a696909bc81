"""One typed settings object, read from PORTAL_* environment variables, given to create_app()."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

Environment = Literal["development", "test", "production"]

# A recognisable default secret: production refuses to start with it.
DEFAULT_SECRET_KEY = "development-only-secret-do-not-use-in-production"  # noqa: S105
PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True, slots=True)
class Settings:
    """Every field is documented in the README's configuration table (same order)."""

    # PORTAL_ENV: development | test | production.
    env: Environment = "development"
    # PORTAL_DATA_DIR: where the SQLite file, development keys and exports live.
    data_dir: Path = Path("./var")
    # PORTAL_DATABASE_URL: SQLAlchemy URL; default sqlite:///<data_dir>/portal.db.
    database_url: str = ""
    # PORTAL_SECRET_KEY: signs session cookies and CSRF tokens.
    secret_key: str = DEFAULT_SECRET_KEY
    # PORTAL_DEV_IDP: offer the built-in development sign-in (demo personas).
    dev_idp: bool = True
    # PORTAL_HOST / PORTAL_PORT: where `portal serve` listens.
    host: str = "127.0.0.1"
    port: int = 8000
    # PORTAL_BASE_URL: the public URL (used for OIDC redirect URIs).
    base_url: str = ""
    # PORTAL_AUDIT_SIGNING_KEY_FILE: Ed25519 private key (PEM) that signs audit checkpoints.
    audit_signing_key_file: Path | None = None
    # PORTAL_AUDIT_RETIRED_KEYS_FILE: public keys of earlier signing keys (JSON lines), kept by
    # `portal keys rotate-audit-key`; default <signing key file>.retired.jsonl.
    audit_retired_keys_file: Path | None = None
    # PORTAL_AUDIT_CHECKPOINT_EVERY / _SECONDS: sign a checkpoint every N events or T seconds.
    audit_checkpoint_every: int = 1000
    audit_checkpoint_seconds: int = 300
    # PORTAL_AUDIT_LOCK_TIMEOUT_SECONDS: the longest a request waits for the audit chain's lock
    # (PostgreSQL) before it is refused with 503, so one stuck transaction cannot stall all.
    audit_lock_timeout_seconds: int = 5
    # PORTAL_DATA_KEY_FILE: key-encryption key for field encryption at rest.
    data_key_file: Path | None = None
    # PORTAL_OIDC_PROVIDERS: JSON file listing the agencies' OpenID providers.
    oidc_providers_file: Path | None = None
    # PORTAL_OIDC_CA_FILE: extra CA certificates (PEM) trusted, besides the system's, for the
    # portal's own calls to the providers (discovery, keys, tokens, user info).
    oidc_ca_file: Path | None = None
    # PORTAL_SESSION_IDLE_MINUTES / PORTAL_SESSION_ABSOLUTE_HOURS: session lifetimes.
    session_idle_minutes: int = 15
    session_absolute_hours: int = 8
    # PORTAL_LOGIN_RATE_LIMIT: sign-in requests a minute per client address. One sign-in
    # through a provider takes about five requests, and an agency's staff may share one
    # address; passphrase guessing is stopped per account anyway.
    login_rate_limit: int = 120
    # PORTAL_BREAK_GLASS_MINUTES: default length of an emergency access grant (at most 240).
    break_glass_minutes: int = 60
    # PORTAL_POLICIES_DIR: the casbin model, policy rows and role mapping.
    policies_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "policies")
    # PORTAL_TIMEZONE: the program's time zone (IANA name), for times shown to participants
    # and the "odd hours" oversight flag; everything is stored in UTC.
    timezone: str = "UTC"
    # PORTAL_TRUSTED_PROXIES: addresses or networks of the reverse proxies whose
    # X-Forwarded-For / X-Forwarded-Proto are believed; empty: none (the peer is the client).
    trusted_proxies: str = ""
    # Not a setting: whether base_url was derived from host and port (PORTAL_BASE_URL unset).
    base_url_derived: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite:///{(self.data_dir / 'portal.db').as_posix()}"
            )
        if not self.base_url:
            object.__setattr__(self, "base_url", f"http://{self.host}:{self.port}")
            object.__setattr__(self, "base_url_derived", True)
        try:
            url = make_url(self.database_url)
        except ArgumentError as exc:
            raise SettingsError(
                "PORTAL_DATABASE_URL", f"not a valid SQLAlchemy URL ({exc})"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise SettingsError(
                "PORTAL_DATABASE_URL", "only sqlite:// and postgresql+psycopg:// are supported"
            )
        for name in ("audit_checkpoint_every", "audit_checkpoint_seconds",
                     "audit_lock_timeout_seconds",
                     "session_idle_minutes", "session_absolute_hours", "login_rate_limit",
                     "break_glass_minutes"):
            if getattr(self, name) <= 0:
                raise SettingsError(_var(name), "must be a positive number")
        if self.break_glass_minutes > 240:
            raise SettingsError("PORTAL_BREAK_GLASS_MINUTES", "at most 240 (4 hours)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError("PORTAL_TIMEZONE", f"not a known time zone ({self.timezone!r}); "
                                                   "use a name such as America/Chicago") from None
        host = urlsplit(self.base_url).hostname or ""
        if not self.base_url.startswith("https://") and host not in LOOPBACK:
            # Session cookies are Secure except on plain-http loopback (development).
            raise SettingsError("PORTAL_BASE_URL", "must be https:// unless the portal is "
                                                   "reached on this machine only (loopback)")
        self.proxy_networks()  # refuses an entry that is not an address or network
        if self.env == "production":
            self._refuse_unsafe_production()

    def serving(self, *, host: str | None = None, port: int | None = None) -> Settings:
        """These settings as served on HOST:PORT (`--host` / `--port` of `portal serve` and
        `portal demo`). One source of truth for the address: the base URL, and with it the
        development provider's issuer and every redirect URI, follows the served address
        unless PORTAL_BASE_URL was set, which always wins (a proxy's public address)."""
        return replace(self, host=host or self.host, port=port or self.port,
                       base_url="" if self.base_url_derived else self.base_url)

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """PORTAL_TRUSTED_PROXIES as networks (a bare address is a network of one)."""
        networks = []
        for entry in filter(None, (e.strip() for e in self.trusted_proxies.split(","))):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise SettingsError("PORTAL_TRUSTED_PROXIES",
                                    f"{entry!r} is not an IP address or network "
                                    "(for example 10.0.0.5 or 10.0.0.0/24)") from None
        return networks

    def _refuse_unsafe_production(self) -> None:
        if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32:
            raise SettingsError(
                "PORTAL_SECRET_KEY", "production needs its own secret of at least 32 characters"
            )
        if self.dev_idp:
            raise SettingsError(
                "PORTAL_DEV_IDP",
                "the development sign-in cannot run in production; set it to false "
                "and configure PORTAL_OIDC_PROVIDERS",
            )
        if self.is_sqlite:
            raise SettingsError(
                "PORTAL_DATABASE_URL", "production needs PostgreSQL, not SQLite"
            )
        if self.audit_signing_key_file is None:
            raise SettingsError(
                "PORTAL_AUDIT_SIGNING_KEY_FILE",
                "production needs an audit signing key (create one with "
                "`portal keys generate-audit-key FILE`)",
            )
        if self.data_key_file is None:
            raise SettingsError(
                "PORTAL_DATA_KEY_FILE",
                "production needs a data key-encryption key (create one with "
                "`portal keys generate-data-key FILE`)",
            )

    @property
    def url(self) -> URL:
        return make_url(self.database_url)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def https(self) -> bool:
        """Served over https: cookies are Secure and browsers are told to stay on https (only
        plain-http development on loopback is not)."""
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from PORTAL_<FIELD> (upper case); raise SettingsError on bad input."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if not f.init:
                continue
            var = _var(f.name)
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(var, f.name, raw)
        return cls(**values)  # type: ignore[arg-type]


_ENVIRONMENTS = ("development", "test", "production")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}
_INTS = {"port", "audit_checkpoint_every", "audit_checkpoint_seconds",
         "audit_lock_timeout_seconds", "session_idle_minutes",
         "session_absolute_hours", "login_rate_limit", "break_glass_minutes"}
_PATHS = {"data_dir", "audit_signing_key_file", "audit_retired_keys_file", "data_key_file",
          "oidc_providers_file", "oidc_ca_file", "policies_dir"}


def _var(name: str) -> str:
    return {"oidc_providers_file": "PORTAL_OIDC_PROVIDERS"}.get(name, f"PORTAL_{name.upper()}")


def _parse(var: str, name: str, raw: str) -> object:
    if name == "env":
        if raw not in _ENVIRONMENTS:
            raise SettingsError(var, f"must be one of {', '.join(_ENVIRONMENTS)}, not {raw!r}")
        return raw
    if name == "dev_idp":
        if raw.lower() not in _BOOLS:
            raise SettingsError(var, f"must be true or false, not {raw!r}")
        return _BOOLS[raw.lower()]
    if name in _INTS:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(var, f"must be a whole number, not {raw!r}") from None
    if name in _PATHS:
        return Path(raw)
    return raw
