"""What a campaign sends, channel-neutral, and the interface each channel implements to
send it (``Courier``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.messages import Button

# Telegram's limit for a message is 4096 characters; Zalo's text is shorter (2000). A
# campaign's text must fit both with the opt-out line, so the limit is checked on submit.
MAX_TEXT = 1800


@dataclass(frozen=True, slots=True)
class BroadcastMessage:
    """``text`` is markdown-lite (as FAQ answers: paragraphs, "- " bullets, ``**bold**``,
    bare https links) and already ends with the opt-out line. ``button`` is a URL button."""

    text: str
    button: Button | None = None
    image_url: str | None = None


def compose(
    text: str,
    opt_out_line: str,
    *,
    link_title: str | None = None,
    link_url: str | None = None,
    image_url: str | None = None,
) -> BroadcastMessage:
    """The message every recipient gets: the campaign's text, then one short line saying how
    to stop receiving (the subscription handler understands that word)."""
    body = text.strip()
    line = opt_out_line.strip()
    if line and line not in body:
        body = f"{body}\n\n{line}"
    button = Button(link_title or "Xem chi tiết", url=link_url) if link_url else None
    return BroadcastMessage(body, button, image_url or None)


class Courier(Protocol):
    """Sends a broadcast message to one subscriber of one channel.

    Returns the platform's message id (or None when it gives none). Raises
    ``bot.channels.delivery.DeliveryError``: ``permanent`` ones are final (with ``kind`` for
    the ledger: blocked, not_follower, out_of_window, not_found), the others are retried,
    after ``retry_after`` when the platform asked for a pause. A courier must not retry on
    its own: pacing and retries are the sender's."""

    channel: str

    async def deliver(self, external_id: str, message: BroadcastMessage) -> str | None: ...
