"""A small fake of the Telegram Bot API, served by aiohttp on 127.0.0.1 with a random port.

Real python-telegram-bot talks HTTP to it exactly as it would to api.telegram.org: requests go
to ``/bot<token>/<method>``, form-encoded (what PTB sends) or JSON; answers use the Bot API
envelope with the real HTTP status, because PTB picks its exception from the status and not
from ``ok``. The fake records every call, checks ``sendMessage`` the way Telegram does (HTML
that Telegram cannot parse, a text over 4096 characters or callback data over 64 bytes is a
400), and can be told to refuse chats (403, the user blocked the bot; 400, chat not found), to
throttle (429 with ``retry_after``) or to fail (5xx). Optionally it enforces a global rate
limit on sendMessage the way Telegram does for broadcasts (``rate_limit``: more than that many
calls in any sliding second → 429 with ``retry_after`` 1) and answers after an artificial
``latency``. The update builders at the end produce real update shapes (see the reference's
JSON samples).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER: dict[str, Any] = {
    "id": 7000000001,
    "is_bot": True,
    "first_name": "Trợ lý CCHC",
    "username": "cchc_test_bot",
}
# PTB sends every non-string parameter JSON-encoded inside the form.
_JSON_PARAMS = frozenset(
    {"reply_markup", "allowed_updates", "commands", "link_preview_options", "scope", "entities"}
)
_INT_PARAMS = frozenset({"offset", "limit", "timeout", "max_connections"})
_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "span",
        "tg-spoiler",
        "blockquote",
        "tg-emoji",
    }
)
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
MAX_LONG_POLL = 2.0
# The window of the global rate limit and the pause the 429 asks for (§3.1: ~30 per second).
RATE_WINDOW_SECONDS = 1.0
RATE_RETRY_AFTER = 1
# Where sendMessage leaves the id it gave, for the call record.
_MESSAGE_ID = web.ResponseKey("message_id", int)


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any]
    status: int
    # The id of the message an accepted sendMessage created.
    message_id: int | None = None


class _TelegramHtml(HTMLParser):
    """Telegram's HTML parse mode: a few tags, properly nested, four named entities."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.visible: list[str] = []
        self.error: str | None = None

    def _fail(self, message: str) -> None:
        self.error = self.error or message

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self._fail(f'Unsupported start tag "{tag}"')
        if tag == "a" and not dict(attrs).get("href"):
            self._fail("Can't find href of the link")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self._fail(f'Unmatched end tag "{tag}"')
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if "<" in data:
            self._fail("Unexpected '<'")
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in _ENTITIES:
            self._fail(f'Unsupported HTML entity "&{name};"')
        self.visible.append(_ENTITIES.get(name, ""))

    def handle_charref(self, name: str) -> None:
        number = int(name[1:], 16) if name[:1] in "xX" else int(name)
        self.visible.append(chr(number))

    def handle_comment(self, data: str) -> None:
        self._fail("Unsupported comment")

    def handle_decl(self, decl: str) -> None:
        self._fail("Unsupported declaration")


def parse_html(text: str) -> tuple[str | None, str]:
    """(the error Telegram would give or None, the text the citizen sees)."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.stack and parser.error is None:
        parser.error = f'Can\'t find end tag corresponding to start tag "{parser.stack[-1]}"'
    return parser.error, "".join(parser.visible)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _ok(result: Any, description: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return web.json_response(body)


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


class FakeTelegram:
    """The fake server. Use ``async with FakeTelegram(token) as api`` and point the bot at
    ``api.url`` (the API root: PTB's base_url is ``f"{api.url}/bot"``).

    ``rate_limit``: at most that many sendMessage calls are accepted in any sliding second,
    the others get 429 with ``retry_after`` 1 (counted in ``rejected_429``); None: no limit.
    ``latency``: seconds every API call waits before it is answered (after the rate check,
    which happens on arrival, as on a real server)."""

    def __init__(self, token: str, *, rate_limit: int | None = None, latency: float = 0.0) -> None:
        self.token = token
        self.rate_limit = rate_limit
        self.latency = latency
        self.rejected_429 = 0
        self.calls: list[Call] = []
        self.blocked: set[str] = set()
        self.unknown: set[str] = set()
        self._admitted: deque[float] = deque()
        self.webhook: dict[str, Any] = {"url": ""}
        self._pending_updates: list[dict[str, Any]] = []
        self._throttle: dict[str, list[int]] = {}
        self._failures: dict[str, list[int]] = {}
        self._message_ids = itertools.count(100)
        self._changed: asyncio.Condition | None = None
        self._closing = False
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegram:
        self._changed = asyncio.Condition()
        await self._server.start_server()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        # Wake long polls first so the server can close without waiting for them.
        self._closing = True
        await self._notify()
        await self._server.close()

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    # --- controls ----------------------------------------------------------------------

    def block(self, chat_id: int | str) -> None:
        """sendMessage to this chat answers 403, as when the citizen blocked the bot."""
        self.blocked.add(str(chat_id))

    def forget(self, chat_id: int | str) -> None:
        """sendMessage to this chat answers 400 "chat not found" (no such chat for the bot)."""
        self.unknown.add(str(chat_id))

    def throttle(self, calls: int, retry_after: int, method: str = "sendMessage") -> None:
        """The next ``calls`` calls of ``method`` answer 429 with ``retry_after``."""
        self._throttle[method] = [calls, retry_after]

    def fail(self, method: str, calls: int, status: int = 502) -> None:
        """The next ``calls`` calls of ``method`` fail with ``status``."""
        self._failures[method] = [calls, status]

    async def queue_update(self, update: dict[str, Any]) -> None:
        """Make ``update`` available to getUpdates (long polling)."""
        self._pending_updates.append(update)
        await self._notify()

    # --- inspection --------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """The parameters of every sendMessage Telegram accepted, in order."""
        return [
            c.params
            for c in self.calls_of("sendMessage")
            if c.status == 200 and (chat_id is None or c.params.get("chat_id") == str(chat_id))
        ]

    def message_ids(self, chat_id: int | str | None = None) -> list[int]:
        """The message ids the fake gave the accepted sendMessage calls, in order."""
        return [
            c.message_id
            for c in self.calls_of("sendMessage")
            if c.message_id is not None
            and (chat_id is None or c.params.get("chat_id") == str(chat_id))
        ]

    def answered(self) -> list[dict[str, Any]]:
        return [c.params for c in self.calls_of("answerCallbackQuery") if c.status == 200]

    async def wait_for(self, predicate: Callable[[], bool], seconds: float = 10.0) -> None:
        """Wait until ``predicate()`` holds, re-checked on every call the fake receives."""
        assert self._changed is not None, "use the fake as an async context manager"
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), seconds)

    async def wait_sent(
        self, count: int, chat_id: int | str | None = None, seconds: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until at least ``count`` messages went to ``chat_id``; return them all."""
        await self.wait_for(lambda: len(self.sent(chat_id)) >= count, seconds)
        return self.sent(chat_id)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    # --- the API -----------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key, value in list(params.items()):
            if key in _JSON_PARAMS and isinstance(value, str):
                params[key] = json.loads(value)
            elif key in _INT_PARAMS and isinstance(value, str):
                params[key] = int(value)
            elif key == "chat_id":
                params[key] = str(value)
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            response = _error(401, "Unauthorized")
            params: dict[str, Any] = {}
        else:
            params = await self._params(request)
            limited = method == "sendMessage" and self._over_rate_limit()
            if self.latency:
                await asyncio.sleep(self.latency)
            if limited:
                self.rejected_429 += 1
                response = _error(
                    429,
                    f"Too Many Requests: retry after {RATE_RETRY_AFTER}",
                    retry_after=RATE_RETRY_AFTER,
                )
            else:
                response = await self._answer(method, params)
        self.calls.append(Call(method, params, response.status, response.get(_MESSAGE_ID)))
        await self._notify()
        return response

    def _over_rate_limit(self) -> bool:
        """Telegram's broadcast limit: a call over ``rate_limit`` in the last second is
        refused; only the calls let through count."""
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        while self._admitted and now - self._admitted[0] >= RATE_WINDOW_SECONDS:
            self._admitted.popleft()
        if len(self._admitted) >= self.rate_limit:
            return True
        self._admitted.append(now)
        return False

    def _take(self, table: dict[str, list[int]], method: str) -> int | None:
        entry = table.get(method)
        if not entry or entry[0] <= 0:
            return None
        entry[0] -= 1
        return entry[1]

    async def _answer(self, method: str, params: dict[str, Any]) -> web.Response:
        status = self._take(self._failures, method)
        if status is not None:
            return _error(status, "Bad Gateway" if status == 502 else "Internal Server Error")
        retry_after = self._take(self._throttle, method)
        if retry_after is not None:
            return _error(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        response: web.Response = await handler(params)
        return response

    async def _api_getMe(self, _params: dict[str, Any]) -> web.Response:
        return _ok(
            {
                **BOT_USER,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _api_setMyCommands(self, params: dict[str, Any]) -> web.Response:
        if not params.get("commands"):
            return _error(400, 'Bad Request: parameter "commands" is required')
        return _ok(True)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old and response timeout expired")
        return _ok(True)

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        text = params.get("text", "")
        if not chat_id:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.unknown:
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        preview = params.get("link_preview_options")
        if preview is not None and not isinstance(preview, dict):
            return _error(400, "Bad Request: can't parse link preview options JSON object")
        visible = text
        if params.get("parse_mode") == "HTML":
            problem, visible = parse_html(text)
            if problem:
                return _error(400, f"Bad Request: can't parse entities: {problem}")
        if not visible.strip():
            return _error(400, "Bad Request: message text is empty")
        if _utf16_len(visible) > MAX_TEXT:
            return _error(400, "Bad Request: message is too long")
        markup = params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA:
                    return _error(400, "Bad Request: BUTTON_DATA_INVALID")
        message_id = next(self._message_ids)  # increasing, as in a real chat
        response = _ok(
            {
                "message_id": message_id,
                "from": BOT_USER,
                "chat": {"id": int(chat_id), "first_name": "Công dân", "type": "private"},
                "date": int(time.time()),
                "text": visible,
            }
        )
        response[_MESSAGE_ID] = message_id
        return response

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        url = params.get("url", "")
        if url and not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            return _error(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "allowed_updates": params.get("allowed_updates"),
            "drop_pending_updates": params.get("drop_pending_updates"),
        }
        return _ok(True, "Webhook was set")

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        was_set = bool(self.webhook.get("url"))
        self.webhook = {"url": ""}
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._pending_updates.clear()
        return _ok(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _api_getWebhookInfo(self, _params: dict[str, Any]) -> web.Response:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending_updates),
        }
        if info["url"]:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
            if self.webhook.get("allowed_updates"):
                info["allowed_updates"] = self.webhook["allowed_updates"]
        return _ok(info)

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook.get("url"):
            return _error(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        # Asking from ``offset`` confirms every earlier update, as on the real server.
        self._pending_updates = [u for u in self._pending_updates if u["update_id"] >= offset]
        wait = min(float(params.get("timeout") or 0), MAX_LONG_POLL)
        if not self._pending_updates and wait > 0 and not self._closing:
            assert self._changed is not None
            try:
                async with self._changed:
                    await asyncio.wait_for(
                        self._changed.wait_for(
                            lambda: bool(self._pending_updates) or self._closing
                        ),
                        wait,
                    )
            except TimeoutError:
                pass
        limit = int(params.get("limit") or 100)
        return _ok(self._pending_updates[:limit])


# --- real-shaped updates ---------------------------------------------------------------


def _user(user_id: int, first_name: str, last_name: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "language_code": "vi",
    }
    if last_name:
        user["last_name"] = last_name
    return user


def _private_chat(chat_id: int, first_name: str, last_name: str | None) -> dict[str, Any]:
    chat: dict[str, Any] = {"id": chat_id, "first_name": first_name, "type": "private"}
    if last_name:
        chat["last_name"] = last_name
    return chat


def message_update(
    update_id: int,
    chat_id: int,
    text: str,
    *,
    first_name: str = "Lan",
    last_name: str | None = "Nguyễn",
) -> dict[str, Any]:
    """A text message in a private chat; a command carries its ``bot_command`` entity."""
    message: dict[str, Any] = {
        "message_id": update_id % 100_000,
        "from": _user(chat_id, first_name, last_name),
        "chat": _private_chat(chat_id, first_name, last_name),
        "date": int(time.time()),
        "text": text,
    }
    if text.startswith("/"):
        length = len(text.split(" ", 1)[0].encode("utf-16-le")) // 2
        message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def callback_update(
    update_id: int, chat_id: int, data: str, *, first_name: str = "Lan"
) -> dict[str, Any]:
    """A press on an inline-keyboard button under one of the bot's messages."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"{chat_id}{update_id}",
            "from": _user(chat_id, first_name, None),
            "message": {
                "message_id": 60,
                "from": BOT_USER,
                "chat": _private_chat(chat_id, first_name, None),
                "date": int(time.time()) - 60,
                "text": "Mời bạn chọn chủ đề:",
                "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": data}]]},
            },
            "chat_instance": "-2291384178539442901",
            "data": data,
        },
    }


def member_update(update_id: int, chat_id: int, old: str, new: str) -> dict[str, Any]:
    """``my_chat_member``: "member" → "kicked" when the citizen blocks the bot."""
    bot = {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")}

    def member(status: str) -> dict[str, Any]:
        # A "kicked" member always carries until_date (0: for ever).
        return {"user": bot, "status": status, **({"until_date": 0} if status == "kicked" else {})}

    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": _private_chat(chat_id, "Lan", None),
            "from": _user(chat_id, "Lan", None),
            "date": int(time.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        },
    }
