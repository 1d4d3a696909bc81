"""Consent capture over HTTP: a draft names what is missing, signing makes it active with a
PDF copy, revocation takes effect on the next view, 42 CFR 2.35 limits, scans are checked."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import uuid
import zlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.consents.service import MAX_SCAN_BYTES
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


def _pdf_text(content: bytes) -> str:
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", content, re.S)
    return "".join(zlib.decompress(s).decode("latin-1") for s in streams)


def test_a_spanish_consent_is_signed_and_kept_in_spanish(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    url = _draft(maria, "LP-1003", language="es").headers["location"]
    form = maria.get(url).text
    assert '<span lang="es">Lo he leído (o me lo leyeron) y estoy de acuerdo.</span>' in form
    assert _sign(maria, url).status_code in (302, 303)
    text = _pdf_text(maria.get(f"{url}/document").content)
    assert "Consentimiento para compartir información" in text
    assert "Firmado por Darnell Hughes el " in text and "testigo: Maria Lopez" in text
    with demo() as s:
        row = s.get(m.Consent, uuid.UUID(url.rsplit("/", 1)[1]))
        assert row is not None and row.text_version == "2026-11-es-1"


def test_a_criminal_justice_consent_names_only_justice_recipients(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)
    refused = _draft(maria, "LP-1003", kind="part2_criminal_justice",
                     disclosers=["cedar-recovery"], recipients=["riverton-defender"],
                     categories=["sud_treatment"], purposes=["LEADMON"])
    assert refused.status_code == 400
    assert "can name only justice agencies" in refused.text
    assert "not Riverton Public Defender" in refused.text
    # Progress in treatment from the Part 2 program, for monitoring: what 2.35 is for (the
    # treatment record itself never reaches a justice agency: the Golden Rule).
    accepted = _draft(maria, "LP-1003", kind="part2_criminal_justice",
                      disclosers=["cedar-recovery"], recipients=["riverton-court"],
                      categories=["progress"], purposes=["LEADMON"])
    assert accepted.status_code in (302, 303)


def test_an_oversized_scan_is_refused_and_nothing_is_signed(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    url = _draft(maria, "LP-1003").headers["location"]
    big = b"%PDF-" + bytes(MAX_SCAN_BYTES)
    refused = _sign(maria, url, agree="", files={"scan": ("form.pdf", big, "application/pdf")})
    assert refused.status_code == 400 and "5 MB" in refused.text
    with demo() as s:
        row = s.get(m.Consent, uuid.UUID(url.rsplit("/", 1)[1]))
        assert row is not None and row.status == "draft" and row.signed_at is None


def test_only_the_case_managers_on_the_team_see_consents(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    alex = as_user(ALEX)  # on LP-1001's care team, in a role that takes no consents
    listing = alex.get("/participants/LP-1001/consents/")
    assert listing.status_code == 403
    assert "Your role cannot view consent forms." in listing.text
    assert alex.get("/participants/LP-1001/consents/new").status_code == 403
    maria = as_user(MARIA)
    assert maria.get("/participants/LP-ZZZZ/consents/").status_code == 404
    listing = maria.get("/participants/LP-1001/consents/")
    assert listing.status_code == 200
    assert len(re.findall(r"/participants/LP-1001/consents/[0-9a-f-]{36}\"", listing.text)) >= 3


def test_a_change_is_a_new_version_that_replaces_the_old_when_signed(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria, court = as_user(MARIA), as_user(LINDA)
    first = _draft(maria, "LP-1003").headers["location"]
    assert _sign(maria, first).status_code in (302, 303)
    token = csrf(maria.get(first).text)
    started = maria.post(f"{first}/new-version", data={"_csrf_token": token},
                         follow_redirects=False)
    assert started.status_code in (302, 303)
    edit = started.headers["location"]
    assert edit.endswith("/edit") and edit != f"{first}/edit"
    form = maria.get(edit).text
    assert 'value="riverton-court" checked' in form  # filled in from the active version
    # Asking again resumes the same draft; the active version stays in force meanwhile.
    assert maria.post(f"{first}/new-version", data={"_csrf_token": token},
                      follow_redirects=False).headers["location"] == edit
    assert "Engagement summary" in section(court.get("/participants/LP-1003").text,
                                           "progress")
    second = edit.removesuffix("/edit")
    assert "replaces <a" in maria.get(second).text
    changed = maria.post(second, data={
        "kind": "roi", "disclosers": ["harbor-lead"], "recipients": ["riverton-court"],
        "categories": ["progress", "housing"], "purposes": ["CAREMGT"], "expires_on": FUTURE,
        "language": "en", "_csrf_token": csrf(form)}, follow_redirects=False)
    assert changed.status_code in (302, 303)
    assert _sign(maria, second).status_code in (302, 303)
    assert "Status: <strong>superseded</strong>" in maria.get(first).text
    assert "Status: <strong>active</strong>" in maria.get(second).text
    with demo() as s:
        new = s.get(m.Consent, uuid.UUID(second.rsplit("/", 1)[1]))
        assert new is not None and new.version == 2
        assert str(new.supersedes_id) == first.rsplit("/", 1)[1]
        event = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "consent:supersede")).one()
    assert event.consent_ids == [first.rsplit("/", 1)[1]]
    assert event.detail == {"superseded_by": str(new.id)}
    assert "Engagement summary" in section(court.get("/participants/LP-1003").text,
                                           "progress")
    # A superseded (or revoked, or expired) consent gets no new version.
    again = maria.post(f"{first}/new-version", data={"_csrf_token": csrf(maria.get(first).text)})
    assert again.status_code == 400 and "Only an active consent gets a new version" in again.text


def _png_data_url(width: int = 300, height: int = 90) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 60), (80, 20), (150, 70), (280, 30)], fill="black",
                               width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_drawn_signature_goes_into_the_signed_copy(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    url = _draft(maria, "LP-1003").headers["location"]
    assert 'name="drawn_signature"' in maria.get(url).text
    for bad in ("data:image/png;base64,not-base64!", "data:image/gif;base64,R0lGODlh",
                "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode(),
                _png_data_url(3000, 90)):
        refused = _sign(maria, url, drawn_signature=bad)
        assert refused.status_code == 400, bad[:40]
        assert "The drawn signature could not be read" in refused.text
    with demo() as s:  # nothing was signed
        draft = s.get(m.Consent, uuid.UUID(url.rsplit("/", 1)[1]))
        assert draft is not None and draft.status == "draft" and draft.signed_at is None
    assert _sign(maria, url, drawn_signature=_png_data_url()).status_code in (302, 303)
    document = maria.get(f"{url}/document").content
    assert document.startswith(b"%PDF") and b"/Subtype /Image" in document
    with demo() as s:
        event = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "consent:sign")).one()
    assert event.detail["drawn"] is True
    # Typed name and agreement alone still sign (no drawing): the copy has no image.
    other = _draft(maria, "LP-1003", recipients=["riverton-defender"]).headers["location"]
    assert _sign(maria, other).status_code in (302, 303)
    assert b"/Subtype /Image" not in maria.get(f"{other}/document").content


@pytest.mark.parametrize(("fields", "problem"), [
    ({"kind": "roi", "disclosers": ["cedar-recovery"], "recipients": ["riverton-probation"],
      "categories": ["sud_treatment"]}, "the LEAD Golden Rule"),
    ({"kind": "part2", "disclosers": ["cedar-recovery"], "recipients": ["riverton-probation"],
      "categories": ["mental_health"]}, "the LEAD Golden Rule"),
    ({"kind": "roi", "disclosers": ["cedar-recovery"], "recipients": ["hope-housing"],
      "categories": ["progress"]}, "needs a Part 2 consent"),
    ({"kind": "part2", "disclosers": ["cedar-recovery"], "recipients": ["riverton-probation"],
      "categories": ["progress"]}, "42 CFR 2.35 criminal-justice consent"),
    ({"kind": "part2_criminal_justice", "disclosers": ["cedar-recovery"],
      "recipients": ["riverton-probation"], "categories": ["progress"],
      "purposes": ["CAREMGT"]}, "monitor progress"),
], ids=["golden-rule-sud", "golden-rule-mh", "part2-under-roi", "part2-to-justice",
        "2.35-purpose"])
def test_the_form_refuses_what_decide_would_never_honour(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        fields: dict[str, Any], problem: str) -> None:
    maria = as_user(MARIA)
    with demo() as s:
        before = s.scalar(select(func.count()).select_from(m.Consent))
    refused = _draft(maria, "LP-1001", **fields)
    assert refused.status_code == 400
    assert problem in refused.text
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.Consent)) == before


def test_a_tpo_consent_states_redisclosure_and_refusal_and_can_be_signed(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    from portal.domain.consent_text import TPO_STATEMENT

    maria = as_user(MARIA)
    url = _draft(maria, "LP-1001", kind="part2_tpo", disclosers=["cedar-recovery"],
                 recipients=["hope-housing"], categories=["progress"],
                 language="es").headers["location"]
    review = maria.get(url).text
    assert "ya no los proteja" in review and "igual recibe tratamiento" in review
    assert _sign(maria, url, signer_name="Marcus Reed").status_code in (302, 303)
    with demo() as s:
        row = s.get(m.Consent, uuid.UUID(url.rsplit("/", 1)[1]))
        assert row is not None and row.status == "active"
        assert row.tpo_statement == TPO_STATEMENT["es"]
