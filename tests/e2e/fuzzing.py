"""What schemathesis draws for one operation, for both fuzz runs (the API in test_api.py, the
pages and forms in test_form_fuzz.py): valid and invalid cases, valid cases on a real
participant (so that decisions and writes run), and integers no database column can hold."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from schemathesis import GenerationMode

OUT_OF_RANGE = [2**63, -(2**63) - 1, 2**64, -1, 0]


def case_strategies(operation: Any) -> Any:
    """(mode, case) pairs for ``operation``."""
    positive, negative = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
    strategies = [st.tuples(st.just(positive), operation.as_strategy()),
                  st.tuples(st.just(negative), operation.as_strategy(generation_mode=negative))]
    if "{public_id}" in operation.path:
        strategies.append(st.tuples(st.just(positive), operation.as_strategy(
            path_parameters={"public_id": "LP-1001"})))
    for name in _integer_path_parameters(operation):
        strategies.append(st.tuples(st.just(negative), st.sampled_from(OUT_OF_RANGE).flatmap(
            lambda value, name=name: operation.as_strategy(path_parameters={name: value}))))
    return st.one_of(strategies)


def _integer_path_parameters(operation: Any) -> list[str]:
    return [p["name"] for p in operation.definition.raw.get("parameters", [])
            if p.get("in") == "path" and p.get("schema", {}).get("type") == "integer"]
