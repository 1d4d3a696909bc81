"""Ports: the protocols the domain core calls out through (implemented by policy/ and db/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from portal.domain.vocabulary import Purpose, Role, Sector

# Resources the role policy speaks about: every DataCategory value, plus these.
AUDIT_LOG = "audit_log"  # audit metadata (never record contents)
BREAK_GLASS = "break_glass"  # emergency access under 42 CFR 2.51
CONSENT = "consent"  # consent directives (capture, revoke, export)


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """What the role policy says about one (sector, role, resource, action, purpose)."""

    allowed: bool
    # The policy row that decided, as written in policies/policy.csv (None when no row matched:
    # default deny).
    rule: str | None


class RolePolicy(Protocol):
    """May this role, in this sector, do this action on this resource for this purpose?"""

    @property
    def version(self) -> str:
        """A stable hash of the policy files, recorded with every decision."""
        ...

    def check(
        self, sector: Sector, role: Role, resource: str, action: str, purpose: Purpose
    ) -> PolicyVerdict:
        """``action`` is an ``Action`` on a data category, or the action of a
        ``portal.domain.permissions.Permission`` on its resource."""
        ...
