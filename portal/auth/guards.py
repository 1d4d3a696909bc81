"""Who is asking: the signed-in principal of a request, the guards that require one, and the
request's metadata for the audit log. Every area's pages use these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.oidc import RelyingParty
from portal.auth.sessions import Principal, SessionEnded, SessionManager, client_address
from portal.crypto.vault import Vault
from portal.db.audit_chain import AuditLog
from portal.domain.vocabulary import Role
from portal.kernel.request import RequestMeta

SESSION_ENDED = "portal_session_ended"


@dataclass(frozen=True, slots=True)
class AuthComponents:
    providers: dict[str, RelyingParty]
    sessions: SessionManager
    audit: AuditLog
    vault: Vault
    role_mapping: dict[str, Role]


def components_of(state: State) -> AuthComponents:
    components: AuthComponents = state.auth
    return components


def database_of(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


def request_meta(request: Request[Any, Any, Any], principal: Principal | None = None,
                 actor: str | None = None) -> RequestMeta:
    return RequestMeta(actor=actor or (principal.label if principal else "anonymous"),
                       session_id=principal.session_id[:16] if principal else None,
                       client_address=client_address(request),
                       # Ids from a proxy are kept only when they fit the audit column.
                       request_id=_request_id(request.headers.get("x-request-id")))


def _request_id(value: str | None) -> str | None:
    if value is None or len(value) > 64 or not value.isprintable():
        return None
    return value


def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal | None:
    """The signed-in principal for this request (resolving also enforces the timeouts)."""
    components = components_of(state)
    token = components.sessions.token(request)
    if not token:
        return None
    ended: list[SessionEnded] = []
    with database_of(state).begin() as db:
        principal = components.sessions.resolve(db, token,
                                                client_address=client_address(request),
                                                ended=ended)
    if ended:
        # For the sign-in redirect: why the session ended, and whose it was.
        request.state[SESSION_ENDED] = ended[0]
    return principal


def require_staff(principal: NamedDependency[Principal | None]) -> Principal:
    if principal is None or principal.staff is None:
        raise NotAuthorizedException("Please sign in.")
    return principal


def require_participant(principal: NamedDependency[Principal | None]) -> Principal:
    if principal is None or principal.participant is None:
        raise NotAuthorizedException("Please sign in.")
    return principal
