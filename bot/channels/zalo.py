"""The Zalo Official Account channel. To be written."""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings


def setup(app: web.Application, settings: Settings) -> None:
    """Add the Zalo webhook route and the OA client when an app id is configured."""
    if settings.zalo.app_id is None:
        return
