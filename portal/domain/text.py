"""Marking words for translation where they are defined: ``N_("Housing")`` is the English
text, unchanged; a page translates it where it shows it (the ``translate`` template filter,
portal/web/i18n.py), and message extraction finds it (portal/web/messages.py)."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a no-op marker)
    return message
