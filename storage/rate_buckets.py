"""Token buckets shared by every sender process, one row per channel.

A platform's limit is per bot (Telegram) or per OA (Zalo), not per process: senders in
several processes draw from the same bucket. Each draw is one compare-and-set UPDATE
(retried when another process drew in between), so it works the same on SQLite and
PostgreSQL without holding a lock across a round trip.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import RateBucket


class RateBuckets:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def take(
        self, channel: str, want: int, *, rate: float, burst: float, now: float | None = None
    ) -> tuple[int, float]:
        """Take up to ``want`` tokens. Returns (granted, seconds until the next token)."""
        for _ in range(20):
            clock = time.time() if now is None else now
            async with self._sessions.begin() as session:
                row = (
                    await session.execute(
                        select(RateBucket.tokens, RateBucket.stamp).where(
                            RateBucket.channel == channel
                        )
                    )
                ).one_or_none()
                if row is None:
                    dialect = (await session.connection()).dialect.name
                    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(RateBucket)
                    await session.execute(
                        ins.values(
                            channel=channel, tokens=burst, stamp=clock
                        ).on_conflict_do_nothing(index_elements=["channel"])
                    )
                    continue
                tokens, stamp = float(row[0]), float(row[1])
                available = min(burst, tokens + max(0.0, clock - stamp) * rate)
                granted = min(want, int(available))
                left = available - granted
                changed = await session.execute(
                    update(RateBucket)
                    .where(
                        RateBucket.channel == channel,
                        RateBucket.stamp == stamp,
                        RateBucket.tokens == tokens,
                    )
                    .values(tokens=left, stamp=max(clock, stamp))
                )
                if changed.rowcount != 1:  # type: ignore[attr-defined]
                    continue  # another sender drew meanwhile: read again
                wait = 0.0 if left >= 1 else (1 - left) / rate
                return granted, wait
        return 0, 1.0 / rate

    async def hold(self, channel: str, seconds: float, *, rate: float) -> None:
        """The platform asked to wait ``seconds`` (429 retry_after, Zalo -32): empty the
        bucket that far into debt, so every sender process waits, not only the one told."""
        clock = time.time()
        async with self._sessions.begin() as session:
            await session.execute(
                update(RateBucket)
                .where(RateBucket.channel == channel)
                .values(tokens=-rate * seconds, stamp=clock)
            )
