"""FAQ engine benchmark: latency and top-1 accuracy, beside a naive baseline, in one run.

    .venv/bin/python benchmarks/faq.py [--rounds 3] [--sizes 2000 10000]

Knowledge bases: the bundled pack, and synthetic bases of 2,000 and 10,000 entries made of the
real entries plus generated distractors that model a province's other procedures: each names
a subject of generated Vietnamese syllables mixed with one word of the real pack, in the real
question shapes ("… cần giấy tờ gì?", "… ở đâu?"), so distractors compete on the aspect and
common words while their subjects differ. Queries: the labelled table of citizen phrasings in
tests/data/phrasings.yaml (accented, unaccented, typos, teencode, Telex, out of scope).

Baseline: ``rapidfuzz.process.extractOne(query, titles, scorer=WRatio)`` on raw titles, the
naive approach; it "answers" when its score reaches 80.

Columns: p50/p99 latency of one question (ms, one core), top-1 accuracy on in-scope questions
(the expected entry ranked first), wrong confident answers on in-scope questions, and
confident answers on out-of-scope questions (must be 0).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from content.loader import load_pack  # noqa: E402
from content.models import FaqEntry, KnowledgeBase  # noqa: E402
from content.normalize import place_tone, strip_marks, tokens  # noqa: E402
from content.search import FaqEngine, Outcome  # noqa: E402

PHRASINGS = ROOT / "tests" / "data" / "phrasings.yaml"
BASELINE_CUTOFF = 80
TARGET_P99_MS = {2000: 2.0, 10000: 10.0}

_SHAPES = (
    "{} cần giấy tờ gì?",
    "{} ở đâu?",
    "{} mất bao lâu?",
    "{} lệ phí bao nhiêu?",
    "{} trực tuyến thế nào?",
    "Thủ tục {} như thế nào?",
    "{} là gì?",
)


_ONSETS = (
    "b",
    "c",
    "ch",
    "d",
    "đ",
    "g",
    "h",
    "kh",
    "l",
    "m",
    "n",
    "ng",
    "nh",
    "ph",
    "qu",
    "s",
    "t",
    "th",
    "tr",
    "v",
    "x",
)
_NUCLEI = (
    "a",
    "ă",
    "â",
    "e",
    "ê",
    "i",
    "o",
    "ô",
    "ơ",
    "u",
    "ư",
    "ia",
    "ưa",
    "oa",
    "iê",
    "uô",
    "ươ",
)
_CODAS = ("", "", "c", "m", "n", "ng", "nh", "p", "t")
_TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")


def _syllable(rng: random.Random) -> str:
    base = rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
    return unicodedata.normalize("NFC", place_tone(base, rng.choice(_TONES) or None))


def _subject(rng: random.Random, vocabulary: list[str]) -> str:
    words = [_syllable(rng) for _ in range(rng.randint(2, 4))]
    words.insert(rng.randrange(len(words) + 1), rng.choice(vocabulary))
    return " ".join(words)


def synthetic(kb: KnowledgeBase, size: int, seed: int = 7) -> KnowledgeBase:
    """The real entries plus ``size - len(real)`` distractor entries (see the module doc)."""
    rng = random.Random(seed)
    vocabulary = sorted({t for e in kb.entries for t in tokens(e.title) if t.isalpha()})
    extra: list[FaqEntry] = []
    template = kb.entries[0]
    for i in range(max(0, size - len(kb.entries))):
        subject = _subject(rng, vocabulary)
        title = rng.choice(_SHAPES).format(subject)
        title = title[0].upper() + title[1:]
        phrasings = tuple(
            rng.choice(_SHAPES).format(strip_marks(subject) if k else subject).rstrip("?")
            for k in range(2)
        )
        keywords = (subject,)
        extra.append(
            replace(
                template,
                id=f"synthetic-{i}",
                title=title,
                phrasings=phrasings,
                keywords=keywords,
                related=(),
            )
        )
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


def ours(kb: KnowledgeBase) -> Callable[[str], tuple[str | None, bool]]:
    engine = FaqEngine(kb)

    def answer(text: str) -> tuple[str | None, bool]:
        result = engine.match_uncached(text)
        best = result.best
        return (best.entry.id if best else None), result.outcome is Outcome.ANSWER

    return answer


def baseline(kb: KnowledgeBase) -> Callable[[str], tuple[str | None, bool]]:
    titles = {e.id: e.title for e in kb.entries}

    def answer(text: str) -> tuple[str | None, bool]:
        found = process.extractOne(text, titles, scorer=fuzz.WRatio)
        if found is None:
            return None, False
        return found[2], found[1] >= BASELINE_CUTOFF

    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 10000])
    args = parser.parse_args()

    kb = load_pack()
    queries = load_queries()
    bases = [("bundled", kb)] + [(f"synthetic {n}", synthetic(kb, n)) for n in args.sizes]
    print(f"{len(queries)} labelled questions, {args.rounds} rounds each; one core.\n")
    header = (
        f"{'knowledge base':<16} {'entries':>7} {'engine':<9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'top-1':>6} {'wrong ans':>9} {'OOS ans':>8}  target"
    )
    print(header)
    print("-" * len(header))
    missed = False
    for name, base in bases:
        for engine_name, factory in (("ours", ours), ("baseline", baseline)):
            build_start = time.perf_counter()
            answer = factory(base)
            build_ms = (time.perf_counter() - build_start) * 1000
            m = measure(answer, queries, args.rounds)
            verdict = ""
            if engine_name == "ours":
                target = TARGET_P99_MS.get(len(base.entries))
                ok_latency = target is None or m["p99"] <= target
                ok = ok_latency and m["oos"] == 0
                missed |= not ok
                verdict = ("met" if ok else "MISSED") + (
                    f" (p99 ≤ {target} ms, no OOS answer)" if target else " (no OOS answer)"
                )
                verdict += f"; index built in {build_ms:.0f} ms"
            print(
                f"{name:<16} {len(base.entries):>7} {engine_name:<9} {m['p50']:>7.3f} "
                f"{m['p99']:>7.3f} {m['top1']:>6.1%} {int(m['wrong']):>9} "
                f"{int(m['oos']):>3}/{int(m['oos_total']):<4}  {verdict}"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
