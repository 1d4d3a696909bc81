"""Writes never depend on how long the person took: the data keys refresh every minute
(portal.crypto.vault.REFRESH_SECONDS), and a refresh in the middle of a write must neither flush
the caller's half-changed rows nor fail the write. Each test moves the vault's clock past the
refresh interval between opening a page and submitting it."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.crypto.vault import REFRESH_SECONDS, Vault
from portal.db import models as m
from portal.db.types import utcnow
from portal.kernel.wiring import Services
from tests.e2e.pages import csrf
from tests.e2e.test_consents import _draft, _sign

MARIA = "maria.lopez@harbor-lead.example"
JAMES = "james.carter@riverton-pd.example"


def _slow_reader(client: TestClient[Any]) -> Callable[[], None]:
    """Give the client's vault a clock; the returned function lets a minute and more pass."""
    vault: Vault = client.app.state.services.vault
    now = [time.monotonic()]
    vault.clock = lambda: now[0]

    def wait() -> None:
        now[0] += REFRESH_SECONDS + 10

    return wait


def test_a_key_refresh_never_flushes_the_callers_pending_rows(
        demo: sessionmaker[Session], services: Services) -> None:
    """The root cause: a half-changed row (a consent marked active before it is signed) must
    not be flushed, and so checked by the database, by the key reload's query."""
    now = [time.monotonic()]
    services.vault.clock = lambda: now[0]
    with demo() as session:
        services.vault.ready(session)
        participant = session.scalars(select(m.Participant)).first()
        assert participant is not None
        session.add(m.Consent(id=uuid.uuid4(), participant_id=participant.id, kind="roi",
                              status="active", language="en", created_at=utcnow()))
        now[0] += REFRESH_SECONDS + 10
        services.vault.ready(session)  # reloads the keys; must not flush the consent
        assert services.vault.current_version >= 1
        session.rollback()


def test_signing_after_reading_the_consent_aloud_for_a_minute(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    wait = _slow_reader(maria)
    url = _draft(maria, "LP-1003").headers["location"]
    assert maria.get(url).status_code == 200
    wait()
    signed = _sign(maria, url)
    assert signed.status_code in (302, 303), signed.text
    with demo() as s:
        row = s.get(m.Consent, uuid.UUID(url.rsplit("/", 1)[1]))
        assert row is not None and row.status == "active" and row.document_sha256


def test_every_write_that_seals_survives_a_key_refresh(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    wait = _slow_reader(maria)
    page = maria.get("/participants/LP-1001").text
    wait()
    assert maria.post("/participants/LP-1001/records", data={
        "_csrf_token": csrf(page), "category": "case_plan", "title": "Plan",
        "body": "Met at the library."}, follow_redirects=False).status_code == 302
    wait()
    assert maria.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "food", "summary": "Groceries",
        "detail": "Food bank on Tuesday"}, follow_redirects=False).status_code == 302

    james = as_user(JAMES)
    wait_officer = _slow_reader(james)
    form = james.get("/referrals").text
    wait_officer()
    assert james.post("/referrals/", data={
        "_csrf_token": csrf(form), "pathway": "social_contact", "given": "Ana",
        "family": "Slow", "born": "", "where": "Library"},
        follow_redirects=False).status_code in (302, 303)
    queue = maria.get("/referrals").text
    referral = re.search(r'/referrals/([0-9a-f-]{36})/decide', queue)
    assert referral
    wait()
    accepted = maria.post(f"/referrals/{referral.group(1)}/decide", data={
        "_csrf_token": csrf(queue), "decision": "accept"}, follow_redirects=False)
    assert accepted.status_code in (302, 303), accepted.text
