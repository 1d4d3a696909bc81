"""Organization administration over HTTP: an org admin sees only their organization's staff,
suspends a user (all their sessions end at once, sign-in is refused) and reinstates them; every
change is audited; everyone else is refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import service as auth_service
from portal.config import Settings
from portal.db import models as m
from portal.db import repositories as repo
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.policy.casbin_policy import load_role_mapping
from tests.e2e.pages import csrf

BASE = "http://127.0.0.1:8000"
OLIVIA = "olivia.chen@harbor-lead.example"  # Harbor's organization administrator
MARIA = "maria.lopez@harbor-lead.example"  # case manager
DEV = "dev.patel@harbor-lead.example"  # case manager
RENEE = "renee.walsh@harbor-lead.example"  # compliance officer
ALEX = "alex.rivera@hope-housing.example"  # another organization's housing navigator


def user_id(demo: sessionmaker[Session], email: str) -> int:
    with demo() as s:
        user = repo.staff_by_email(s, email)
        assert user is not None
        return user.id


def status_of(demo: sessionmaker[Session], email: str) -> str:
    with demo() as s:
        user = repo.staff_by_email(s, email)
        assert user is not None
        return user.status


def events(demo: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with demo() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                              .order_by(m.AuditEvent.seq)))


def staff_rows(html: str) -> dict[str, str]:
    """Each table row's text by the person's name (the row header)."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert body
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        name = re.search(r'<th scope="row">([^<(]+)', row)
        assert name
        rows[name.group(1).strip()] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))
    return rows


def test_org_admin_sees_only_their_organizations_staff(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    signed_in_at = datetime(2026, 1, 5, 14, 3, tzinfo=UTC)
    with demo.begin() as s:
        s.execute(update(m.StaffUser).where(m.StaffUser.email == RENEE)
                  .values(last_login_at=signed_in_at))
    page = as_user(OLIVIA).get("/admin")
    assert page.status_code == 200
    assert "<h1>Staff of Harbor LEAD Case Management</h1>" in page.text
    assert "role_mapping.csv" in page.text and "identity provider" in page.text
    assert all(f'<th scope="col">{h}</th>' in page.text
               for h in ("Name", "Roles", "Last sign-in", "Status", "Action"))
    rows = staff_rows(page.text)
    assert set(rows) == {"Maria Lopez", "Dev Patel", "Renee Walsh", "Olivia Chen"}
    assert "maria.lopez@harbor-lead.example case manager never Active" in rows["Maria Lopez"]
    assert "case manager never Active" in rows["Dev Patel"]
    assert "compliance officer 2026-01-05 14:03 UTC Active" in rows["Renee Walsh"]
    assert "(you)" in page.text and "organization administrator never" in rows["Olivia Chen"]
    assert "Suspend" not in rows["Olivia Chen"] and "Suspend" in rows["Dev Patel"]
    # Nobody from another organization.
    for other in ("Alex Rivera", "hope-housing", "Sam Okafor", "Officer James Carter"):
        assert other not in page.text
    # Suspend is a red link to a confirmation page (plain HTML, works without JavaScript);
    # no form on the list suspends anyone.
    links = re.findall(r'<a class="button danger" href="/admin/staff/(\d+)/suspend">', page.text)
    assert sorted(int(f) for f in links) == sorted(
        user_id(demo, e) for e in (MARIA, DEV, RENEE))
    assert 'action="/admin/staff/' not in page.text.replace("/reinstate", "")


def test_suspending_ends_all_sessions_at_once_and_reinstating_restores_sign_in(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        app_settings: Settings, services: Services) -> None:
    dev, dev_phone, maria = as_user(DEV), as_user(DEV), as_user(MARIA)
    assert dev.get("/staff").status_code == 200
    assert dev_phone.get("/staff").status_code == 200
    admin = as_user(OLIVIA)
    dev_id = user_id(demo, DEV)
    token = csrf(admin.get("/admin").text)
    done = admin.post(f"/admin/staff/{dev_id}/suspend",
                      data={"_csrf_token": token, "confirm": "suspend"}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin?done=suspended&user={dev_id}"
    page = admin.get(done.headers["location"])
    assert "Dev Patel is suspended. All their sessions have ended" in page.text
    assert "Suspended" in staff_rows(page.text)["Dev Patel"]
    assert f'action="/admin/staff/{dev_id}/reinstate"' in page.text
    # Both of his sessions stop working at once; another user's does not.
    for client in (dev, dev_phone):
        gone = client.get("/staff", follow_redirects=False)
        assert gone.status_code in (302, 303)
        assert gone.headers["location"] == "/auth/login?why=ended"
    assert maria.get("/staff").status_code == 200
    with demo() as s:
        assert status_of(demo, DEV) == "suspended"
        assert s.scalar(select(func.count()).select_from(m.WebSession).where(
            m.WebSession.staff_user_id == dev_id)) == 0
    [event] = events(demo, "staff:suspend")
    assert event.actor == OLIVIA and event.decision == "permit"
    assert event.actor_organization == "harbor-lead"
    assert event.detail["target_user_id"] == dev_id
    assert event.detail["target_email"] == DEV
    assert event.detail["sessions_ended"] == 2
    # Sign-in is refused while he is suspended.
    with demo() as s:
        user = repo.staff_by_email(s, DEV)
        assert user is not None
        identity = auth_service.StaffIdentity(user.issuer, user.subject, DEV, "Dev Patel",
                                              ("lead-case-managers",), "harbor-lead")
        with pytest.raises(auth_service.SignInRefused) as refused:
            auth_service.sign_in_staff(
                s, services.audit, identity,
                load_role_mapping(app_settings.policies_dir / "role_mapping.csv"),
                RequestMeta(actor=DEV), "dev")
        assert refused.value.code == "suspended"
        s.rollback()
    # Reinstating lets him sign in again; it is audited.
    back = admin.post(f"/admin/staff/{dev_id}/reinstate", data={"_csrf_token": token},
                      follow_redirects=False)
    assert back.status_code == 303
    assert "Dev Patel is reinstated" in admin.get(back.headers["location"]).text
    assert status_of(demo, DEV) == "active"
    [event] = events(demo, "staff:reinstate")
    assert event.actor == OLIVIA and event.decision == "permit"
    assert event.detail["target_user_id"] == dev_id
    assert event.detail["target_email"] == DEV
    assert as_user(DEV).get("/staff").status_code == 200


def test_a_case_manager_cannot_use_admin(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(MARIA)
    page = client.get("/admin")
    assert page.status_code == 403
    assert "Not allowed" in page.text and "Dev Patel" not in page.text
    token = csrf(client.get("/staff").text)
    dev_id = user_id(demo, DEV)
    refused = client.post(f"/admin/staff/{dev_id}/suspend",
                          data={"_csrf_token": token, "confirm": "suspend"},
                          follow_redirects=False)
    assert refused.status_code == 403
    assert status_of(demo, DEV) == "active"
    [event] = events(demo, "staff:suspend")
    assert event.actor == MARIA and event.decision == "deny"
    assert event.reasons == ["not_org_admin"]


def test_an_admin_cannot_suspend_themselves(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(OLIVIA)
    token = csrf(client.get("/admin").text)
    own = client.post(f"/admin/staff/{user_id(demo, OLIVIA)}/suspend",
                      data={"_csrf_token": token, "confirm": "suspend"}, follow_redirects=False)
    assert own.status_code == 400
    assert "You cannot suspend your own account" in own.text
    assert "<h1>Staff of Harbor LEAD Case Management</h1>" in own.text
    assert status_of(demo, OLIVIA) == "active"
    assert client.get("/admin").status_code == 200  # her session is untouched
    [event] = events(demo, "staff:suspend")
    assert event.decision == "deny" and event.reasons == ["self"]


def test_another_organizations_staff_is_not_found(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(OLIVIA)
    token = csrf(client.get("/admin").text)
    alex_id = user_id(demo, ALEX)
    with demo() as s:
        unknown = (s.scalar(select(func.max(m.StaffUser.id))) or 0) + 1000
    for action in ("suspend", "reinstate"):
        data = {"_csrf_token": token, "confirm": action}
        other = client.post(f"/admin/staff/{alex_id}/{action}", data=data,
                            follow_redirects=False)
        guessed = client.post(f"/admin/staff/{unknown}/{action}", data=data,
                              follow_redirects=False)
        assert other.status_code == guessed.status_code == 404
        assert other.text == guessed.text
        assert "Alex" not in other.text
    assert status_of(demo, ALEX) == "active"
    assert all(e.decision == "deny" for e in events(demo, "staff:suspend"))


def test_a_post_without_the_csrf_token_is_refused(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(OLIVIA)
    assert client.get("/admin").status_code == 200  # the CSRF cookie is set
    dev_id = user_id(demo, DEV)
    forged = client.post(f"/admin/staff/{dev_id}/suspend", data={"confirm": "suspend"},
                         follow_redirects=False)
    assert forged.status_code == 403
    assert status_of(demo, DEV) == "active"
    assert events(demo, "staff:suspend") == []


def test_suspending_is_confirmed_first(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(OLIVIA)
    dev_id = user_id(demo, DEV)
    asked = client.get(f"/admin/staff/{dev_id}/suspend")
    assert asked.status_code == 200
    assert "<h1>Suspend Dev Patel?</h1>" in asked.text and DEV in asked.text
    assert "Every session they have ends at once" in asked.text
    assert "cannot sign in to this portal until you reinstate them" in asked.text
    assert re.search(r'<input type="hidden" name="confirm" value="suspend">\s*<p class="actions">'
                     r'<button type="submit" class="danger">Yes, suspend Dev Patel</button>',
                     asked.text)
    assert 'href="/admin">Cancel</a>' in asked.text
    # One tap on a form without the confirmation only asks; nothing changes.
    unconfirmed = client.post(f"/admin/staff/{dev_id}/suspend",
                              data={"_csrf_token": csrf(asked.text)}, follow_redirects=False)
    assert unconfirmed.status_code == 200 and "<h1>Suspend Dev Patel?</h1>" in unconfirmed.text
    assert status_of(demo, DEV) == "active" and events(demo, "staff:suspend") == []
    assert as_user(DEV).get("/staff").status_code == 200
    # Asking about oneself, someone of another organization or nobody answers as suspending.
    own = client.get(f"/admin/staff/{user_id(demo, OLIVIA)}/suspend")
    assert own.status_code == 400 and "You cannot suspend your own account" in own.text
    assert client.get(f"/admin/staff/{user_id(demo, ALEX)}/suspend").status_code == 404
    assert as_user(MARIA).get(f"/admin/staff/{dev_id}/suspend").status_code == 403


OUT_OF_RANGE = ["0", "-1", str(2**31), str(2**63), str(2**63 - 1), str(-(2**63) - 1),
                "9" * 40]


@pytest.mark.parametrize("action", ["suspend", "reinstate"])
def test_impossible_staff_numbers_are_not_found_never_a_server_error(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        action: str) -> None:
    client = as_user(OLIVIA)
    token = csrf(client.get("/admin").text)
    for number in OUT_OF_RANGE:
        posted = client.post(f"/admin/staff/{number}/{action}",
                             data={"_csrf_token": token, "confirm": action},
                             follow_redirects=False)
        assert posted.status_code in (400, 404), (number, posted.status_code)
        assert "Not found" in posted.text or "could not be completed" in posted.text, number
        if posted.status_code == 404:
            assert "There is no one with that number" in posted.text, number
        if action == "suspend":
            asked = client.get(f"/admin/staff/{number}/suspend")
            assert asked.status_code in (400, 404), (number, asked.status_code)
    for bad in ("abc", "1.5", "%20"):
        posted = client.post(f"/admin/staff/{bad}/{action}",
                             data={"_csrf_token": token, "confirm": action})
        assert posted.status_code in (400, 404, 405), (bad, posted.status_code)
    # Nobody changed; every attempt that reached the service is audited as refused.
    with demo() as s:
        assert set(s.scalars(select(m.StaffUser.status))) == {"active"}
    assert all(e.decision == "deny" and e.reasons == ["not_found"]
               for e in events(demo, f"staff:{action}"))
