"""The broadcast engine: expands runs into the ledger and drains it through the couriers.

Every process that runs an engine (each ``bot serve`` worker, and ``bot campaign send
--wait``) takes part; they coordinate only through the database:

- The supervisor expands "expanding" runs batch by batch (resumable: the run remembers how
  far it got), skips recipients who unsubscribed since, marks a run done when nothing is
  left, and declares rows whose sender died mid-send uncertain (after the claim lease).
- One sender per channel takes tokens from the channel's shared bucket (the platform's
  limit is per bot/OA, so processes share it), claims that many due rows in one statement
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends them concurrently and records the
  outcomes in batches. A 429/-32 empties the shared bucket for the time asked, so every
  process waits. Transient errors are retried with exponential backoff and jitter up to
  ``max_attempts``; permanent ones are final (the channel adapter updates the subscriber).
- Crash policy: at most once. A row is claimed before it is sent and its outcome written
  after; after a crash, rows claimed more than ``claim_lease_seconds`` ago and never
  finished are marked *uncertain* and not sent again (the platform may or may not have
  delivered them, and a duplicate notice to citizens is worse than a gap the report
  names). The window is what was in flight: at most ``claim_batch`` rows per sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from types import TracebackType

from bot.channels.delivery import DeliveryError
from bot.settings import BroadcastSettings
from broadcasts.message import BroadcastMessage, Courier, compose
from broadcasts.quiet import in_quiet_hours
from broadcasts.workflow import SYSTEM, Campaigns, WorkflowError
from storage.campaigns import (
    CANCELLED,
    FAILED,
    OUT_OF_WINDOW,
    PENDING,
    RUN_EXPANDING,
    RUN_PAUSED,
    RUN_SENDING,
    SENT,
    Claimed,
    Outcome,
    RunView,
)
from storage.models import utcnow
from storage.rate_buckets import RateBuckets

log = logging.getLogger(__name__)

# Failures that say something about the recipient, not about the campaign or the platform:
# they do not count towards the error rate that pauses a run.
RECIPIENT_KINDS = frozenset({"blocked", "not_follower", "out_of_window", "not_found"})
FINAL_RUN = frozenset({"done", "cancelled", "failed", RUN_PAUSED})
# How long outcomes may wait before they are written (they are also written every
# OUTCOME_BATCH rows): the part of the crash window that is ours, not the platform's.
OUTCOME_FLUSH_SECONDS = 0.05
OUTCOME_BATCH = 200
# Without a rate limit (benchmarks), how many sends a sender keeps in flight.
UNLIMITED_IN_FLIGHT = 64
EXPAND_BATCH = 1000
# How often pending rows of citizens who stopped their subscription meanwhile are skipped.
SKIP_INTERVAL_SECONDS = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _RunInfo:
    """What a sender needs of a run, cached: its campaign's message and whether it is
    still meant to be sent."""

    __slots__ = ("campaign_id", "message", "paused", "recent", "skipped_at", "status")

    def __init__(self, campaign_id: int, message: BroadcastMessage, status: str) -> None:
        self.campaign_id = campaign_id
        self.message = message
        self.status = status
        # Last outcomes (True = a failure that counts) for the error-rate pause.
        self.recent: deque[bool] = deque(maxlen=1000)
        self.paused = False  # by this engine, for the error rate (once)
        # When (monotonic) unsubscribed recipients were last skipped.
        self.skipped_at = float("-inf")


class BroadcastEngine:
    def __init__(
        self,
        campaigns: Campaigns,
        buckets: RateBuckets,
        couriers: Mapping[str, Courier],
        settings: BroadcastSettings,
        *,
        opt_out_line: str,
        worker: str | None = None,
        supervise_interval: float = 0.25,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.campaigns = campaigns
        self.repo = campaigns.repo
        self.buckets = buckets
        self.couriers = dict(couriers)
        self.settings = settings
        self.opt_out_line = opt_out_line
        self.worker = (worker or worker_name())[:64]
        self._interval = supervise_interval
        self._clock = clock
        self._runs: dict[int, _RunInfo] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._outcomes: list[tuple[str, Outcome]] = []
        # Per channel, outcomes not yet written: their rows are still "sending" in the
        # database, so they count as in flight (the crash window) until written.
        self._unwritten: Counter[str] = Counter()
        # Set each time outcomes reach the ledger (a sender waiting on them goes on).
        self._written = asyncio.Event()
        self._outcome_added = asyncio.Event()
        self._last_per_chat: dict[tuple[str, str], float] = {}
        self._holds: dict[str, float] = {}
        self._last_expiry = 0.0

    # lifecycle

    async def __aenter__(self) -> BroadcastEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self._stopping.clear()
        self._tasks = [asyncio.create_task(self._supervise(), name="broadcast-supervisor")]
        self._tasks.append(asyncio.create_task(self._flush_outcomes(), name="broadcast-ledger"))
        for channel in self.couriers:
            self._tasks.append(
                asyncio.create_task(self._send_loop(channel), name=f"broadcast-{channel}")
            )
        log.info("broadcast engine %s started (channels: %s)", self.worker, list(self.couriers))

    async def stop(self) -> None:
        """Stop claiming, let the sends in flight finish, write their outcomes."""
        self._stopping.set()
        self._outcome_added.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(task, timeout=20)
                except TimeoutError:
                    log.error("broadcast task %s did not stop in time", task.get_name())
        self._tasks = []
        await self._write_outcomes()

    async def wait(
        self,
        run_id: int,
        *,
        on_progress: Callable[[RunView, dict[tuple[str, str], int]], None] | None = None,
        poll: float = 0.5,
    ) -> RunView:
        """Until the run is done, cancelled, failed or paused."""
        while True:
            run = await self.repo.run(run_id)
            if run is None:
                raise LookupError(run_id)
            if on_progress is not None:
                on_progress(run, await self.repo.counts([run_id]))
            if run.status in FINAL_RUN:
                return run
            await asyncio.sleep(poll)

    # supervisor

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.supervise_once()
            except Exception:
                log.exception("broadcast supervisor step failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    async def supervise_once(self) -> None:
        now = time.monotonic()
        if now - self._last_expiry > min(5.0, self.settings.claim_lease_seconds / 2):
            self._last_expiry = now
            lease = dt.timedelta(seconds=self.settings.claim_lease_seconds)
            expired = await self.repo.expire_claims(utcnow() - lease)
            if expired:
                log.warning(
                    "broadcast: %d deliveries were in flight when a sender stopped; marked "
                    "uncertain and not sent again",
                    expired,
                )
        active = await self.repo.active_runs()
        seen = set()
        for run in active:
            seen.add(run.id)
            info = await self._info(run)
            if info is None:
                continue
            info.status = run.status
            if run.status == RUN_EXPANDING:
                await self._expand(run)
            elif run.status == RUN_SENDING:
                if not run.test and now - info.skipped_at >= SKIP_INTERVAL_SECONDS:
                    # A write over the run's pending rows: every second, not every tick
                    # (on SQLite it takes the single writer's lock from the senders).
                    info.skipped_at = now
                    await self.repo.skip_unsubscribed(run.id)
                if not await self.repo.has_unfinished(run.id):
                    await self.campaigns.finish_run(run)
                    log.info("broadcast run %d of campaign %d done", run.id, run.campaign_id)
        for run_id in list(self._runs):
            if run_id not in seen:
                self._runs[run_id].status = "inactive"
                del self._runs[run_id]

    async def _info(self, run: RunView) -> _RunInfo | None:
        info = self._runs.get(run.id)
        if info is None:
            campaign = await self.repo.get(run.campaign_id)
            if campaign is None:
                return None
            message = compose(
                campaign.text,
                self.opt_out_line,
                link_title=campaign.link_title,
                link_url=campaign.link_url,
                image_url=campaign.image_url,
            )
            info = self._runs[run.id] = _RunInfo(campaign.id, message, run.status)
        return info

    async def _expand(self, run: RunView) -> None:
        campaign = await self.repo.get(run.campaign_id)
        if campaign is None:
            return
        cutoffs = {
            "zalo": utcnow() - dt.timedelta(days=self.settings.zalo_window_days),
        }
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline and not self._stopping.is_set():
            added = await self.repo.expand_batch(
                run.id,
                channels=campaign.channels,
                topics=campaign.topics,
                window_cutoffs=cutoffs,
                batch=EXPAND_BATCH,
            )
            if added is None:
                await self.repo.set_run_status(run.id, RUN_SENDING, expected={RUN_EXPANDING})
                expanded = await self.repo.run(run.id)
                log.info(
                    "broadcast run %d: audience of %d recipients",
                    run.id,
                    expanded.total if expanded else 0,
                )
                return

    # senders

    def _rate(self, channel: str) -> float:
        return {
            "telegram": self.settings.telegram_rate,
            "zalo": self.settings.zalo_rate,
        }.get(channel, 0.0)

    async def _send_loop(self, channel: str) -> None:
        rate = self._rate(channel)
        # Small bursts: in any one-second window at most rate + burst messages go out, so
        # the platform's own limit (Telegram ~30/s for 25 configured) is never reached.
        burst = max(1.0, rate / 10) if rate else 0.0
        limit = max(1, min(self.settings.claim_batch, int(rate) or UNLIMITED_IN_FLIGHT))
        running: set[asyncio.Task[None]] = set()
        idle = 0.05
        while not self._stopping.is_set():
            try:
                hold = self._holds.get(channel, 0.0) - time.monotonic()
                if hold > 0:
                    await self._sleep(hold)
                    continue
                free = limit - len(running) - self._unwritten[channel]
                if free <= 0 and not running:
                    # Only outcomes not yet in the ledger hold the window (they count as in
                    # flight, the crash bound): have them written now, not at the flusher's
                    # next tick. Waiting for the tick halved the throughput.
                    self._written.clear()
                    self._outcome_added.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._written.wait(), OUTCOME_FLUSH_SECONDS)
                    continue
                if free <= 0:
                    await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    continue
                want = free
                if rate:
                    granted, wait = await self.buckets.take(channel, want, rate=rate, burst=burst)
                    if granted == 0:
                        await self._sleep(max(0.002, wait))
                        continue
                    want = granted
                claimed = await self.repo.claim(
                    channel,
                    worker=self.worker,
                    limit=want,
                    urgent_only=self._quiet_now(),
                )
                if not claimed:
                    await self._sleep(idle)
                    idle = min(1.0, idle * 2)
                    continue
                idle = 0.05
                for row in claimed:
                    task = asyncio.create_task(self._deliver(channel, row, rate))
                    running.add(task)
                    task.add_done_callback(running.discard)
            except Exception:
                log.exception("broadcast sender for %s failed a step; will retry", channel)
                await self._sleep(1.0)
        if running:
            await asyncio.wait(running, timeout=15)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _quiet_now(self) -> bool:
        local = dt.datetime.now(self.campaigns.zone).time()
        return in_quiet_hours(local, self.settings.quiet_start, self.settings.quiet_end)

    async def _deliver(self, channel: str, row: Claimed, rate: float) -> None:
        try:
            await self._deliver_one(channel, row, rate)
        except Exception:
            # The row stays claimed; after the lease it is declared uncertain.
            log.exception("broadcast: delivery %d could not be processed", row.id)

    async def _deliver_one(self, channel: str, row: Claimed, rate: float) -> None:
        info = self._runs.get(row.run_id)
        if info is None:
            run = await self.repo.run(row.run_id)
            info = await self._info(run) if run else None
        if info is None or info.status not in (RUN_EXPANDING, RUN_SENDING):
            # Paused or cancelled since the claim (within a supervisor tick): not sent.
            current = (await self.repo.run_statuses([row.run_id])).get(row.run_id)
            if current in (RUN_EXPANDING, RUN_SENDING) and info is not None:
                info.status = current
            elif current == RUN_PAUSED:
                await self.repo.release(self.worker, [row.id])
                return
            else:
                self._record(channel, Outcome(row.id, CANCELLED, error="campaign cancelled"))
                return
        if channel == "telegram" and self.settings.telegram_per_chat_seconds:
            await self._space_chat(channel, row.external_id)
        courier = self.couriers[channel]
        try:
            message_id = await courier.deliver(row.external_id, info.message)
        except DeliveryError as exc:
            await self._failed(channel, row, info, exc, rate)
            return
        except Exception as exc:
            log.exception("courier %s raised unexpectedly", channel)
            error = DeliveryError(f"unexpected {type(exc).__name__}", permanent=False)
            await self._failed(channel, row, info, error, rate)
            return
        info.recent.append(False)
        self._record(channel, Outcome(row.id, SENT, message_id=message_id))

    async def _space_chat(self, channel: str, chat: str) -> None:
        """Telegram: at most one message per chat per ``telegram_per_chat_seconds`` (two
        campaigns sending at once may reach the same citizen)."""
        key = (channel, chat)
        now = time.monotonic()
        gap = self.settings.telegram_per_chat_seconds
        last = self._last_per_chat.get(key)
        if last is not None and now - last < gap:
            await asyncio.sleep(gap - (now - last))
        self._last_per_chat[key] = time.monotonic()
        if len(self._last_per_chat) > 100_000:
            cutoff = time.monotonic() - gap
            self._last_per_chat = {k: t for k, t in self._last_per_chat.items() if t > cutoff}

    async def _failed(
        self, channel: str, row: Claimed, info: _RunInfo, exc: DeliveryError, rate: float
    ) -> None:
        if exc.retry_after is not None:
            # The platform asked every sender of this bot/OA to slow down.
            self._holds[channel] = time.monotonic() + exc.retry_after
            if rate:
                await self.buckets.hold(channel, exc.retry_after, rate=rate)
            log.warning("broadcast %s: platform asked to wait %.0f s", channel, exc.retry_after)
        if exc.permanent:
            recipient = exc.kind in RECIPIENT_KINDS
            info.recent.append(not recipient)
            status = OUT_OF_WINDOW if exc.kind == "out_of_window" else FAILED
            self._record(channel, Outcome(row.id, status, error=exc.kind or exc.reason))
        elif row.attempts >= self.settings.max_attempts:
            info.recent.append(True)
            self._record(
                channel,
                Outcome(
                    row.id, FAILED, error=f"gave up after {row.attempts} attempts: {exc.reason}"
                ),
            )
        else:
            if exc.retry_after is None:
                info.recent.append(True)
            delay = exc.retry_after if exc.retry_after is not None else self._backoff(row.attempts)
            self._record(
                channel,
                Outcome(
                    row.id,
                    PENDING,
                    error=exc.reason,
                    next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
                ),
            )
        await self._check_error_rate(row.run_id, info)

    def _backoff(self, attempts: int) -> float:
        """Exponential backoff with full jitter (AWS architecture blog's recommendation)."""
        ceiling = min(
            self.settings.backoff_max_seconds,
            self.settings.backoff_base_seconds * 2 ** max(0, attempts - 1),
        )
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (not cryptographic)

    async def _check_error_rate(self, run_id: int, info: _RunInfo) -> None:
        window = list(info.recent)[-self.settings.error_window :]
        if len(window) < self.settings.error_window or info.paused:
            return
        share = sum(window) / len(window)
        if share <= self.settings.error_rate_threshold:
            return
        info.status = RUN_PAUSED
        info.paused = True
        reason = (
            f"tạm dừng tự động: {share:.0%} trong {len(window)} lần gửi gần nhất bị lỗi "
            f"(ngưỡng {self.settings.error_rate_threshold:.0%}); xem 'bot campaign report'"
        )
        log.error("broadcast run %d: %s", run_id, reason)
        with contextlib.suppress(WorkflowError):
            await self.campaigns.pause(info.campaign_id, actor=SYSTEM, reason=reason)

    # the ledger

    def _record(self, channel: str, outcome: Outcome) -> None:
        self._outcomes.append((channel, outcome))
        self._unwritten[channel] += 1
        if len(self._outcomes) >= OUTCOME_BATCH:
            self._outcome_added.set()

    async def _flush_outcomes(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcome_added.wait(), timeout=OUTCOME_FLUSH_SECONDS)
            self._outcome_added.clear()
            try:
                await self._write_outcomes()
            except Exception:
                log.exception("broadcast: could not record delivery outcomes; will retry")
                await asyncio.sleep(0.5)

    async def _write_outcomes(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            await self.repo.finish(self.worker, [outcome for _, outcome in batch])
        except Exception:
            self._outcomes = batch + self._outcomes
            raise
        self._unwritten.subtract(channel for channel, _ in batch)
        self._written.set()
