"""The break-glass review queue and the review itself: what was seen under each grant, the
finding recorded once, by someone else, and audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from portal.compliance import review
from portal.compliance.console import NOTES_MAX
from portal.db import models as m
from portal.db import repositories as repo
from portal.kernel.errors import Conflict, InvalidInput, NotFound
from tests.integration.compliance.conftest import META, RENEE, Demo, staff_view

LUIS = "luis.moreno@eastgate-clinic.example"
GRACE = "grace.kim@northside-bh.example"


def _grant(world: Demo, email: str = LUIS, public_id: str = "LP-1003",
           minutes: int = 60) -> m.BreakGlassGrant:
    with world.as_staff(email) as (session, user):
        p = repo.participant_by_public_id(session, public_id)
        assert p is not None
        return world.services.access.grant_break_glass(
            session, user, p, reason="found\nunresponsive", emergency_nature="overdose",
            facility="Eastgate clinic", minutes=minutes, meta=META)


def _seen(world: Demo, grant: m.BreakGlassGrant, email: str, org: str, role: str,
          category: str, records: int = 1, decision: str = "permit") -> None:
    event = staff_view(email, org, (role,), world.user_id(email), grant.participant_id,
                       category=category, decision=decision, reasons=("break_glass",),
                       record_ids=tuple(str(uuid.uuid4()) for _ in range(records)),
                       consent_ids=(), purpose="ETREAT",
                       detail={"disclosers": ["cedar-recovery"],
                               "break_glass_grant": str(grant.id)})
    world.append(event, at=grant.started_at + timedelta(minutes=5))


def _queue(world: Demo, status: review.ReviewFilter = "pending") -> list[review.GrantRow]:
    with world.as_staff(RENEE) as (session, renee):
        return review.review_queue(session, world.services, renee, META, status)


def _review(world: Demo, grant_id: uuid.UUID, finding: str, notes: str = "",
            email: str = RENEE) -> m.BreakGlassGrant:
    with world.as_staff(email) as (session, user):
        return review.review_grant(session, world.services, user, META, grant_id, finding,
                                   notes)


def test_the_queue_shows_each_grant_and_what_was_seen_under_it(world: Demo) -> None:
    grant = _grant(world)
    _seen(world, grant, LUIS, "eastgate-clinic", "clinician", "sud_treatment", records=3)
    _seen(world, grant, LUIS, "eastgate-clinic", "clinician", "sud_treatment", records=2)
    _seen(world, grant, LUIS, "eastgate-clinic", "clinician", "contact", records=1)
    _seen(world, grant, LUIS, "eastgate-clinic", "clinician", "justice", records=0,
          decision="deny")
    # A view naming no grant is not counted.
    world.append(staff_view(LUIS, "eastgate-clinic", ("clinician",), world.user_id(LUIS),
                            grant.participant_id, category="housing"),
                 at=grant.started_at + timedelta(minutes=6))

    (row,) = _queue(world)
    assert row.id == grant.id
    assert (row.staff, row.staff_email, row.organization, row.participant) == (
        "Luis Moreno, NP", LUIS, "Eastgate Community Health Clinic", "LP-1003")
    assert row.reason == "found\\nunresponsive"  # escaped for display
    assert (row.emergency_nature, row.facility) == ("overdose", "Eastgate clinic")
    assert row.active and row.review_status == "pending"
    assert (row.reviewed_by, row.reviewed_at, row.review_notes) == ("", None, "")
    assert [(s.category, s.views, s.records, s.denied) for s in row.seen] == [
        ("contact", 1, 1, 0), ("sud_treatment", 2, 5, 0), ("justice", 0, 0, 1)]
    assert row.seen[1].label == "Substance use treatment"
    (read,) = world.events("audit:event:view")
    assert read.actor == RENEE and read.decision == "permit"
    assert read.detail == {"view": "break_glass_queue", "status": "pending", "grants": 1}


def test_an_empty_queue_is_still_an_audited_read(world: Demo) -> None:
    assert _queue(world) == []
    assert world.events("audit:event:view")[0].detail["grants"] == 0


def test_a_finding_is_recorded_once_and_audited(world: Demo) -> None:
    grant = _grant(world)
    other = _grant(world, GRACE, "LP-1001", minutes=1)

    reviewed = _review(world, grant.id, "justified", "  Seen in the ER.  ")
    assert reviewed.review_status == "justified"
    with world.factory() as session:
        stored = session.get(m.BreakGlassGrant, grant.id)
        assert stored is not None and stored.review_notes_enc is not None
        assert b"ER" not in stored.review_notes_enc
        assert world.services.vault.ready(session).open(stored, "review_notes") == (
            "Seen in the ER.")
    assert reviewed.reviewed_by_user_id == world.user_id(RENEE)
    (event,) = world.events("break_glass:grant:review")
    assert (event.actor, event.decision, event.participant_id, event.record_ids) == (
        RENEE, "permit", grant.participant_id, [str(grant.id)])
    assert event.policy_version == world.services.policy.version
    assert event.detail == {"break_glass_grant": str(grant.id), "finding": "justified",
                            "notes": True,  # sealed on the grant, not in the log
                            "grantee_user_id": world.user_id(LUIS)}

    with pytest.raises(Conflict, match="already been reviewed"):
        _review(world, grant.id, "not_justified", "changed my mind")
    assert len(world.events("break_glass:grant:review")) == 1

    assert [r.id for r in _queue(world)] == [other.id]
    (done,) = _queue(world, "reviewed")
    assert (done.id, done.reviewed_by, done.review_notes) == (grant.id, "Renee Walsh",
                                                              "Seen in the ER.")
    assert {r.id for r in _queue(world, "all")} == {grant.id, other.id}
    assert [e.detail["status"] for e in world.events("audit:event:view")] == [
        "pending", "reviewed", "all"]

    # Not justified needs a reason; a justified finding may have none.
    _review(world, other.id, "justified")
    with world.factory() as session:
        assert session.get(m.BreakGlassGrant, other.id).review_notes_enc is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("finding", "notes", "message"), [
    ("maybe", "", "Choose whether"),
    ("pending", "", "Choose whether"),
    ("not_justified", "   ", "Say why"),
    ("justified", "x" * (NOTES_MAX + 1), "at most 2,000 characters"),
])
def test_a_bad_finding_is_refused_and_nothing_changes(world: Demo, finding: str, notes: str,
                                                      message: str) -> None:
    grant = _grant(world)
    with pytest.raises(InvalidInput, match=message):
        _review(world, grant.id, finding, notes)
    with world.factory() as session:
        assert session.get(m.BreakGlassGrant, grant.id).review_status == "pending"  # type: ignore[union-attr]
    assert world.events("break_glass:grant:review") == []


def test_no_review_of_an_unknown_grant_or_of_ones_own(world: Demo) -> None:
    with pytest.raises(NotFound):
        _review(world, uuid.uuid4(), "justified")
    grant = _grant(world)
    with pytest.raises(Conflict, match="your own emergency access"):
        _review(world, grant.id, "justified", email=LUIS)
    assert world.events("break_glass:grant:review") == []


def test_a_reason_that_cannot_be_decrypted_shows_as_unavailable(world: Demo) -> None:
    grant, other = _grant(world), _grant(world, GRACE, "LP-1001")
    with world.factory.begin() as session:
        # A value moved from another grant does not decrypt here (bound to its row).
        moved = session.get(m.BreakGlassGrant, other.id)
        stored = session.get(m.BreakGlassGrant, grant.id)
        assert moved is not None and stored is not None
        stored.reason_enc = moved.reason_enc
    rows = {r.id: r for r in _queue(world)}
    assert rows[grant.id].reason is None
    assert (rows[grant.id].emergency_nature, rows[grant.id].facility) == (
        "overdose", "Eastgate clinic")
    assert rows[other.id].reason == "found\\nunresponsive"
