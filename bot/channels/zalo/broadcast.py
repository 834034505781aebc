"""Campaign messages on Zalo: ``ZaloCourier``, the ``broadcasts.message.Courier`` of this
channel.

A ``ZaloChannel`` (same POST, token refresh and error mapping as replies) that does not wait
out Zalo's rate limit: -32 is raised at once with ``retry_after``, since pacing and retries
are the broadcast engine's. What one recipient gets (section numbers refer to
/work/shared/reference/zalo-oa.md):

- the text as plain text (§3.2: 2,000 characters per message; a campaign's text fits one,
  longer ones are split like replies);
- the URL button under the last text, in the button template (§3.2);
- with an image: one message carrying the image and the text (the media template, §3.2).
  That template has no documented buttons, so the button's link goes into the text as a
  "title: url" line. A text too long for one message goes first, then the image alone.

The button template on ``/message/cs`` is unverified (§3.2 [?]); if Zalo refuses a template
as invalid, the courier sends plain text (links as lines, no image) from then on. Nothing
that Zalo accepted is sent twice by the courier itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.channels.delivery import DeliveryError
from bot.channels.zalo.client import (
    BROADCAST_RATE_LIMIT_RETRY_AFTER,
    CHANNEL,
    TEMPLATE_REJECTED,
    ZaloChannel,
    http_session,
)
from bot.channels.zalo.render import button_json, plain_text, split_text
from bot.messages import Button
from bot.settings import ZaloSettings
from broadcasts.message import BroadcastMessage

if TYPE_CHECKING:
    import aiohttp

    from storage.channels import OfferedChoices, TokenStore
    from storage.subscribers import SubscriberRepository

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The messages of one delivery: ``leading`` texts, then ``last`` (which may carry a
    template), or, when Zalo refuses templates, ``plain`` instead of ``last``."""

    leading: list[str]
    last: dict[str, Any] | None
    plain: list[str]


def _link_line(button: Button) -> str:
    url = button.url or ""
    return f"{button.title}: {url.removeprefix('tel:')}"


def _media(image_url: str) -> dict[str, Any]:
    return {
        "type": "template",
        "payload": {
            "template_type": "media",
            "elements": [{"media_type": "image", "url": image_url}],
        },
    }


def plan(message: BroadcastMessage) -> _Plan:
    text = plain_text(message.text)
    button = message.button
    if message.image_url:
        if button is not None:
            text = f"{text}\n\n{_link_line(button)}" if text else _link_line(button)
        chunks = split_text(text)
        media = _media(message.image_url)
        if len(chunks) <= 1:
            last = {"text": chunks[0], "attachment": media} if chunks else {"attachment": media}
            return _Plan([], last, chunks)
        return _Plan(chunks, {"attachment": media}, [])
    chunks = split_text(text)
    if not chunks:
        if button is None:
            return _Plan([], None, [])
        chunks = [button.title]
    if button is None:
        return _Plan(chunks[:-1], {"text": chunks[-1]}, chunks[-1:])
    template = {"type": "template", "payload": {"buttons": [button_json(button)]}}
    return _Plan(
        chunks[:-1],
        {"text": chunks[-1], "attachment": template},
        split_text(f"{chunks[-1]}\n\n{_link_line(button)}"),
    )


class ZaloCourier(ZaloChannel):
    """Delivers a ``BroadcastMessage`` to one follower and returns Zalo's message id."""

    channel = CHANNEL

    def __init__(
        self,
        settings: ZaloSettings,
        http: aiohttp.ClientSession,
        tokens: TokenStore,
        subscribers: SubscriberRepository,
        choices: OfferedChoices,
        *,
        rate_limit_retry_after: float = BROADCAST_RATE_LIMIT_RETRY_AFTER,
    ) -> None:
        super().__init__(
            settings,
            http,
            tokens,
            subscribers,
            choices,
            rate_limit_delays=(),
            rate_limit_retry_after=rate_limit_retry_after,
        )
        # Set once Zalo refused a template as invalid: plain text for the rest of the run.
        self.templates_refused = False

    async def deliver(self, external_id: str, message: BroadcastMessage) -> str | None:
        steps = plan(message)
        if steps.last is None:
            raise DeliveryError("empty message", permanent=True)
        message_id: str | None = None
        for chunk in steps.leading:
            message_id = await self._post(external_id, {"text": chunk})
        last = steps.last
        if "attachment" in last and self.templates_refused:
            return await self._send_plain(external_id, steps.plain, message_id)
        try:
            return await self._post(external_id, last)
        except DeliveryError as exc:
            if "attachment" not in last or exc.code not in TEMPLATE_REJECTED:
                raise
            self.templates_refused = True
            log.warning(
                "Zalo refused a message template (error %s); campaign messages go out as "
                "plain text (links as lines, no image) from now on",
                exc.code,
            )
        return await self._send_plain(external_id, steps.plain, message_id)

    async def _send_plain(
        self, user_id: str, texts: list[str], message_id: str | None
    ) -> str | None:
        if not texts and message_id is None:
            raise DeliveryError("Zalo refuses the image template; nothing to send", permanent=True)
        for chunk in texts:
            message_id = await self._post(user_id, {"text": chunk})
        return message_id


@asynccontextmanager
async def open_zalo_courier(
    settings: ZaloSettings,
    tokens: TokenStore,
    subscribers: SubscriberRepository,
    choices: OfferedChoices,
) -> AsyncIterator[ZaloCourier]:
    """A courier on its own HTTP session (the webhook's client may be running beside it).
    The token store is seeded from the environment as the webhook does on first start (the
    database's pair wins afterwards); a missing pair fails deliveries, not the start."""
    async with http_session() as http:
        courier = ZaloCourier(settings, http, tokens, subscribers, choices)
        await courier.seed()
        yield courier
