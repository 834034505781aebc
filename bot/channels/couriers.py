"""The broadcast couriers of the configured channels, opened and closed together.

Used by the CLI (``bot campaign send --wait``, ``bot campaign test``) and by the web app's
broadcast context. Each courier has its own HTTP client, so they may be open while the
Telegram and Zalo webhook contexts are too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from bot.settings import Settings
from broadcasts.message import Courier

if TYPE_CHECKING:
    from bot.services import Services


@asynccontextmanager
async def open_couriers(
    settings: Settings, services: Services
) -> AsyncIterator[dict[str, Courier]]:
    """``{channel: courier}`` for each configured channel: Telegram when BOT_TELEGRAM_TOKEN
    is set, Zalo when BOT_ZALO_APP_ID is. Nothing is sent while opening."""
    couriers: dict[str, Courier] = {}
    storage = services.storage
    async with AsyncExitStack() as stack:
        if settings.telegram.token is not None:
            from bot.channels.telegram.broadcast import open_telegram_courier

            telegram = await stack.enter_async_context(
                open_telegram_courier(settings.telegram, storage.subscribers)
            )
            couriers[telegram.channel] = telegram
        if settings.zalo.app_id is not None:
            from bot.channels.zalo.broadcast import open_zalo_courier

            zalo = await stack.enter_async_context(
                open_zalo_courier(
                    settings.zalo, storage.tokens, storage.subscribers, storage.choices
                )
            )
            couriers[zalo.channel] = zalo
        yield couriers
