"""The gettext catalogs (portal/locale/): every word on a page comes from one, every message a
page uses is in its catalog, and every catalog entry has its Spanish."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

from portal.config import PROJECT_ROOT
from portal.web import i18n
from portal.web.messages import (
    PARTICIPANT_KEY,
    TEMPLATE_DIR,
    extract,
    staff_template,
    translated_templates,
)

# Text a page may show untranslated: the product's name, participant ids (LP-1001) and codes
# that read the same in every language. Language names are written in their own language.
ALLOWED = ("LEAD Partner Portal", "LEAD", "LP-", "SHA-256", "UTC", "English", "Español")
HUMAN_ATTRIBUTES = re.compile(r'\b(?:aria-label|title|alt|placeholder|data-label)="([^"\x00]*)"')
WORD = re.compile(r"[^\W\d_]{2,}")  # two letters or more, in any alphabet
JINJA = "\x00"  # where an expression or tag stood


def untranslated_text(source: str) -> list[str]:
    """The human-language text of a template outside {% trans %} and _(): its TemplateData,
    in source order, with tags, comments and entity references taken out (but the words of
    the attributes people read kept)."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)  # parsed, never rendered
    parts = [node.data for node in env.parse(source).find_all(nodes.TemplateData)]
    html = JINJA.join(parts)
    found = HUMAN_ATTRIBUTES.findall(html)
    html = re.sub(r"<!--.*?-->", " ", html, flags=re.S)
    html = re.sub(r"<[^>]*>", " ", html)
    text = " ".join([*found, html])
    text = re.sub(r"&#?\w+;", " ", text)
    for phrase in ALLOWED:
        text = text.replace(phrase, " ")
    return WORD.findall(text)


@pytest.mark.parametrize("path", translated_templates(),
                         ids=lambda p: p.relative_to(TEMPLATE_DIR).as_posix())
def test_every_word_on_a_page_comes_from_a_catalog(path: Path) -> None:
    assert untranslated_text(path.read_text(encoding="utf-8")) == []


def test_the_text_check_finds_what_is_left_out() -> None:
    source = ('<p title="Open it">{% trans %}Saved{% endtrans %} Not saved &middot; '
              '{{ _("Done") }}<a href="/x">LEAD</a></p><input placeholder="{{ _(\'Name\') }}">')
    assert untranslated_text(source) == ["Open", "it", "Not", "saved"]


def _catalog(domain: str, lang: str) -> Catalog:
    return i18n.read_catalog(domain, lang)


CATALOGS = [("participant", "en"), ("participant", "es"), ("staff", "es")]


@pytest.mark.parametrize(("domain", "lang"), CATALOGS)
def test_every_catalog_entry_is_written(domain: str, lang: str) -> None:
    catalog = _catalog(domain, lang)
    assert len(catalog) > 20
    assert not catalog.obsolete
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert not message.fuzzy, message.id
        assert strings and all(s.strip() for s in strings), message.id
        if message.pluralizable:
            assert len(strings) == catalog.num_plurals == 2, message.id


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)s|\{\w+\}", text))


@pytest.mark.parametrize(("domain", "lang"), CATALOGS)
def test_translations_keep_the_placeholders_and_the_markup(domain: str, lang: str) -> None:
    for message in _catalog(domain, lang):
        if not message.id or domain == "participant":
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            assert _placeholders(string) == _placeholders(source), message.id
            assert re.findall(r"</?\w+", string) == re.findall(r"</?\w+", source), message.id


def test_participant_keys_have_the_same_placeholders_in_both_languages() -> None:
    english, spanish = (i18n.participant_messages(lang) for lang in ("en", "es"))
    for key, text in english.items():
        assert _placeholders(text) == _placeholders(spanish[key]), key


def test_every_message_used_is_in_its_catalog() -> None:
    uses = extract()
    assert {u.domain for u in uses} == {"participant", "staff"}
    participant = set(i18n.participant_messages("en"))
    missing = {(u.msgid, str(u.path), u.line) for u in uses
               if u.domain == "participant" and u.msgid not in participant}
    assert not missing
    staff = {m.id if isinstance(m.id, str) else m.id[0]: m for m in _catalog("staff", "es")
             if m.id}
    missing = {(u.msgid, str(u.path), u.line) for u in uses
               if u.domain == "staff" and u.msgid not in staff}
    assert not missing
    for use in uses:
        if use.domain == "staff" and use.plural:
            assert staff[use.msgid].pluralizable, use.msgid
    unused = set(staff) - {u.msgid for u in uses if u.domain == "staff"}
    assert not unused, "run python -m portal.web.messages"


def test_the_staff_template_is_current() -> None:
    with (i18n.LOCALE_DIR / "staff.pot").open("rb") as pot:
        committed = {m.id for m in read_po(pot) if m.id}
    assert committed == {m.id for m in staff_template() if m.id}, \
        "run python -m portal.web.messages"


def test_participant_keys_and_staff_sentences_cannot_collide() -> None:
    assert all(PARTICIPANT_KEY.match(key) for key in i18n.participant_messages("en"))
    staff = [m.id for m in _catalog("staff", "es") if m.id]
    assert not [m for m in staff if isinstance(m, str) and PARTICIPANT_KEY.match(m)]


def test_translations_merge_both_catalogs_per_language() -> None:
    spanish = i18n.translations("es")
    assert spanish.gettext("me.login.title") == "Entrar"
    assert spanish.gettext("Caseload") != "Caseload"
    assert spanish.ngettext("%(count)s urgent", "%(count)s urgent", 2) == "%(count)s urgentes"
    english = i18n.translations("en")
    assert english.gettext("me.login.title") == "Sign in"
    assert english.gettext("Caseload") == "Caseload"
    assert english.ngettext("See the %(count)s event", "See the %(count)s events", 1) \
        == "See the %(count)s event"
    assert i18n.translations("fr") is english


@pytest.mark.parametrize(("header", "expected"), [
    ("es-MX,es;q=0.9,en;q=0.8", "es"), ("en-US,en;q=0.9,es;q=0.8", "en"),
    ("fr,es;q=0.5", "es"), ("fr, de", None), ("", None), ("en;q=0.1, es;q=0.7", "es"),
    ("es;q=0, en", "en"), ("es;q=bad, en;q=0.2", "en")])
def test_staff_language_follows_accept_language(header: str, expected: str | None) -> None:
    assert i18n.accepted_language(header) == expected


def test_catalogs_are_shipped_with_the_package() -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    assert "locale/**/*" in pyproject["tool"]["setuptools"]["package-data"]["portal"]


def test_templates_translate_and_escape_what_is_not_theirs() -> None:
    env = Environment(autoescape=True)
    i18n.install(env)

    def render(source: str, **values: object) -> str:
        return env.from_string(source).render(**values)

    # Without a request (a template rendered outside one) the page is English.
    assert render("{{ _('me.login.title') }} {{ page_language() }}") == "Sign in en"
    assert render("{% trans name=n %}Sign in with {{ name }}{% endtrans %}",
                  n="<i>x</i>") == "Sign in with &lt;i&gt;x&lt;/i&gt;"
    assert render("{% trans count=n %}{{ count }} urgent{% pluralize %}{{ count }} urgent"
                  "{% endtrans %}", n=3) == "3 urgent"
    # A key built from data that the catalog does not know is shown escaped, not as markup.
    assert render("{{ _('me.status.' ~ s) }}", s="<b>x</b>") == "me.status.&lt;b&gt;x&lt;/b&gt;"
    # Staff markup in a msgid stays markup.
    assert render("{% trans %}Status: <strong>ok</strong>{% endtrans %}") \
        == "Status: <strong>ok</strong>"
    assert render("{{ gettext_in('es', 'Caseload') }}") == "Casos a cargo"
