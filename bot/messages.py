"""Channel-neutral message types: what every adapter parses into and renders from.

Handlers see only these. Reply text is "markdown-lite" (paragraphs, "- " bullets, ``**bold**``,
bare https links); each adapter renders it for its channel and escapes what citizens typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Button:
    """A button: a title and either a payload (sent back when pressed) or a URL to open."""

    title: str
    payload: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.payload is None) == (self.url is None):
            raise ValueError("a button has exactly one of payload and url")


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a citizen: typed text, or the payload of a button they pressed."""

    channel: str
    user_id: str
    text: str = ""
    payload: str | None = None
    # The name the platform shows for the citizen, when it gives one.
    display_name: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)
