"""The running bot: one python-telegram-bot Application per process, started (and retried)
and stopped with the web app, processing updates one chat at a time and answering them
through the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from telegram import Bot, BotCommand, CallbackQuery, ChatMemberUpdated, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackContext,
    TypeHandler,
)

from bot.channels.delivery import DeliveryError
from bot.channels.telegram.client import TelegramChannel
from bot.channels.telegram.config import (
    CHANNEL,
    WEBHOOK_PATH,
    _api_root,
    _describe,
    _token,
    _TokenRedactor,
)
from bot.channels.telegram.http import AiohttpRequest
from bot.channels.telegram.inbound import inbound_from_callback, inbound_from_message
from bot.messages import Reply
from bot.settings import TelegramSettings
from storage.subscribers import BLOCKED

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

# The command menu Telegram shows next to the input field (the dispatcher knows each one).
COMMANDS = (
    ("start", "Bắt đầu, giới thiệu"),
    ("help", "Hướng dẫn sử dụng"),
    ("chude", "Chủ đề hỏi đáp"),
    ("subscribe", "Đăng ký nhận tin"),
    ("unsubscribe", "Ngừng nhận tin"),
    ("gopy", "Góp ý, phản ánh"),
)
# Updates processed at once (one at a time per chat, see _PerChatProcessor).
MAX_CONCURRENT_UPDATES = 64
# When answering a citizen, wait out a short flood-control pause instead of dropping the answer.
REPLY_MAX_WAIT_SECONDS = 10.0
# Delays between attempts to reach Telegram when it was unreachable at start-up.
START_RETRY_DELAYS: tuple[float, ...] = (5.0, 15.0, 60.0, 300.0)
# Sent when the handlers themselves fail, so the citizen is not left without an answer.
APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau."

PtbApplication = Application[Any, Any, Any, Any, Any, Any]


def api_urls(config: TelegramSettings) -> tuple[str, str]:
    """PTB's ``base_url`` and ``base_file_url`` for the configured Bot API root."""
    root = _api_root(config)
    return f"{root}/bot", f"{root}/file/bot"


def bot_request(connections: int = MAX_CONCURRENT_UPDATES) -> AiohttpRequest:
    """The HTTP client (aiohttp, default timeouts) of every Bot API call but getUpdates."""
    return AiohttpRequest(connections=connections)


def make_bot(config: TelegramSettings, *, connections: int = MAX_CONCURRENT_UPDATES) -> Bot:
    """A bare Bot on the same plumbing as the Application's (for senders that run without
    one, e.g. broadcasts). Its HTTP client is started with ``bot.request.initialize()``, so
    nothing is asked of Telegram (no getMe) until a message is sent."""
    base_url, base_file_url = api_urls(config)
    return Bot(
        _token(config),
        base_url=base_url,
        base_file_url=base_file_url,
        request=bot_request(connections),
        # Never used nor initialized; given so PTB does not build its httpx client.
        get_updates_request=AiohttpRequest(connections=1),
    )


class _PerChatProcessor(BaseUpdateProcessor):
    """Several updates at once, but one at a time per chat and in arrival order, so a
    citizen who sends two questions quickly gets the answers in that order. (The fetcher
    starts the tasks in queue order and both the semaphore and the locks are FIFO.)"""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self._chats: dict[int, tuple[asyncio.Lock, int]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        lock, users = self._chats.get(chat.id, (asyncio.Lock(), 0))
        self._chats[chat.id] = (lock, users + 1)
        started = False
        try:
            async with lock:
                started = True
                await coroutine
        finally:
            if not started and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting: never leave it un-awaited
            lock, users = self._chats[chat.id]
            if users <= 1:
                del self._chats[chat.id]
            else:
                self._chats[chat.id] = (lock, users - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


class TelegramBot:
    """One PTB Application per process, with the services it answers from.

    ``launch`` starts it for the webhook and keeps retrying in the background when Telegram
    cannot be reached at start-up (the webhook answers 503 meanwhile, so Telegram keeps the
    updates and redelivers them); ``close`` stops everything it started.
    """

    def __init__(self, config: TelegramSettings) -> None:
        self.config = config
        self.token = _token(config)
        self.ready = False
        self.application: PtbApplication | None = None
        self._channel: TelegramChannel | None = None
        self._services: Services | None = None
        self._retry: asyncio.Task[None] | None = None
        self._initialized = False
        self._redactor = _TokenRedactor(self.token)

    @property
    def channel(self) -> TelegramChannel:
        if self._channel is None:
            raise RuntimeError("the Telegram channel is not started")
        return self._channel

    def _build(self, services: Services, *, polling: bool) -> PtbApplication:
        base_url, base_file_url = api_urls(self.config)
        builder = (
            Application.builder()
            .token(self.token)
            .base_url(base_url)
            .base_file_url(base_file_url)
            .concurrent_updates(_PerChatProcessor(MAX_CONCURRENT_UPDATES))
            .request(bot_request())
            # Long polling holds its request open for the whole timeout.
            .get_updates_request(AiohttpRequest(connections=1, read_timeout=60.0))
        )
        if not polling:
            builder = builder.updater(None)  # our aiohttp route feeds the queue
        application: PtbApplication = builder.build()
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        self._services = services
        self._channel = TelegramChannel(application.bot, services.storage.subscribers, self.token)
        return application

    async def open(self, services: Services, *, polling: bool = False) -> None:
        """Build, initialize (getMe) and start the Application, then publish the commands."""
        logging.getLogger("httpx").addFilter(self._redactor)
        self.application = self._build(services, polling=polling)
        try:
            await self.application.initialize()
            self._initialized = True
            await self.application.start()
        except BaseException:
            await self._release()
            raise
        self.ready = True
        try:
            await self.application.bot.set_my_commands(
                [BotCommand(name, description) for name, description in COMMANDS]
            )
        except TelegramError as exc:
            log.warning("Telegram: could not set the command menu: %s", self._text(exc))

    async def launch(self, services: Services) -> None:
        """Start for the webhook; if Telegram is unreachable, retry in the background."""
        if await self._try_open(services):
            return
        self._retry = asyncio.create_task(self._keep_trying(services), name="telegram-start")

    async def _try_open(self, services: Services) -> bool:
        try:
            await self.open(services)
        except TelegramError as exc:
            log.error(
                "Telegram: could not start (%s); %s answers 503 until it does",
                self._text(exc),
                WEBHOOK_PATH,
            )
            return False
        log.info("Telegram channel ready (bot @%s)", self.application_username())
        return True

    async def _keep_trying(self, services: Services) -> None:
        delays = itertools.chain(START_RETRY_DELAYS, itertools.repeat(START_RETRY_DELAYS[-1]))
        for delay in delays:
            await asyncio.sleep(delay)
            if await self._try_open(services):
                return

    def application_username(self) -> str:
        if self.application is None or not self._initialized:
            return "?"
        return str(self.application.bot.username)

    async def _release(self) -> None:
        """Undo whatever ``open`` got to. PTB's ``shutdown`` does nothing for an Application
        whose initialize failed, so the Bot's HTTP clients are closed directly then."""
        self.ready = False
        application = self.application
        if application is not None:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                # Answers what is still queued (200 was already given for it), so the
                # Application and the channel must stay in place until this returns.
                await application.stop()
            if self._initialized:
                await application.shutdown()
            else:
                await application.bot.shutdown()
        self.application = None
        self._channel = None
        self._initialized = False
        logging.getLogger("httpx").removeFilter(self._redactor)

    async def close(self) -> None:
        """Stop retrying, finish the updates already queued, close the HTTP clients."""
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        await self._release()

    def _text(self, exc: BaseException) -> str:
        return _describe(exc, self.token)

    # --- processing -------------------------------------------------------------------

    async def _on_update(
        self, update: Update, _context: CallbackContext[Any, Any, Any, Any]
    ) -> None:
        try:
            await self.handle(update)
        except Exception:
            log.exception("Telegram update %d could not be handled", update.update_id)

    async def _on_error(
        self, _update: object, context: CallbackContext[Any, Any, Any, Any]
    ) -> None:
        # Only reached for errors outside _on_update; logged without the traceback, whose
        # text could carry the token (InvalidToken quotes it).
        if context.error is not None:
            log.error("Telegram: %s", self._text(context.error))

    async def handle(self, update: Update) -> None:
        """Answer one update: a message, a button press or a block; anything else is
        ignored. Each ``update_id`` is handled once, whichever worker receives it."""
        services, channel = self._services, self._channel
        assert services is not None, "open() first"
        assert channel is not None
        member = update.my_chat_member
        if member is not None:
            if _blocked_us(member) and await self._first_time(services, update):
                await services.storage.subscribers.set_status(
                    CHANNEL, str(member.chat.id), BLOCKED, source="telegram:my_chat_member"
                )
            # Unblocking needs nothing here: the citizen's next message restores the record.
            return
        query = update.callback_query
        if query is not None:
            inbound = inbound_from_callback(query)
        elif update.message is not None:
            inbound = inbound_from_message(update.message)
        else:
            return  # edited messages, channel posts…: nothing to answer
        if query is None and inbound is None:
            return  # a group, a service message: nothing to answer either
        if not await self._first_time(services, update):
            return
        if query is not None:
            await self._answer_callback(query)
        if inbound is None:
            return
        try:
            replies = await services.dispatcher.dispatch(inbound)
        except Exception:
            log.exception("Telegram update %d: the handlers failed", update.update_id)
            replies = [Reply(APOLOGY)]
        try:
            await channel.send(inbound.user_id, replies, max_wait=REPLY_MAX_WAIT_SECONDS)
        except DeliveryError as exc:
            level = logging.INFO if exc.permanent else logging.WARNING
            log.log(level, "Telegram: answer to update %d not delivered: %s", update.update_id, exc)

    async def _first_time(self, services: Services, update: Update) -> bool:
        try:
            return await services.storage.updates.first_time(CHANNEL, str(update.update_id))
        except Exception:
            # Without the database we cannot tell; answering twice beats not answering.
            log.exception("could not record Telegram update %d", update.update_id)
            return True

    async def _answer_callback(self, query: CallbackQuery) -> None:
        """Always answer a button press, or the citizen's button keeps spinning."""
        assert self.application is not None
        try:
            await self.application.bot.answer_callback_query(query.id)
        except TelegramError as exc:
            # E.g. "query is too old" after a redelivery: the answer still goes out.
            log.info("Telegram: callback query not answered: %s", self._text(exc))


def _blocked_us(member: ChatMemberUpdated) -> bool:
    return (
        member.chat.type == ChatType.PRIVATE
        and member.new_chat_member.status == ChatMemberStatus.BANNED  # "kicked"
    )
