"""What every route needs before it may answer: one declaration per handler, in one table.

Each route is one of
- ``PUBLIC``: no sign-in (the landing page, health check, sign-in steps, the development
  identity provider when enabled);
- ``PARTICIPANT_SELF``: a signed-in participant, their own information only;
- ``PARTICIPANT_INFORMATION``: participant information for staff (page or API), decided
  category by category by ``decide()`` and audited;
- ``SIGNED_IN``: any signed-in staff member (signing out);
- a ``Permission``: a row in policies/policy.csv (plus, for an action on one participant, the
  care-team relationship), checked by the service that does the work.

The guard ``declared`` refuses any route of the portal that is missing here (fail closed), so a
new route cannot ship without saying what it needs; tests/e2e/test_route_access.py walks every
route against what each demo user may do.
"""

from __future__ import annotations

from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.exceptions import InternalServerException
from litestar.handlers.base import BaseRouteHandler

from portal.domain.permissions import Permission

PUBLIC: Final = "public"
PARTICIPANT_SELF: Final = "participant:self"
PARTICIPANT_INFORMATION: Final = "participant:information"
SIGNED_IN: Final = "staff:signed_in"

RouteAccess = Permission | str

_AUTH = "portal.auth.routes"
_DEV = "portal.devtools.devidp.dev_idp_router.<locals>"
_WS = "portal.workspace.routes.WorkspaceController"
_CONSENT = "portal.consents.routes.ConsentController"
_REFERRAL = "portal.referrals.routes.ReferralController"
_TEAM = "portal.referrals.routes.CareTeamController"
_ADMIN = "portal.admin.routes.AdminController"
_LIFE = "portal.workspace.lifecycle_routes.LifecycleController"
_API = "portal.web.api"
_COMPLIANCE = "portal.compliance.routes.ComplianceController"
_ME = "portal.selfservice.routes.MeController"

ROUTE_ACCESS: dict[str, RouteAccess] = {
    "portal.web.app.landing": PUBLIC,
    "portal.web.app.healthz": PUBLIC,
    **{f"{_DEV}.{name}": PUBLIC for name in (
        "discovery", "jwks", "authorize_page", "authorize_submit", "token", "userinfo",
        "logout")},
    f"{_AUTH}.StaffAuthController.login_page": PUBLIC,
    f"{_AUTH}.StaffAuthController.start": PUBLIC,
    f"{_AUTH}.StaffAuthController.callback": PUBLIC,
    f"{_AUTH}.StaffAuthController.logout": SIGNED_IN,
    f"{_AUTH}.StaffAuthController.kept_form": SIGNED_IN,
    f"{_AUTH}.StaffAuthController.extend": SIGNED_IN,
    f"{_AUTH}.ParticipantAuthController.enrol_page": PUBLIC,
    f"{_AUTH}.ParticipantAuthController.enrol": PUBLIC,
    f"{_AUTH}.ParticipantAuthController.login_page": PUBLIC,
    f"{_AUTH}.ParticipantAuthController.login": PUBLIC,
    f"{_AUTH}.ParticipantSecurityController.page": PARTICIPANT_SELF,
    f"{_AUTH}.ParticipantSecurityController.add": PARTICIPANT_SELF,
    f"{_AUTH}.ParticipantSecurityController.remove": PARTICIPANT_SELF,
    **{f"{_ME}.{name}": PARTICIPANT_SELF for name in (
        "home", "change_page", "change", "confirm_revoke", "revoke", "who_looked")},
    f"{_WS}.caseload": PARTICIPANT_INFORMATION,
    f"{_WS}.participant": PARTICIPANT_INFORMATION,
    f"{_WS}.why": PARTICIPANT_INFORMATION,
    f"{_WS}.add_record": PARTICIPANT_INFORMATION,
    f"{_WS}.add_goal": PARTICIPANT_INFORMATION,
    f"{_WS}.update_goal": PARTICIPANT_INFORMATION,
    f"{_WS}.break_glass_search": Permission.BREAK_GLASS_CREATE,
    f"{_WS}.break_glass_form": Permission.BREAK_GLASS_CREATE,
    f"{_WS}.break_glass": Permission.BREAK_GLASS_CREATE,
    f"{_CONSENT}.index": Permission.CONSENT_VIEW,
    f"{_CONSENT}.show": Permission.CONSENT_VIEW,
    f"{_CONSENT}.document": Permission.CONSENT_VIEW,
    f"{_CONSENT}.new": Permission.CONSENT_CREATE,
    f"{_CONSENT}.create": Permission.CONSENT_CREATE,
    f"{_CONSENT}.edit": Permission.CONSENT_CREATE,
    f"{_CONSENT}.update": Permission.CONSENT_CREATE,
    f"{_CONSENT}.new_version": Permission.CONSENT_CREATE,
    f"{_CONSENT}.sign": Permission.CONSENT_SIGN,
    f"{_CONSENT}.revoke": Permission.CONSENT_REVOKE,
    f"{_REFERRAL}.index": Permission.REFERRAL_CREATE,
    f"{_REFERRAL}.create": Permission.REFERRAL_CREATE,
    f"{_REFERRAL}.decide": Permission.REFERRAL_DECIDE,
    f"{_TEAM}.page": Permission.CARE_TEAM_MANAGE,
    f"{_TEAM}.add": Permission.CARE_TEAM_MANAGE,
    f"{_TEAM}.end": Permission.CARE_TEAM_MANAGE,
    f"{_TEAM}.confirm_code": Permission.SIGN_IN_CODE_CREATE,
    f"{_TEAM}.code": Permission.SIGN_IN_CODE_CREATE,
    f"{_TEAM}.issued": Permission.SIGN_IN_CODE_CREATE,
    f"{_LIFE}.exit_page": Permission.PARTICIPANT_EXIT,
    f"{_LIFE}.exit": Permission.PARTICIPANT_EXIT,
    f"{_LIFE}.disposition_page": Permission.DISPOSITION_CREATE,
    f"{_LIFE}.disposition": Permission.DISPOSITION_CREATE,
    f"{_ADMIN}.staff": Permission.STAFF_MANAGE,
    f"{_ADMIN}.confirm_suspend": Permission.STAFF_MANAGE,
    f"{_ADMIN}.suspend": Permission.STAFF_MANAGE,
    f"{_ADMIN}.reinstate": Permission.STAFF_MANAGE,
    f"{_API}.list_participants": PARTICIPANT_INFORMATION,
    f"{_API}.read_participant": PARTICIPANT_INFORMATION,
    f"{_API}.list_records": PARTICIPANT_INFORMATION,
    f"{_API}.add_record": PARTICIPANT_INFORMATION,
    f"{_API}.explain": PARTICIPANT_INFORMATION,
    f"{_API}.list_consents": Permission.CONSENT_VIEW,
    **{f"{_COMPLIANCE}.{name}": Permission.AUDIT_LOG_VIEW for name in (
        "home", "audit_search", "audit_event", "break_glass", "review", "integrity", "verify",
        "verification_run", "disclosures", "oversight")},
    **{f"{_COMPLIANCE}.{name}": Permission.AUDIT_LOG_EXPORT for name in (
        "disclosures_csv", "disclosures_pdf", "checkpoints")},
}

# Routes that also open under a second permission: the referral page serves both officers
# (their own referrals) and case managers (the queue).
ALSO_OPENS_FOR: dict[str, Permission] = {f"{_REFERRAL}.index": Permission.REFERRAL_DECIDE}


def handler_key(handler: BaseRouteHandler) -> str:
    fn: Any = handler.fn
    fn = getattr(fn, "func", fn)
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def route_access(handler: BaseRouteHandler) -> RouteAccess | None:
    """The handler's declaration; None for Litestar's own routes (static files, the OpenAPI
    document, OPTIONS) and for an undeclared portal route."""
    return ROUTE_ACCESS.get(handler_key(handler))


def is_portal_route(handler: BaseRouteHandler) -> bool:
    """Every route but Litestar's own (static files, the OpenAPI document, OPTIONS)."""
    return not handler_key(handler).startswith("litestar.")


def declared(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard: a route that declares nothing does not answer (fail closed)."""
    if is_portal_route(handler) and route_access(handler) is None:
        raise InternalServerException("this route declares no permission")
