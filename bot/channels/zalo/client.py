"""The OA client: sends replies through the customer-service message API and keeps the
access token fresh (seeded from the environment, refreshed one worker at a time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.channels.delivery import DeliveryError
from bot.channels.zalo.render import button_json, numbered_list, plain_text, split_text
from bot.messages import Button, Reply
from bot.settings import ZaloSettings
from storage.channels import OfferedChoices, TokenPair, TokenStore
from storage.subscribers import UNREACHABLE, SubscriberRepository

log = logging.getLogger(__name__)


CHANNEL = "zalo"
# §3.2: the button template supports at most 5 buttons.
MAX_BUTTONS = 5
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
# The documented limit is per minute: a sender that paces a whole broadcast waits this long
# for the window to have surely moved on.
BROADCAST_RATE_LIMIT_RETRY_AFTER = 60.0
# Every request's client timeout (a stuck call must not hold a reply or a broadcast).
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=15)

# §3.6 error codes.
TOKEN_ERRORS = frozenset({-216, -220})
RATE_LIMITED = -32
# The citizen cannot be written to now: not a follower (-213), banned or inactive for 45 days
# (-227), outside the 7-day interaction window (-230, -232). Their next message reopens it.
UNREACHABLE_ERRORS = frozenset({-213, -227, -230, -232})
# What DeliveryError.kind says of each, for the broadcast ledger.
UNREACHABLE_KINDS = {
    -213: "not_follower",
    -227: "blocked",
    -230: "out_of_window",
    -232: "out_of_window",
}
# Worth trying again later: the platform's "send message failed".
TRANSIENT_ERRORS = frozenset({-200})
# §3.2 [?]: whether /message/cs takes the button template without template_type is unverified;
# if Zalo refuses it as invalid, the buttons are sent as a numbered list instead.
TEMPLATE_REJECTED = frozenset({-201, -233})
# Citizen-facing text belongs in the pack's messages.yaml. Until the key exists there, this
# default is used (see the README's Zalo section).
CHOOSE_BY_NUMBER_KEY = "choose_by_number"
CHOOSE_BY_NUMBER_DEFAULT = "Gõ số thứ tự (ví dụ: 2) để chọn."


def http_session() -> aiohttp.ClientSession:
    """The HTTP client of the OA API (and of the token refreshes)."""
    return aiohttp.ClientSession(timeout=HTTP_TIMEOUT)


class TokenRefreshError(Exception):
    """Zalo refused or could not answer a token refresh. The message names the error code,
    never a token."""


# How many citizens' numbered lists a process remembers having shown (see _send_reply).
LISTED_MEMORY = 10_000


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
        rate_limit_retry_after: float = RATE_LIMIT_RETRY_AFTER,
    ) -> None:
        self._settings = settings
        self._http = http
        self._tokens = tokens
        self._subscribers = subscribers
        self._choices = choices
        # Citizens this process last showed a numbered list (forgotten once a reply with
        # ordinary buttons supersedes it); the most recent LISTED_MEMORY, oldest dropped first.
        self._listed: dict[str, None] = {}
        self._choose_hint = choose_hint
        self.rate_limit_delays = tuple(rate_limit_delays)
        self.rate_limit_retry_after = rate_limit_retry_after
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
        elif self._listed.pop(user_id, 0) is None:
            # A numbered list shown earlier is no longer what the citizen sees: a typed "1"
            # now answers this message, not that list.
            await self._choices.forget(CHANNEL, user_id)
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
            self._listed.pop(user_id, None)
            self._listed[user_id] = None
            if len(self._listed) > LISTED_MEMORY:
                del self._listed[next(iter(self._listed))]
        return f"{text}\n\n{listed}" if text else listed

    async def _post(self, user_id: str, message: dict[str, Any]) -> str | None:
        """Send one message (refreshing a rejected token once, waiting out -32 as
        ``rate_limit_delays`` allow); Zalo's ``data.message_id``, or DeliveryError."""
        body = {"recipient": {"user_id": user_id}, "message": message}
        pair = await self.ensure_fresh()
        if pair is None:
            raise DeliveryError("no Zalo token pair stored", permanent=False)
        token = pair.access_token
        refreshed = False
        delays = list(self.rate_limit_delays)
        while True:
            code, text, message_id = await self._call(token, body)
            if code == 0:
                return message_id
            if code in TOKEN_ERRORS and not refreshed:
                # §5: refresh and re-send once; TokenStore makes sure only one worker uses
                # the single-use refresh token, the others get its result.
                refreshed = True
                fresh = await self.refresh(token)
                if fresh is None:
                    raise DeliveryError(
                        f"access token rejected ({code})", permanent=False, code=code
                    )
                token = fresh.access_token
                continue
            if code == RATE_LIMITED:
                if delays:
                    await asyncio.sleep(delays.pop(0))
                    continue
                raise DeliveryError(
                    f"rate limited ({code})",
                    permanent=False,
                    retry_after=self.rate_limit_retry_after,
                    code=code,
                )
            if code in UNREACHABLE_ERRORS:
                await self._subscribers.set_status(
                    CHANNEL, user_id, UNREACHABLE, source="zalo:send"
                )
                log.info("Zalo: subscriber marked unreachable (error %s: %s)", code, text)
                raise DeliveryError(
                    f"unreachable ({code}: {text})",
                    permanent=True,
                    code=code,
                    kind=UNREACHABLE_KINDS.get(code),
                )
            permanent = code not in TOKEN_ERRORS and code not in TRANSIENT_ERRORS
            raise DeliveryError(f"Zalo error {code}: {text}", permanent=permanent, code=code)

    async def _call(self, token: str, body: dict[str, Any]) -> tuple[int, str, str | None]:
        """POST one message; (error code, Zalo's message, data.message_id). Zalo reports
        errors with HTTP 200."""
        try:
            async with self._http.post(
                self._message_url, json=body, headers={"access_token": token}
            ) as response:
                if response.status >= 500 or response.status == 429:
                    raise DeliveryError(f"Zalo API HTTP {response.status}", permanent=False)
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DeliveryError(
                f"Zalo API unreachable: {type(exc).__name__}", permanent=False
            ) from None
        if not isinstance(data, dict):
            raise DeliveryError("unexpected answer from the Zalo API", permanent=False)
        try:
            code = int(data.get("error", 0))
        except (TypeError, ValueError):
            raise DeliveryError(
                "unexpected error field from the Zalo API", permanent=False
            ) from None
        payload = data.get("data")
        message_id = payload.get("message_id") if isinstance(payload, dict) else None
        return (
            code,
            _scrub(str(data.get("message", ""))[:200], token),
            None if message_id is None else str(message_id),
        )


def _scrub(text: str, secret: str) -> str:
    """Belt and braces: an error text echoing a token must not carry it into a log."""
    return text.replace(secret, "[token]") if secret else text
