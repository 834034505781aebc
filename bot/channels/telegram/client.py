"""Sending to a Telegram chat: rendered replies out through the Bot API, Telegram's errors
classified as DeliveryError, chats that blocked the bot marked blocked."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from telegram import Bot, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter
from telegram.warnings import PTBDeprecationWarning

from bot.channels.delivery import DeliveryError
from bot.channels.telegram.config import CHANNEL, _redact
from bot.channels.telegram.render import Outgoing, render
from bot.console import plain
from bot.messages import Reply
from storage.subscribers import BLOCKED

if TYPE_CHECKING:
    from storage.subscribers import SubscriberRepository

log = logging.getLogger(__name__)


def _seconds(exc: RetryAfter) -> float:
    # The attribute is an int with a deprecation warning, or a timedelta when PTB_TIMEDELTA
    # is set; read it either way without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramChannel:
    """Sends neutral replies to a chat. Used for answers and, later, for broadcasts."""

    def __init__(self, bot: Bot, subscribers: SubscriberRepository, token: str) -> None:
        self._bot = bot
        self._subscribers = subscribers
        self._token = token

    async def send(self, chat_id: str, replies: Sequence[Reply], *, max_wait: float = 0.0) -> None:
        """Send ``replies`` in order. Flood-control pauses up to ``max_wait`` seconds are
        waited out (twice at most); anything else raises :class:`DeliveryError`. A chat
        that blocked the bot is marked blocked in the subscriber records."""
        for reply in replies:
            for message in render(reply):
                await self._send_one(chat_id, message, max_wait)

    async def _send_one(self, chat_id: str, message: Outgoing, max_wait: float) -> None:
        waits = 0
        as_html = True
        while True:
            try:
                params: dict[str, object] = {
                    "chat_id": chat_id,
                    "link_preview_options": _NO_PREVIEW,
                }
                if as_html:
                    params.update(text=message.html, parse_mode=ParseMode.HTML)
                else:
                    params["text"] = plain(message.source)
                if message.markup is not None:
                    params["reply_markup"] = message.markup
                # The Bot API's own request path (errors become the usual TelegramError
                # subclasses), without turning every answer into a Message object: that
                # conversion was a tenth of the cost of a reply under load.
                await self._bot.request.post(
                    f"{self._bot.base_url}/sendMessage",
                    request_data=RequestData(
                        parameters=[RequestParameter.from_input(k, v) for k, v in params.items()]
                    ),
                )
                return
            except TelegramError as exc:
                error = await self._classify(chat_id, exc)
                if isinstance(exc, BadRequest) and as_html and "parse entities" in error.reason:
                    # Should not happen (everything is escaped), but a citizen is better
                    # served by the plain text than by silence.
                    log.error("Telegram refused our HTML (%s); sending plain text", error.reason)
                    as_html = False
                    continue
                if error.retry_after is not None and error.retry_after <= max_wait and waits < 2:
                    waits += 1
                    await asyncio.sleep(error.retry_after)
                    continue
                raise error from None

    async def _classify(self, chat_id: str, exc: TelegramError) -> DeliveryError:
        reason = _redact(exc.message, self._token)
        # Order matters: BadRequest and TimedOut are NetworkErrors.
        if isinstance(exc, Forbidden):
            await self._mark_blocked(chat_id)
            return DeliveryError(reason, permanent=True)
        if isinstance(exc, RetryAfter):
            return DeliveryError(reason, permanent=False, retry_after=_seconds(exc))
        if isinstance(exc, ChatMigrated | BadRequest):
            return DeliveryError(reason, permanent=True)
        if isinstance(exc, NetworkError | InvalidToken):
            return DeliveryError(reason, permanent=False)
        return DeliveryError(f"{type(exc).__name__}: {reason}", permanent=False)

    async def _mark_blocked(self, chat_id: str) -> None:
        try:
            await self._subscribers.set_status(
                CHANNEL, chat_id, BLOCKED, source="telegram:send_forbidden"
            )
        except Exception:
            log.exception("could not mark a Telegram chat as blocked")
