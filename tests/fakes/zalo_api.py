"""A fake Zalo OA API on 127.0.0.1: the message endpoint and the OAuth token endpoint, with the
shapes of /work/shared/reference/zalo-oa.md (§3.2 bodies, §3.4 success, §3.6 errors with
HTTP 200, §5 tokens with a string ``expires_in`` and single-use refresh tokens).

Use as an async context manager; ``url`` is the base for both ``api_url`` and ``oauth_url``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
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
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted with the OA, or the last interaction has expired",
}


@dataclass
class SentMessage:
    """One message the fake accepted."""

    user_id: str
    text: str
    attachment: dict[str, Any] | None
    access_token: str

    @property
    def buttons(self) -> list[dict[str, Any]]:
        if not self.attachment:
            return []
        return list(self.attachment.get("payload", {}).get("buttons", []))


@dataclass
class Attempt:
    """Every call to the message endpoint, accepted or not: (user, token, error code)."""

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
        code = self._error_for(token, user_id, message)
        self.attempts.append(Attempt(user_id, token, code))
        await self._notify()
        if self._hold is not None:
            await self._hold.wait()
        if code:
            return web.json_response({"error": code, "message": ERROR_MESSAGES.get(code, "")})
        text = message.get("text", "")
        if not isinstance(text, str) or not 0 < len(text) <= 2000:
            self.problems.append(f"text of {len(text)} characters")
            return web.json_response({"error": -201, "message": "text is invalid!"})
        for button in (message.get("attachment") or {}).get("payload", {}).get("buttons", []):
            if button.get("type") not in {"oa.query.show", "oa.open.url", "oa.open.phone"}:
                self.problems.append(f"button type {button.get('type')!r}")
        self.sent.append(SentMessage(user_id, text, message.get("attachment"), token))
        await self._notify()
        # §3.4, the documented success answer.
        return web.json_response(
            {
                "data": {
                    "quota": {"quota_type": "reply", "remain": "8", "total": "8"},
                    "message_id": secrets.token_hex(10),
                    "user_id": user_id,
                    "sent_time": str(int(time.time() * 1000)),
                },
                "error": 0,
                "message": "Success",
            }
        )

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
