"""How well the engine serves a pack, measured on held-out questions, beside plain BM25.

`bot content evaluate` prints this report before a pack is published; the benchmarks and the
tests use the same functions, so the numbers in the README are the numbers a province sees.

The baseline is BM25 (k1 = 1.2, b = 0.75) on the syllables and syllable bigrams of each entry's
texts, as typed (lower case, NFC): the plain ranker a newcomer would try first.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from content.calibration import (
    Calibration,
    Observation,
    Shares,
    choose,
    observe,
    observe_splits,
    tally,
)
from content.heldout import Probe, ProbeKind
from content.models import FaqEntry, KnowledgeBase
from content.normalize import strip_marks, tokens
from content.search import FaqIndex, Thresholds

# An entry with fewer phrasings than this is flagged: it is found by its title alone.
FEW_PHRASINGS = 3


class Bm25:
    """Plain BM25 over syllables and bigrams of the texts of each entry."""

    def __init__(self, entries: Sequence[FaqEntry], *, title_only: bool = False) -> None:
        self.ids = [e.id for e in entries]
        docs: list[Counter[str]] = []
        df: Counter[str] = Counter()
        for entry in entries:
            texts = (
                (entry.title,) if title_only else (entry.title, *entry.phrasings, *entry.keywords)
            )
            terms: Counter[str] = Counter()
            for text in texts:
                terms.update(self.terms(text))
            docs.append(terms)
            df.update(terms.keys())
        n = max(len(docs), 1)
        average = sum(sum(d.values()) for d in docs) / n or 1.0
        self._postings: dict[str, list[tuple[int, float]]] = {}
        for i, terms in enumerate(docs):
            norm = 1.2 * (1 - 0.75 + 0.75 * sum(terms.values()) / average)
            for term, tf in terms.items():
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                self._postings.setdefault(term, []).append((i, idf * tf * 2.2 / (tf + norm)))

    @staticmethod
    def terms(text: str) -> list[str]:
        words = tokens(text)
        return words + [f"{a}_{b}" for a, b in itertools.pairwise(words)]

    def first(self, text: str) -> str | None:
        scores: dict[int, float] = {}
        for term in self.terms(text):
            for i, weight in self._postings.get(term, ()):
                scores[i] = scores.get(i, 0.0) + weight
        if not scores:
            return None
        return self.ids[min(scores, key=lambda i: (-scores[i], i))]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Engine and BM25 on the same questions."""

    questions: int
    engine_first: float  # share of in-pack questions whose first candidate is right
    bm25_first: float
    # The same, on the questions typed with diacritics only (where BM25 is at its best).
    accented: int
    engine_first_accented: float
    bm25_first_accented: float
    calibration: Calibration
    # What the calibrated thresholds do to these questions.
    shares: Shares


@dataclass(frozen=True, slots=True)
class Report:
    entries: int
    comparison: Comparison
    # (asked entry, entry that took its question, how often), most frequent first.
    confusions: tuple[tuple[str, str, int], ...] = ()
    thin: tuple[str, ...] = field(default=())


def compare(
    splits: Sequence[tuple[Sequence[FaqEntry], Sequence[Observation]]],
    calibration: Calibration,
    *,
    title_only: bool = False,
) -> Comparison:
    """The engine's ranking (``splits``: each index's entries and the engine's observations on
    it) beside BM25 built on the same entries and asked the same questions."""
    engine_right: list[bool] = []
    bm25_right: list[bool] = []
    accented: list[int] = []
    for indexed, observations in splits:
        bm25 = Bm25(indexed, title_only=title_only)
        for o in observations:
            if o.probe.entry_id is None:
                continue
            if strip_marks(o.probe.text) != o.probe.text:
                accented.append(len(engine_right))
            engine_right.append(o.right_first)
            bm25_right.append(bm25.first(o.probe.text) == o.probe.entry_id)

    def share(flags: Sequence[bool]) -> float:
        return sum(flags) / len(flags) if flags else 0.0

    every = [o for _, observations in splits for o in observations]
    return Comparison(
        questions=len(engine_right),
        engine_first=share(engine_right),
        bm25_first=share(bm25_right),
        accented=len(accented),
        engine_first_accented=share([engine_right[i] for i in accented]),
        bm25_first_accented=share([bm25_right[i] for i in accented]),
        calibration=calibration,
        shares=tally(every, calibration.thresholds(Thresholds())),
    )


def evaluate(kb: KnowledgeBase) -> Report:
    """The pack's own held-out report: what `bot content evaluate` prints."""
    weights = FaqIndex([], kb.lexicon).weights
    splits = observe_splits(kb.entries, kb.lexicon, weights)
    observations = [o for _, observed in splits for o in observed]
    calibration = choose(observations, Thresholds())
    comparison = compare([(s.indexed, observed) for s, observed in splits], calibration)
    pairs: Counter[tuple[str, str]] = Counter()
    for o in observations:
        if o.probe.kind is not ProbeKind.ABSENT and o.hits and not o.right_first:
            pairs[(o.probe.source_id, o.hits[0].entry.id)] += 1
    confusions = tuple((a, b, k) for (a, b), k in pairs.most_common())
    thin = tuple(e.id for e in kb.entries if len(e.phrasings) < FEW_PHRASINGS)
    return Report(len(kb.entries), comparison, confusions, thin)


def title_only(kb: KnowledgeBase, extra: Sequence[FaqEntry] = ()) -> Comparison:
    """The shape of an imported catalogue: every entry reduced to its title (plus ``extra``
    title-only entries), the phrasings asked as questions; calibrated on that pack alone."""
    entries = tuple(replace(e, phrasings=(), keywords=()) for e in (*kb.entries, *extra))
    probes = [
        Probe(p, e.id, ProbeKind.PHRASING, e.id, e.related) for e in kb.entries for p in e.phrasings
    ]
    index = FaqIndex(entries, kb.lexicon)
    calibration = choose(observe(entries, kb.lexicon, index.weights), Thresholds())
    observations = [Observation(p, tuple(index.rank(p.text, limit=4)[1])) for p in probes]
    return compare([(entries, observations)], calibration, title_only=True)
