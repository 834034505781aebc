"""Pushing staff answers to citizens on the channel they wrote from (``AnswerNotifier``).

Runs inside ``bot serve`` in every worker; each answer is claimed by one worker
(compare-and-set on ``notify_status``) before it is sent. An answer is pushed when the
channel can reach the citizen now: Telegram unless they blocked the bot; Zalo only within its
interaction window (``BOT_BROADCAST_ZALO_WINDOW_DAYS`` after their last message). Otherwise,
or when the platform refuses for good, the answer waits and is handed over with the reply to
their next message (see ``handlers.notices``); web chat, which cannot push, always works that
way. A transient failure is retried on the next round for an hour, then the answer waits too.
A worker that dies mid-send leaves a claim that lapses after ``LEASE`` and the answer then
waits for the citizen's next message (it may so arrive twice, never not at all).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING

from bot.channels.delivery import DeliveryError
from broadcasts.message import BroadcastMessage, Courier
from handlers.notices import notice_text
from storage.feedback import (
    NOTICE_DELIVERED,
    NOTICE_PENDING,
    NOTICE_SENDING,
    NOTICE_WAITING,
    FeedbackView,
)
from storage.models import utcnow
from storage.subscribers import BLOCKED

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=2)
RETRY_FOR = dt.timedelta(hours=1)
STOP_GRACE_SECONDS = 10.0


class AnswerNotifier:
    def __init__(
        self,
        services: Services,
        couriers: Mapping[str, Courier],
        *,
        interval: float | None = None,
    ) -> None:
        self.services = services
        self.couriers = couriers
        settings = services.settings
        self.interval = interval or settings.feedback.notify_interval_seconds
        self.zalo_window = dt.timedelta(days=settings.broadcast.zalo_window_days)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> AnswerNotifier:
        self._task = asyncio.create_task(self._loop(), name="answer-notifier")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        # The round in progress finishes (a query cancelled half way would leave the
        # database driver answering a closed event loop); a stuck one is cancelled.
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("pushing staff answers failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def _reachable(self, item: FeedbackView, now: dt.datetime) -> bool:
        if item.external_id is None or item.channel not in self.couriers:
            return False
        subscriber = await self.services.storage.subscribers.get(item.channel, item.external_id)
        if subscriber is not None and subscriber.status == BLOCKED:
            return False
        if item.channel == "zalo":
            last = subscriber.last_interaction_at if subscriber else None
            return last is not None and now - last < self.zalo_window
        return True

    async def _wait(self, item: FeedbackView) -> None:
        """Hand the answer over with the reply to the citizen's next message instead."""
        repository = self.services.storage.feedback
        waiting = await repository.set_notice(item.id, NOTICE_WAITING, expected=NOTICE_SENDING)
        if waiting and item.external_id is not None:
            await self.services.storage.sessions.flag_notice(item.channel, item.external_id, True)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """One round: push what can be pushed; returns how many answers were delivered."""
        now = now or utcnow()
        repository = self.services.storage.feedback
        await repository.expire_notice_claims(now - LEASE)
        context = self.services.dispatcher.context
        delivered = 0
        for item in await repository.notices_to_push():
            if not await repository.claim_notice(item.id, lease_expired_before=now - LEASE):
                continue
            if not await self._reachable(item, now):
                await self._wait(item)
                continue
            courier = self.couriers[item.channel]
            assert item.external_id is not None
            try:
                await courier.deliver(
                    item.external_id, BroadcastMessage(notice_text(context, item))
                )
            except DeliveryError as exc:
                answered = item.answered_at or item.updated_at
                if exc.permanent or now - answered > RETRY_FOR:
                    log.info("answer %s waits for the citizen's next message: %s", item.code, exc)
                    await self._wait(item)
                else:
                    await repository.set_notice(item.id, NOTICE_PENDING, expected=NOTICE_SENDING)
                continue
            except Exception:
                log.exception("could not push the answer to %s", item.code)
                await self._wait(item)
                continue
            if await repository.set_notice(item.id, NOTICE_DELIVERED, expected=NOTICE_SENDING):
                delivered += 1
        return delivered
