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

import asyncio
import contextlib
import functools
import hmac
import html
import inspect
import itertools
import json
import logging
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackContext,
    TypeHandler,
)
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram_http import AiohttpRequest
from bot.console import plain
from bot.messages import Button, Inbound, Reply
from bot.settings import Settings, TelegramSettings
from bot.web.keys import SERVICES
from storage.subscribers import BLOCKED

if TYPE_CHECKING:
    from bot.services import Services
    from storage.subscribers import SubscriberRepository

log = logging.getLogger(__name__)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhook/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
# Updates are small (a message is at most 4096 characters); 1 MiB leaves room for any update
# type while refusing floods. The app's client_max_size (64 KiB) only applies to
# ``request.read()``, which this route does not use: it reads with its own limit.
MAX_UPDATE_BYTES = 1024 * 1024
# Telegram's limits: message text after entity parsing, and callback_data in UTF-8 bytes.
MAX_MESSAGE_CHARS = 4096
MAX_CALLBACK_BYTES = 64
# What the bot needs: messages, button presses, and my_chat_member (the citizen blocked it).
ALLOWED_UPDATES = ("message", "callback_query", "my_chat_member")
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
# Same as the web chat: an answer is matched on far less, and the logs keep 1,000 characters.
MAX_TEXT_CHARS = 10_000
# Stands for a photo, sticker, voice message…: the handlers answer it like any input without
# letters ("I can only read text"), and the conversation log shows what happened.
OBJECT_PLACEHOLDER = "\ufffc"
# Sent when the handlers themselves fail, so the citizen is not left without an answer.
APOLOGY = "Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau."
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

PtbApplication = Application[Any, Any, Any, Any, Any, Any]


# --- errors ------------------------------------------------------------------------------


class DeliveryError(Exception):
    """A message could not be delivered. ``permanent``: retrying will not help (blocked,
    chat gone, message refused); otherwise retry, after ``retry_after`` seconds if given."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


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


# --- rendering ---------------------------------------------------------------------------

_LINK = re.compile(r"\[([^\]\n]+)\]\((https://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^(\s*)- ")


_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


def _bold(escaped: str) -> str:
    return _BOLD.sub(r"<b>\1</b>", escaped)


def _inline(line: str) -> str:
    """One line: everything escaped first, then links, then bold. Each link is set aside as
    an atomic placeholder while bold is applied, so bold may wrap a whole link but never
    straddle one: the tags always nest properly."""
    # NUL is not valid in a Telegram message anyway; dropping it frees it for placeholders.
    escaped = html.escape(line.replace("\x00", ""), quote=True)
    links: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        # The URL was escaped with the rest (& → &amp;, " → &quot;): exactly what an
        # attribute value needs, and no quote can end the attribute early.
        links.append(f'<a href="{match.group(2)}">{_bold(match.group(1))}</a>')
        return f"\x00{len(links) - 1}\x00"

    formatted = _bold(_LINK.sub(set_aside, escaped))
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], formatted)


def to_html(text: str) -> str:
    """Markdown-lite as Telegram HTML: ``- `` bullets as "• ", ``**bold**``, ``[label](url)``.
    Bare URLs stay text (Telegram links them itself)."""
    lines = []
    for line in text.split("\n"):
        bullet = _BULLET.match(line)
        if bullet:
            lines.append(f"{bullet.group(1)}• {_inline(line[bullet.end() :])}")
        else:
            lines.append(_inline(line))
    return "\n".join(lines)


def _size(text: str) -> int:
    """Length of the rendered HTML in UTF-16 units: never less than what Telegram counts
    (the text after entity parsing), so a part that fits here fits there."""
    return len(to_html(text).encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """Cut markdown-lite ``text`` into parts that each render within ``limit``: at paragraph
    boundaries, and only inside a paragraph too long on its own at lines, then words, then
    anywhere. Each part is rendered on its own, so the HTML of every part is well-formed."""
    parts = [part for part in _split(text, limit, ("\n\n", "\n", " ")) if part.strip()]
    return parts or [text]


def _split(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if _size(text) <= limit:
        return [text]
    if not separators:
        # One "word" longer than a message: cut it. Escaping grows a character to at most 6
        # ("&quot;"), so chunks of limit // 6 always fit.
        step = max(1, limit // 6)
        return [text[i : i + step] for i in range(0, len(text), step)]
    separator, finer = separators[0], separators[1:]
    out: list[str] = []
    current: str | None = None
    for piece in text.split(separator):
        for small in _split(piece, limit, finer):
            if current is None:
                current = small
            elif _size(current + separator + small) <= limit:
                current += separator + small
            else:
                out.append(current)
                current = small
    if current is not None:
        out.append(current)
    return out


def keyboard(buttons: Iterable[Button]) -> InlineKeyboardMarkup | None:
    """One button per row (titles are whole questions). A payload Telegram would refuse
    (callback_data is 1–64 bytes) drops that button rather than the whole message."""
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        if button.payload is not None:
            size = len(button.payload.encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_BYTES:
                log.warning(
                    "button %r dropped: its payload is %d bytes, Telegram allows 1–%d",
                    button.title,
                    size,
                    MAX_CALLBACK_BYTES,
                )
                continue
            rows.append([InlineKeyboardButton(button.title, callback_data=button.payload)])
        elif button.url is not None and button.url.startswith(("https://", "http://", "tg://")):
            rows.append([InlineKeyboardButton(button.title, url=button.url)])
        else:
            log.warning("button %r dropped: Telegram cannot open its URL", button.title)
    return InlineKeyboardMarkup(rows) if rows else None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One Telegram message: its markdown-lite source, the HTML sent, and the keyboard."""

    source: str
    html: str
    markup: InlineKeyboardMarkup | None


def render(reply: Reply) -> list[Outgoing]:
    """A reply as Telegram messages: split when too long, the buttons under the last part."""
    return list(_render(reply))


# The same answers go out again and again; rendering one was a tenth of a reply's cost.
@functools.lru_cache(maxsize=2048)
def _render(reply: Reply) -> tuple[Outgoing, ...]:
    parts = split_text(reply.text) if reply.text.strip() else ["…"]
    markup = keyboard(reply.buttons)
    return tuple(
        Outgoing(part, to_html(part), markup if i == len(parts) - 1 else None)
        for i, part in enumerate(parts)
    )


# --- sending -----------------------------------------------------------------------------


def _seconds(exc: RetryAfter) -> float:
    # The attribute is an int with a deprecation warning, or a timedelta when PTB_TIMEDELTA
    # is set; read it either way without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class TelegramChannel:
    """Sends neutral replies to a chat. Used for answers and, later, for broadcasts."""

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
                # The Bot API's own request path (errors become the usual TelegramError
                # subclasses), without turning every answer into a Message object: that
                # conversion was a tenth of the cost of a reply under load.
                await self._bot.request.post(
                    f"{self._bot.base_url}/sendMessage",
                    request_data=RequestData(
                        parameters=[RequestParameter.from_input(k, v) for k, v in params.items()]
                    ),
                )
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

    async def _classify(self, chat_id: str, exc: TelegramError) -> DeliveryError:
        reason = _redact(exc.message, self._token)
        # Order matters: BadRequest and TimedOut are NetworkErrors.
        if isinstance(exc, Forbidden):
            await self._mark_blocked(chat_id)
            return DeliveryError(reason, permanent=True)
        if isinstance(exc, RetryAfter):
            return DeliveryError(reason, permanent=False, retry_after=_seconds(exc))
        if isinstance(exc, ChatMigrated | BadRequest):
            return DeliveryError(reason, permanent=True)
        if isinstance(exc, NetworkError | InvalidToken):
            return DeliveryError(reason, permanent=False)
        return DeliveryError(f"{type(exc).__name__}: {reason}", permanent=False)

    async def _mark_blocked(self, chat_id: str) -> None:
        try:
            await self._subscribers.set_status(
                CHANNEL, chat_id, BLOCKED, source="telegram:send_forbidden"
            )
        except Exception:
            log.exception("could not mark a Telegram chat as blocked")


# --- updates → Inbound -------------------------------------------------------------------


def _display_name(user: User | None) -> str | None:
    if user is None:
        return None
    return " ".join(p for p in (user.first_name, user.last_name) if p) or None


def _clean(text: str) -> str:
    return _CONTROL_RE.sub(" ", text)[:MAX_TEXT_CHARS]


def inbound_from_message(message: Message) -> Inbound | None:
    """A citizen's message in a private chat; commands stay text ("/start" …)."""
    if message.chat.type != ChatType.PRIVATE:
        return None
    text = message.text if message.text is not None else message.caption
    if text is None:
        if message.effective_attachment is None:
            return None  # a service message, nothing the citizen said
        text = OBJECT_PLACEHOLDER
    return Inbound(
        CHANNEL,
        str(message.chat.id),
        text=_clean(text),
        display_name=_display_name(message.from_user),
        raw=message,
    )


def inbound_from_callback(query: CallbackQuery) -> Inbound | None:
    """A button press under one of our messages in a private chat."""
    chat = query.message.chat if query.message is not None else None
    if chat is None or chat.type != ChatType.PRIVATE or not query.data:
        return None
    return Inbound(
        CHANNEL,
        str(chat.id),
        payload=query.data,
        display_name=_display_name(query.from_user),
        raw=query,
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


# --- the running bot ---------------------------------------------------------------------


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
        root = _api_root(self.config)
        builder = (
            Application.builder()
            .token(self.token)
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            .concurrent_updates(_PerChatProcessor(MAX_CONCURRENT_UPDATES))
            .request(AiohttpRequest(connections=MAX_CONCURRENT_UPDATES))
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


# --- the webhook route -------------------------------------------------------------------

TELEGRAM = web.AppKey("telegram", TelegramBot)


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


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    bot = app[TELEGRAM]
    await bot.launch(app[SERVICES])
    try:
        yield
    finally:
        await bot.close()


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to exceed ``limit`` (nothing more is read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


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
    body = await _read_limited(request, MAX_UPDATE_BYTES)
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


# --- `bot telegram …` commands -----------------------------------------------------------


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
