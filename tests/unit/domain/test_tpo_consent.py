"""A consent for treatment, payment and health care operations (42 CFR 2.33) states what
42 CFR 2.31(a)(10) requires, in English and Spanish, or it cannot become active."""

from __future__ import annotations

from dataclasses import replace

import pytest

from portal.domain.consent import ConsentKind, ConsentStatus, activate, missing_elements
from portal.domain.consent_text import TPO_STATEMENT, sentences
from portal.domain.decision import Reason, decide
from portal.domain.vocabulary import DataCategory, Purpose
from tests.unit.domain.factories import (
    CEDAR,
    NORTHSIDE,
    actor,
    consent,
    context,
    provision,
    request,
)
from tests.unit.policy.test_policy_truth_table import POLICIES

STATEMENT = "(42 CFR 2.31(a)(10))"


def _tpo(**kwargs: object):  # type: ignore[no-untyped-def]
    return consent(provision(disclosers=(CEDAR,), recipients=(NORTHSIDE,),
                             categories=(DataCategory.SUD_TREATMENT,),
                             purposes=(Purpose.TREAT,)), kind=ConsentKind.PART2_TPO, **kwargs)


def test_a_tpo_consent_without_the_statements_is_deficient_and_not_honoured() -> None:
    from portal.policy import CasbinRolePolicy

    bare = _tpo()
    assert any(STATEMENT in m for m in missing_elements(bare))
    decision = decide(request(actor(NORTHSIDE), DataCategory.SUD_TREATMENT, CEDAR,
                              purpose=Purpose.TREAT), context(bare), CasbinRolePolicy(POLICIES))
    assert decision.reasons == (Reason.CONSENT_INVALID,)
    complete = _tpo(tpo_statement=TPO_STATEMENT["en"])
    assert not any(STATEMENT in m for m in missing_elements(complete))
    assert decide(request(actor(NORTHSIDE), DataCategory.SUD_TREATMENT, CEDAR,
                          purpose=Purpose.TREAT), context(complete),
                  CasbinRolePolicy(POLICIES)).permitted


def test_activation_refuses_a_tpo_draft_without_them() -> None:
    draft = replace(_tpo(status=ConsentStatus.DRAFT, signed=False))
    signature = _tpo().signature
    assert signature is not None
    with pytest.raises(ValueError, match=r"2\.31\(a\)\(10\)"):
        activate(draft, signature)
    assert activate(replace(draft, tpo_statement=TPO_STATEMENT["es"]),
                    signature).status is ConsentStatus.ACTIVE


@pytest.mark.parametrize(("lang", "words"), [
    ("en", ("share these records again", "may no longer protect", "You do not have to sign",
            "you still get treatment")),
    ("es", ("volver a compartir", "ya no los proteja", "no tiene que firmar",
            "igual recibe tratamiento")),
])
def test_the_statements_are_in_what_the_participant_reads(lang: str,
                                                           words: tuple[str, ...]) -> None:
    text = " ".join(sentences(_tpo(tpo_statement=TPO_STATEMENT[lang]), {}, lang))
    for phrase in words:
        assert phrase in text
    # Other kinds say nothing of the sort.
    assert TPO_STATEMENT[lang] not in " ".join(sentences(consent(), {}, lang))
