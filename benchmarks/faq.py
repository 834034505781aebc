"""FAQ engine benchmark: latency, accuracy and honesty beside plain BM25, in one run.

    .venv/bin/python benchmarks/faq.py [--rounds 3] [--sizes 2000 10000]

Knowledge bases: the bundled pack, and the bundled pack grown to 2,000 and 10,000 entries with
title-only procedures in the shape of the national catalogue (benchmarks/catalogue_titles.py:
actions × subjects × qualifiers of procedures for organisations, which the pack does not cover,
so they only ever distract).

Three tables:

1. *Labelled questions* (tests/data/phrasings.yaml: accented, unaccented, typos, teencode,
   Telex, out of scope): p50/p99 latency of one question (ms, one core), first candidate right
   on in-scope questions, wrong confident answers, confident answers to out-of-scope questions.
2. *Held out of the bundled pack* (what `bot content evaluate` prints): the engine's own
   calibration questions, beside BM25 on the same split.
3. *Title-only packs*: every entry reduced to its title (the shape of an imported catalogue),
   the entries' phrasings asked as questions, at the bundled size, 2,000 and 10,000 entries;
   the engine calibrates itself on each pack from its titles alone.

Baseline: BM25 (k1 1.2, b 0.75) on syllables and bigrams as typed (content.evaluation.Bm25).
It has no notion of confidence, so only its first candidate is compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_support import table  # noqa: E402
from catalogue_titles import catalogue_entries  # noqa: E402

from content.evaluation import Bm25, Comparison, evaluate, title_only  # noqa: E402
from content.loader import load_pack  # noqa: E402
from content.models import KnowledgeBase  # noqa: E402
from content.search import FaqEngine, Outcome  # noqa: E402

PHRASINGS = ROOT / "tests" / "data" / "phrasings.yaml"
TARGET_P99_MS = {2000: 2.0, 10000: 10.0}
TARGET_WRONG = 0.02


def grown(kb: KnowledgeBase, size: int) -> KnowledgeBase:
    """The bundled pack plus catalogue titles up to ``size`` entries."""
    extra = catalogue_entries(max(0, size - len(kb.entries)), kb.entries[0])
    return replace(kb, entries=kb.entries + tuple(extra))


def load_queries() -> list[dict[str, object]]:
    data = yaml.safe_load(PHRASINGS.read_text(encoding="utf-8"))
    return [row for row in data if isinstance(row, dict)]


def expected_ids(row: dict[str, object]) -> set[str]:
    entry = row.get("entry")
    if entry is None:
        return set()
    return {entry} if isinstance(entry, str) else set(entry)  # type: ignore[arg-type]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(
    answer: Callable[[str], tuple[str | None, bool]],
    queries: list[dict[str, object]],
    rounds: int,
) -> dict[str, float]:
    """answer(q) -> (top entry id, answered confidently)."""
    for row in queries:  # warm-up: caches and lazy initialisation are not what we measure
        answer(str(row["q"]))
    latencies: list[float] = []
    top1 = in_scope = wrong_confident = oos_confident = oos = 0
    for round_no in range(rounds):
        for row in queries:
            text = str(row["q"])
            start = time.perf_counter()
            top, confident = answer(text)
            latencies.append((time.perf_counter() - start) * 1000)
            if round_no:
                continue
            ids = expected_ids(row)
            if row["expect"] == "fallback":
                oos += 1
                oos_confident += confident
            elif ids:
                in_scope += 1
                top1 += top in ids
                wrong_confident += confident and top not in ids
    return {
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "top1": top1 / in_scope if in_scope else 0.0,
        "wrong": wrong_confident,
        "oos": oos_confident,
        "oos_total": oos,
        "in_scope": in_scope,
    }


def ours(engine: FaqEngine) -> Callable[[str], tuple[str | None, bool]]:
    def answer(text: str) -> tuple[str | None, bool]:
        result = engine.match_uncached(text)
        best = result.best
        return (best.entry.id if best else None), result.outcome is Outcome.ANSWER

    return answer


def baseline(kb: KnowledgeBase) -> Callable[[str], tuple[str | None, bool]]:
    bm25 = Bm25(kb.entries)

    def answer(text: str) -> tuple[str | None, bool]:
        return bm25.first(text), False

    return answer


def pct(x: float) -> str:
    return f"{x:.1%}"


def labelled_table(bases: list[tuple[str, KnowledgeBase]], rounds: int) -> bool:
    queries = load_queries()
    print(f"1. Labelled questions: {len(queries)}, {rounds} rounds each; one core.\n")
    rows = []
    ok = True
    for name, base in bases:
        start = time.perf_counter()
        engine = FaqEngine(base)
        built = time.perf_counter() - start
        cal = engine.calibration
        assert cal is not None
        for engine_name, answer in (("ours", ours(engine)), ("BM25", baseline(base))):
            m = measure(answer, queries, rounds)
            verdict = ""
            if engine_name == "ours":
                target = TARGET_P99_MS.get(len(base.entries))
                met = (target is None or m["p99"] <= target) and m["oos"] == 0
                ok &= met
                verdict = (
                    ("met" if met else "MISSED")
                    + (f": p99 ≤ {target} ms, " if target else ": ")
                    + f"no OOS answer; thresholds {cal.answer:.2f}/{cal.clarify:.2f}, "
                    + f"built in {built:.1f} s"
                )
            confident = engine_name == "ours"
            rows.append(
                [
                    name,
                    f"{len(base.entries):,}",
                    engine_name,
                    f"{m['p50']:.2f}",
                    f"{m['p99']:.2f}",
                    pct(m["top1"]),
                    str(int(m["wrong"])) if confident else "—",
                    f"{int(m['oos'])}/{int(m['oos_total'])}" if confident else "—",
                    verdict,
                ]
            )
    print(
        table(
            [
                "knowledge base",
                "entries",
                "engine",
                "p50 ms",
                "p99 ms",
                "first right",
                "wrong answers",
                "OOS answered",
                "target",
            ],
            rows,
        )
    )
    return ok


def comparison_row(name: str, entries: int, c: Comparison) -> list[str]:
    k = c.calibration
    return [
        name,
        f"{entries:,}",
        f"{c.questions:,}",
        f"{pct(c.engine_first)} / {pct(c.bm25_first)}",
        f"{pct(c.engine_first_accented)} / {pct(c.bm25_first_accented)}",
        pct(c.shares.right),
        pct(c.shares.wrong),
        pct(c.shares.clarified),
        pct(c.shares.fallbacks),
        f"{k.answer:.2f} / {k.clarify:.2f}",
    ]


COMPARISON_HEADERS = [
    "pack",
    "entries",
    "questions",
    "first right: ours / BM25",
    "accented only: ours / BM25",
    "right answers",
    "wrong answers",
    "clarify",
    "fallback",
    "answer / clarify at",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000])
    args = parser.parse_args()

    kb = load_pack()
    bases = [("bundled", kb)] + [(f"+ catalogue {n:,}", grown(kb, n)) for n in args.sizes]
    ok = labelled_table(bases, args.rounds)

    print("\n2. Held out of the bundled pack (`bot content evaluate`).\n")
    report = evaluate(kb)
    c = report.comparison
    ok &= c.shares.wrong <= TARGET_WRONG and c.engine_first >= c.bm25_first
    print(table(COMPARISON_HEADERS, [comparison_row("bundled", len(kb.entries), c)]))

    print("\n3. Title-only packs: titles indexed, the entries' phrasings asked.\n")
    rows = []
    for size in [len(kb.entries), *args.sizes]:
        extra = catalogue_entries(max(0, size - len(kb.entries)), kb.entries[0])
        start = time.perf_counter()
        c = title_only(kb, extra)
        spent = time.perf_counter() - start
        ok &= c.shares.wrong <= TARGET_WRONG and c.engine_first >= c.bm25_first
        rows.append(comparison_row(f"title-only ({spent:.0f} s)", size, c))
    print(table(COMPARISON_HEADERS, rows))
    print(
        f"\nTargets: wrong answers ≤ {TARGET_WRONG:.0%} of held-out questions, first candidate "
        "right at least as often as BM25: " + ("met" if ok else "MISSED")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
