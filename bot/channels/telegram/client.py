"""Sending to a Telegram chat: rendered replies out through the Bot API, Telegram's errors
classified as DeliveryError, chats that blocked the bot marked blocked."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

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
from bot.messages import Reply
from bot.terminal import plain
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

# DeliveryError.kind of the permanent failures a broadcast ledger tells apart.
BLOCKED_KIND = "blocked"
NOT_FOUND_KIND = "not_found"
# Bad Request texts meaning the chat does not exist (any more) for the bot. PTB strips the
# "Bad Request: " prefix and capitalizes the rest, so they are compared in lower case.
_GONE = ("chat not found", "user not found")


def classify(exc: TelegramError, token: str) -> DeliveryError:
    """Telegram's error as a channel-neutral DeliveryError (the token never in its reason):
    blocked or deactivated (403) → permanent, kind "blocked"; a chat that does not exist →
    permanent, kind "not_found"; any other refusal (400) → permanent; flood control (429) →
    retry after Telegram's pause; network trouble, 5xx, a rejected token → retry."""
    reason = _redact(exc.message, token)
    # Order matters: BadRequest and TimedOut are NetworkErrors.
    if isinstance(exc, Forbidden):
        return DeliveryError(reason, permanent=True, kind=BLOCKED_KIND)
    if isinstance(exc, RetryAfter):
        return DeliveryError(reason, permanent=False, retry_after=_seconds(exc))
    if isinstance(exc, BadRequest):
        gone = any(text in reason.lower() for text in _GONE)
        return DeliveryError(reason, permanent=True, kind=NOT_FOUND_KIND if gone else None)
    if isinstance(exc, ChatMigrated):
        return DeliveryError(reason, permanent=True)
    if isinstance(exc, NetworkError | InvalidToken):
        return DeliveryError(reason, permanent=False)
    return DeliveryError(f"{type(exc).__name__}: {reason}", permanent=False)


class TelegramChannel:
    """Sends neutral replies to a chat. Used for answers; ``TelegramCourier``
    (broadcast.py) extends it for campaigns."""

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
                await self._post("sendMessage", params)
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

    async def _post(self, method: str, params: dict[str, object]) -> Any:
        """Call ``method`` and return the answer's ``result`` as JSON. The Bot API's own
        request path (errors become the usual TelegramError subclasses), without turning
        every answer into a Message object: that conversion was a tenth of the cost of a
        reply under load."""
        return await self._bot.request.post(
            f"{self._bot.base_url}/{method}",
            request_data=RequestData(
                parameters=[RequestParameter.from_input(k, v) for k, v in params.items()]
            ),
        )

    async def _classify(self, chat_id: str, exc: TelegramError) -> DeliveryError:
        """``classify``, and a chat that blocked the bot marked blocked."""
        error = classify(exc, self._token)
        if error.kind == BLOCKED_KIND:
            await self._mark_blocked(chat_id)
        return error

    async def _mark_blocked(self, chat_id: str) -> None:
        try:
            await self._subscribers.set_status(
                CHANNEL, chat_id, BLOCKED, source="telegram:send_forbidden"
            )
        except Exception:
            log.exception("could not mark a Telegram chat as blocked")
