"""Grouping a participant's accounting of disclosures into visits, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.domain.vocabulary import DataCategory
from portal.selfservice.service import VISIT_GAP, Look, group_looks

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def look(minutes: float, who: str = "alex@housing", org: str = "Hope Housing",
         category: DataCategory | None = DataCategory.HOUSING, basis: str = "consent",
         person: str | None = "Alex Rivera", seq: int | None = None,
         before_revocation: bool = False) -> Look:
    # Unless told otherwise, the chain position follows the clock (as it does when one
    # process writes the log).
    return Look(T0 + timedelta(minutes=minutes), org, ["housing_navigator"], category, basis,
                who, person, int(minutes * 100) if seq is None else seq, before_revocation)


def test_looks_close_together_by_one_person_are_one_visit() -> None:
    accounting = group_looks([
        look(0, category=DataCategory.HOUSING), look(5, category=DataCategory.BENEFITS),
        look(9, category=DataCategory.HOUSING), look(12, category=None)])
    ((agency, (visit,)),) = accounting.agencies
    assert agency == "Hope Housing" and accounting.emergency == []
    assert (visit.person, visit.views, visit.started, visit.ended) == (
        "Alex Rivera", 4, T0, T0 + timedelta(minutes=12))
    # Each kind once, in the order first seen; the page as a whole noted apart.
    assert visit.categories == [DataCategory.HOUSING, DataCategory.BENEFITS] and visit.whole


def test_a_gap_a_different_person_or_basis_starts_a_new_visit() -> None:
    gap = VISIT_GAP / timedelta(minutes=1)
    accounting = group_looks([
        look(0), look(gap + 1),                       # too long after: a second visit
        look(2, who="sam@housing", person=None),      # another person at the same agency
        look(3, basis="unrecorded")])                 # same person, another basis
    ((agency, visits),) = accounting.agencies
    assert agency == "Hope Housing" and len(visits) == 4
    # Newest first.
    assert [v.ended for v in visits] == sorted((v.ended for v in visits), reverse=True)
    assert {(v.person, v.basis, v.views) for v in visits} == {
        ("Alex Rivera", "consent", 1), (None, "consent", 1), ("Alex Rivera", "unrecorded", 1)}


def test_agencies_are_ordered_by_their_latest_visit_and_emergencies_come_apart() -> None:
    accounting = group_looks([
        look(0, org="Hope Housing"), look(60, who="kim@clinic", org="Northside Clinic"),
        look(120, org="Hope Housing"),
        look(30, who="kim@clinic", org="Northside Clinic", basis="break_glass",
             category=DataCategory.SUD_TREATMENT),
        look(31, who="pat@pd", org="Riverton PD", basis="refused_break_glass", category=None)])
    assert [agency for agency, _ in accounting.agencies] == ["Hope Housing", "Northside Clinic"]
    assert [len(visits) for _, visits in accounting.agencies] == [2, 1]
    assert [(v.organization, v.basis) for v in accounting.emergency] == [
        ("Riverton PD", "refused_break_glass"), ("Northside Clinic", "break_glass")]
    assert all(v.emergency for v in accounting.emergency)
    assert not group_looks([]).agencies and group_looks([]).empty


def test_looks_are_told_in_chain_order_not_by_clock() -> None:
    # Two agencies: the later-stamped look was committed first (a lower seq).
    accounting = group_looks([
        look(1, org="Hope Housing", seq=20),
        look(2, org="Bridge Clinic", who="pat@clinic", person=None, seq=10,
             before_revocation=True)])
    assert [agency for agency, _ in accounting.agencies] == ["Hope Housing", "Bridge Clinic"]
    ((_, (late,)), (_, (early,))) = accounting.agencies
    assert early.before_revocation and not late.before_revocation
