"""Telegram updates as channel-neutral ``Inbound``s: messages and button presses in private
chats."""

from __future__ import annotations

import re

from telegram import CallbackQuery, Message, User
from telegram.constants import ChatType

from bot.channels.telegram.config import CHANNEL
from bot.messages import Inbound

# Same as the web chat: an answer is matched on far less, and the logs keep 1,000 characters.
MAX_TEXT_CHARS = 10_000
# Stands for a photo, sticker, voice message…: the handlers answer it like any input without
# letters ("I can only read text"), and the conversation log shows what happened.
OBJECT_PLACEHOLDER = "\ufffc"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _display_name(user: User | None) -> str | None:
    if user is None:
        return None
    return " ".join(p for p in (user.first_name, user.last_name) if p) or None


def _clean(text: str) -> str:
    return _CONTROL_RE.sub(" ", text)[:MAX_TEXT_CHARS]


def inbound_from_message(message: Message) -> Inbound | None:
    """A citizen's message in a private chat; commands stay text ("/start" …)."""
    if message.chat.type != ChatType.PRIVATE:
        return None
    text = message.text if message.text is not None else message.caption
    if text is None:
        if message.effective_attachment is None:
            return None  # a service message, nothing the citizen said
        text = OBJECT_PLACEHOLDER
    return Inbound(
        CHANNEL,
        str(message.chat.id),
        text=_clean(text),
        display_name=_display_name(message.from_user),
        raw=message,
    )


def inbound_from_callback(query: CallbackQuery) -> Inbound | None:
    """A button press under one of our messages in a private chat."""
    chat = query.message.chat if query.message is not None else None
    if chat is None or chat.type != ChatType.PRIVATE or not query.data:
        return None
    return Inbound(
        CHANNEL,
        str(chat.id),
        payload=query.data,
        display_name=_display_name(query.from_user),
        raw=query,
    )
