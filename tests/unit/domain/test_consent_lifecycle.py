"""Consent validation (42 CFR 2.31(a)) and the lifecycle from draft to revoked or superseded."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from portal.domain.consent import (
    ConsentError,
    ConsentEvent,
    ConsentKind,
    ConsentStatus,
    Signature,
    SignatureMethod,
    SignerRelation,
    activate,
    ensure_editable,
    missing_elements,
    revocable_from,
    revoke,
    supersede,
)
from portal.domain.vocabulary import DataCategory, Purpose
from tests.unit.domain.factories import (
    CEDAR,
    HARBOR,
    HOPE,
    NOW,
    PROBATION,
    TODAY,
    actor,
    consent,
    context,
    provision,
    request,
)

SIGNATURE = Signature(SignatureMethod.TYPED, "Marcus Reed", SignerRelation.SELF, NOW)
DRAFT = consent(provision(), status=ConsentStatus.DRAFT, signed=False)


def test_a_complete_draft_becomes_active_when_signed() -> None:
    active = activate(DRAFT, SIGNATURE)
    assert active.status is ConsentStatus.ACTIVE
    assert active.signature == SIGNATURE


def test_every_missing_element_is_named() -> None:
    empty = replace(DRAFT, participant_id="", provisions=(), information_description="",
                    revocation_statement="", expires_on=None, expiry_event=None)
    with pytest.raises(ConsentError) as info:
        activate(empty, replace(SIGNATURE, signer_name=" "))
    text = " | ".join(info.value.problems)
    for element in ("2.31(a)(1)", "2.31(a)(2)", "2.31(a)(3)", "2.31(a)(4)", "2.31(a)(5)",
                    "2.31(a)(6)", "2.31(a)(7)", "2.31(a)(8)"):
        assert element in text, element
    assert missing_elements(replace(DRAFT, signature=None))[-1].endswith("2.31(a)(9))")


def test_sud_information_must_be_stated_explicitly() -> None:
    part2 = replace(DRAFT, kind=ConsentKind.PART2,
                    information_description="Treatment records from Cedar")
    with pytest.raises(ConsentError, match="substance use disorder information is included"):
        activate(part2, SIGNATURE)
    ok = replace(part2, information_description="Substance use disorder treatment records")
    assert activate(ok, SIGNATURE).status is ConsentStatus.ACTIVE


def test_expiry_event_instead_of_date_is_enough() -> None:
    d = replace(DRAFT, expires_on=None, expiry_event="lead_exit")
    assert activate(d, SIGNATURE).status is ConsentStatus.ACTIVE


def test_an_expiry_already_past_is_refused() -> None:
    with pytest.raises(ConsentError, match="already past"):
        activate(replace(DRAFT, expires_on=TODAY - timedelta(days=1)), SIGNATURE)


def test_criminal_justice_consent_rules() -> None:
    cj = replace(DRAFT, kind=ConsentKind.PART2_CRIMINAL_JUSTICE, provisions=(
        provision(disclosers=(CEDAR,), recipients=(PROBATION,), categories=(
            DataCategory.PROGRESS,), purposes=(Purpose.LEADMON, Purpose.CAREMGT)),))
    with pytest.raises(ConsentError, match=r"only to monitor progress \(42 CFR 2.35"):
        activate(cj, SIGNATURE)
    sector_cj = replace(cj, provisions=(replace(
        cj.provisions[0], recipients=frozenset({"sector:housing"}),
        purposes=frozenset({Purpose.LEADMON})),))
    with pytest.raises(ConsentError, match="only justice agencies"):
        activate(sector_cj, SIGNATURE)


def test_only_drafts_are_signed_or_edited() -> None:
    active = activate(DRAFT, SIGNATURE)
    with pytest.raises(ConsentError, match="only a draft can be signed"):
        activate(active, SIGNATURE)
    with pytest.raises(ConsentError, match="cannot be edited; make a new version"):
        ensure_editable(active)
    ensure_editable(DRAFT)


def test_revoke_active_and_refuse_the_rest() -> None:
    active = activate(DRAFT, SIGNATURE)
    revoked = revoke(active, NOW)
    assert revoked.status is ConsentStatus.REVOKED
    assert revoked.revoked_at == NOW
    with pytest.raises(ConsentError, match="this one is revoked"):
        revoke(revoked, NOW)
    with pytest.raises(ConsentError, match="this one is draft"):
        revoke(DRAFT, NOW)
    with pytest.raises(ConsentError, match="this one is expired"):
        revoke(replace(active, expires_on=TODAY - timedelta(days=1)), NOW)


def test_criminal_justice_consent_refuses_early_revocation_and_says_when() -> None:
    cj = consent(provision(disclosers=(CEDAR,), recipients=(PROBATION,),
                           categories=(DataCategory.PROGRESS,), purposes=(Purpose.LEADMON,)),
                 kind=ConsentKind.PART2_CRIMINAL_JUSTICE,
                 revocable_after=TODAY + timedelta(days=30),
                 revocable_after_event="final_disposition")
    when = (TODAY + timedelta(days=30)).isoformat()
    assert revocable_from(cj) == f"{when} or the final disposition of the case"
    with pytest.raises(ConsentError, match=f"cannot be revoked until {when}"):
        revoke(cj, NOW)
    assert revoke(cj, NOW + timedelta(days=30)).status is ConsentStatus.REVOKED
    # 42 CFR 2.35(c): once the final disposition is recorded, it can be taken back.
    decided = {ConsentEvent.FINAL_DISPOSITION: TODAY}
    assert revoke(cj, NOW, decided).status is ConsentStatus.REVOKED
    # A disposition recorded for a later day does not unlock it today; another event neither.
    with pytest.raises(ConsentError):
        revoke(cj, NOW, {ConsentEvent.FINAL_DISPOSITION: TODAY + timedelta(days=1)})
    with pytest.raises(ConsentError):
        revoke(cj, NOW, {ConsentEvent.LEAD_EXIT: TODAY})


def test_a_consent_ends_when_its_event_is_recorded() -> None:
    on_exit = activate(replace(DRAFT, expires_on=None, expiry_event="lead_exit"), SIGNATURE)
    assert on_exit.status_at(NOW) is ConsentStatus.ACTIVE
    for event in ConsentEvent:
        occurred = {event: TODAY}
        expected = ConsentStatus.EXPIRED if event is ConsentEvent.LEAD_EXIT \
            else ConsentStatus.ACTIVE
        assert on_exit.status_at(NOW, occurred) is expected
    assert on_exit.status_at(NOW, {ConsentEvent.LEAD_EXIT: TODAY + timedelta(days=2)}) \
        is ConsentStatus.ACTIVE
    episode = replace(on_exit, expiry_event="treatment_episode_end")
    assert episode.status_at(NOW, {ConsentEvent.TREATMENT_EPISODE_END: TODAY}) \
        is ConsentStatus.EXPIRED
    # Free text is no event: such a consent is deficient, so it never becomes active.
    assert missing_elements(replace(on_exit, expiry_event="when I say so"))


def test_decide_withholds_after_exit_what_a_consent_ending_on_exit_shared() -> None:
    from portal.domain.decision import Reason, decide
    from portal.policy import CasbinRolePolicy, default_policies_dir

    policy = CasbinRolePolicy(default_policies_dir())
    shared = replace(consent(), expires_on=None, expiry_event="lead_exit")
    before = context(shared)
    asked = request(actor(HOPE), DataCategory.HOUSING, HARBOR)
    assert decide(asked, before, policy).permitted
    after = replace(before, occurred={ConsentEvent.LEAD_EXIT: TODAY})
    assert decide(asked, after, policy).reasons == (Reason.CONSENT_EXPIRED,)


def test_expiry_is_a_status_at_a_time() -> None:
    active = activate(replace(DRAFT, expires_on=TODAY), SIGNATURE)
    assert active.status_at(NOW) is ConsentStatus.ACTIVE
    assert active.status_at(NOW + timedelta(days=1)) is ConsentStatus.EXPIRED
    assert active.status is ConsentStatus.ACTIVE  # nothing is rewritten


def test_supersede_makes_a_new_version() -> None:
    old = activate(DRAFT, SIGNATURE)
    new = activate(replace(DRAFT, id="c2", provisions=(
        provision(disclosers=(HARBOR,), categories=(DataCategory.HOUSING,
                                                    DataCategory.BENEFITS)),)), SIGNATURE)
    old2, new2 = supersede(old, new)
    assert old2.status is ConsentStatus.SUPERSEDED
    assert (new2.version, new2.supersedes_id) == (2, old.id)
    with pytest.raises(ConsentError, match="must be signed"):
        supersede(old, replace(new, status=ConsentStatus.DRAFT))
    with pytest.raises(ConsentError, match="only an active consent can be superseded"):
        supersede(old2, new)
