"""Builds the services from settings, once per process (CLI command or web app)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
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
            # database that is down or not migrated yet is loaded later, on first use.
            try:
                with sessions.begin() as session:
                    vault.ready(session)
            except SQLAlchemyError as exc:
                log.warning("data keys not loaded yet: %s", type(exc).__name__)
        return cls(settings, policy, audit, vault, AccessService(policy, audit))
