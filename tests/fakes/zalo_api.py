"""A fake Zalo OA API on 127.0.0.1: the message endpoint and the OAuth token endpoint, with the
shapes of /work/shared/reference/zalo-oa.md (§3.2 bodies, §3.4 success, §3.6 errors with
HTTP 200, §5 tokens with a string ``expires_in`` and single-use refresh tokens).

Use as an async context manager; ``url`` is the base for both ``api_url`` and ``oauth_url``.
Optional: a rate limit on the message endpoint (§4: more than ``rate_limit`` calls in any
sliding ``rate_window`` seconds → -32 with HTTP 200), an artificial ``latency``, and HTTP
failures (``fail_http``). Every accepted message gets a ``message_id`` (§3.4), recorded too.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

# §3.6, official wording.
ERROR_MESSAGES = {
    -32: "Your OA reached limit call api",
    -201: "message is invalid!",
    -213: "User has not followed OA",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -227: "User is banned or has been inactive for more than 45 days",
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted with the OA, or the last interaction has expired",
    -233: "message type is invalid or not support",
}
RATE_LIMITED = -32
BUTTON_TYPES = frozenset({"oa.query.show", "oa.open.url", "oa.open.phone"})
MEDIA_TYPES = frozenset({"image", "gif", "sticker"})


@dataclass
class SentMessage:
    """One message the fake accepted."""

    user_id: str
    text: str
    attachment: dict[str, Any] | None
    access_token: str
    message_id: str = ""

    @property
    def buttons(self) -> list[dict[str, Any]]:
        if not self.attachment:
            return []
        return list(self.attachment.get("payload", {}).get("buttons", []))

    @property
    def media(self) -> list[dict[str, Any]]:
        """The elements of a media template (§3.2), if the message is one."""
        payload = (self.attachment or {}).get("payload", {})
        if payload.get("template_type") != "media":
            return []
        return list(payload.get("elements", []))


@dataclass
class Attempt:
    """Every call to the message endpoint, accepted or not: (user, token, error code — or
    the HTTP status of a failure injected with ``fail_http``)."""

    user_id: str
    access_token: str
    error: int


@dataclass
class FakeZalo:
    app_id: str
    app_secret: str
    access_token: str = field(default_factory=lambda: "at-" + secrets.token_urlsafe(24))
    refresh_token: str = field(default_factory=lambda: "rt-" + secrets.token_urlsafe(36))
    # Seconds the refresh endpoint waits before answering, so concurrent refreshes overlap.
    refresh_delay: float = 0.0
    # Refuse the button template as invalid (§3.2 [?]: untested on a real OA).
    reject_templates: bool = False
    # §4: at most this many message calls in any sliding ``rate_window`` seconds; the others
    # get -32 (counted in ``rejected_32``). None: no limit.
    rate_limit: int | None = None
    rate_window: float = 60.0
    # Seconds each message call waits before it is answered (after the rate check).
    latency: float = 0.0
    rejected_32: int = 0

    sent: list[SentMessage] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    # The refresh tokens presented to /v4/oa/access_token, in order.
    refresh_calls: list[str] = field(default_factory=list)
    # Requests Zalo would refuse (bad shape, text over 2,000 characters…); tests assert none.
    problems: list[str] = field(default_factory=list)
    _expired: set[str] = field(default_factory=set)
    _used_refresh: set[str] = field(default_factory=set)
    _failures: dict[str, list[int]] = field(default_factory=dict)
    _always: dict[str, int] = field(default_factory=dict)
    _http_failures: list[int] = field(default_factory=list)
    _admitted: deque[float] = field(default_factory=deque)
    _hold: asyncio.Event | None = None
    _changed: asyncio.Condition | None = None
    _server: TestServer | None = None

    async def __aenter__(self) -> FakeZalo:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._message)
        app.router.add_post("/v4/oa/access_token", self._token)
        self._changed = asyncio.Condition()
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.release()
        assert self._server is not None
        await self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    # --- what tests tell the fake ---------------------------------------------------------

    def fail(self, user_id: str, code: int, *, times: int | None = None) -> None:
        """Answer ``code`` to messages for ``user_id``: ``times`` times, or always."""
        if times is None:
            self._always[user_id] = code
        else:
            self._failures.setdefault(user_id, []).extend([code] * times)

    def fail_http(self, status: int = 502, *, times: int = 1) -> None:
        """The next ``times`` message calls answer HTTP ``status`` (a 5xx: Zalo is down)."""
        self._http_failures.extend([status] * times)

    def expire_access_token(self) -> None:
        """The current access token is now expired (-220); a refresh gets a new one."""
        self._expired.add(self.access_token)
        self.access_token = "at-" + secrets.token_urlsafe(24)

    def invalidate_access_token(self) -> None:
        """The current access token is now unknown (-216), as after a revocation."""
        self.access_token = "at-" + secrets.token_urlsafe(24)

    def spend_refresh_token(self) -> None:
        """The current refresh token was used elsewhere: refreshing with it fails (-14014)."""
        self._used_refresh.add(self.refresh_token)
        self.refresh_token = "rt-" + secrets.token_urlsafe(36)

    def hold(self) -> None:
        """Keep message requests waiting (after recording their attempt) until release()."""
        self._hold = asyncio.Event()

    def release(self) -> None:
        if self._hold is not None:
            self._hold.set()

    async def wait_for(
        self, count: int, *, user_id: str | None = None, within: float = 10.0
    ) -> list[SentMessage]:
        """The messages sent (to ``user_id``) once there are at least ``count``; fails after
        ``within`` seconds."""
        assert self._changed is not None

        def mine() -> list[SentMessage]:
            return [m for m in self.sent if user_id is None or m.user_id == user_id]

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(mine()) >= count)
        return mine()

    async def wait_for_attempts(self, count: int, *, within: float = 10.0) -> None:
        assert self._changed is not None
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.attempts) >= count)

    async def wait_for_refreshes(self, count: int, *, within: float = 10.0) -> None:
        assert self._changed is not None
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.refresh_calls) >= count)

    def to(self, user_id: str) -> list[SentMessage]:
        return [m for m in self.sent if m.user_id == user_id]

    # --- the endpoints --------------------------------------------------------------------

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _message(self, request: web.Request) -> web.Response:
        token = request.headers.get("access_token", "")
        body = await request.json()
        if request.content_type != "application/json":
            self.problems.append(f"content type {request.content_type}")
        user_id = str(body["recipient"]["user_id"])
        message = body["message"]
        http_status = self._http_failures.pop(0) if self._http_failures else None
        limited = http_status is None and self._over_rate_limit()
        code = RATE_LIMITED if limited else self._error_for(token, user_id, message)
        if limited:
            self.rejected_32 += 1
        self.attempts.append(Attempt(user_id, token, http_status or code))
        await self._notify()
        if self.latency:
            await asyncio.sleep(self.latency)
        if self._hold is not None:
            await self._hold.wait()
        if http_status is not None:
            return web.Response(status=http_status, text="Bad Gateway")
        if code:
            return web.json_response({"error": code, "message": ERROR_MESSAGES.get(code, "")})
        text = message.get("text", "")
        problem = self._shape_problem(message)
        if problem:
            self.problems.append(problem)
            return web.json_response({"error": -201, "message": "message is invalid!"})
        for button in (message.get("attachment") or {}).get("payload", {}).get("buttons", []):
            if button.get("type") not in BUTTON_TYPES:
                self.problems.append(f"button type {button.get('type')!r}")
        message_id = secrets.token_hex(10)
        self.sent.append(SentMessage(user_id, text, message.get("attachment"), token, message_id))
        await self._notify()
        # §3.4, the documented success answer.
        return web.json_response(
            {
                "data": {
                    "quota": {"quota_type": "reply", "remain": "8", "total": "8"},
                    "message_id": message_id,
                    "user_id": user_id,
                    "sent_time": str(int(time.time() * 1000)),
                },
                "error": 0,
                "message": "Success",
            }
        )

    def _shape_problem(self, message: dict[str, Any]) -> str | None:
        """Why Zalo would refuse the message's shape (§3.2), or None. A text holds 1 to
        2,000 characters; only a media template may come without one."""
        text = message.get("text", "")
        attachment = message.get("attachment") or {}
        payload = attachment.get("payload", {}) if isinstance(attachment, dict) else {}
        media = payload.get("template_type") == "media"
        if not isinstance(text, str) or len(text) > 2000 or not (text or media):
            return f"text of {len(text)} characters"
        if media:
            elements = payload.get("elements") or []
            if len(elements) != 1:
                return f"media template with {len(elements)} elements"
            element = elements[0]
            if element.get("media_type") not in MEDIA_TYPES:
                return f"media type {element.get('media_type')!r}"
            if not (element.get("url") or element.get("attachment_id")):
                return "media element without url or attachment_id"
            if "buttons" in payload:
                return "buttons in a media template"
        return None

    def _over_rate_limit(self) -> bool:
        """-32 for a call over ``rate_limit`` in the last ``rate_window`` seconds; only the
        calls let through count."""
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        while self._admitted and now - self._admitted[0] >= self.rate_window:
            self._admitted.popleft()
        if len(self._admitted) >= self.rate_limit:
            return True
        self._admitted.append(now)
        return False

    def _error_for(self, token: str, user_id: str, message: dict[str, Any]) -> int:
        if token in self._expired:
            return -220
        if not token or token != self.access_token:
            return -216
        if self.reject_templates and "attachment" in message:
            return -201
        if user_id in self._always:
            return self._always[user_id]
        queued = self._failures.get(user_id)
        if queued:
            return queued.pop(0)
        return 0

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        refresh_token = str(form.get("refresh_token", ""))
        self.refresh_calls.append(refresh_token)
        await self._notify()
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if request.headers.get("secret_key") != self.app_secret:
            return web.json_response({"error": -14001, "error_name": "Invalid secret key"})
        if form.get("app_id") != self.app_id:
            return web.json_response({"error": -14002, "error_name": "Invalid appId"})
        if form.get("grant_type") != "refresh_token" or refresh_token != self.refresh_token:
            # §3.6: the answer to a used or unknown refresh token.
            return web.json_response({"error": -14014, "error_name": "Invalid refresh token"})
        self._used_refresh.add(refresh_token)
        self.access_token = "at-" + secrets.token_urlsafe(24)
        self.refresh_token = "rt-" + secrets.token_urlsafe(36)
        # §5: expires_in is a string.
        return web.json_response(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_in": "90000",
            }
        )
