"""The Telegram channel: python-telegram-bot 22 behind our own aiohttp webhook.

The path of an update: Telegram POSTs it to ``/webhook/telegram``; the handler checks the
secret header (before reading anything else), the size and the JSON, puts the ``Update`` on
PTB's queue and answers 200 at once (Telegram redelivers whatever is not answered quickly).
PTB's update fetcher hands it to our single ``TypeHandler``, which claims the ``update_id``
(once across workers), turns it into a channel-neutral ``Inbound``, asks the dispatcher and
sends the replies rendered as Telegram HTML. ``bot telegram poll`` drives the same Application
with PTB's Updater (getUpdates) instead of the webhook.

Only private chats are served: the bot answers citizens one to one and stays silent if someone
adds it to a group. The token is in every Bot API URL, so it is never logged or printed.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.channels.delivery import DeliveryError
from bot.channels.telegram.application import (
    APOLOGY,
    COMMANDS,
    MAX_CONCURRENT_UPDATES,
    REPLY_MAX_WAIT_SECONDS,
    TelegramBot,
    _PerChatProcessor,
)
from bot.channels.telegram.client import TelegramChannel
from bot.channels.telegram.commands import (
    ALLOWED_UPDATES,
    check_webhook_url,
    delete_webhook,
    poll,
    set_webhook,
    webhook_info,
)
from bot.channels.telegram.config import (
    CHANNEL,
    WEBHOOK_PATH,
    TelegramCommandError,
    secret_problem,
)
from bot.channels.telegram.inbound import (
    MAX_TEXT_CHARS,
    OBJECT_PLACEHOLDER,
    inbound_from_callback,
    inbound_from_message,
)
from bot.channels.telegram.render import (
    MAX_CALLBACK_BYTES,
    MAX_MESSAGE_CHARS,
    Outgoing,
    keyboard,
    render,
    split_text,
    to_html,
)
from bot.channels.telegram.webhook import (
    MAX_UPDATE_BYTES,
    SECRET_HEADER,
    TELEGRAM,
    _lifecycle,
    _receive,
)
from bot.settings import Settings

__all__ = [
    "ALLOWED_UPDATES",
    "APOLOGY",
    "CHANNEL",
    "COMMANDS",
    "MAX_CALLBACK_BYTES",
    "MAX_CONCURRENT_UPDATES",
    "MAX_MESSAGE_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_UPDATE_BYTES",
    "OBJECT_PLACEHOLDER",
    "REPLY_MAX_WAIT_SECONDS",
    "SECRET_HEADER",
    "TELEGRAM",
    "WEBHOOK_PATH",
    "DeliveryError",
    "Outgoing",
    "TelegramBot",
    "TelegramChannel",
    "TelegramCommandError",
    "_PerChatProcessor",
    "check_webhook_url",
    "delete_webhook",
    "inbound_from_callback",
    "inbound_from_message",
    "keyboard",
    "poll",
    "render",
    "secret_problem",
    "set_webhook",
    "setup",
    "split_text",
    "to_html",
    "webhook_info",
]

log = logging.getLogger(__name__)


def setup(app: web.Application, settings: Settings) -> None:
    """Add the Telegram webhook route and the PTB lifecycle when a token is configured."""
    config = settings.telegram
    if config.token is None:
        return
    problem = secret_problem(config)
    if problem is not None or config.webhook_secret is None:
        log.error(
            "Telegram: %s; %s is not started rather than accept updates from anyone",
            problem,
            WEBHOOK_PATH,
        )
        return
    expected = config.webhook_secret.get_secret_value().encode()
    app[TELEGRAM] = TelegramBot(config)

    async def webhook(request: web.Request) -> web.Response:
        return await _receive(request, expected)

    app.router.add_post(WEBHOOK_PATH, webhook)
    # Appended after the services context, so it starts after it and stops before it: the
    # updates still queued at shutdown are answered while the database is open.
    app.cleanup_ctx.append(_lifecycle)
