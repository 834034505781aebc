"""The aiohttp route Telegram posts updates to: the secret checked first, the body read with
its own limit, the JSON parsed, the update put on PTB's queue and answered 200 at once."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from telegram import Update

from bot.channels.telegram.application import TelegramBot
from bot.web.body import read_capped
from bot.web.keys import SERVICES

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# Updates are small (a message is at most 4096 characters); 1 MiB leaves room for any update
# type while refusing floods. The app's client_max_size (64 KiB) only applies to
# ``request.read()``, which this route does not use: it reads with its own limit.
MAX_UPDATE_BYTES = 1024 * 1024

TELEGRAM = web.AppKey("telegram", TelegramBot)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    bot = app[TELEGRAM]
    await bot.launch(app[SERVICES])
    try:
        yield
    finally:
        await bot.close()


def _text_response(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text)


async def _receive(request: web.Request, expected: bytes) -> web.Response:
    # The secret first: nothing from an unauthenticated sender is read or parsed.
    given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected):
        # INFO, not WARNING: anyone can trigger it. After a secret change without
        # `bot telegram set-webhook`, this is the line to look for.
        log.info("Telegram webhook: wrong or missing secret token (from %s)", request.remote)
        return _text_response(403, "forbidden")
    body = await read_capped(request, MAX_UPDATE_BYTES)
    if body is None:
        return _text_response(413, "update too large")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return _text_response(400, "malformed JSON")
    update_id = data.get("update_id") if isinstance(data, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        return _text_response(400, "not a Telegram update")
    bot = request.app[TELEGRAM]
    if not bot.ready or bot.application is None:
        # Telegram keeps the update and retries: nothing is lost while we cannot answer.
        return web.Response(status=503, text="not ready", headers={"Retry-After": "30"})
    try:
        update = Update.de_json(data, bot.application.bot)
    except Exception as exc:  # any shape PTB cannot read is the sender's mistake
        log.warning("Telegram: update %d is not readable: %s", update_id, type(exc).__name__)
        return _text_response(400, "not a Telegram update")
    await bot.application.update_queue.put(update)
    return _text_response(200, "ok")
