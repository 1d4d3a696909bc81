"""Consent capture over HTTP: a draft names what is missing, signing makes it active with a
PDF copy, revocation takes effect on the next view, 42 CFR 2.35 limits, scans are checked."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.db.types import utcnow
from tests.e2e.pages import csrf, section

MARIA = "maria.lopez@harbor-lead.example"
LINDA = "linda.nguyen@riverton-court.example"
ALEX = "alex.rivera@hope-housing.example"
FUTURE = (utcnow() + timedelta(days=200)).date().isoformat()


def _draft(client: TestClient[Any], public_id: str, **fields: Any) -> Any:
    token = csrf(client.get(f"/participants/{public_id}/consents/new").text)
    data = {"kind": "roi", "disclosers": ["harbor-lead"], "recipients": ["riverton-court"],
            "categories": ["progress"], "purposes": ["CAREMGT"], "expires_on": FUTURE,
            "language": "en", "_csrf_token": token} | fields
    return client.post(f"/participants/{public_id}/consents/", data=data,
                       follow_redirects=False)


def _sign(client: TestClient[Any], url: str, **fields: Any) -> Any:
    token = csrf(client.get(url).text)
    files = fields.pop("files", None)
    data = {"signer_name": "Darnell Hughes", "relation": "self", "agree": "yes",
            "_csrf_token": token} | fields
    return client.post(f"{url}/sign", data=data, files=files, follow_redirects=False)


def test_capture_sign_download_and_revoke(as_user: Callable[[str], TestClient[Any]],
                                          demo: sessionmaker[Session]) -> None:
    court = as_user(LINDA)
    assert "Engagement summary" not in section(court.get("/participants/LP-1003").text,
                                               "progress")  # the old release expired
    maria = as_user(MARIA)
    incomplete = _draft(maria, "LP-1003", recipients=[], expires_on="")
    assert incomplete.status_code in (302, 303)  # a draft may be saved incomplete
    url = incomplete.headers["location"]
    review = maria.get(url).text
    assert "who may receive it (42 CFR 2.31(a)(4))" in review
    assert "an expiration date or event (42 CFR 2.31(a)(7))" in review
    refused = _sign(maria, url)
    assert refused.status_code == 400 and "2.31(a)(4)" in refused.text

    token = csrf(maria.get(f"{url}/edit").text)
    edited = maria.post(url, data={
        "kind": "roi", "disclosers": ["harbor-lead"], "recipients": ["riverton-court"],
        "categories": ["progress"], "purposes": ["CAREMGT"], "expires_on": FUTURE,
        "language": "en", "_csrf_token": token}, follow_redirects=False)
    assert edited.status_code in (302, 303)
    review = maria.get(url).text
    assert "Riverton Municipal Court can see how you are doing in the program from Harbor " \
           "LEAD Case Management" in review
    assert _sign(maria, url, agree="").status_code == 400  # explicit agreement required
    signed = _sign(maria, url)
    assert signed.status_code in (302, 303)
    page = maria.get(url).text
    assert "Status: <strong>active</strong>" in page
    document = maria.get(f"{url}/document")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/pdf")
    assert document.content.startswith(b"%PDF")
    with demo() as s:
        row = s.scalars(select(m.Consent).where(m.Consent.status == "active",
                                                m.Consent.document_sha256.is_not(None))).one()
        assert row.document_sha256 == hashlib.sha256(document.content).hexdigest()
        assert row.witness_user_id is not None
        actions = list(s.scalars(select(m.AuditEvent.action).where(
            m.AuditEvent.action.like("consent:%"))))
    assert {"consent:create", "consent:sign", "consent:view"} <= set(actions)
    # An active consent cannot be edited; a change is a new version.
    token = csrf(page)
    assert maria.post(url, data={"kind": "roi", "_csrf_token": token}).status_code == 400

    assert "Engagement summary" in section(court.get("/participants/LP-1003").text, "progress")

    token = csrf(page)
    unconfirmed = maria.post(f"{url}/revoke", data={"_csrf_token": token})
    assert unconfirmed.status_code == 400
    revoked = maria.post(f"{url}/revoke", data={"confirm": "yes", "how": "by phone",
                                                "_csrf_token": token}, follow_redirects=False)
    assert revoked.status_code in (302, 303)
    assert "Engagement summary" not in section(court.get("/participants/LP-1003").text,
                                               "progress")


def test_criminal_justice_consent_cannot_be_revoked_early(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    with demo() as s:
        cj = s.scalars(select(m.Consent).join(m.Participant).where(
            m.Participant.public_id == "LP-1001",
            m.Consent.kind == "part2_criminal_justice")).one()
    url = f"/participants/LP-1001/consents/{cj.id}"
    page = maria.get(url).text
    assert "can be revoked from" in page
    response = maria.post(f"{url}/revoke", data={"confirm": "yes", "_csrf_token": csrf(page)})
    assert response.status_code == 400
    assert "cannot be revoked until" in response.text


def test_scans_are_type_checked_and_spanish_text_is_shown(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)
    url = _draft(maria, "LP-1003", language="es").headers["location"]
    assert "puede ver cómo le va en el programa" in maria.get(url).text
    bad = _sign(maria, url, agree="", files={"scan": ("form.txt", b"hello", "text/plain")})
    assert bad.status_code == 400 and "PDF, PNG or JPEG" in bad.text
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    good = _sign(maria, url, agree="", files={"scan": ("form.png", png, "image/png")})
    assert good.status_code in (302, 303)
    download = maria.get(f"{url}/document")
    assert download.headers["content-type"] == "image/png" and download.content == png


def test_only_the_case_managers_on_the_team_see_consents(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    alex = as_user(ALEX)
    assert alex.get("/participants/LP-1001/consents/").status_code == 404
    assert alex.get("/participants/LP-1001/consents/new").status_code == 404
    maria = as_user(MARIA)
    assert maria.get("/participants/LP-ZZZZ/consents/").status_code == 404
    listing = maria.get("/participants/LP-1001/consents/")
    assert listing.status_code == 200
    assert len(re.findall(r"/participants/LP-1001/consents/[0-9a-f-]{36}\"", listing.text)) >= 3
