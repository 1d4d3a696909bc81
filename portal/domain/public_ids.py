"""Participants' public ids ("LP-7K3M-XP9F"): made to be read aloud, written on a slip and
typed back, so they use no look-alike characters and come in groups of four.

Left out of the alphabet: 0, 1, 2, 5, 8 and O, Q, D, I, L, J, Z, S, B (round, straight and
curved look-alikes), G (for 6), U and V (alike when handwritten), and the vowels A and E, so that
no group spells a word. Seventeen characters, eight of them: about 7 x 10^9 ids.

Ids made before this scheme (seeded "LP-1001", earlier "LP-9244U5NL") keep working: a lookup
ignores case, spaces and dashes and tries each way the id can be stored (``stored_forms``).
"""

from __future__ import annotations

import re
import secrets

PREFIX = "LP-"
ALPHABET = "34679CFHKMNPRTWXY"
GROUP = 4
LENGTH = 8

_TYPED_SEPARATORS = re.compile("[\\s\\-_.\u00b7\u2013\u2014]+")
_COMPACT = re.compile(r"LP[0-9A-Z]{1,13}")


def new_public_id() -> str:
    """A fresh id, e.g. "LP-7K3M-XP9F" (the caller checks it is not taken)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return PREFIX + "-".join(body[i:i + GROUP] for i in range(0, LENGTH, GROUP))


def stored_forms(typed: str) -> tuple[str, ...]:
    """Every stored spelling ``typed`` may stand for ("lp 7k3m xp9f", "LP-7K3MXP9F" and
    "LP-7K3M-XP9F" are one id), or () when it cannot be an id at all."""
    compact = _TYPED_SEPARATORS.sub("", typed).upper()
    if not _COMPACT.fullmatch(compact):
        return ()
    body = compact[len(PREFIX) - 1:]
    forms = [PREFIX + body]
    if len(body) == LENGTH:
        forms.append(PREFIX + "-".join(body[i:i + GROUP] for i in range(0, LENGTH, GROUP)))
    return tuple(forms)
