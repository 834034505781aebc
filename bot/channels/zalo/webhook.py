"""The webhook Zalo posts events to: body capped, signature verified, stale and echoed events
dropped, 200 at once, and each event handled in a tracked background task."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.channels.delivery import DeliveryError
from bot.channels.zalo.client import CHANNEL, ZaloChannel
from bot.channels.zalo.signature import DOCUMENTED_VARIANT, _nested_id, signature_variants
from bot.messages import Inbound, Reply
from bot.services import Services
from bot.settings import ZaloSettings
from bot.web.body import read_capped
from handlers.answers import topics_button
from handlers.router import HandlerResult

log = logging.getLogger(__name__)


WEBHOOK_PATH = "/webhook/zalo"
# Zalo events are a few KiB; anything near this is not from Zalo. The body is streamed and
# counted here because the app's client_max_size only applies to request.read()/post().
MAX_BODY = 1024 * 1024
# A citizen's text is cut here before matching (the FAQ reads the first 400 characters).
MAX_INBOUND_CHARS = 10_000
# Events timestamped further ahead than this are forged or from a broken clock.
MAX_CLOCK_SKEW_SECONDS = 5 * 60
# How long shutdown waits for events being answered before cancelling them.
SHUTDOWN_GRACE_SECONDS = 5.0
# Button payloads that only platform events may produce: a citizen typing "follow" must not
# subscribe them (consent is recorded from the real follow event).
_EVENT_ONLY_PAYLOADS = frozenset({"follow", "unfollow"})

# Events that carry nothing to answer: delivery receipts, reactions and the like.
_QUIET_EVENTS = frozenset(
    {
        "user_received_message",
        "user_seen_message",
        "user_reacted_message",
        "oa_reacted_message",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_NUMBER = re.compile(r"[0-9]{1,2}")
_HEX = re.compile(r"[0-9a-f]{64}")


def _user_of(event: dict[str, Any], name: str) -> str | None:
    """The citizen's id: follower.id on follow/unfollow, a flat user_id on chat-now clicks,
    sender.id on user_* events (recipient.id on oa_* echoes, which are dropped anyway)."""
    candidates: list[Any]
    if name in ("follow", "unfollow"):
        candidates = [_nested_id(event, "follower"), event.get("user_id")]
    elif name.startswith("oa_"):
        candidates = [_nested_id(event, "recipient")]
    else:
        candidates = [_nested_id(event, "sender"), event.get("user_id")]
    for value in candidates:
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()[:128]
    return None


def _dedupe_key(event: dict[str, Any], name: str, user_id: str) -> str:
    message = event.get("message")
    msg_id = message.get("msg_id") if isinstance(message, dict) else None
    if isinstance(msg_id, str | int) and str(msg_id):
        return f"msg:{msg_id}"
    return f"{name}:{event.get('timestamp')}:{user_id}"


class ZaloWebhook:
    """Receives events, verifies them and handles them in background tasks it tracks, so that
    shutdown can wait for them (then cancel what is left) and no task outlives the app."""

    def __init__(self, settings: ZaloSettings, services: Services, channel: ZaloChannel) -> None:
        self._settings = settings
        self._services = services
        self.channel = channel
        self.shutdown_grace = SHUTDOWN_GRACE_SECONDS
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._variants_seen: set[str] = set()
        self._probe_kinds_seen: set[str] = set()
        # One event at a time per citizen, so replies keep the order of their messages.
        self._user_locks: dict[str, asyncio.Lock] = {}
        self._user_waiters: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """Events still being handled."""
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait until every event received so far has been handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop taking events, let the ones in flight finish for a moment, cancel the rest."""
        self._closing = True
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=self.shutdown_grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "Zalo: %d event(s) still being handled at shutdown were cancelled", len(pending)
            )
            await asyncio.gather(*pending, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.Response:
        if self._closing:
            # Zalo resends on anything but 200; another worker (or this one, restarted) will
            # take it.
            return _json(503, "shutting down")
        raw = await read_capped(request, MAX_BODY)
        if raw is None:
            return _json(413, "body too large")
        signature = request.headers.get("X-ZEvent-Signature", "").strip()
        if not raw.strip():
            self._note_probe("empty body")
            return _json(200, "ok")
        try:
            event = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            return _json(400, "malformed JSON")
        if not isinstance(event, dict):
            return _json(400, "a JSON object is expected")
        if not event and not signature:
            # §1.1 [?]: Zalo is said to probe the URL with an unsigned {} when it is saved.
            self._note_probe("{}")
            return _json(200, "ok")
        if not self._verified(raw, event, signature, request.headers.get("X-ZEvent-Timestamp")):
            log.warning("Zalo webhook: missing or invalid signature; event dropped")
            return _json(401, "invalid signature")
        name = str(event.get("event_name") or "")
        if not self._fresh(event, name):
            return _json(200, "ignored")
        if name.startswith("oa_send_"):
            # Echoes of what the OA sent (ours included): answering them would loop.
            log.debug("Zalo: echo event %s ignored", name)
            return _json(200, "ignored")
        if not self._handled(name):
            if name in _QUIET_EVENTS:
                log.debug("Zalo: event %s ignored", name)
            else:
                log.info("Zalo: event %r not handled; ignored", name[:64])
            return _json(200, "ignored")
        user_id = _user_of(event, name)
        if user_id is None:
            log.warning("Zalo: event %s without a user id ignored", name)
            return _json(200, "ignored")
        task = asyncio.create_task(self._process(event, name, user_id), name=f"zalo-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return _json(200, "ok")

    def _note_probe(self, kind: str) -> None:
        if kind not in self._probe_kinds_seen:
            self._probe_kinds_seen.add(kind)
            log.info("Zalo webhook probe received (%s); answered 200", kind)

    def _verified(
        self, raw: bytes, event: dict[str, Any], header: str, header_timestamp: str | None
    ) -> bool:
        given = header.strip().lower()
        # §2: the header is "mac=<hex>"; some accounts show the bare hex. Accept both.
        given = given.removeprefix("mac=").strip()
        if not _HEX.fullmatch(given):
            return False
        for name, digest in signature_variants(raw, event, self._settings, header_timestamp):
            if hmac.compare_digest(given, digest):
                if name not in self._variants_seen:
                    self._variants_seen.add(name)
                    level = logging.INFO if name == DOCUMENTED_VARIANT else logging.WARNING
                    log.log(level, "Zalo webhook signature verified with variant: %s", name)
                return True
        return False

    def _fresh(self, event: dict[str, Any], name: str) -> bool:
        """Drop replays and events from a wrong clock; they get 200 so Zalo stops resending."""
        try:
            sent_ms = int(str(event.get("timestamp")))
        except ValueError:
            log.warning("Zalo: event %s without a usable timestamp ignored", name[:64])
            return False
        age = time.time() - sent_ms / 1000
        if age > self._settings.event_max_age_seconds:
            log.warning(
                "Zalo: event %s ignored: %.0f s old (limit %d s)",
                name[:64],
                age,
                self._settings.event_max_age_seconds,
            )
            return False
        if age < -MAX_CLOCK_SKEW_SECONDS:
            log.warning("Zalo: event %s ignored: timestamped %.0f s in the future", name[:64], -age)
            return False
        return True

    @staticmethod
    def _handled(name: str) -> bool:
        return name in ("follow", "unfollow", "user_click_chatnow") or name.startswith("user_send_")

    async def _process(self, event: dict[str, Any], name: str, user_id: str) -> None:
        try:
            async with self._serialised(user_id):
                await self._handle_event(event, name, user_id)
        except Exception:  # CancelledError (shutdown) is not an Exception and propagates
            log.exception("Zalo: handling event %s failed", name)

    @contextlib.asynccontextmanager
    async def _serialised(self, user_id: str) -> AsyncIterator[None]:
        lock = self._user_locks.setdefault(user_id, asyncio.Lock())
        self._user_waiters[user_id] = self._user_waiters.get(user_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._user_waiters[user_id] -= 1
            if not self._user_waiters[user_id]:
                del self._user_waiters[user_id]
                del self._user_locks[user_id]

    async def _handle_event(self, event: dict[str, Any], name: str, user_id: str) -> None:
        storage = self._services.storage
        # At-least-once delivery (§1.1): the first worker to claim the event handles it.
        if not await storage.updates.first_time(CHANNEL, _dedupe_key(event, name, user_id)):
            log.info("Zalo: event %s delivered again; already handled", name)
            return
        dispatcher = self._services.dispatcher
        replies: list[Reply]
        if name == "user_send_text":
            replies = await dispatcher.dispatch(await self._text_inbound(event, user_id))
        elif name in ("follow", "unfollow"):
            # The dispatcher records the interaction, then subscribes (follow, with the
            # default topics and the welcome) or unsubscribes (unfollow, no reply).
            replies = await dispatcher.dispatch(Inbound(CHANNEL, user_id, payload=name, raw=event))
        elif name == "user_click_chatnow":
            # Opening the chat counts as an interaction (§4) but says nothing to answer.
            await storage.subscribers.touch(CHANNEL, user_id)
            replies = []
        else:
            replies = await self._text_only(event, name, user_id)
        if not replies:
            return
        try:
            await self.channel.send(user_id, replies)
        except DeliveryError as exc:
            log.warning(
                "Zalo: reply not delivered (%s; %s)",
                exc.reason,
                "permanent" if exc.permanent else "transient",
            )

    async def _text_inbound(self, event: dict[str, Any], user_id: str) -> Inbound:
        message = event.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        text = _CONTROL.sub(" ", text if isinstance(text, str) else "")[:MAX_INBOUND_CHARS]
        stripped = text.strip()
        dispatcher = self._services.dispatcher
        # §1.5: a pressed oa.query.show button arrives as a text equal to its payload.
        if stripped not in _EVENT_ONLY_PAYLOADS and dispatcher.knows_payload(stripped):
            return Inbound(CHANNEL, user_id, payload=stripped, raw=event)
        # A number typed after a list of more than five choices sent as text.
        if _NUMBER.fullmatch(stripped):
            chosen = await self._services.storage.choices.resolve(CHANNEL, user_id, int(stripped))
            if chosen is not None:
                return Inbound(CHANNEL, user_id, payload=chosen, raw=event)
        return Inbound(CHANNEL, user_id, text=text, raw=event)

    async def _text_only(self, event: dict[str, Any], name: str, user_id: str) -> list[Reply]:
        """Images, stickers, files, locations…: the bot reads text only, and says so."""
        context = self._services.dispatcher.context
        inbound = Inbound(CHANNEL, user_id, text=f"[{name.removeprefix('user_send_')}]", raw=event)
        await context.touch(inbound)
        reply = Reply(context.say("unreadable_input"), (topics_button(context),))
        await context.record_turn(inbound, HandlerResult((reply,), outcome="unreadable"))
        return [reply]


def _json(status: int, message: str) -> web.Response:
    return web.json_response({"status": message}, status=status)
