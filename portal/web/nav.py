"""The staff navigation: each link shows only where the page behind it would let the user in,
by the same checks those pages make (role policy, not role names in templates). The
participant-page links (consents, care team) say what the role may do; the care team is
checked by the page itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.admin import service as admin_service
from portal.compliance import console
from portal.db import models as m
from portal.db import repositories as repo
from portal.domain.permissions import Permission
from portal.kernel.access import user_may
from portal.kernel.wiring import Services
from portal.referrals import service as rs
from portal.workspace import service as ws


def links_for(services: Services, user: m.StaffUser) -> frozenset[str]:
    """The names of the staff pages this user may open."""
    shown = {
        "caseload": ws.works_with_participants(services, repo.actor(user)),
        "referrals": rs.is_referrer(services, user) or rs.decides_referrals(services, user),
        "compliance": console.may_review(services, user),
        "admin": admin_service.is_org_admin(services, user),
        "break_glass": ws.may_break_glass(services, user),
        "consents": user_may(services.policy, user, Permission.CONSENT_VIEW),
        "care_team": user_may(services.policy, user, Permission.CARE_TEAM_MANAGE),
        "exit": user_may(services.policy, user, Permission.PARTICIPANT_EXIT),
        "disposition": user_may(services.policy, user, Permission.DISPOSITION_CREATE),
    }
    return frozenset(name for name, allowed in shown.items() if allowed)


def staff_nav(ctx: Mapping[str, Any]) -> frozenset[str]:
    """Template callable: `staff_nav()` in a template rendered with a staff `user`."""
    user = ctx.get("user")
    if not isinstance(user, m.StaffUser):
        return frozenset()
    return links_for(ctx["request"].app.state.services, user)


def home_for(services: Services, user: m.StaffUser) -> str:
    """Where a user lands after sign-in: the work their roles are for."""
    links = links_for(services, user)
    if "caseload" in links or not links & {"compliance", "admin"}:
        return "/staff"
    return "/compliance/" if "compliance" in links else "/admin"
