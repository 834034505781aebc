"""Vietnamese text normalisation for matching.

Two keys are derived from any text:

* the *canonical* form: Unicode NFC, ``ð`` → ``đ``, case-folded, punctuation and emoji dropped,
  and the tone mark of each syllable moved to one place (the traditional "hòa, thủy, khỏe"
  style, also used by most legal texts), so "hoà" and "hòa" become the same word;
* the *folded* form: the canonical form without any diacritics, with ``đ`` → ``d``, so that
  citizens who type without accents ("lam cccd o dau") still match.

Nothing here changes what is shown to a citizen; it only builds matching keys.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Combining marks: the five tones, and the three vowel modifiers that are part of the letter.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
_VOWELS = frozenset("aăâeêioôơuưy")
_MODIFIED_VOWELS = frozenset("ăâêôơư")

# Codes such as 1.001612, 26/2023/QH15 or 123/2015 stay one token; everything else is a word
# made of letters and digits. Emoji, punctuation and symbols fall between tokens.
_TOKEN_RE = re.compile(r"\d+(?:[./-]\d+)+(?:/[^\W_]+)*|[^\W_]+")


def nfc(text: str) -> str:
    """Compose ``text`` to NFC and repair the Icelandic eth that some keyboards emit for đ."""
    return unicodedata.normalize("NFC", text).replace("ð", "đ").replace("Ð", "Đ")


def strip_marks(text: str) -> str:
    """Remove every diacritic (tones and vowel modifiers) and map đ to d."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "D")


def has_marks(token: str) -> bool:
    """True when the token carries any Vietnamese diacritic (or đ)."""
    return strip_marks(token) != token


def split_tone(syllable: str) -> tuple[str, str | None]:
    """Split a syllable into its letters without tone and its tone mark (or None).

    Returns the syllable unchanged with ``None`` when it carries more than one tone mark,
    which is not a Vietnamese syllable and is better left alone.
    """
    decomposed = unicodedata.normalize("NFD", syllable)
    tones = [ch for ch in decomposed if ch in _TONE_MARKS]
    if len(tones) != 1:
        return (syllable, None) if tones else (unicodedata.normalize("NFC", decomposed), None)
    base = "".join(ch for ch in decomposed if ch not in _TONE_MARKS)
    return unicodedata.normalize("NFC", base), tones[0]


def _nucleus_span(base: str) -> tuple[int, int] | None:
    """Return the [start, end) span of the vowel nucleus of a toneless syllable."""
    start = 0
    # "qu" and "gi" (before another vowel) are onsets: their u / i are not part of the nucleus.
    if base.startswith("qu") or (base.startswith("gi") and len(base) > 2 and base[2] in _VOWELS):
        start = 2
    while start < len(base) and base[start] not in _VOWELS:
        start += 1
    if start >= len(base):
        # "gi" alone ("gì") keeps its i as the nucleus.
        if base.startswith("gi"):
            return 1, 2
        return None
    end = start
    while end < len(base) and base[end] in _VOWELS:
        end += 1
    return start, end


def place_tone(base: str, tone: str | None) -> str:
    """Put ``tone`` on the vowel that carries it in the traditional placement style."""
    if tone is None:
        return base
    span = _nucleus_span(base)
    if span is None:
        return unicodedata.normalize("NFC", base + tone)
    start, end = span
    nucleus = base[start:end]
    has_coda = end < len(base)
    if "ươ" in nucleus:
        index = start + nucleus.index("ươ") + 1
    elif any(ch in _MODIFIED_VOWELS for ch in nucleus):
        index = start + max(i for i, ch in enumerate(nucleus) if ch in _MODIFIED_VOWELS)
    elif has_coda or len(nucleus) == 1:
        index = end - 1
    elif len(nucleus) == 2:
        index = start
    else:
        index = start + 1
    return unicodedata.normalize("NFC", base[: index + 1] + tone + base[index + 1 :])


@lru_cache(maxsize=65536)
def canon_token(token: str) -> str:
    """Normalise one lower-case NFC token's tone placement ("hoà" → "hòa", "baỏ" → "bảo")."""
    if not token.isalpha():
        return token
    base, tone = split_tone(token)
    if tone is None:
        return token
    return place_tone(base, tone)


@lru_cache(maxsize=65536)
def fold_token(token: str) -> str:
    """The diacritic-free matching key of one canonical token."""
    return strip_marks(token)


def tokens(text: str) -> list[str]:
    """Canonical tokens of ``text``: NFC, case-folded, tone placement unified, no punctuation."""
    lowered = nfc(text).casefold()
    return [canon_token(tok) for tok in _TOKEN_RE.findall(lowered)]


def canon(text: str) -> str:
    """The canonical form of ``text`` as one space-separated string."""
    return " ".join(tokens(text))


def fold(text: str) -> str:
    """The folded (diacritic-free) form of ``text`` as one space-separated string."""
    return " ".join(fold_token(tok) for tok in tokens(text))
