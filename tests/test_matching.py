"""The FAQ engine on a table of realistic citizen phrasings (tests/data/phrasings.yaml),
written apart from the knowledge base: accented, unaccented, typos, teencode, Telex, out of
scope. The same table feeds benchmarks/faq.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from content.search import FaqEngine, Outcome

TABLE: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "data" / "phrasings.yaml").read_text(encoding="utf-8")
)


def expected(row: dict[str, Any]) -> set[str]:
    entry = row.get("entry")
    if entry is None:
        return set()
    return {entry} if isinstance(entry, str) else set(entry)


def test_table_is_large_and_varied() -> None:
    assert len(TABLE) >= 80
    styles = {row["style"] for row in TABLE}
    assert {"accented", "unaccented", "typo", "teencode", "out-of-scope"} <= styles
    assert {row["expect"] for row in TABLE} == {"answer", "clarify", "fallback"}


def test_every_expected_entry_exists(engine: FaqEngine) -> None:
    for row in TABLE:
        for entry_id in expected(row):
            assert engine.kb.entry(entry_id) is not None, (row["q"], entry_id)


def outcome_is_acceptable(outcome: str, row: dict[str, Any], got: list[str]) -> bool:
    """The expected outcome, or the row's documented safe alternative, with the right entries."""
    if outcome not in {row["expect"], row.get("tolerate")}:
        return False
    if outcome == "answer":
        return got[0] in expected(row)
    if outcome == "clarify":
        # A near-domain question ("học lái xe" beside "đổi bằng lái") may be asked back about;
        # an in-scope one must be offered its right entry.
        offered = not expected(row) or bool(set(got) & expected(row))
        return 2 <= len(got) <= 3 and offered
    return True


@pytest.mark.parametrize("row", TABLE, ids=[row["q"][:40] for row in TABLE])
def test_phrasing_gets_its_expected_outcome(engine: FaqEngine, row: dict[str, Any]) -> None:
    result = engine.match(row["q"])
    got = [h.entry.id for h in result.hits]
    detail = [(h.entry.id, h.score) for h in result.hits]
    assert outcome_is_acceptable(result.outcome.value, row, got), (result.outcome, detail)


def test_most_phrasings_get_exactly_the_expected_outcome(engine: FaqEngine) -> None:
    """A floor under the exact-match rate, so tolerances cannot quietly take over.

    The engine's thresholds are calibrated to keep confident wrong answers on the pack's own
    held-out questions within 2 % (content.calibration); it asks back more often than the
    hand-set thresholds did, so the floor is lower than it was (0.8), and the next test checks
    that asking back still puts the right entry first."""
    exact = sum(
        outcome_is_acceptable(
            engine.match(row["q"]).outcome.value,
            {**row, "tolerate": None},
            [h.entry.id for h in engine.match(row["q"]).hits],
        )
        for row in TABLE
    )
    assert exact / len(TABLE) >= 0.62, f"{exact}/{len(TABLE)}"


def test_the_right_entry_comes_first(engine: FaqEngine) -> None:
    """Answered or asked back, an in-scope question's first candidate is the right entry."""
    in_scope = [row for row in TABLE if row["expect"] != "fallback" and expected(row)]
    first = sum(
        bool(hits) and hits[0].entry.id in expected(row)
        for row in in_scope
        for hits in [engine.match(row["q"]).hits]
    )
    assert first / len(in_scope) >= 0.9, f"{first}/{len(in_scope)}"


@pytest.mark.parametrize(
    "row",
    [row for row in TABLE if row["style"] == "out-of-scope" and "tolerate" not in row],
    ids=lambda row: row["q"][:40],
)
def test_out_of_scope_lands_in_the_fallback(engine: FaqEngine, row: dict[str, Any]) -> None:
    assert engine.match(row["q"]).outcome is Outcome.FALLBACK


def test_never_a_confident_wrong_answer(engine: FaqEngine) -> None:
    wrong = []
    for row in TABLE:
        result = engine.match(row["q"])
        if result.outcome is Outcome.ANSWER and result.hits[0].entry.id not in expected(row):
            wrong.append((row["q"], result.hits[0].entry.id))
    assert wrong == []
