"""Builds the services from settings, once per process (CLI command or web app)."""

from __future__ import annotations

from dataclasses import dataclass

from portal.config import Settings
from portal.policy.casbin_policy import CasbinRolePolicy
from portal.services.access import AccessService
from portal.services.audit import AuditLog


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    policy: CasbinRolePolicy
    audit: AuditLog
    access: AccessService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        policy = CasbinRolePolicy(settings.policies_dir)
        audit = AuditLog(settings)
        return cls(settings, policy, audit, AccessService(policy, audit))
