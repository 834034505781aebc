"""Decode Vietnamese typed with the input method switched off.

Citizens whose keyboard is set to English type the Telex or VNI key sequences literally:
"dduowcj" for "được", "laam" for "lâm", "d9u7o75c" for "được". This module turns one such token
back into a syllable. It is deliberately strict: the caller accepts a decoding only when the
result is a known word, because many English words and abbreviations look like Telex
("bus" would become "bú").
"""

from __future__ import annotations

import re
import unicodedata

from content.normalize import place_tone

_TELEX_TONES = {"s": "\u0301", "f": "\u0300", "r": "\u0309", "x": "\u0303", "j": "\u0323"}
_VNI_TONES = {"1": "\u0301", "2": "\u0300", "3": "\u0309", "4": "\u0303", "5": "\u0323"}
_VOWEL_LETTERS = "aeiouy"

_SYLLABLE_RE = re.compile(
    r"^(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|[bcdđghklmnpqrstvx])?"
    r"([aăâeêioôơuưy]{1,3})"
    r"(ch|ng|nh|[cmnpt])?$"
)

_TELEX_PAIRS = (
    ("uow", "ươ"),
    ("uwow", "ươ"),
    ("aa", "â"),
    ("ee", "ê"),
    ("oo", "ô"),
    ("aw", "ă"),
    ("ow", "ơ"),
    ("uw", "ư"),
)


def is_syllable(word: str) -> bool:
    """True when ``word`` (toneless, lower case) has the shape of a Vietnamese syllable."""
    return bool(_SYLLABLE_RE.match(word))


def _first_vowel(word: str) -> int:
    for i, ch in enumerate(word):
        if ch in _VOWEL_LETTERS:
            return i
    return -1


def _decode_telex(raw: str) -> tuple[str, str | None] | None:
    word = raw
    tone: str | None = None
    first = _first_vowel(word)
    if first < 0:
        return None
    # Tone keys are the letters s f r x j (and z to clear) typed after the first vowel; none of
    # them can end a Vietnamese syllable, so there they are always keystrokes.
    head, tail = word[: first + 1], word[first + 1 :]
    keys = [ch for ch in tail if ch in _TELEX_TONES or ch == "z"]
    if len(keys) > 1:
        return None
    if keys:
        tone = _TELEX_TONES.get(keys[0])
        tail = tail.replace(keys[0], "", 1)
    word = head + tail
    if word.startswith("dd"):
        word = "đ" + word[2:]
    # "ooo" is how Telex types a plain double o ("mooocs" → moóc, "xooong" → xoong); it is kept
    # apart so that "oo" → ô does not take it.
    word = word.replace("ooo", "\0\0")
    for pattern, letter in sorted(_TELEX_PAIRS, key=lambda p: -len(p[0])):
        word = word.replace(pattern, letter)
    word = word.replace("\0", "o")
    if "w" in word:
        # A lone w modifies the nucleus: uo → ươ, u → ư, o → ơ, a → ă ("duocw", "dangw").
        word = word.replace("w", "", 1)
        if "w" in word:
            return None
        for plain, marked in (("uo", "ươ"), ("u", "ư"), ("o", "ơ"), ("a", "ă")):
            if plain in word:
                word = word.replace(plain, marked, 1)
                break
        else:
            return None
    return word, tone


def _decode_vni(raw: str) -> tuple[str, str | None] | None:
    word = ""
    tone: str | None = None
    for ch in raw:
        if ch in _VNI_TONES:
            if tone is not None:
                return None
            tone = _VNI_TONES[ch]
        elif ch == "6":
            index = max(word.rfind("a"), word.rfind("e"), word.rfind("o"))
            if index < 0:
                return None
            word = word[:index] + {"a": "â", "e": "ê", "o": "ô"}[word[index]] + word[index + 1 :]
        elif ch == "7":
            if "uo" in word:
                word = word.replace("uo", "ươ", 1)
            elif word.rfind("o") >= 0 or word.rfind("u") >= 0:
                index = max(word.rfind("o"), word.rfind("u"))
                word = word[:index] + {"o": "ơ", "u": "ư"}[word[index]] + word[index + 1 :]
            else:
                return None
        elif ch == "8":
            index = word.rfind("a")
            if index < 0:
                return None
            word = word[:index] + "ă" + word[index + 1 :]
        elif ch == "9":
            if not word.startswith("d"):
                return None
            word = "đ" + word[1:]
        elif ch.isdigit():
            return None
        else:
            word += ch
    return word, tone


def decode(token: str) -> str | None:
    """Decode one Telex- or VNI-typed token, or return None when it is not one.

    Only ASCII letters (and VNI digits) are considered; the result is an NFC syllable with its
    tone placed by the traditional rule.
    """
    if not token.isascii() or not token.isalnum() or len(token) < 2:
        return None
    lowered = token.lower()
    has_digit = any(ch.isdigit() for ch in lowered)
    if has_digit:
        if lowered[0].isdigit() or lowered.isdigit():
            return None
        decoded = _decode_vni(lowered)
    else:
        decoded = _decode_telex(lowered)
    if decoded is None:
        return None
    word, tone = decoded
    if not is_syllable(word):
        return None
    result = unicodedata.normalize("NFC", place_tone(word, tone))
    return None if result == lowered else result
