"""Every participant-facing string exists in English and Spanish (the participant catalogs,
portal/locale/*/LC_MESSAGES/participant.po), and templates use only keys that exist."""

from __future__ import annotations

import re
import typing
from datetime import date
from typing import Any

import pytest

from portal.auth.service import CHOICE_PROBLEMS
from portal.config import PROJECT_ROOT
from portal.domain.audit import Basis
from portal.domain.consent import ConsentStatus
from portal.domain.consent_text import (
    CATEGORY_WORDS,
    PURPOSE_WORDS,
    ROLE_WORDS,
    SECTOR_WORDS,
    WORDS,
    spoken_date,
)
from portal.web.i18n import LANGUAGES, participant_messages, refusal_text

TEXT = {key: {lang: participant_messages(lang).get(key, '') for lang in LANGUAGES}
        for key in participant_messages('en')}


def test_every_string_is_in_every_language() -> None:
    assert set(participant_messages("es")) == set(TEXT)
    for key, versions in TEXT.items():
        assert set(versions) == set(LANGUAGES), key
        assert all(v.strip() for v in versions.values()), key
        assert versions["en"] != versions["es"] or key.endswith("language"), key


def test_participant_templates_use_known_keys_only() -> None:
    used = set()
    for path in (PROJECT_ROOT / "templates" / "selfservice").glob("*.html"):
        used |= set(re.findall(r"_\('([a-z_.]+)'\)", path.read_text()))
    assert used
    assert used <= set(TEXT), used - set(TEXT)


def test_keys_built_at_render_time_exist() -> None:
    # who_looked.html: 'me.looked.' ~ basis; home.html: 'me.status.' ~ status and
    # 'me.sharing.asked_' ~ wish; portal.web.i18n.refusal_text: 'me.error.' ~ code.
    bases = [*typing.get_args(Basis), "refused_break_glass", "refused_not_on_team"]
    keys = [f"me.looked.{b}" for b in bases]
    keys += [f"me.status.{s.value}" for s in ConsentStatus
             if s not in (ConsentStatus.ACTIVE, ConsentStatus.DRAFT)]
    keys += ["me.sharing.asked_more", "me.sharing.asked_less"]
    keys += [f"me.error.{code}" for code in CHOICE_PROBLEMS]
    source = (PROJECT_ROOT / "portal" / "auth" / "service.py").read_text()
    participant_part = source[source.index("# --- participants"):]
    codes = set(re.findall(r'(?:SignInRefused\(|_fail\([^"]*)"([a-z_]+)"', participant_part))
    assert {"locked", "bad_credentials", "bad_enrolment_code", "bad_passphrase",
            "totp_no_key"} <= codes
    keys += [f"me.error.{code}" for code in codes - {"invalid_choice"}]
    assert set(keys) <= set(TEXT), sorted(set(keys) - set(TEXT))


@pytest.mark.parametrize("table", [CATEGORY_WORDS, PURPOSE_WORDS, SECTOR_WORDS, ROLE_WORDS,
                                   WORDS])
def test_consent_and_accounting_words_are_in_both_languages(table: dict[str, Any]) -> None:
    assert set(table) == set(LANGUAGES)
    english, spanish = (table[lang] for lang in LANGUAGES)
    assert len(english) == len(spanish)
    if isinstance(english, dict):
        assert set(english) == set(spanish)
        assert all(str(v).strip() for v in spanish.values())


def test_participant_templates_have_no_untranslated_text() -> None:
    """Every word a participant reads on their pages comes from their catalog (or the data)."""
    for path in [*(PROJECT_ROOT / "templates" / "selfservice").glob("*.html"),
                 PROJECT_ROOT / "templates" / "error.html"]:
        html = path.read_text()
        if path.name == "error.html":  # only its participant half
            html = html.split("{% if participant_page %}")[1].split("{% else %}")[0]
        text = re.sub(r"{#.*?#}|{%.*?%}|{{.*?}}", " ", html, flags=re.S)
        text = re.sub(r"<[^>]*>|&[a-z]+;", " ", text)
        words = re.findall(r"[A-Za-zÁÉÍÓÚáéíóúñÑ]{2,}", text)
        assert words in ([], ["LEAD"]), (path.name, words)


def test_a_participant_refusal_reads_in_their_language() -> None:
    assert "Espere unos minutos" in refusal_text("locked", (), {}, "es")
    both = refusal_text("invalid_choice", ("passphrase_short", "username_taken"), {}, "es")
    assert "al menos 10 caracteres" in both and "ya está en uso" in both
    assert "try again" in refusal_text("something_new", (), {}, "en")


def test_dates_read_in_words_in_both_languages() -> None:
    assert spoken_date(date(2027, 9, 3), "en") == "3 September 2027"
    assert spoken_date(date(2027, 9, 3), "es") == "3 de septiembre de 2027"
    assert spoken_date(date(2027, 1, 31), "xx") == "31 January 2027"
