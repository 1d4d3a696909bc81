"""Message extraction for the catalogs in portal/locale/: what the templates and the Python code
mark for translation, split into the participant keys and the staff sentences.

``python -m portal.web.messages`` rewrites portal/locale/staff.pot from the sources and
merges it into every staff.po (new strings arrive with an empty translation, which the catalog
test refuses until someone writes it). The participant catalogs are edited by hand: their
msgids are keys, and a test checks every key used exists in both languages.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.pofile import read_po, write_po

from portal.config import PROJECT_ROOT
from portal.web.i18n import LANGUAGES, LOCALE_DIR, PARTICIPANT_KEY, catalog_path

TEMPLATE_DIR = PROJECT_ROOT / "templates"
PACKAGE_DIR = PROJECT_ROOT / "portal"
# participant_text(key, lang); gettext_in(lang, message); N_ marks words defined in Python.
KEYWORDS = {**DEFAULT_KEYWORDS, "participant_text": None, "gettext_in": (2,), "N_": None}
# jinja2.ext.babel_extract, configured as the portal's environment is (trimmed {% trans %}).
JINJA_OPTIONS = {"trimmed": "true", "newstyle_gettext": "true"}


@dataclass(frozen=True)
class Use:
    """One message marked for translation, and where."""

    msgid: str
    plural: str | None
    path: Path
    line: int

    @property
    def domain(self) -> str:
        return "participant" if PARTICIPANT_KEY.match(self.msgid) else "staff"


def translated_templates() -> list[Path]:
    return sorted(TEMPLATE_DIR.rglob("*.html"))


def _uses(path: Path, method: str, options: dict[str, str] | None = None) -> Iterable[Use]:
    for line, message, _comments, _context in extract_from_file(
            method, path, keywords=KEYWORDS, options=options or {}):
        if isinstance(message, tuple | list):
            yield Use(message[0], message[1], path, line)
        else:
            yield Use(message, None, path, line)


def extract() -> list[Use]:
    """Every marked message in the translated templates and in portal/**/*.py."""
    uses = [use for path in translated_templates()
            for use in _uses(path, "jinja2.ext:babel_extract", JINJA_OPTIONS)]
    uses += [use for path in sorted(PACKAGE_DIR.rglob("*.py"))
             for use in _uses(path, "python")]
    return uses


def staff_template() -> Catalog:
    pot = Catalog(domain="staff", project="LEAD Partner Portal", version="1", fuzzy=False,
                  header_comment="# The staff pages' messages (English), extracted by\n"
                                 "# python -m portal.web.messages.")
    for use in extract():
        if use.domain == "staff":
            msgid = (use.msgid, use.plural) if use.plural else use.msgid
            pot.add(msgid, locations=[(use.path.relative_to(PROJECT_ROOT).as_posix(),
                                       use.line)])
    return pot


def write_catalog(catalog: Catalog, path: Path) -> None:
    with path.open("wb") as out:
        write_po(out, catalog, width=100, omit_header=False, sort_output=False,
                 include_lineno=False)


def update() -> None:
    pot = staff_template()
    write_catalog(pot, LOCALE_DIR / "staff.pot")
    for lang in LANGUAGES:
        path = catalog_path("staff", lang)
        if not path.exists():
            continue  # English staff text is the msgid itself
        with path.open("rb") as po:
            catalog = read_po(po, locale=lang, domain="staff")
        catalog.update(pot, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        write_catalog(catalog, path)


if __name__ == "__main__":
    update()
    sys.stdout.write(f"wrote {LOCALE_DIR / 'staff.pot'} and merged it into the staff.po files\n")
