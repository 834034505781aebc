"""Campaign messages on Telegram: ``TelegramCourier``, the ``broadcasts.message.Courier`` of
this channel.

One ``sendMessage`` per recipient, rendered exactly like answers (markdown-lite as escaped
Telegram HTML, the URL button as an inline keyboard); a campaign image is shown as the link
preview above the text. Telegram's errors are classified as for answers (``client.classify``)
and a chat that blocked the bot is marked blocked. Nothing is retried or waited for here:
pacing and retries are the broadcast engine's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from telegram import LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.channels.delivery import DeliveryError
from bot.channels.telegram.application import make_bot
from bot.channels.telegram.client import _NO_PREVIEW, TelegramChannel
from bot.channels.telegram.config import CHANNEL, _token
from bot.channels.telegram.render import render
from bot.messages import Reply
from bot.settings import TelegramSettings
from broadcasts.message import BroadcastMessage

if TYPE_CHECKING:
    from storage.subscribers import SubscriberRepository

log = logging.getLogger(__name__)


def link_preview(image_url: str | None) -> LinkPreviewOptions:
    """The campaign image as a large preview above the text; no preview without one (a link
    in the text must not pull in some other page's picture)."""
    if not image_url:
        return _NO_PREVIEW
    return LinkPreviewOptions(url=image_url, prefer_large_media=True, show_above_text=True)


class TelegramCourier(TelegramChannel):
    """Delivers a ``BroadcastMessage`` to one chat and returns Telegram's message id."""

    channel = CHANNEL

    async def deliver(self, external_id: str, message: BroadcastMessage) -> str | None:
        buttons = (message.button,) if message.button is not None else ()
        parts = render(Reply(message.text, buttons))
        if len(parts) != 1:
            # Campaign texts are checked on submit (MAX_TEXT) and always fit; sending a part
            # of one would duplicate it when the rest is retried.
            raise DeliveryError(
                f"the message needs {len(parts)} Telegram messages, not one", permanent=True
            )
        part = parts[0]
        params: dict[str, object] = {
            "chat_id": external_id,
            "text": part.html,
            "parse_mode": ParseMode.HTML,
            "link_preview_options": link_preview(message.image_url),
        }
        if part.markup is not None:
            params["reply_markup"] = part.markup
        try:
            result = await self._post("sendMessage", params)
        except TelegramError as exc:
            raise await self._classify(external_id, exc) from None
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return None if message_id is None else str(message_id)


@asynccontextmanager
async def open_telegram_courier(
    config: TelegramSettings, subscribers: SubscriberRepository
) -> AsyncIterator[TelegramCourier]:
    """A courier on its own HTTP client (the webhook's Application may be running beside
    it), closed on exit. Telegram is not contacted until the first delivery, so an
    unreachable Telegram fails deliveries (retried), not the start of the caller."""
    bot = make_bot(config)
    await bot.request.initialize()
    try:
        yield TelegramCourier(bot, subscribers, _token(config))
    finally:
        await bot.request.shutdown()
