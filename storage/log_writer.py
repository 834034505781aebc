"""Batched writes for append-only logs (conversation turns, unanswered questions).

A citizen's answer must not wait for the log: rows are queued in memory and written in one
transaction every ``interval`` seconds, or as soon as ``batch`` rows are waiting. Reads of
the logs flush first, so a process always sees its own writes. On shutdown everything queued
is written. If the database refuses a batch, it is kept (up to ``limit`` rows) and retried on
the next flush; beyond that the oldest rows are dropped with an error in the log, because a
full disk must not take the chatbot down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


class LogWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval: float = 0.25,
        batch: int = 200,
        limit: int = 50_000,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._batch = batch
        self._pending: deque[tuple[Table, dict[str, Any]]] = deque(maxlen=limit)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushers: list[Callable[[], Awaitable[None]]] = []

    def add_flusher(self, flusher: Callable[[], Awaitable[None]]) -> None:
        """Also run ``flusher`` on every tick (other write-behind buffers, e.g. touches)."""
        self._flushers.append(flusher)

    def add(self, table: Table, row: dict[str, Any]) -> None:
        if len(self._pending) == self._pending.maxlen:
            log.error("log writer is full; the oldest queued log row is dropped")
        self._pending.append((table, row))
        if len(self._pending) >= self._batch:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="log-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
            for flusher in self._flushers:
                await flusher()
        except Exception:
            log.exception("could not write %d queued log rows at shutdown", len(self._pending))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.flush()
                for flusher in self._flushers:
                    await flusher()
            except Exception:
                log.exception("could not write queued rows; they will be retried")

    async def flush(self) -> None:
        """Write everything queued so far, one statement per table, in one transaction."""
        async with self._lock:
            if not self._pending:
                return
            taken = list(self._pending)
            self._pending.clear()
            by_table: dict[Table, list[dict[str, Any]]] = {}
            for table, row in taken:
                by_table.setdefault(table, []).append(row)
            try:
                async with self._engine.begin() as conn:
                    for table, rows in by_table.items():
                        await conn.execute(insert(table), rows)
            except Exception:
                # Put them back in front, in order, for the next attempt.
                self._pending.extendleft(reversed(taken))
                raise
