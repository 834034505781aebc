"""Replies as Zalo messages: markdown-lite as plain text, split to Zalo's length limit,
buttons as the template's JSON or as a numbered list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.messages import Button

# §3.2: a text message holds at most 2,000 characters.
MAX_TEXT_CHARS = 2000
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_LINK = re.compile(r"\[([^\]]+)\]\(((?:https?|tel):[^)\s]+)\)")


def plain_text(text: str) -> str:
    """Markdown-lite as Zalo plain text: bold markers dropped, [label](url) as "label: url",
    bullets and paragraphs kept as they are."""
    return _BOLD.sub(r"\1", _LINK.sub(lambda m: f"{m[1]}: {_shown_url(m[2])}", text)).strip()


def _shown_url(url: str) -> str:
    return url.removeprefix("tel:")


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` characters, at paragraph breaks if
    possible, then line breaks, then spaces, and only as a last resort inside a word."""
    text = text.strip()
    if not text:
        return []
    return [chunk for chunk in _pack(text, limit, ("\n\n", "\n", " ")) if chunk.strip()]


def _pack(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    separator, finer = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(separator):
        if len(part) > limit:
            # Too long on its own: cut it at finer boundaries, each piece its own message.
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(_pack(part, limit, finer))
        elif not current:
            current = part
        elif len(current) + len(separator) + len(part) <= limit:
            current += separator + part
        else:
            chunks.append(current)
            current = part
    if current:
        chunks.append(current)
    return [chunk.strip() for chunk in chunks]


def button_json(button: Button) -> dict[str, Any]:
    """One button of the template (§3.2): a payload is sent back as the citizen's text."""
    if button.payload is not None:
        return {"title": button.title, "type": "oa.query.show", "payload": button.payload}
    url = button.url or ""
    if url.startswith("tel:"):
        return {"title": button.title, "type": "oa.open.phone", "payload": {"phone_code": url[4:]}}
    return {"title": button.title, "type": "oa.open.url", "payload": {"url": url}}


def numbered_list(buttons: Sequence[Button], hint: str) -> tuple[str, list[str]]:
    """Buttons as text: payload buttons numbered "1. …" (their payloads returned in order, for
    OfferedChoices), link buttons as "- title: url"."""
    lines: list[str] = []
    payloads: list[str] = []
    links: list[str] = []
    for button in buttons:
        if button.payload is not None:
            payloads.append(button.payload)
            lines.append(f"{len(payloads)}. {button.title}")
        else:
            links.append(f"- {button.title}: {_shown_url(button.url or '')}")
    blocks = ["\n".join(lines)] if lines else []
    if links:
        blocks.append("\n".join(links))
    if payloads:
        blocks.append(hint)
    return "\n\n".join(blocks), payloads
