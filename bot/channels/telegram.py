"""The Telegram channel (python-telegram-bot 22 behind our aiohttp webhook). To be written."""

from __future__ import annotations

from aiohttp import web

from bot.settings import Settings


def setup(app: web.Application, settings: Settings) -> None:
    """Add the Telegram webhook route and the PTB lifecycle when a token is configured."""
    if settings.telegram.token is None:
        return
