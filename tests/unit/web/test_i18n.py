"""Every participant-facing string exists in English and Spanish, and templates use only
keys that exist."""

from __future__ import annotations

import re

from portal.config import PROJECT_ROOT
from portal.web.i18n import LANGUAGES, TEXT


def test_every_string_is_in_every_language() -> None:
    for key, versions in TEXT.items():
        assert set(versions) == set(LANGUAGES), key
        assert all(v.strip() for v in versions.values()), key
        assert versions["en"] != versions["es"] or key.endswith("language"), key


def test_participant_templates_use_known_keys_only() -> None:
    used = set()
    for path in (PROJECT_ROOT / "templates" / "me").glob("*.html"):
        used |= set(re.findall(r"t\['([a-z_.]+)'\]", path.read_text()))
    assert used
    assert used <= set(TEXT), used - set(TEXT)
