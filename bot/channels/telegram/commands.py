"""The ``bot telegram …`` commands: set-webhook, delete-webhook, info and poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from telegram import Bot
from telegram.error import (
    BadRequest,
    InvalidToken,
    NetworkError,
    TelegramError,
)

from bot.channels.telegram.application import TelegramBot
from bot.channels.telegram.config import (
    TelegramCommandError,
    _api_root,
    _describe,
    _redact,
    _token,
    _TokenRedactor,
    secret_problem,
)
from bot.settings import TelegramSettings

if TYPE_CHECKING:
    from bot.services import Services


# What the bot needs: messages, button presses, and my_chat_member (the citizen blocked it).
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_webhook_url(url: str) -> str:
    """Telegram only calls https URLs; plain http is allowed for a local Bot API server."""
    parts = urlsplit(url)
    if not parts.hostname or (
        parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)
    ):
        raise TelegramCommandError(
            f"Địa chỉ webhook phải bắt đầu bằng https:// (http:// chỉ dùng cho 127.0.0.1 hoặc "
            f"localhost): {url}",
            exit_code=2,
        )
    return url


@contextlib.asynccontextmanager
async def _client(config: TelegramSettings) -> AsyncIterator[Bot]:
    """A bare Bot for one command, with Telegram's errors turned into operator messages."""
    token = _token(config)
    root = _api_root(config)
    bot = Bot(token, base_url=f"{root}/bot", base_file_url=f"{root}/file/bot")
    redactor = _TokenRedactor(token)
    logging.getLogger("httpx").addFilter(redactor)
    try:
        async with bot:
            yield bot
    except InvalidToken:
        raise TelegramCommandError(
            "Telegram từ chối token (BOT_TELEGRAM_TOKEN): kiểm tra lại token do @BotFather cấp.",
            exit_code=2,
        ) from None
    except NetworkError as exc:
        if isinstance(exc, BadRequest):
            message = f"Telegram từ chối yêu cầu: {_redact(exc.message, token)}"
        else:
            message = (
                f"Không kết nối được tới máy chủ Telegram ({root}): {_redact(exc.message, token)}"
            )
        raise TelegramCommandError(message) from None
    except TelegramError as exc:
        raise TelegramCommandError(f"Telegram báo lỗi: {_redact(exc.message, token)}") from None
    finally:
        logging.getLogger("httpx").removeFilter(redactor)


async def set_webhook(config: TelegramSettings, url: str, *, drop_pending: bool = False) -> None:
    check_webhook_url(url)
    _token(config)
    problem = secret_problem(config)
    if problem is not None or config.webhook_secret is None:
        raise TelegramCommandError(
            "Chưa thể đặt webhook: cần BOT_TELEGRAM_WEBHOOK_SECRET gồm 1–256 ký tự A–Z, a–z, "
            "0–9, _ hoặc - (máy chủ của bot từ chối mọi cập nhật không mang đúng mã này).",
            exit_code=2,
        )
    async with _client(config) as bot:
        await bot.set_webhook(
            url,
            secret_token=config.webhook_secret.get_secret_value(),
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=drop_pending,
        )


async def delete_webhook(config: TelegramSettings, *, drop_pending: bool = False) -> None:
    async with _client(config) as bot:
        await bot.delete_webhook(drop_pending_updates=drop_pending)


async def webhook_info(config: TelegramSettings) -> dict[str, Any]:
    async with _client(config) as bot:
        info = await bot.get_webhook_info()
    return info.to_dict()


async def poll(
    config: TelegramSettings,
    services: Services,
    stop: asyncio.Event,
    on_ready: Callable[[str], None],
) -> None:
    """Long polling (getUpdates) until ``stop`` is set: for trying the bot without a public
    URL. Refuses while a webhook is set, because PTB's polling would silently delete it."""
    bot = TelegramBot(config)
    try:
        await bot.open(services, polling=True)
    except InvalidToken:
        raise TelegramCommandError(
            "Telegram từ chối token (BOT_TELEGRAM_TOKEN): kiểm tra lại token do @BotFather cấp.",
            exit_code=2,
        ) from None
    except TelegramError as exc:
        raise TelegramCommandError(
            f"Không kết nối được tới máy chủ Telegram: {_describe(exc, bot.token)}"
        ) from None
    try:
        assert bot.application is not None
        assert bot.application.updater is not None
        info = await bot.application.bot.get_webhook_info()
        if info.url:
            raise TelegramCommandError(
                f"Bot đang nhận tin qua webhook ({info.url}). Chạy `bot telegram delete-webhook` "
                "trước khi thử bằng long polling, và `bot telegram set-webhook` khi xong.",
                exit_code=2,
            )
        await bot.application.updater.start_polling(allowed_updates=list(ALLOWED_UPDATES))
        on_ready(bot.application_username())
        await stop.wait()
        await bot.application.updater.stop()
    finally:
        await bot.close()
