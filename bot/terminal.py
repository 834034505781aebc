"""Rendering replies for a terminal: plain text, buttons as numbered choices."""

from __future__ import annotations

import re

from bot.messages import Button, Reply

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def plain(text: str) -> str:
    """Markdown-lite as plain text: bold markers dropped, [label](url) as "label (url)"."""
    return _BOLD.sub(r"\1", _LINK.sub(r"\1 (\2)", text))


def render(replies: list[Reply]) -> tuple[str, list[Button]]:
    """The text to print and the buttons in the order of their numbers."""
    lines: list[str] = []
    buttons: list[Button] = []
    for reply in replies:
        lines.append(plain(reply.text))
        for button in reply.buttons:
            buttons.append(button)
            target = f" ({button.url})" if button.url else ""
            lines.append(f"  [{len(buttons)}] {button.title}{target}")
    return "\n".join(lines), buttons
