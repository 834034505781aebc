"""The Zalo Official Account channel: the webhook Zalo posts events to, and the OA client that
answers through the customer-service ("tư vấn") message API.

Facts about Zalo come from /work/shared/reference/zalo-oa.md (section numbers below refer to
it). Where the reference marks something uncertain, both variants are accepted and the one a
real request used is logged, so the first events from the real OA settle the question.

Flow: ``POST /webhook/zalo`` reads the raw body (capped), verifies ``X-ZEvent-Signature``,
drops stale or echoed events, answers 200 at once (Zalo wants it within 2 seconds and resends
otherwise) and handles the event in a tracked background task: dedupe on ``msg_id`` across
workers, dispatch, render the neutral replies as Zalo messages and send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from bot.channels.delivery import DeliveryError
from bot.channels.zalo.client import (
    CHANNEL,
    CHOOSE_BY_NUMBER_DEFAULT,
    CHOOSE_BY_NUMBER_KEY,
    HTTP_TIMEOUT,
    TokenRefreshError,
    ZaloChannel,
    http_session,
)
from bot.channels.zalo.render import (
    MAX_TEXT_CHARS,
    button_json,
    numbered_list,
    plain_text,
    split_text,
)
from bot.channels.zalo.signature import DOCUMENTED_VARIANT, signature_variants
from bot.channels.zalo.webhook import WEBHOOK_PATH, ZaloWebhook
from bot.settings import Settings
from bot.web.keys import SERVICES, SETTINGS

__all__ = [
    "CHANNEL",
    "DOCUMENTED_VARIANT",
    "HTTP_TIMEOUT",
    "MAX_TEXT_CHARS",
    "WEBHOOK_PATH",
    "ZALO_CHANNEL",
    "ZALO_WEBHOOK",
    "DeliveryError",
    "TokenRefreshError",
    "ZaloChannel",
    "ZaloWebhook",
    "button_json",
    "numbered_list",
    "plain_text",
    "setup",
    "signature_variants",
    "split_text",
]

log = logging.getLogger(__name__)


ZALO_CHANNEL = web.AppKey("zalo_channel", ZaloChannel)
ZALO_WEBHOOK = web.AppKey("zalo_webhook", ZaloWebhook)


async def _webhook(request: web.Request) -> web.Response:
    return await request.app[ZALO_WEBHOOK].handle(request)


async def _zalo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the OA client after the core services (and close it before them)."""
    settings = app[SETTINGS].zalo
    services = app[SERVICES]
    if settings.oa_secret_key is None and settings.app_secret is None:
        log.error(
            "Zalo: BOT_ZALO_OA_SECRET_KEY is not set; every webhook event will be refused "
            "as unsigned"
        )
    hint = CHOOSE_BY_NUMBER_DEFAULT
    if CHOOSE_BY_NUMBER_KEY in services.kb.messages:
        hint = services.dispatcher.context.say(CHOOSE_BY_NUMBER_KEY)
    async with http_session() as http:
        storage = services.storage
        channel = ZaloChannel(
            settings, http, storage.tokens, storage.subscribers, storage.choices, choose_hint=hint
        )
        await channel.seed()
        webhook = ZaloWebhook(settings, services, channel)
        app[ZALO_CHANNEL] = channel
        app[ZALO_WEBHOOK] = webhook
        keeper = asyncio.create_task(channel.keep_fresh(), name="zalo-token-keeper")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await webhook.close()


def setup(app: web.Application, settings: Settings) -> None:
    """Add the Zalo webhook route and the OA client when an app id is configured."""
    if settings.zalo.app_id is None:
        return
    app.router.add_post(WEBHOOK_PATH, _webhook)
    app.cleanup_ctx.append(_zalo_ctx)
