"""Replies as Telegram messages: markdown-lite as Telegram HTML, split to Telegram's length
limit, buttons as inline keyboards."""

from __future__ import annotations

import functools
import html
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.messages import Button, Reply

log = logging.getLogger(__name__)

# Telegram's limits: message text after entity parsing, and callback_data in UTF-8 bytes.
MAX_MESSAGE_CHARS = 4096
MAX_CALLBACK_BYTES = 64

_LINK = re.compile(r"\[([^\]\n]+)\]\((https://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^(\s*)- ")


_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def _bold(escaped: str) -> str:
    return _BOLD.sub(r"<b>\1</b>", escaped)


def _inline(line: str) -> str:
    """One line: everything escaped first, then links, then bold. Each link is set aside as
    an atomic placeholder while bold is applied, so bold may wrap a whole link but never
    straddle one: the tags always nest properly."""
    # NUL is not valid in a Telegram message anyway; dropping it frees it for placeholders.
    escaped = html.escape(line.replace("\x00", ""), quote=True)
    links: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        # The URL was escaped with the rest (& → &amp;, " → &quot;): exactly what an
        # attribute value needs, and no quote can end the attribute early.
        links.append(f'<a href="{match.group(2)}">{_bold(match.group(1))}</a>')
        return f"\x00{len(links) - 1}\x00"

    formatted = _bold(_LINK.sub(set_aside, escaped))
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], formatted)


def to_html(text: str) -> str:
    """Markdown-lite as Telegram HTML: ``- `` bullets as "• ", ``**bold**``, ``[label](url)``.
    Bare URLs stay text (Telegram links them itself)."""
    lines = []
    for line in text.split("\n"):
        bullet = _BULLET.match(line)
        if bullet:
            lines.append(f"{bullet.group(1)}• {_inline(line[bullet.end() :])}")
        else:
            lines.append(_inline(line))
    return "\n".join(lines)


def _size(text: str) -> int:
    """Length of the rendered HTML in UTF-16 units: never less than what Telegram counts
    (the text after entity parsing), so a part that fits here fits there."""
    return len(to_html(text).encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut markdown-lite ``text`` into parts that each render within ``limit``: at paragraph
    boundaries, and only inside a paragraph too long on its own at lines, then words, then
    anywhere. Each part is rendered on its own, so the HTML of every part is well-formed."""
    parts = [part for part in _split(text, limit, ("\n\n", "\n", " ")) if part.strip()]
    return parts or [text]


def _split(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if _size(text) <= limit:
        return [text]
    if not separators:
        # One "word" longer than a message: cut it. Escaping grows a character to at most 6
        # ("&quot;"), so chunks of limit // 6 always fit.
        step = max(1, limit // 6)
        return [text[i : i + step] for i in range(0, len(text), step)]
    separator, finer = separators[0], separators[1:]
    out: list[str] = []
    current: str | None = None
    for piece in text.split(separator):
        for small in _split(piece, limit, finer):
            if current is None:
                current = small
            elif _size(current + separator + small) <= limit:
                current += separator + small
            else:
                out.append(current)
                current = small
    if current is not None:
        out.append(current)
    return out


def keyboard(buttons: Iterable[Button]) -> InlineKeyboardMarkup | None:
    """One button per row (titles are whole questions). A payload Telegram would refuse
    (callback_data is 1–64 bytes) drops that button rather than the whole message."""
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        if button.payload is not None:
            size = len(button.payload.encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_BYTES:
                log.warning(
                    "button %r dropped: its payload is %d bytes, Telegram allows 1–%d",
                    button.title,
                    size,
                    MAX_CALLBACK_BYTES,
                )
                continue
            rows.append([InlineKeyboardButton(button.title, callback_data=button.payload)])
        elif button.url is not None and button.url.startswith(("https://", "http://", "tg://")):
            rows.append([InlineKeyboardButton(button.title, url=button.url)])
        else:
            log.warning("button %r dropped: Telegram cannot open its URL", button.title)
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message: its markdown-lite source, the HTML sent, and the keyboard."""

    source: str
    html: str
    markup: InlineKeyboardMarkup | None


def render(reply: Reply) -> list[Outgoing]:
    """A reply as Telegram messages: split when too long, the buttons under the last part."""
    return list(_render(reply))


# The same answers go out again and again; rendering one was a tenth of a reply's cost.
@functools.lru_cache(maxsize=2048)
def _render(reply: Reply) -> tuple[Outgoing, ...]:
    parts = split_text(reply.text) if reply.text.strip() else ["…"]
    markup = keyboard(reply.buttons)
    return tuple(
        Outgoing(part, to_html(part), markup if i == len(parts) - 1 else None)
        for i, part in enumerate(parts)
    )
