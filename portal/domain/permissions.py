"""The one vocabulary of what staff may do besides reading participant information, and the one
function that answers it from the role policy (rows in policies/policy.csv).

Participant information (records, goals, identifying details) is decided by ``decide()``; every
other action (refer, manage the care team, capture or sign a consent, review the audit log...)
is a ``Permission`` here, answered by ``permitted()`` from a policy row, never by a role name in
code or a template. Where an action concerns one participant, the relationship part (on the
care team now) is ``on_care_team``, the same predicate ``decide()`` uses.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from portal.domain.decision import (
    Actor,
    CareTeamLink,
    ParticipantContext,
    role_verdict,
)
from portal.domain.ports import PolicyVerdict, RolePolicy
from portal.domain.vocabulary import (
    HEALTH_CATEGORIES,
    Action,
    DataCategory,
    Purpose,
)


class Permission(StrEnum):
    """``resource:action`` pairs the role policy speaks about (kept sorted)."""

    AUDIT_LOG_EXPORT = "audit_log:export"
    AUDIT_LOG_VIEW = "audit_log:view"
    BREAK_GLASS_CREATE = "break_glass:create"
    CARE_TEAM_MANAGE = "care_team:manage"
    CONSENT_CREATE = "consent:create"
    CONSENT_REVOKE = "consent:revoke"
    CONSENT_SIGN = "consent:sign"
    CONSENT_VIEW = "consent:view"
    DISPOSITION_CREATE = "disposition:create"
    PARTICIPANT_EXIT = "participant:exit"
    REFERRAL_CREATE = "referral:create"
    REFERRAL_DECIDE = "referral:decide"
    SIGN_IN_CODE_CREATE = "sign_in_code:create"
    STAFF_MANAGE = "staff:manage"

    @property
    def resource(self) -> str:
        return self.value.partition(":")[0]

    @property
    def action(self) -> str:
        return self.value.partition(":")[2]

    @property
    def purpose(self) -> Purpose:
        """The purpose of use the policy row must allow."""
        return PERMISSION_PURPOSE.get(self, Purpose.CAREMGT)


PERMISSION_PURPOSE = {
    Permission.AUDIT_LOG_EXPORT: Purpose.HOPERAT,
    Permission.AUDIT_LOG_VIEW: Purpose.HOPERAT,
    Permission.BREAK_GLASS_CREATE: Purpose.ETREAT,
    Permission.STAFF_MANAGE: Purpose.HOPERAT,
}
# Resources and actions of the role policy besides the data categories and their actions.
PERMISSION_RESOURCES = frozenset(p.resource for p in Permission)
PERMISSION_ACTIONS = frozenset(p.action for p in Permission)
ROUTINE_PURPOSES = (Purpose.CAREMGT, Purpose.TREAT, Purpose.LEADMON)


def permitted(policy: RolePolicy, actor: Actor, permission: Permission) -> PolicyVerdict:
    """The role policy's answer for one of the actor's roles (deny rows win); a suspended
    account may do nothing. Never raises."""
    if not actor.active:
        return PolicyVerdict(allowed=False, rule=None)
    return role_verdict(policy, actor.organization.sector, actor.roles, permission.resource,
                        permission.action, permission.purpose)


def may(policy: RolePolicy, actor: Actor, permission: Permission) -> bool:
    return permitted(policy, actor, permission).allowed


def current_links(context: ParticipantContext, day: date) -> tuple[CareTeamLink, ...]:
    return tuple(link for link in context.care_team if link.current(day))


def works_with_participants(policy: RolePolicy, actor: Actor) -> bool:
    """Whether the actor's roles may view any participant category for any purpose at all:
    the staff workspace (caseload, participant pages) is only for those who may."""
    return actor.active and any(
        role_verdict(policy, actor.organization.sector, actor.roles, category.value,
                     Action.VIEW, purpose).allowed
        for category in DataCategory for purpose in (*ROUTINE_PURPOSES, Purpose.ETREAT))


def may_create(policy: RolePolicy, actor: Actor, category: DataCategory) -> bool:
    """Whether the actor's roles may add information in this category (for a routine
    purpose). The Golden Rule holds here too, whatever the policy files say."""
    if not actor.active:
        return False
    if actor.organization.sector.is_justice and category in HEALTH_CATEGORIES:
        return False
    return any(role_verdict(policy, actor.organization.sector, actor.roles, category.value,
                            Action.CREATE, purpose).allowed for purpose in ROUTINE_PURPOSES)


def view_purposes(policy: RolePolicy, actor: Actor, category: DataCategory) -> list[Purpose]:
    """The routine purposes for which the actor's roles may view a category (CAREMGT when
    none: the decision then names the refusal)."""
    return [p for p in ROUTINE_PURPOSES if role_verdict(
        policy, actor.organization.sector, actor.roles, category.value, Action.VIEW,
        p).allowed] or [Purpose.CAREMGT]


