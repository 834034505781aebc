"""The engine calibrates itself on the pack it is given: held-out questions made from the pack,
thresholds that keep confident wrong answers within 2 %, ranking at least as good as plain
BM25, and fallbacks that still offer plausible entries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient

from bot.services import build_engine
from bot.settings import FaqSettings, Settings
from content.calibration import TARGET_WRONG, allowed_wrong, calibrate
from content.evaluation import evaluate, title_only
from content.heldout import ProbeKind, split
from content.loader import BUNDLED_PACK, load_pack
from content.models import KnowledgeBase
from content.search import FaqEngine, Outcome, Thresholds

PHRASINGS = Path(__file__).parent / "data" / "phrasings.yaml"


def test_held_out_split_takes_out_what_it_asks(kb: KnowledgeBase) -> None:
    held = split(kb.entries, seed=3)
    indexed = {e.id: e for e in held.indexed}
    kinds = {p.kind for p in held.probes}
    assert kinds == {ProbeKind.PHRASING, ProbeKind.ABSENT}
    for probe in held.probes:
        if probe.kind is ProbeKind.ABSENT:
            assert probe.source_id not in indexed
        else:
            entry = indexed[probe.source_id]
            # The asked phrasing is no longer in its entry (it may carry chat words around it).
            assert all(p not in probe.text or len(p) < 4 for p in entry.phrasings)
    # Same seed, same probes: calibration is reproducible.
    assert split(kb.entries, seed=3) == held


def test_bundled_pack_calibration_keeps_wrong_answers_within_the_target(
    engine: FaqEngine,
) -> None:
    calibration = engine.calibration
    assert calibration is not None
    assert calibration.probes >= 400
    assert calibration.shares.wrong <= TARGET_WRONG
    assert 0 < calibration.clarify <= calibration.answer <= 1
    assert engine.thresholds.answer == calibration.answer


def test_wrong_answers_allowed_by_the_target_and_by_the_wilson_bound() -> None:
    assert allowed_wrong(100, 0.02) == 2
    assert allowed_wrong(637, 0.02) == 12
    # The bound allows fewer errors, and none at all on too few questions.
    assert allowed_wrong(100, 0.02, 1.6449) == 0
    assert allowed_wrong(500, 0.02, 1.6449) < allowed_wrong(2000, 0.02, 1.6449) < 0.02 * 2000


def test_calibration_is_cached_per_pack(kb: KnowledgeBase) -> None:
    engine = FaqEngine(kb)
    again = calibrate(kb.entries, kb.lexicon, engine.index.weights, Thresholds())
    assert again is engine.calibration


def test_settings_override_one_threshold_and_keep_the_others_calibrated(
    kb: KnowledgeBase, engine: FaqEngine
) -> None:
    tuned = build_engine(Settings(faq=FaqSettings(answer_threshold=0.97)), kb)
    assert tuned.thresholds.answer == 0.97
    assert tuned.thresholds.clarify == engine.thresholds.clarify


def test_title_only_pack_ranks_at_least_as_well_as_bm25_within_the_target(
    kb: KnowledgeBase,
) -> None:
    """The shape of an imported catalogue: titles only, the phrasings asked as questions."""
    comparison = title_only(kb)
    assert comparison.questions >= 500
    assert comparison.engine_first >= comparison.bm25_first
    assert comparison.engine_first_accented >= comparison.bm25_first_accented
    assert comparison.shares.wrong <= TARGET_WRONG


def test_evaluation_report_names_confusions_and_thin_entries(kb: KnowledgeBase) -> None:
    report = evaluate(kb)
    assert report.entries == len(kb.entries)
    assert report.comparison.engine_first >= report.comparison.bm25_first
    assert report.comparison.shares.wrong <= TARGET_WRONG
    for asked, taken, count in report.confusions:
        assert asked != taken
        assert count >= 1
        assert kb.entry(asked) is not None
    assert all(len(kb.entry(i).phrasings) < 3 for i in report.thin)  # type: ignore[union-attr]


def test_a_pack_without_phrasings_calibrates_from_perturbed_titles(tmp_path: Path) -> None:
    folder = tmp_path / "pack"
    shutil.copytree(BUNDLED_PACK, folder)
    for path in (folder / "entries").glob("*.yaml"):
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        for entry in entries:
            entry.pop("phrasings", None)
            entry.pop("keywords", None)
        path.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    kb = load_pack(folder)
    engine = FaqEngine(kb)
    assert engine.calibration is not None
    assert engine.calibration.shares.wrong <= TARGET_WRONG
    result = engine.match("đăng ký khai sinh cần giấy tờ gì")
    assert result.outcome is not Outcome.FALLBACK
    assert any(h.entry.id.startswith("khai-sinh") for h in result.hits)


def test_fallback_never_suggests_for_words_the_pack_has_never_seen(engine: FaqEngine) -> None:
    for text in ("giá vàng hôm nay bao nhiêu", "what is the weather like today", "asdf qwer"):
        result = engine.match(text)
        assert result.outcome is Outcome.FALLBACK
        assert not result.suggested


def _suggesting_question(engine: FaqEngine) -> tuple[str, list[str]]:
    rows: list[dict[str, Any]] = yaml.safe_load(PHRASINGS.read_text(encoding="utf-8"))
    for row in rows:
        result = engine.match(row["q"])
        if result.suggested:
            return row["q"], [h.entry.id for h in result.hits]
    pytest.fail("no question of the labelled table falls back with suggestions")


async def test_fallback_with_plausible_entries_offers_them(
    client: TestClient[Any, Any], engine: FaqEngine
) -> None:
    question, offered = _suggesting_question(engine)
    assert 1 <= len(offered) <= 3
    response = await client.post("/api/chat", json={"user_id": "u-suggest-1", "text": question})
    reply = (await response.json())["replies"][0]
    assert "Có thể bạn muốn hỏi" in reply["text"]
    payloads = [b["payload"] for b in reply["buttons"]]
    assert payloads == [f"faq:{entry_id}" for entry_id in offered] + ["fallback"]
    # "Không phải các câu trên" leads to the full fallback with the hotline.
    response = await client.post(
        "/api/chat", json={"user_id": "u-suggest-1", "payload": "fallback"}
    )
    assert "18001096" in (await response.json())["replies"][0]["text"]


def test_evaluate_command_prints_the_report_and_json(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bot", "content", "evaluate"]
    shown = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "Câu hỏi để riêng" in shown.stdout
    assert "BM25" in shown.stdout
    data = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(data.stdout)
    assert report["entries"] >= 95
    assert report["held_out"]["wrong_answers"] <= TARGET_WRONG
    assert report["held_out"]["engine_first"] >= report["held_out"]["bm25_first"]
    assert {"answer", "clarify", "margin", "strong_margin", "suggest"} <= set(report["thresholds"])
    assert isinstance(report["confusions"], list)
    assert isinstance(report["thin_entries"], list)


def test_calibration_is_kept_for_the_next_process(tmp_path: Path) -> None:
    """A restart (or another worker) reads the calibration instead of measuring again."""
    cache = tmp_path / "cache"
    env = {**os.environ, "BOT_CONTENT_CACHE_DIR": str(cache), "PYTHONIOENCODING": "utf-8"}
    command = [sys.executable, "-m", "bot", "ask", "--json", "dk ket hon can gi"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    kept = list(cache.glob("calibration-*.json"))
    assert len(kept) == 1
    stamp = kept[0].stat().st_mtime_ns
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
    assert kept[0].stat().st_mtime_ns == stamp  # read, not written again
    # A damaged file is measured again and replaced, never trusted.
    kept[0].write_text("{not json", encoding="utf-8")
    third = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert json.loads(third.stdout) == json.loads(first.stdout)
    assert json.loads(kept[0].read_text(encoding="utf-8"))["answer"] > 0
