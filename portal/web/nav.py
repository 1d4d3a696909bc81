"""The staff navigation: each link shows only where the page behind it would let the user in,
by the same checks those pages make (role policy, not role names in templates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.db import models as m
from portal.db import repositories as repo
from portal.services import admin as admin_service
from portal.services import compliance as compliance_service
from portal.services import referrals as rs
from portal.services import workspace as ws
from portal.services.wiring import Services


def links_for(services: Services, user: m.StaffUser) -> frozenset[str]:
    """The names of the staff pages this user may open."""
    shown = {
        "caseload": ws.works_with_participants(services, repo.actor(user)),
        "referrals": rs.is_referrer(user) or rs.is_case_manager(user),
        "compliance": compliance_service.may_review(services, user),
        "admin": admin_service.is_org_admin(user),
        "break_glass": ws.may_break_glass(services, user),
    }
    return frozenset(name for name, allowed in shown.items() if allowed)


def staff_nav(ctx: Mapping[str, Any]) -> frozenset[str]:
    """Template callable: `staff_nav()` in a template rendered with a staff `user`."""
    user = ctx.get("user")
    if not isinstance(user, m.StaffUser):
        return frozenset()
    return links_for(ctx["request"].app.state.services, user)
