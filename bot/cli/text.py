"""Safe text for the staff's command line: tables in terminal columns, names and citizens'
words with every control character shown escaped, JSON with invisible characters escaped,
CSV cells a spreadsheet will not run as formulas, and output to a file or standard output.

Shared by ``bot subscribers`` and ``bot feedback``: what a citizen typed is printed through
these, never raw.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

# A cell starting with one of these is a formula to Excel and LibreOffice.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SHORT_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Unicode categories shown escaped: controls, format (bidi overrides), separators, unassigned.
HIDDEN = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"cần một số nguyên dương, không phải {value!r}")
    return number


def printable(text: str) -> str:
    """``text`` with every control or format character (ANSI escapes, CR, bidi overrides,
    line separators …) written as a visible escape, so a name cannot drive the terminal."""
    return "".join(escape_char(c) if unicodedata.category(c) in HIDDEN else c for c in text)


def escape_char(char: str) -> str:
    """How Python spells ``char`` in a string literal: ``\\t``, ``\\x1b``, ``\\u202e``…"""
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def text_width(text: str) -> int:
    """Terminal columns: combining marks take none, wide (CJK, most emoji) characters two."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def shorten(text: str, width: int) -> str:
    if text_width(text) <= width:
        return text
    while text_width(text) > width - 1:
        text = text[:-1]
    return text + "…"


def pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * (width - text_width(text))
    return fill + text if right else text + fill


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: set[int] | frozenset[int] = frozenset(),
    indent: str = "",
) -> None:
    """Columns padded by terminal width (Vietnamese combining marks take none)."""
    widths = [max(text_width(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = (
            pad(cell, width, right=i in right)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print((indent + "  ".join(cells)).rstrip())


class CannotWrite(Exception):
    """The output file cannot be opened (message for people, in Vietnamese)."""


@contextlib.contextmanager
def open_output(path: Path | None) -> Iterator[TextIO]:
    """UTF-8 text with the line ends the writer chose, to FILE or to standard output."""
    if path is not None:
        try:
            file = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CannotWrite(f"Không ghi được tệp {path}: {exc.strerror or exc}") from exc
        with file:
            yield file
        return
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # already a text-only stream (e.g. replaced by a caller)
        yield sys.stdout
        return
    stream = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    try:
        yield stream
    finally:
        stream.flush()
        stream.detach()


def csv_cell(value: Any) -> Any:
    """Text a spreadsheet would take for a formula gets an apostrophe in front."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def safe_json(value: Any, *, indent: int | None = None) -> str:
    """JSON with Vietnamese kept readable but every invisible or terminal-steering character
    escaped (JSON itself only escapes U+0000–U+001F)."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return "".join(
        json_escape(c) if c != "\n" and unicodedata.category(c) in HIDDEN else c for c in text
    )


def json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON spells characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
