"""Keeping a form posted after the session ended (portal/auth/kept_forms.py): what is kept,
where a sign-in may return to, and that the fields are sealed at rest."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import kept_forms
from portal.auth.service import token_hash
from portal.db import models as m
from portal.db import repositories as repo
from portal.kernel.wiring import Services

MARIA = "maria.lopez@harbor-lead.example"
PAGE = "/participants/LP-1001/consents/new"
ACTION = "/participants/LP-1001/consents"


@pytest.mark.parametrize(("value", "kept"), [
    ("/participants/LP-1001/consents/new", True), ("/staff?q=reed", True),
    ("", False), ("participants", False), ("//evil.example/x", False),
    ("https://evil.example/", False), ("/\\evil.example", False), ("/a\nb", False),
    ("/" + "x" * 600, False),
])
def test_a_sign_in_returns_only_to_a_page_of_this_portal(value: str, kept: bool) -> None:
    assert (kept_forms.local_path(value) == value) is kept


def _maria(session: Session) -> int:
    user = repo.staff_by_email(session, MARIA)
    assert user is not None
    return user.id


def test_the_form_is_kept_sealed_without_its_csrf_token_one_per_person(
        demo: sessionmaker[Session], services: Services) -> None:
    fields = [("_kept_page", PAGE), ("_csrf_token", "secret-token"), ("kind", "roi"),
              ("categories", "housing"), ("categories", "benefits"),
              ("note", "Marcus wants his sister told")]
    with demo.begin() as session:
        vault = services.vault.ready(session)
        first = kept_forms.keep(session, vault, staff_user_id=_maria(session), action=ACTION,
                                fields=fields)
        second = kept_forms.keep(session, vault, staff_user_id=_maria(session), action=ACTION,
                                 fields=fields)
    assert first and second and first != second
    with demo() as session:
        (row,) = session.scalars(select(m.KeptForm)).all()  # the older one was replaced
        assert row.id == token_hash(second) and (row.page, row.action) == (PAGE, ACTION)
        assert b"Marcus" not in row.fields_enc and b"secret-token" not in row.fields_enc
        vault = services.vault.ready(session)
        kept = json.loads(vault.decrypt_text(row.fields_enc, table="kept_form",
                                             column="fields_enc", row_id=row.id))
    assert kept == [["kind", "roi"], ["categories", "housing"], ["categories", "benefits"],
                    ["note", "Marcus wants his sister told"]]


@pytest.mark.parametrize("fields", [
    [("kind", "roi")],                                       # no page to return to
    [("_kept_page", "https://evil.example/"), ("kind", "roi")],
    [("_kept_page", PAGE), ("note", "x" * (kept_forms.MAX_BYTES + 1))],
    [("_kept_page", PAGE), *[(f"f{i}", "v") for i in range(kept_forms.MAX_FIELDS + 1)]],
])
def test_nothing_is_kept_without_a_page_here_or_when_too_big(
        demo: sessionmaker[Session], services: Services,
        fields: list[tuple[str, str]]) -> None:
    with demo.begin() as session:
        vault = services.vault.ready(session)
        assert kept_forms.keep(session, vault, staff_user_id=_maria(session), action=ACTION,
                               fields=fields) is None
    with demo() as session:
        assert session.scalars(select(m.KeptForm)).all() == []
