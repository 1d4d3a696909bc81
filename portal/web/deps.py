"""What every page handler needs from the application state, typed once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.params import PathParameter
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.guards import require_participant, require_staff
from portal.auth.sessions import Principal
from portal.db import models as m
from portal.kernel.errors import NotFound, Refused
from portal.kernel.wiring import Services

# An integer id or sequence number in a path, within what an INTEGER column holds on every
# database (PostgreSQL's is 32 bits): a larger one is refused as bad input (400) instead of
# failing in the driver (500).
RowNumber = Annotated[int, PathParameter(ge=0, le=2**31 - 1)]


def services_of(state: State) -> Services:
    services: Services = state.services
    return services


def db_of(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


T = TypeVar("T")


def found_or(state: State, read: Callable[[Session], T],
             missing: Callable[[], HTTPException] = NotFoundException) -> T:
    """``read`` in one transaction. When it finds no participant (or consent) for the user,
    the transaction still commits (the refused attempt was audited in it) and ``missing()`` is
    raised; when the user may know the participant but not do this (Refused), it commits
    too and answers 403 with the reason. Any other error rolls everything back."""
    refused: Refused | None = None
    with db_of(state).begin() as db:
        try:
            return read(db)
        except NotFound:
            pass
        except Refused as exc:
            refused = exc
    if refused is not None:
        raise PermissionDeniedException(str(refused))
    raise missing()


def staff_of(principal: Principal | None) -> tuple[Principal, m.StaffUser]:
    """The signed-in staff member, or a redirect to staff sign-in."""
    who = require_staff(principal)
    assert who.staff is not None
    return who, who.staff


def participant_of(principal: Principal | None) -> tuple[Principal, m.Participant]:
    """The signed-in participant, or a redirect to participant sign-in."""
    who = require_participant(principal)
    assert who.participant is not None
    return who, who.participant
