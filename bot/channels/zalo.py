"""The Zalo Official Account channel: the webhook Zalo posts events to, and the OA client that
answers through the customer-service ("tư vấn") message API.

Facts about Zalo come from /work/shared/reference/zalo-oa.md (section numbers below refer to
it). Where the reference marks something uncertain, both variants are accepted and the one a
real request used is logged, so the first events from the real OA settle the question.

Flow: ``POST /webhook/zalo`` reads the raw body (capped), verifies ``X-ZEvent-Signature``,
drops stale or echoed events, answers 200 at once (Zalo wants it within 2 seconds and resends
otherwise) and handles the event in a tracked background task: dedupe on ``msg_id`` across
workers, dispatch, render the neutral replies as Zalo messages and send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from bot.messages import Button, Inbound, Reply
from bot.services import Services
from bot.settings import Settings, ZaloSettings
from bot.web.keys import SERVICES, SETTINGS
from handlers.answers import topics_button
from handlers.router import HandlerResult
from storage.channels import OfferedChoices, TokenPair, TokenStore
from storage.subscribers import UNREACHABLE, SubscriberRepository

log = logging.getLogger(__name__)

CHANNEL = "zalo"
WEBHOOK_PATH = "/webhook/zalo"
# Zalo events are a few KiB; anything near this is not from Zalo. The body is streamed and
# counted here because the app's client_max_size only applies to request.read()/post().
MAX_BODY = 1024 * 1024
# A citizen's text is cut here before matching (the FAQ reads the first 400 characters).
MAX_INBOUND_CHARS = 10_000
# §3.2: a text message holds at most 2,000 characters.
MAX_TEXT_CHARS = 2000
# §3.2: the button template supports at most 5 buttons.
MAX_BUTTONS = 5
# Events timestamped further ahead than this are forged or from a broken clock.
MAX_CLOCK_SKEW_SECONDS = 5 * 60
# §5: an access token lives 25 hours; refresh when less than this is left.
REFRESH_MARGIN = dt.timedelta(hours=1)
SEED_LIFETIME = dt.timedelta(hours=25)
# How often the keeper looks at the expiry, so tokens (and the 3-month refresh token) stay
# alive even when nobody writes for a while.
TOKEN_CHECK_INTERVAL_SECONDS = 10 * 60
# -32 (rate limit, §4: 4,000 requests per minute per OA): each message is retried after these
# pauses, then DeliveryError(retry_after=RATE_LIMIT_RETRY_AFTER) is raised. Retrying one
# message at a time never duplicates the messages already sent. Broadcasts, which pace
# themselves, pass rate_limit_delays=() to get the error at once.
RATE_LIMIT_DELAYS = (1.0, 3.0)
RATE_LIMIT_RETRY_AFTER = 30.0
# How long shutdown waits for events being answered before cancelling them.
SHUTDOWN_GRACE_SECONDS = 5.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)

# §3.6 error codes.
TOKEN_ERRORS = frozenset({-216, -220})
RATE_LIMITED = -32
# The citizen cannot be written to now: not a follower (-213), banned or inactive for 45 days
# (-227), outside the 7-day interaction window (-230, -232). Their next message reopens it.
UNREACHABLE_ERRORS = frozenset({-213, -227, -230, -232})
# Worth trying again later: the platform's "send message failed".
TRANSIENT_ERRORS = frozenset({-200})
# §3.2 [?]: whether /message/cs takes the button template without template_type is unverified;
# if Zalo refuses it as invalid, the buttons are sent as a numbered list instead.
TEMPLATE_REJECTED = frozenset({-201, -233})

# Button payloads that only platform events may produce: a citizen typing "follow" must not
# subscribe them (consent is recorded from the real follow event).
_EVENT_ONLY_PAYLOADS = frozenset({"follow", "unfollow"})
# Citizen-facing text belongs in the pack's messages.yaml. Until the key exists there, this
# default is used (see the README's Zalo section).
CHOOSE_BY_NUMBER_KEY = "choose_by_number"
CHOOSE_BY_NUMBER_DEFAULT = "Gõ số thứ tự (ví dụ: 2) để chọn."

# Events that carry nothing to answer: delivery receipts, reactions and the like.
_QUIET_EVENTS = frozenset(
    {
        "user_received_message",
        "user_seen_message",
        "user_reacted_message",
        "oa_reacted_message",
    }
)
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_LINK = re.compile(r"\[([^\]]+)\]\(((?:https?|tel):[^)\s]+)\)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_NUMBER = re.compile(r"[0-9]{1,2}")
_HEX = re.compile(r"[0-9a-f]{64}")


class DeliveryError(Exception):
    """A message could not be delivered. Channel-neutral, so broadcasts can decide:
    ``permanent`` — do not retry this recipient (blocked, unreachable, rejected message);
    ``retry_after`` — seconds to wait before trying again, when the platform asked to slow down.
    ``reason`` never holds a token or a citizen's text."""

    def __init__(
        self, permanent: bool, retry_after: float | None, reason: str, *, code: int | None = None
    ) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after
        self.reason = reason
        self.code = code


class TokenRefreshError(Exception):
    """Zalo refused or could not answer a token refresh. The message names the error code,
    never a token."""


# --- rendering -------------------------------------------------------------------------------


def plain_text(text: str) -> str:
    """Markdown-lite as Zalo plain text: bold markers dropped, [label](url) as "label: url",
    bullets and paragraphs kept as they are."""
    return _BOLD.sub(r"\1", _LINK.sub(lambda m: f"{m[1]}: {_shown_url(m[2])}", text)).strip()


def _shown_url(url: str) -> str:
    return url.removeprefix("tel:")


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut ``text`` into messages of at most ``limit`` characters, at paragraph breaks if
    possible, then line breaks, then spaces, and only as a last resort inside a word."""
    text = text.strip()
    if not text:
        return []
    return [chunk for chunk in _pack(text, limit, ("\n\n", "\n", " ")) if chunk.strip()]


def _pack(text: str, limit: int, separators: tuple[str, ...]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    separator, finer = separators[0], separators[1:]
    chunks: list[str] = []
    current = ""
    for part in text.split(separator):
        if len(part) > limit:
            # Too long on its own: cut it at finer boundaries, each piece its own message.
            if current:
                chunks.append(current)
                current = ""
            chunks.extend(_pack(part, limit, finer))
        elif not current:
            current = part
        elif len(current) + len(separator) + len(part) <= limit:
            current += separator + part
        else:
            chunks.append(current)
            current = part
    if current:
        chunks.append(current)
    return [chunk.strip() for chunk in chunks]


def button_json(button: Button) -> dict[str, Any]:
    """One button of the template (§3.2): a payload is sent back as the citizen's text."""
    if button.payload is not None:
        return {"title": button.title, "type": "oa.query.show", "payload": button.payload}
    url = button.url or ""
    if url.startswith("tel:"):
        return {"title": button.title, "type": "oa.open.phone", "payload": {"phone_code": url[4:]}}
    return {"title": button.title, "type": "oa.open.url", "payload": {"url": url}}


def numbered_list(buttons: Sequence[Button], hint: str) -> tuple[str, list[str]]:
    """Buttons as text: payload buttons numbered "1. …" (their payloads returned in order, for
    OfferedChoices), link buttons as "- title: url"."""
    lines: list[str] = []
    payloads: list[str] = []
    links: list[str] = []
    for button in buttons:
        if button.payload is not None:
            payloads.append(button.payload)
            lines.append(f"{len(payloads)}. {button.title}")
        else:
            links.append(f"- {button.title}: {_shown_url(button.url or '')}")
    blocks = ["\n".join(lines)] if lines else []
    if links:
        blocks.append("\n".join(links))
    if payloads:
        blocks.append(hint)
    return "\n\n".join(blocks), payloads


# --- the OA client -----------------------------------------------------------------------------


class ZaloChannel:
    """Sends replies through ``POST {api_url}/v3.0/oa/message/cs`` with the stored token pair,
    refreshing it (one worker at a time, through TokenStore) before it expires or when Zalo
    says it is invalid."""

    def __init__(
        self,
        settings: ZaloSettings,
        http: aiohttp.ClientSession,
        tokens: TokenStore,
        subscribers: SubscriberRepository,
        choices: OfferedChoices,
        *,
        choose_hint: str = CHOOSE_BY_NUMBER_DEFAULT,
        rate_limit_delays: Sequence[float] = RATE_LIMIT_DELAYS,
    ) -> None:
        self._settings = settings
        self._http = http
        self._tokens = tokens
        self._subscribers = subscribers
        self._choices = choices
        self._choose_hint = choose_hint
        self.rate_limit_delays = tuple(rate_limit_delays)
        self._message_url = settings.api_url.rstrip("/") + "/v3.0/oa/message/cs"
        self._token_url = settings.oauth_url.rstrip("/") + "/v4/oa/access_token"

    # tokens

    async def seed(self) -> TokenPair | None:
        """Store the environment's pair on first start; afterwards the database's pair wins
        (the environment's refresh token is single-use and long spent)."""
        access, refresh = self._settings.access_token, self._settings.refresh_token
        if access is not None and refresh is not None:
            pair = TokenPair(
                access.get_secret_value(),
                refresh.get_secret_value(),
                dt.datetime.now(dt.UTC) + SEED_LIFETIME,
            )
            return await self._tokens.seed(CHANNEL, pair)
        if (access is None) != (refresh is None):
            log.warning(
                "Zalo: set both BOT_ZALO_ACCESS_TOKEN and BOT_ZALO_REFRESH_TOKEN to seed the "
                "token store; one alone is ignored"
            )
        stored = await self._tokens.get(CHANNEL)
        if stored is None:
            log.warning("Zalo: no token pair stored or configured; replies cannot be sent")
        return stored

    async def refresh(self, stale_access_token: str) -> TokenPair | None:
        """Replace the pair whose access token is ``stale_access_token``; None (and the old
        pair kept) when Zalo refuses. Another worker's fresh pair is returned as is."""
        try:
            return await self._tokens.refresh(CHANNEL, stale_access_token, self._request_tokens)
        except TokenRefreshError as exc:
            log.error(
                "Zalo token refresh failed; the old pair is kept (%s). If this persists, get a "
                "new pair from the OA and set BOT_ZALO_ACCESS_TOKEN/BOT_ZALO_REFRESH_TOKEN on "
                "an empty token store",
                exc,
            )
            return None
        except LookupError:
            log.error("Zalo token refresh impossible: no token pair is stored")
            return None

    async def ensure_fresh(self) -> TokenPair | None:
        """The current pair, refreshed first when less than REFRESH_MARGIN is left."""
        pair = await self._tokens.get(CHANNEL)
        if pair is None:
            return None
        if pair.expires_at - dt.datetime.now(dt.UTC) < REFRESH_MARGIN:
            fresh = await self.refresh(pair.access_token)
            if fresh is not None:
                return fresh
        return pair

    async def keep_fresh(self) -> None:
        """Background loop: refresh ahead of expiry even when nothing is being sent."""
        while True:
            try:
                await self.ensure_fresh()
            except Exception:
                log.exception("Zalo token check failed; will retry")
            await asyncio.sleep(TOKEN_CHECK_INTERVAL_SECONDS)

    async def _request_tokens(self, refresh_token: str) -> TokenPair:
        """§5: POST /v4/oa/access_token with the app secret; the answer's expires_in is a
        string. Errors come back with HTTP 200 and an ``error`` field."""
        secret = self._settings.app_secret
        if secret is None or self._settings.app_id is None:
            raise TokenRefreshError("BOT_ZALO_APP_ID and BOT_ZALO_APP_SECRET are required")
        form = {
            "refresh_token": refresh_token,
            "app_id": self._settings.app_id,
            "grant_type": "refresh_token",
        }
        try:
            async with self._http.post(
                self._token_url, data=form, headers={"secret_key": secret.get_secret_value()}
            ) as response:
                status = response.status
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # "from None": a chained client error could carry the request's details.
            raise TokenRefreshError(f"request failed: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise TokenRefreshError(f"unexpected answer (HTTP {status})")
        access, refresh = body.get("access_token"), body.get("refresh_token")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            code = body.get("error")
            name = body.get("error_name") or body.get("error_description") or body.get("message")
            detail = _scrub(str(name or "no token in the answer")[:120], refresh_token)
            raise TokenRefreshError(f"HTTP {status}, error {code}: {detail}")
        try:
            lifetime = int(str(body.get("expires_in", "90000")))
        except ValueError:
            lifetime = int(SEED_LIFETIME.total_seconds())
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lifetime)
        log.info("Zalo access token refreshed; valid until %s", expires_at.isoformat())
        return TokenPair(access, refresh, expires_at)

    # sending

    async def send(self, user_id: str, replies: list[Reply]) -> None:
        """Send ``replies`` in order. Raises DeliveryError at the first message that fails;
        the ones before it were delivered."""
        for reply in replies:
            await self._send_reply(user_id, reply)

    async def _send_reply(self, user_id: str, reply: Reply) -> None:
        text = plain_text(reply.text)
        buttons = reply.buttons
        if len(buttons) > MAX_BUTTONS:
            text = await self._with_numbers(user_id, text, buttons)
            buttons = ()
        chunks = split_text(text)
        if not chunks:
            if not buttons:
                return
            chunks = [" ".join(b.title for b in buttons)]
        for chunk in chunks[:-1]:
            await self._post(user_id, {"text": chunk})
        if not buttons:
            await self._post(user_id, {"text": chunks[-1]})
            return
        template = {"type": "template", "payload": {"buttons": [button_json(b) for b in buttons]}}
        try:
            await self._post(user_id, {"text": chunks[-1], "attachment": template})
        except DeliveryError as exc:
            if exc.code not in TEMPLATE_REJECTED:
                raise
            log.warning(
                "Zalo refused the button template (error %s); sending the buttons as a "
                "numbered list instead",
                exc.code,
            )
            for chunk in split_text(await self._with_numbers(user_id, chunks[-1], buttons)):
                await self._post(user_id, {"text": chunk})

    async def _with_numbers(self, user_id: str, text: str, buttons: Sequence[Button]) -> str:
        """Append the buttons as a numbered list and remember their payloads, so that typing
        "2" selects the second."""
        listed, payloads = numbered_list(buttons, self._choose_hint)
        if payloads:
            await self._choices.remember(CHANNEL, user_id, payloads)
        return f"{text}\n\n{listed}" if text else listed

    async def _post(self, user_id: str, message: dict[str, Any]) -> None:
        body = {"recipient": {"user_id": user_id}, "message": message}
        pair = await self.ensure_fresh()
        if pair is None:
            raise DeliveryError(False, None, "no Zalo token pair stored")
        token = pair.access_token
        refreshed = False
        delays = list(self.rate_limit_delays)
        while True:
            code, text = await self._call(token, body)
            if code == 0:
                return
            if code in TOKEN_ERRORS and not refreshed:
                # §5: refresh and re-send once; TokenStore makes sure only one worker uses
                # the single-use refresh token, the others get its result.
                refreshed = True
                fresh = await self.refresh(token)
                if fresh is None:
                    raise DeliveryError(False, None, f"access token rejected ({code})", code=code)
                token = fresh.access_token
                continue
            if code == RATE_LIMITED:
                if delays:
                    await asyncio.sleep(delays.pop(0))
                    continue
                raise DeliveryError(
                    False, RATE_LIMIT_RETRY_AFTER, f"rate limited ({code})", code=code
                )
            if code in UNREACHABLE_ERRORS:
                await self._subscribers.set_status(
                    CHANNEL, user_id, UNREACHABLE, source="zalo:send"
                )
                log.info("Zalo: subscriber marked unreachable (error %s: %s)", code, text)
                raise DeliveryError(True, None, f"unreachable ({code}: {text})", code=code)
            permanent = code not in TOKEN_ERRORS and code not in TRANSIENT_ERRORS
            raise DeliveryError(permanent, None, f"Zalo error {code}: {text}", code=code)

    async def _call(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        """POST one message; (error code, Zalo's message). Zalo reports errors with HTTP 200."""
        try:
            async with self._http.post(
                self._message_url, json=body, headers={"access_token": token}
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise DeliveryError(False, None, f"Zalo API HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryError(
                False, None, f"Zalo API unreachable: {type(exc).__name__}"
            ) from None
        if not isinstance(data, dict):
            raise DeliveryError(False, None, "unexpected answer from the Zalo API")
        try:
            code = int(data.get("error", 0))
        except (TypeError, ValueError):
            raise DeliveryError(False, None, "unexpected error field from the Zalo API") from None
        return code, _scrub(str(data.get("message", ""))[:200], token)


def _scrub(text: str, secret: str) -> str:
    """Belt and braces: an error text echoing a token must not carry it into a log."""
    return text.replace(secret, "[token]") if secret else text


# --- the webhook -------------------------------------------------------------------------------


def signature_variants(
    raw: bytes,
    event: dict[str, Any],
    settings: ZaloSettings,
    header_timestamp: str | None,
) -> Iterator[tuple[str, str]]:
    """(name, hex digest) of every signature Zalo might send, the documented one first (§2):
    sha256(app_id + raw body + body timestamp + OA secret key), plain SHA-256, not HMAC.
    The [?] alternatives of §2 follow: the app secret instead of the OA secret, the OA id
    instead of the app id, the X-ZEvent-Timestamp header instead of the body's timestamp.
    Each needs one of our secrets, so accepting them does not weaken the check."""
    keys: list[tuple[str, str]] = []
    if settings.oa_secret_key is not None:
        keys.append(("OA secret key", settings.oa_secret_key.get_secret_value()))
    if settings.app_secret is not None:
        keys.append(("app secret", settings.app_secret.get_secret_value()))
    firsts = [("app_id", settings.app_id or "")]
    for label, value in (
        ("oa_id", event.get("oa_id")),
        ("recipient.id", _nested_id(event, "recipient")),
        ("sender.id", _nested_id(event, "sender")),
    ):
        if isinstance(value, str | int) and str(value) not in {v for _, v in firsts}:
            firsts.append((label, str(value)))
    body_timestamp = str(event.get("timestamp", ""))
    timestamps = [("body timestamp", body_timestamp)]
    if header_timestamp and header_timestamp != body_timestamp:
        timestamps.append(("X-ZEvent-Timestamp", header_timestamp))
    for secret_name, secret in keys:
        for first_name, first in firsts:
            for ts_name, ts in timestamps:
                digest = hashlib.sha256(
                    first.encode() + raw + ts.encode() + secret.encode()
                ).hexdigest()
                yield f"{first_name} + body + {ts_name} + {secret_name}", digest


DOCUMENTED_VARIANT = "app_id + body + body timestamp + OA secret key"


def _nested_id(event: dict[str, Any], key: str) -> Any:
    value = event.get(key)
    return value.get("id") if isinstance(value, dict) else None


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
        raw = await _read_capped(request, MAX_BODY)
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


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed ``limit`` (without reading
    the rest: aiohttp drains or drops the connection after the response)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _json(status: int, message: str) -> web.Response:
    return web.json_response({"status": message}, status=status)


# --- wiring --------------------------------------------------------------------------------

ZALO_CHANNEL = web.AppKey("zalo_channel", ZaloChannel)
ZALO_WEBHOOK = web.AppKey("zalo_webhook", ZaloWebhook)


async def _webhook(request: web.Request) -> web.Response:
    return await request.app[ZALO_WEBHOOK].handle(request)


async def _zalo_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the OA client after the core services (and close it before them)."""
    settings = app[SETTINGS].zalo
    services = app[SERVICES]
    if settings.oa_secret_key is None and settings.app_secret is None:
        log.error(
            "Zalo: BOT_ZALO_OA_SECRET_KEY is not set; every webhook event will be refused "
            "as unsigned"
        )
    hint = CHOOSE_BY_NUMBER_DEFAULT
    if CHOOSE_BY_NUMBER_KEY in services.kb.messages:
        hint = services.dispatcher.context.say(CHOOSE_BY_NUMBER_KEY)
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as http:
        storage = services.storage
        channel = ZaloChannel(
            settings, http, storage.tokens, storage.subscribers, storage.choices, choose_hint=hint
        )
        await channel.seed()
        webhook = ZaloWebhook(settings, services, channel)
        app[ZALO_CHANNEL] = channel
        app[ZALO_WEBHOOK] = webhook
        keeper = asyncio.create_task(channel.keep_fresh(), name="zalo-token-keeper")
        try:
            yield
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await webhook.close()


def setup(app: web.Application, settings: Settings) -> None:
    """Add the Zalo webhook route and the OA client when an app id is configured."""
    if settings.zalo.app_id is None:
        return
    app.router.add_post(WEBHOOK_PATH, _webhook)
    app.cleanup_ctx.append(_zalo_ctx)
