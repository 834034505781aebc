"""Turn a citizen's text into matching units: abbreviations expanded, Telex decoded, typos
mended, particles marked and synonym phrases recognised.

The same analyser reads the knowledge base (without the repairs, which only make sense for
what citizens type) so both sides meet on one vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from content import telex
from content.models import Lexicon
from content.normalize import fold_token, has_marks, tokens

# A word mended from a typo or a glued pair counts a little less than one typed right.
TYPO_CREDIT = 0.6
SPLIT_CREDIT = 0.9


@dataclass(frozen=True, slots=True)
class Token:
    canon: str  # lower case, NFC, tone placement unified
    fold: str  # without diacritics
    marked: bool  # the citizen typed diacritics on it (so "đá" is not "đã")
    particle: bool  # "ạ", "ơi", "cho em hỏi": no subject
    credit: float = 1.0


@dataclass(frozen=True, slots=True)
class Concept:
    """A synonym group recognised over tokens[start:end]."""

    group: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Analysis:
    tokens: tuple[Token, ...]
    concepts: tuple[Concept, ...]

    @property
    def folded(self) -> str:
        return " ".join(t.fold for t in self.tokens)

    @property
    def content_folded(self) -> str:
        return " ".join(t.fold for t in self.tokens if not t.particle)


class Analyzer:
    """Builds :class:`Analysis` objects for one lexicon and one vocabulary."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._abbreviations = {key: tokens(value) for key, value in lexicon.abbreviations.items()}
        self._particles = lexicon.particles
        # first folded word -> [(folded phrase, canonical phrase, group)], longest first
        self._phrases: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], int]]] = {}
        for group_id, group in enumerate(lexicon.synonyms):
            for member in group:
                words = tuple(self._expand(tokens(member)))
                key = tuple(fold_token(t) for t in words)
                if key:
                    self._phrases.setdefault(key[0], []).append((key, words, group_id))
        for candidates in self._phrases.values():
            candidates.sort(key=lambda item: -len(item[0]))
        self._fold_vocab: frozenset[str] = frozenset()
        self._fold_list: list[str] = []
        self._accented_vocab: frozenset[str] = frozenset()

    def set_vocabulary(self, index_words: Iterable[str], extra_words: Iterable[str]) -> None:
        """Give the analyser the words the index knows (for typo repair) and every word of the
        knowledge base (to accept a Telex decoding only when it yields a real word)."""
        index_set = set(index_words)
        self._fold_vocab = frozenset(fold_token(w) for w in index_set)
        self._fold_list = sorted(w for w in self._fold_vocab if w.isalpha() and len(w) >= 2)
        self._accented_vocab = frozenset(index_set | set(extra_words))

    def _expand(self, words: list[str]) -> list[str]:
        out: list[str] = []
        for word in words:
            out.extend(self._abbreviations.get(word, (word,)))
        return out

    def analyze(self, text: str, *, repair: bool = True) -> Analysis:
        """Analyse ``text``; ``repair`` turns on Telex decoding and typo mending."""
        words = self._expand(tokens(text))
        toks: list[Token] = []
        for word in words:
            toks.extend(self._repair(word) if repair else (self._token(word),))
        return Analysis(tokens=tuple(toks), concepts=tuple(self._concepts(toks)))

    def _token(self, word: str, credit: float = 1.0) -> Token:
        return Token(
            canon=word,
            fold=fold_token(word),
            marked=has_marks(word),
            particle=word in self._particles,
            credit=credit,
        )

    def _repair(self, word: str) -> list[Token]:
        folded = fold_token(word)
        if folded in self._fold_vocab or not word.isalnum() or word.isdigit():
            return [self._token(word)]
        decoded = telex.decode(word)
        if decoded is not None and self._accept_decoding(word, decoded):
            return [self._token(decoded)]
        # Only words typed without diacritics are mended: a citizen who typed "bóng đá" with
        # accents meant those words, which the knowledge base simply does not know.
        if not word.isalpha() or len(folded) < 4 or has_marks(word):
            return [self._token(word)]
        split = self._split(folded)
        if split is not None:
            return [self._token(part, SPLIT_CREDIT) for part in split]
        max_distance = 1 if len(folded) < 8 else 2
        best = process.extractOne(
            folded, self._fold_list, scorer=OSA.distance, score_cutoff=max_distance
        )
        # A word with the shape of a syllable ("phim") is more likely a word the pack does not
        # know than a slip of one letter less or more ("phi"): only same-length slips are mended.
        if best is not None and (len(best[0]) == len(folded) or not telex.is_syllable(folded)):
            return [self._token(best[0], TYPO_CREDIT)]
        return [self._token(word)]

    def _accept_decoding(self, raw: str, decoded: str) -> bool:
        # A decoding is trusted when it is a word of the knowledge base, or when the keystrokes
        # changed a letter (aa, dd, w, VNI 6-9) and the result matches without diacritics.
        # Tone keys alone are not enough: "bus" would become "bú", "tax" "tã".
        if decoded in self._accented_vocab:
            return True
        lowered = raw.lower()
        letter_keys = any(k in lowered for k in ("aa", "ee", "oo", "dd", "w", "6", "7", "8", "9"))
        return letter_keys and fold_token(decoded) in self._fold_vocab

    def _split(self, folded: str) -> tuple[str, str] | None:
        """Split a glued pair such as "dangky" into two known words."""
        for cut in range(2, len(folded) - 1):
            left, right = folded[:cut], folded[cut:]
            if left in self._fold_vocab and right in self._fold_vocab and len(right) >= 2:
                return left, right
        return None

    def _concepts(self, toks: list[Token]) -> list[Concept]:
        found: list[Concept] = []
        folded = [t.fold for t in toks]
        i = 0
        while i < len(folded):
            for phrase, words, group in self._phrases.get(folded[i], ()):
                span = toks[i : i + len(phrase)]
                if tuple(folded[i : i + len(phrase)]) == phrase and all(
                    # Words typed with diacritics must match them: "cười" is not "cưới".
                    not t.marked or t.canon == w
                    for t, w in zip(span, words, strict=True)
                ):
                    found.append(Concept(group=group, start=i, end=i + len(phrase)))
                    i += len(phrase)
                    break
            else:
                i += 1
        return found
