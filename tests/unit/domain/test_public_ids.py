"""Participants' public ids: no look-alike characters, grouped, and typed back in any case and
with any separators, old ids included."""

from __future__ import annotations

import re

from portal.domain import public_ids

LOOK_ALIKES = set("0OQD1ILJ2Z5SG8BUV")


def test_new_ids_are_grouped_and_have_no_look_alikes() -> None:
    for _ in range(200):
        made = public_ids.new_public_id()
        assert re.fullmatch(r"LP-[0-9A-Z]{4}-[0-9A-Z]{4}", made), made
        assert not set(made[3:].replace("-", "")) & LOOK_ALIKES, made
        assert len(made) <= 16  # participant.public_id is String(16)
    assert not set(public_ids.ALPHABET) & LOOK_ALIKES


def test_a_typed_id_names_every_way_it_can_be_stored() -> None:
    grouped = ("LP-7K3MXP9F", "LP-7K3M-XP9F")
    for typed in ("LP-7K3M-XP9F", "lp-7k3m-xp9f", " LP 7K3M XP9F ", "LP7K3MXP9F",
                  "LP-7K3MXP9F", "lp\u20137k3m\u2013xp9f"):
        assert public_ids.stored_forms(typed) == grouped, typed
    # Older ids stay reachable, with or without the dash after LP.
    assert public_ids.stored_forms("lp-1001") == ("LP-1001",)
    assert public_ids.stored_forms("LP1001") == ("LP-1001",)
    assert public_ids.stored_forms("LP-9244-U5NL") == ("LP-9244U5NL", "LP-9244-U5NL")


def test_what_cannot_be_an_id_is_nothing() -> None:
    for typed in ("", "LP-", "1001", "XX-1001", "LP-10'01", "LP-" + "A" * 14, "Maria"):
        assert public_ids.stored_forms(typed) == (), typed
