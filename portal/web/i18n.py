"""Translations: the gettext catalogs in portal/locale/, loaded with Babel, and the language
each request reads (participants choose theirs; staff get their browser's).

Two catalogs, because two audiences and two reviews:

- ``participant`` (portal/locale/{en,es}/LC_MESSAGES/participant.po): what participants read.
  Its msgids are stable keys (``me.login.title``, ``error.404``, ``base.footer``), not English
  sentences, and the English catalog holds the English wording. The English is as much a
  reviewed translation as the Spanish (plain language, a reading-grade test), so rewording it
  must not orphan the Spanish; pages build some keys at render time
  (``'me.status.' ~ status``, ``'me.error.' ~ code``); and a key cannot be mistaken for a staff
  string.
- ``staff`` (portal/locale/staff.pot, portal/locale/es/LC_MESSAGES/staff.po): the staff pages.
  Its msgids are the English text itself, the usual gettext way: English needs no catalog and
  a template reads as the page it renders.

Both are compiled in memory when first loaded (no build step, no .mo files to go stale) and
merged into one ``Translations`` per language: keys and sentences cannot collide (a test
checks), so every template uses the same ``_()``/``{% trans %}``. The language is never global
state: the callables installed on the Jinja environment read it from the request being
rendered (``request_language``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar import Request, Response
from litestar.datastructures import Cookie
from markupsafe import escape

from portal.config import Settings

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
DOMAINS = ("participant", "staff")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
PARTICIPANT_PATH = "/me"
# Participant msgids are keys (me.*, error.*, base.*); staff msgids are English sentences.
PARTICIPANT_KEY = re.compile(r"^(me|error|base)\.[a-z0-9_.]+$")
PARTICIPANT_PREFIXES = ("me.", "error.", "base.")


def catalog_path(domain: str, lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(domain: str, lang: str) -> Catalog:
    with catalog_path(domain, lang).open("rb") as po:
        return read_po(po, locale=lang, domain=domain)


def _compiled(catalog: Catalog) -> Translations:
    mo = BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out, as msgfmt does
    mo.seek(0)
    return Translations(mo, domain=catalog.domain)


def translations(lang: str) -> NullTranslations:
    """Every catalog in ``lang`` (English for a language the portal does not have), merged."""
    return _translations(lang if lang in LANGUAGES else "en")


@functools.cache
def _translations(lang: str) -> NullTranslations:
    """Read once; read-only after."""
    merged: Translations | None = None
    for domain in DOMAINS:
        if not catalog_path(domain, lang).exists():
            continue  # English staff text is its own msgid
        compiled = _compiled(read_catalog(domain, lang))
        merged = compiled if merged is None else merged.merge(compiled)
    return merged if merged is not None else NullTranslations()


def load_catalogs() -> None:
    """At start-up: a broken catalog stops the app then, not on some page later."""
    for lang in LANGUAGES:
        translations(lang)


def participant_text(key: str, lang: str) -> str:
    return translations(lang).gettext(key)


def refusal_text(code: str, problems: tuple[str, ...], params: dict[str, int],
                 lang: str) -> str:
    """A refused participant sign-in or enrolment (SignInRefused), in the participant's
    language: what was wrong, or each thing to fix."""
    known = participant_messages(lang)
    keys = [f"me.error.{p}" for p in problems] or [f"me.error.{code}"]
    return " ".join(known.get(key, known["me.error.other"]).format(**params) for key in keys)


@functools.cache
def participant_messages(lang: str) -> Mapping[str, str]:
    """The participant catalog in ``lang``, key to text."""
    lang = lang if lang in LANGUAGES else "en"
    return {str(msg.id): str(msg.string) for msg in read_catalog("participant", lang)
            if msg.id and not msg.fuzzy}


# --- which language a request reads ---------------------------------------------------------


def language(request: Request[Any, Any, Any]) -> str:
    """A participant's language: what they chose (``?lang=``, remembered in a cookie)."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    return chosen if chosen in LANGUAGES else "en"


def accepted_language(header: str) -> str | None:
    """The first of LANGUAGES an Accept-Language header prefers (q-values honoured)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def staff_language(request: Request[Any, Any, Any]) -> str:
    """Staff pages: a chosen language (``?lang=`` or the ``lang`` cookie) first, then the
    browser's Accept-Language, then English."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return accepted_language(request.headers.get("accept-language", "")) or "en"


def is_participant_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return path == PARTICIPANT_PATH or path.startswith(PARTICIPANT_PATH + "/")


def request_language(request: Request[Any, Any, Any]) -> str:
    return language(request) if is_participant_page(request) else staff_language(request)


def _context_language(ctx: Context) -> str:
    request = ctx.get("request")
    return request_language(request) if isinstance(request, Request) else "en"


@pass_context
def _gettext(ctx: Context, message: str) -> str:
    text = translations(_context_language(ctx)).gettext(message)
    if text is message and message.startswith(PARTICIPANT_PREFIXES):
        # Not in the catalog: a key built from data at render time ('me.status.' ~ status).
        # jinja2's newstyle gettext marks every translation safe, so escape this one.
        return escape(message)
    return text


@pass_context
def _ngettext(ctx: Context, singular: str, plural: str, n: int) -> str:
    return translations(_context_language(ctx)).ngettext(singular, plural, n)


@pass_context
def _translate(ctx: Context, text: str) -> str:
    """Template filter: words defined in Python and marked with N_ (portal.domain.text), in
    the page's language. A plain string, so escaped like any other value."""
    return str(translations(_context_language(ctx)).gettext(str(text)))


def _gettext_in(lang: str, message: str) -> str:
    """A message in a given language whatever the page's (the Spanish line on the English
    start page). Escaped on output, unlike ``_()``: it needs no markup."""
    return translations(lang).gettext(message)


@pass_context
def page_language(ctx: Context) -> str:
    """Template callable: the language this page is rendered in (``<html lang>``)."""
    return _context_language(ctx)


def install(environment: Environment) -> None:
    """jinja2.ext.i18n on the template environment, with gettext and ngettext that translate
    into the language of the request being rendered."""
    environment.add_extension("jinja2.ext.i18n")
    environment.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks wrap like prose
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True)
    environment.globals["page_language"] = page_language
    environment.globals["gettext_in"] = _gettext_in
    environment.filters["translate"] = _translate


# --- participant pages ------------------------------------------------------------------


def me_context(request: Request[Any, Any, Any], **extra: Any) -> dict[str, Any]:
    """The context every participant page starts from: its language and the choices."""
    lang = language(request)
    # participant_page: base.html and error.html show the participant wording (their catalog).
    return {"lang": lang, "languages": LANGUAGE_NAMES, "participant_page": True, **extra}


def with_language(request: Request[Any, Any, Any], response: Response[Any]) -> Response[Any]:
    """Remember a language chosen with ?lang= (a year; Secure over https)."""
    if request.query_params.get("lang") in LANGUAGE_NAMES:
        settings: Settings = request.app.state.settings
        response.set_cookie(Cookie(key="lang", value=request.query_params["lang"], path="/",
                                   httponly=True, secure=settings.https, samesite="lax",
                                   max_age=365 * 24 * 3600))
    return response
