"""The Telegram adapter's names and configuration: the token (read from the settings and kept
out of every log and message) and the webhook secret."""

from __future__ import annotations

import logging
import re

from bot.settings import TelegramSettings

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhook/telegram"
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramCommandError(Exception):
    """A ``bot telegram`` command failed; the message is for the operator, in Vietnamese.
    ``exit_code`` 2 means configuration, 1 means Telegram refused or could not be reached."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _redact(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def _describe(exc: BaseException, token: str) -> str:
    return f"{type(exc).__name__}: {_redact(str(exc), token)}"


class _TokenRedactor(logging.Filter):
    """httpx logs every request URL at INFO, and Bot API URLs contain the token. The CLI keeps
    httpx at WARNING; this filter also protects deployments that configure logging themselves."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = _redact(message, self.token), None
        return True


def _token(config: TelegramSettings) -> str:
    if config.token is None:
        raise TelegramCommandError(
            "Chưa cấu hình token Telegram: đặt biến môi trường BOT_TELEGRAM_TOKEN "
            "(token do @BotFather cấp).",
            exit_code=2,
        )
    return config.token.get_secret_value()


def secret_problem(config: TelegramSettings) -> str | None:
    """Why the webhook secret cannot protect the route, or None when it can."""
    if config.webhook_secret is None:
        return "BOT_TELEGRAM_WEBHOOK_SECRET is not set"
    if not _SECRET_RE.match(config.webhook_secret.get_secret_value()):
        return (
            "BOT_TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - "
            "(Telegram refuses anything else)"
        )
    return None


def _api_root(config: TelegramSettings) -> str:
    return config.api_url.rstrip("/")
