"""Builds the services from settings, once per process (CLI command or web app)."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.crypto.keys import key_provider
from portal.crypto.vault import Vault
from portal.db.audit_chain import AuditLog
from portal.kernel.access import AccessService
from portal.policy.casbin_policy import CasbinRolePolicy

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    policy: CasbinRolePolicy
    audit: AuditLog
    vault: Vault
    access: AccessService

    @classmethod
    def build(cls, settings: Settings,
              sessions: sessionmaker[Session] | None = None) -> Services:
        policy = CasbinRolePolicy(settings.policies_dir)
        audit = AuditLog(settings)
        vault = Vault(key_provider(settings))
        if sessions is not None:
            # Load (or create) the data keys now, outside any request's transaction; a
            # database that is down or not migrated yet is loaded later, on first use (the
            # app still starts, and /healthz says what is wrong). Anything else, such as a
            # lock held by another transaction, is an error the caller must see.
            try:
                with sessions.begin() as session:
                    vault.ready(session)
            except DBAPIError as exc:
                if not database_not_ready(exc):
                    raise
                log.warning("data keys not loaded yet: %s", type(exc.orig).__name__)
        return cls(settings, policy, audit, vault, AccessService(policy, audit, vault))


# PostgreSQL SQLSTATEs of a database that is not there yet: class 08 (connection exception),
# 57P03 (cannot connect now: starting up), 3D000 (no such database), 42P01 (no such table).
_NOT_READY_SQLSTATES = ("08", "57P03", "3D000", "42P01")


def database_not_ready(exc: DBAPIError) -> bool:
    """Whether the error says the database is unreachable or has no schema yet (rather than,
    say, being locked by another transaction)."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return (str(orig).startswith("no such table")
                or getattr(orig, "sqlite_errorname", "") == "SQLITE_CANTOPEN")
    sqlstate: str | None = getattr(orig, "sqlstate", None)
    if sqlstate is None:
        return True  # psycopg: the server never answered (refused, unknown host, closed)
    return sqlstate.startswith(_NOT_READY_SQLSTATES)
