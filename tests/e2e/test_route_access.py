"""Every route declares what it needs (portal/web/access.py), and answers accordingly: each
demo staff user reaches a permission's pages exactly when the role policy gives them that
permission; a route that declares nothing does not answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.devtools.seed import STAFF
from portal.domain.permissions import Permission
from portal.kernel.access import user_may
from portal.kernel.wiring import Services
from portal.web import access
from portal.web.app import create_app
from tests.e2e.test_consents import _draft, _sign


def _routes(app: Litestar) -> list[tuple[str, str, Any]]:
    return [(method, route.path, handler) for route in app.routes
            for handler in getattr(route, "route_handlers", [])
            for method in sorted(handler.http_methods) if method != "OPTIONS"]


@pytest.fixture
def dev_app(settings: Settings) -> Iterator[Litestar]:
    """The app with every optional route on (the development identity provider too)."""
    app = create_app(Settings(env="test", database_url=settings.database_url,
                              data_dir=settings.data_dir,
                              data_key_file=settings.data_key_file, dev_idp=True))
    yield app
    app.state.engine.dispose()


def test_every_route_declares_what_it_needs(dev_app: Litestar) -> None:
    routes = [(method, path, access.route_access(h)) for method, path, h in _routes(dev_app)
              if access.is_portal_route(h)]
    undeclared = [(method, path) for method, path, need in routes if need is None]
    assert undeclared == []
    keys = {access.handler_key(h) for _, _, h in _routes(dev_app)}
    assert sorted(set(access.ROUTE_ACCESS) - keys) == []  # no declaration outlives its route
    # The closing note's numbers: routes by what they need.
    by_need: dict[str, int] = {}
    for _, _, need in routes:
        by_need[str(need)] = by_need.get(str(need), 0) + 1
    print("routes:", len(routes), dict(sorted(by_need.items())))
    assert len(routes) >= 70


def test_a_route_that_declares_nothing_does_not_answer(settings: Settings) -> None:
    @get("/undeclared", sync_to_thread=False)
    def undeclared() -> str:
        return "leaked"

    app = create_app(settings)
    app.register(undeclared)
    with TestClient(app) as client:
        response = client.get("/undeclared")
    assert response.status_code == 500 and "leaked" not in response.text


def _fill(path: str, consent_id: str) -> str | None:
    """A concrete URL for a route template, or None when it needs ids the walk has none of."""
    path = path.replace("{public_id:str}", "LP-1001").replace("{consent_id:str}", consent_id)
    return None if "{" in path else path


def test_each_permission_page_opens_exactly_for_the_users_the_policy_gives_it(
        dev_app: Litestar, as_user: Callable[[str], TestClient[Any]],
        demo: sessionmaker[Session], services: Services) -> None:
    with demo() as s:
        marcus = s.scalar(select(m.Participant).where(m.Participant.public_id == "LP-1001"))
        assert marcus is not None
        consent = s.scalar(select(m.Consent.id).where(m.Consent.participant_id == marcus.id))
        users = {u.email: u for u in s.scalars(select(m.StaffUser))}
        may = {(seed.email, p): user_may(services.policy, users[seed.email], p)
               for seed in STAFF for p in Permission}
    pages = sorted({(path, need, access.handler_key(h))
                    for method, template, h in _routes(dev_app)
                    if method == "GET" and isinstance(need := access.route_access(h), Permission)
                    and (path := _fill(template, str(consent))) is not None})
    assert len(pages) >= 15
    walked = 0
    for seed in STAFF:
        client = as_user(seed.email)
        for path, need, key in pages:
            allowed = may[(seed.email, need)] or (
                key in access.ALSO_OPENS_FOR and may[(seed.email, access.ALSO_OPENS_FOR[key])])
            status = client.get(path).status_code
            if allowed:
                # 404: the participant is not on this user's agency's care team; 400: the
                # page needs parameters the walk does not send.
                assert status in (200, 400, 404), (seed.email, path, status)
            else:
                assert status in (403, 404), (seed.email, path, status)
            walked += 1
    assert walked == len(STAFF) * len(pages)


def test_the_participant_page_links_only_to_what_the_role_may_open(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    for email, consents, team in (("maria.lopez@harbor-lead.example", True, True),
                                  ("alex.rivera@hope-housing.example", False, False)):
        page = as_user(email).get("/participants/LP-1001").text
        assert bool(re.search(r'href="/participants/LP-1001/consents/"', page)) is consents
        assert bool(re.search(r'href="/participants/LP-1001/care-team"', page)) is team


# GET routes that show participant information, and the user (allowed) who opens them. Every
# route whose declaration concerns participant information or their consents or care team
# must be here (checked below), so a new one cannot skip its audit event.
SHOWS_PARTICIPANTS = {
    "/staff": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/why/housing": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/consents": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/consents/new": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/consents/{consent}": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/consents/{consent}/edit": "maria.lopez@harbor-lead.example",
    "/participants/{signed_pid}/consents/{signed}/document": "maria.lopez@harbor-lead.example",
    "/participants/LP-1001/care-team": "maria.lopez@harbor-lead.example",
    "/referrals": "maria.lopez@harbor-lead.example",
    "/break-glass?q=Reed": "maria.lopez@harbor-lead.example",
    "/compliance/audit": "renee.walsh@harbor-lead.example",
    "/compliance/break-glass": "renee.walsh@harbor-lead.example",
    "/compliance/disclosures?participant=LP-1001": "renee.walsh@harbor-lead.example",
    "/compliance/oversight": "renee.walsh@harbor-lead.example",
}
ABOUT_PARTICIPANTS = {access.PARTICIPANT_INFORMATION, Permission.CONSENT_VIEW,
                      Permission.CONSENT_CREATE, Permission.CARE_TEAM_MANAGE,
                      Permission.REFERRAL_CREATE}


def test_every_get_route_that_shows_participants_writes_an_audit_event(
        dev_app: Litestar, as_user: Callable[[str], TestClient[Any]],
        demo: sessionmaker[Session]) -> None:
    listed = {re.sub(r"\?.*", "", p).replace("{consent}", "{consent_id:str}")
              .replace("{signed}", "{consent_id:str}").replace("{signed_pid}", "LP-1001")
              .replace("LP-1001", "{public_id:str}").replace("/housing", "/{category:str}")
              .rstrip("/") for p in SHOWS_PARTICIPANTS}
    missing = sorted(template for method, template, h in _routes(dev_app)
                     if method == "GET" and access.route_access(h) in ABOUT_PARTICIPANTS
                     and not template.startswith("/api/") and template.rstrip("/") not in listed)
    assert missing == []
    with demo() as s:
        marcus = s.scalar(select(m.Participant).where(m.Participant.public_id == "LP-1001"))
        assert marcus is not None
        consent = s.scalar(select(m.Consent.id).where(m.Consent.participant_id == marcus.id))
    # A consent with its signed copy, signed the way a case manager does.
    signed_pid = "LP-1003"
    url = _draft(as_user(SHOWS_PARTICIPANTS["/staff"]), signed_pid).headers["location"]
    assert _sign(as_user(SHOWS_PARTICIPANTS["/staff"]), url).status_code in (302, 303)
    signed = url.rsplit("/", 1)[1]
    for path, email in SHOWS_PARTICIPANTS.items():
        with demo() as s:
            before = s.scalar(select(func.count()).select_from(m.AuditEvent))
        response = as_user(email).get(path.format(consent=consent, signed=signed,
                                                  signed_pid=signed_pid))
        assert response.status_code == 200, (path, response.status_code)
        with demo() as s:
            assert s.scalar(select(func.count()).select_from(m.AuditEvent)) > before, path
