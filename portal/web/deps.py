"""What every page handler needs from the application state, typed once."""

from __future__ import annotations

from litestar.datastructures import State
from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.services.wiring import Services
from portal.web.auth.routes import require_participant, require_staff
from portal.web.sessions import Principal


def services_of(state: State) -> Services:
    services: Services = state.services
    return services


def db_of(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


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
