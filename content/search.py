"""The FAQ engine: rank entries for a question and decide whether to answer, ask or admit
it does not know.

Ranking (see the README's "How matching works" for the measurements behind it):

1. *Candidates* come from BM25 over each entry's title, alternative phrasings and keywords,
   on diacritic-free syllables, syllable bigrams and synonym-group tokens. BM25 finds the
   entries that share the question's rare words; it is the ranker the shared research note
   measured best on Vietnamese FAQ questions.
2. Each candidate gets a *confidence* in [0, 1] that does not depend on the other entries:
   - coverage: the IDF-weighted share of the question's words the entry knows (a word typed
     with diacritics must match with them: "đá" is not "đã"); words the knowledge base has
     never seen weigh the most, which is what sends "giá vàng hôm nay" to the fallback;
   - fuzzy: rapidfuzz ``token_sort_ratio`` between the question and the entry's title and
     phrasings (typos, word order); never ``WRatio``/``partial_*``, which give 100 for one
     shared word;
   - a small BM25 share as a tie-breaker.
3. The outcome: *answer* when the best confidence reaches the answer threshold and beats the
   runner-up by a margin; *clarify* with the top candidates when it reaches the clarify
   threshold; otherwise *fallback*.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np
from rapidfuzz import fuzz, process

from content.analysis import Analysis, Analyzer, Token
from content.calibration import EXACT_LEAD, Calibration, calibrate
from content.models import FaqEntry, KnowledgeBase, Lexicon
from content.normalize import tokens

_K1 = 1.2
_B = 0.75
_CANDIDATES = 18
# Queries are cut here: a 10,000-character paste is not a question, and the cost of matching
# must not grow with it.
MAX_QUERY_CHARS = 400


class Outcome(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds (settings ``BOT_FAQ_*``)."""

    answer: float = 0.62
    clarify: float = 0.54
    margin: float = 0.04
    # Between the clarify and the answer threshold, a best entry this far ahead of the
    # runner-up is still answered: long questions full of context words score lower.
    strong_margin: float = 0.14
    # A best score this high is a near-exact match of one of the entry's phrasings.
    exact: float = 0.95
    suggestions: int = 3
    # Only candidates this close to the best one are offered in a clarifying question.
    clarify_window: float = 0.15
    # A fallback still offers the candidates scoring this much ("Có thể bạn muốn hỏi:").
    suggest: float = 0.45
    # ... unless the question is largely words the pack has never seen (another domain): a
    # fifth of its weight unknown ("kết quả bóng đá", "giá xe SH Mode") is enough to stay quiet.
    known_share: float = 0.8


@dataclass(frozen=True, slots=True)
class Weights:
    coverage: float = 0.45
    title: float = 0.35
    fuzzy: float = 0.12
    bm25: float = 0.08
    # Words the knowledge base has never seen weigh this much more than its rarest word.
    unknown: float = 1.0
    # Weights below are fractions of the IDF of a word the knowledge base has never seen, so
    # they mean the same in a pack of 100 entries and in one of 10,000.
    # The weight of an aspect ("giấy tờ gì", "ở đâu", "bao lâu") in a question.
    aspect: float = 0.475
    # Matched IDF mass of subject words under which a question is too vague to trust.
    anchor: float = 0.57


@dataclass(frozen=True, slots=True)
class Hit:
    entry: FaqEntry
    score: float
    # The IDF-weighted share of the question this entry covers (see FaqIndex._confidence).
    coverage: float = 0.0


@dataclass(frozen=True, slots=True)
class MatchResult:
    outcome: Outcome
    hits: tuple[Hit, ...]
    normalized: str
    # A fallback whose hits are plausible enough to offer ("Có thể bạn muốn hỏi:").
    suggested: bool = False

    @property
    def best(self) -> Hit | None:
        return self.hits[0] if self.hits else None


@dataclass(frozen=True, slots=True)
class _Doc:
    entry: FaqEntry
    canon: frozenset[str]
    fold: frozenset[str]
    concepts: frozenset[int]
    # The folded content of the title and each phrasing, its words sorted: rapidfuzz's ratio on
    # these is token_sort_ratio, without sorting them again for every question.
    fuzzy_texts: tuple[str, ...]
    # The content words of the title and of each phrasing: each distinct (fold, synonym group)
    # once, with its weight in each text (rows: words, columns: texts), and each text's total.
    unit_rows: dict[str | int, tuple[int, ...]] = field(default_factory=dict)
    unit_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    text_totals: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _terms(analysis: Analysis) -> Counter[str]:
    """BM25 terms: folded syllables, bigrams of neighbouring content words, synonym groups."""
    terms: Counter[str] = Counter(t.fold for t in analysis.tokens)
    content = [t.fold for t in analysis.tokens if not t.particle]
    terms.update(f"{a}_{b}" for a, b in itertools.pairwise(content))
    terms.update(f"#{c.group}" for c in analysis.concepts)
    return terms


class FaqIndex:
    """A precomputed index over a knowledge base's entries."""

    def __init__(
        self,
        entries: Iterable[FaqEntry],
        lexicon: Lexicon,
        *,
        weights: Weights | None = None,
    ) -> None:
        self.weights = weights or Weights()
        self.analyzer = Analyzer(lexicon)
        self._aspects = lexicon.aspects
        self.docs: list[_Doc] = []
        doc_terms: list[Counter[str]] = []
        texts_analysed: list[list[Analysis]] = []
        index_words: set[str] = set()
        extra: set[str] = set()
        for entry in entries:
            texts = (entry.title, *entry.phrasings, *entry.keywords)
            analyses = [self.analyzer.analyze(text, repair=False) for text in texts]
            terms: Counter[str] = Counter()
            canon: set[str] = set()
            folded: set[str] = set()
            concepts: set[int] = set()
            for analysis in analyses:
                terms.update(_terms(analysis))
                canon.update(t.canon for t in analysis.tokens)
                folded.update(t.fold for t in analysis.tokens)
                concepts.update(c.group for c in analysis.concepts)
            fuzzy_texts = tuple(
                _sorted_words(a.content_folded)
                for a in analyses[: 1 + len(entry.phrasings)]
                if a.tokens
            )
            self.docs.append(
                _Doc(entry, frozenset(canon), frozenset(folded), frozenset(concepts), fuzzy_texts)
            )
            texts_analysed.append(analyses[: 1 + len(entry.phrasings)])
            doc_terms.append(terms)
            index_words.update(canon)
            extra.update(tokens(entry.answer))
        for expansion in lexicon.abbreviations.values():
            extra.update(tokens(expansion))
        self.analyzer.set_vocabulary(index_words, extra)
        self._build_bm25(doc_terms)
        self.docs = [
            replace(doc, **self._text_units(analysed))
            for doc, analysed in zip(self.docs, texts_analysed, strict=True)
        ]

    def _text_units(self, texts: list[Analysis]) -> dict[str, Any]:
        keys: dict[tuple[str, int | None], int] = {}
        cells: list[tuple[int, int, float]] = []
        for column, text in enumerate(texts):
            group_of: dict[int, int] = {}
            for concept in text.concepts:
                for i in range(concept.start, concept.end):
                    group_of[i] = concept.group
            for i, t in enumerate(text.tokens):
                if not t.particle:
                    row = keys.setdefault((t.fold, group_of.get(i)), len(keys))
                    cells.append((row, column, self.idf(t.fold)))
        weights = np.zeros((len(keys), len(texts)))
        for row, column, weight in cells:
            weights[row, column] += weight
        totals = weights.sum(axis=0)
        keep = totals > 0  # a text of particles only says nothing about its entry
        # Rows by folded word and by synonym group: a question looks up its own few words.
        rows: dict[str | int, list[int]] = {}
        for (fold, group), row in keys.items():
            rows.setdefault(fold, []).append(row)
            if group is not None:
                rows.setdefault(group, []).append(row)
        return {
            "unit_rows": {key: tuple(found) for key, found in rows.items()},
            "unit_weights": weights[:, keep],
            "text_totals": totals[keep],
        }

    def _build_bm25(self, doc_terms: list[Counter[str]]) -> None:
        n = len(doc_terms)
        lengths = np.array([sum(t.values()) for t in doc_terms], dtype=np.float64)
        avgdl = float(lengths.mean()) if n else 1.0
        df: Counter[str] = Counter()
        for terms in doc_terms:
            df.update(terms.keys())
        self._n = n
        self._idf = {term: math.log(1 + (n - d + 0.5) / (d + 0.5)) for term, d in df.items()}
        self._idf_max = math.log(1 + (n + 0.5) / 0.5)
        self._idf_unknown = self._idf_max * self.weights.unknown
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for doc_id, terms in enumerate(doc_terms):
            norm = _K1 * (1 - _B + _B * lengths[doc_id] / avgdl)
            for term, tf in terms.items():
                ids, weights = postings.setdefault(term, ([], []))
                ids.append(doc_id)
                weights.append(self._idf[term] * tf * (_K1 + 1) / (tf + norm))
        self._postings = {
            term: (np.array(ids, dtype=np.int32), np.array(w, dtype=np.float64))
            for term, (ids, w) in postings.items()
        }

    def known_share(self, analysis: Analysis) -> float:
        """The IDF-weighted share of the question (particles aside) made of words the pack
        knows: a word it has never seen weighs the most, so "kết quả bóng đá tối qua" is
        mostly unknown though three of its five words are known."""
        known = total = 0.0
        for token in analysis.tokens:
            if token.particle:
                continue
            seen = token.fold in self._idf
            weight = self._idf[token.fold] if seen else self._idf_unknown
            total += weight
            # A mended word counts half: the pack knows what it became, not what was typed.
            known += weight * (1.0 if token.credit == 1.0 else 0.5) if seen else 0.0
        return known / total if total else 0.0

    def idf(self, fold: str) -> float:
        return self._idf.get(fold, self._idf_unknown)

    def __len__(self) -> int:
        return len(self.docs)

    def rank(self, text: str, limit: int = 5) -> tuple[Analysis, list[Hit]]:
        """Analyse ``text`` and return its best entries with their confidence, best first."""
        analysis = self.analyzer.analyze(text[:MAX_QUERY_CHARS])
        if not analysis.tokens or not self._n:
            return analysis, []
        scores = np.zeros(self._n, dtype=np.float64)
        for term, count in _terms(analysis).items():
            posting = self._postings.get(term)
            if posting is not None:
                scores[posting[0]] += self._query_weight(analysis, term) * count * posting[1]
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return analysis, []
        if candidates.size > _CANDIDATES:
            top = np.argpartition(-scores[candidates], _CANDIDATES)[:_CANDIDATES]
            candidates = candidates[top]
        top_bm25 = float(scores[candidates].max())
        query_text = analysis.content_folded or analysis.folded
        units = self._units(analysis)
        folds = frozenset(t.fold for t in analysis.tokens)
        groups = frozenset(c.group for c in analysis.concepts)
        ids = candidates.tolist()
        fuzzy = self._fuzzy(_sorted_words(query_text), ids)
        ranked = []
        for doc_id, doc_fuzzy in zip(ids, fuzzy, strict=True):
            doc = self.docs[doc_id]
            confidence, coverage = self._confidence(
                doc, units, doc_fuzzy, folds, groups, scores[doc_id] / top_bm25
            )
            ranked.append((-confidence, doc_id, Hit(doc.entry, confidence, coverage)))
        # Ties go to the entry listed first in the pack, so answers never depend on hashing.
        ranked.sort(key=lambda item: item[:2])
        return analysis, [hit for _, _, hit in ranked[:limit]]

    def _fuzzy(self, query: str, ids: list[int]) -> list[float]:
        """The best rapidfuzz ratio (0–100) of ``query`` against each candidate's texts, in one
        call for all of them."""
        texts = [t for doc_id in ids for t in self.docs[doc_id].fuzzy_texts]
        if not texts:
            return [0.0] * len(ids)
        ratios = process.cdist([query], texts, scorer=fuzz.ratio, dtype=np.float32)[0]
        best: list[float] = []
        start = 0
        for doc_id in ids:
            end = start + len(self.docs[doc_id].fuzzy_texts)
            best.append(float(ratios[start:end].max()) if end > start else 0.0)
            start = end
        return best

    @staticmethod
    def _query_weight(analysis: Analysis, term: str) -> float:
        if term.startswith("#"):
            return 1.0
        if "_" in term:
            return 0.5
        token = next(t for t in analysis.tokens if t.fold == term)
        return 0.3 if token.particle else token.credit

    def _units(self, analysis: Analysis) -> list[_Unit]:
        """Units of meaning: each recognised synonym phrase is one, each other word is one."""
        units: list[_Unit] = []
        inside: set[int] = set()
        for concept in analysis.concepts:
            span = analysis.tokens[concept.start : concept.end]
            inside.update(range(concept.start, concept.end))
            content = [t for t in span if not t.particle] or list(span)
            if concept.group in self._aspects:
                # Aspects weigh the same whatever their words: "mang theo" is as much a
                # question about documents as "giấy tờ", though rarer in the pack.
                weight = self.weights.aspect * self._idf_max
            else:
                weight = max(self.idf(t.fold) for t in content) * min(len(content), 2) ** 0.5
            units.append(_Unit(weight, min(t.credit for t in span), span, concept.group))
        for i, token in enumerate(analysis.tokens):
            if i not in inside:
                # A mended word weighs what the word as typed weighed: unknown, so the most.
                idf = self.idf(token.fold) if token.credit == 1.0 else self._idf_unknown
                weight = idf * (0.1 if token.particle else 1.0)
                units.append(_Unit(weight, token.credit, (token,), None))
        return units

    def _confidence(
        self,
        doc: _Doc,
        units: list[_Unit],
        fuzzy: float,
        query_folds: frozenset[str],
        query_groups: frozenset[int],
        bm25: float,
    ) -> tuple[float, float]:
        total = matched = subject = 0.0
        concepts, canon, folded = doc.concepts, doc.canon, doc.fold
        aspects = self._aspects
        for unit in units:
            total += unit.weight
            if unit.group is not None and unit.group in concepts:
                covered = 1.0
            else:
                covered = 0.0
                for t in unit.tokens:
                    if t.marked:
                        # Typed with diacritics the entry's word does not have: another word?
                        covered += 1.0 if t.canon in canon else 0.25 if t.fold in folded else 0.0
                    elif t.fold in folded:
                        covered += 1.0
                covered /= len(unit.tokens)
            matched += unit.weight * covered * unit.credit
            if unit.group not in aspects:
                subject += unit.weight * covered * unit.credit
        coverage = matched / total if total else 0.0
        # Only subject words anchor an answer: sharing "cần giấy tờ gì" proves nothing.
        anchor = min(1.0, subject / (self.weights.anchor * self._idf_max))
        # How much of the entry's closest phrasing the question says: one shared rare word
        # ("bạn tên là gì" and "sang tên sổ đỏ") covers the question but not the phrasing.
        title = 0.0
        if doc.text_totals.size:
            said: set[int] = set()
            rows = doc.unit_rows
            for fold in query_folds:
                said.update(rows.get(fold, ()))
            for group in query_groups:
                said.update(rows.get(group, ()))
            if said:
                hits = doc.unit_weights[sorted(said)].sum(axis=0)
                title = float((hits / doc.text_totals).max())
        w = self.weights
        lexical = (w.coverage * coverage + w.title * title) * anchor
        return round(float(lexical + w.fuzzy * fuzzy / 100 + w.bm25 * bm25), 4), coverage


@dataclass(frozen=True, slots=True)
class _Unit:
    weight: float
    credit: float
    tokens: tuple[Token, ...]
    group: int | None


def _sorted_words(text: str) -> str:
    return " ".join(sorted(text.split()))


class FaqEngine:
    """Matches questions against a knowledge base and decides the outcome."""

    def __init__(
        self,
        kb: KnowledgeBase,
        thresholds: Thresholds | None = None,
        *,
        suggestions: int = 3,
        overrides: Mapping[str, float] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """By default the engine derives its thresholds from held-out questions of ``kb``
        (content.calibration); ``thresholds`` replaces them all, ``overrides`` some (settings
        ``BOT_FAQ_*``); ``cache_dir`` keeps the calibration across restarts and workers."""
        self.kb = kb
        self.index = FaqIndex(kb.entries, kb.lexicon)
        self.calibration: Calibration | None = None
        if thresholds is None:
            base = Thresholds(suggestions=suggestions)
            self.calibration = calibrate(
                kb.entries, kb.lexicon, self.index.weights, base, cache_dir=cache_dir
            )
            thresholds = self.calibration.thresholds(base)
        # Names of Thresholds' float fields (checked by the settings that produce them).
        self.thresholds = replace(thresholds, **cast(dict[str, Any], dict(overrides or {})))
        # Citizens ask the same questions over and over (a campaign, a deadline): a result is a
        # pure function of the text for a loaded pack, so recent ones are kept.
        self._cached = lru_cache(maxsize=4096)(self.match_uncached)

    def match(self, text: str) -> MatchResult:
        return self._cached(text[:MAX_QUERY_CHARS])

    def match_uncached(self, text: str) -> MatchResult:
        """The decision without the cache (benchmarks measure this)."""
        th = self.thresholds
        analysis, hits = self.index.rank(text, limit=max(th.suggestions, 2) + 1)
        outcome, offered = decide(hits, th)
        if outcome is Outcome.FALLBACK:
            plausible = tuple(h for h in offered if h.score >= th.suggest)
            if plausible and self.index.known_share(analysis) >= th.known_share:
                return MatchResult(outcome, plausible, analysis.folded, suggested=True)
        return MatchResult(outcome, offered, analysis.folded)


def decide(hits: Sequence[Hit], th: Thresholds) -> tuple[Outcome, tuple[Hit, ...]]:
    """The outcome for ranked ``hits`` and the entries to offer with it.

    A pure function of the scores, so calibration can replay it for other thresholds.
    """
    if not hits or hits[0].score < th.clarify:
        return Outcome.FALLBACK, tuple(hits[: th.suggestions])
    best = hits[0]
    lead = best.score - (hits[1].score if len(hits) > 1 else 0.0)
    # When the runner-up covers every word of the question as well as the best entry does
    # ("căn cước" alone), the question does not say which one the citizen means.
    # A near-exact match of one of its phrasings still settles it.
    undecided = (
        len(hits) > 1
        and best.coverage >= 0.95
        and hits[1].coverage >= 0.95
        and best.score < th.exact
    )
    # A near-exact match of a phrasing the content team wrote is what they meant: held-out
    # questions never test it (their phrasing is out of the index), so calibration cannot.
    exact = best.score >= th.exact and lead >= EXACT_LEAD
    if exact or (
        not undecided
        and ((best.score >= th.answer and lead >= th.margin) or lead >= th.strong_margin)
    ):
        return Outcome.ANSWER, tuple(hits[: th.suggestions])
    offered = [h for h in hits[: th.suggestions] if best.score - h.score <= th.clarify_window]
    # A clarifying question offers a choice: the runner-up joins a lone candidate.
    if len(offered) < 2:
        offered = list(hits[:2])
    return Outcome.CLARIFY, tuple(offered)
