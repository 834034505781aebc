"""Channel plumbing that must be shared by every worker: which webhook deliveries were already
handled, and the current token pair of channels whose tokens rotate."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.grouping import fail_waiting
from storage.models import ChannelToken, OfferedChoice, ProcessedUpdate, utcnow


class ProcessedUpdates:
    """At-most-once processing of redelivered webhook updates, across workers.

    Claims that arrive together (a burst of webhook calls) are written as one multi-row
    INSERT … ON CONFLICT DO NOTHING RETURNING: the rows it returns are the claims won, so a
    busy webhook pays one database round trip per batch instead of one per update.
    """

    BATCH_WINDOW_SECONDS = 0.002

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._waiting: dict[tuple[str, str], list[asyncio.Future[bool]]] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._statements: dict[str, Any] = {}

    async def first_time(self, channel: str, key: str) -> bool:
        """Claim ``key``; True only for the first caller, whichever worker it is."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((channel, key[:128]), []).append(future)
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        # A couple of milliseconds let the updates arriving together join one batch: under
        # load that is one database round trip for dozens of updates.
        await asyncio.sleep(self.BATCH_WINDOW_SECONDS)
        batch, self._waiting, self._flushing = self._waiting, {}, None
        now = utcnow()
        rows = [{"channel": c, "update_key": k, "created_at": now} for c, k in batch]
        try:
            async with self._sessions.begin() as session:
                connection = await session.connection()
                statement = self._statements.get(connection.dialect.name)
                if statement is None:
                    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
                    # One fixed Core statement, executed for many rows: compiled once and
                    # cached, whatever the size of the batch.
                    table = ProcessedUpdate.__table__
                    statement = (
                        insert(table)  # type: ignore[arg-type]
                        .on_conflict_do_nothing()
                        .returning(table.c.channel, table.c.update_key)
                    )
                    self._statements[connection.dialect.name] = statement
                result = await connection.execute(statement, rows)
                won = {(c, k) for c, k in result.all()}
        except Exception as exc:
            fail_waiting(batch, exc)
            return
        for claim, futures in batch.items():
            # Within one batch, the first of several identical claims wins.
            for i, future in enumerate(futures):
                if not future.done():
                    future.set_result(i == 0 and claim in won)

    async def purge(self, older_than: dt.datetime) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ProcessedUpdate).where(ProcessedUpdate.created_at < older_than)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_at: dt.datetime


Refresher = Callable[[str], Awaitable[TokenPair]]


class TokenStore:
    """The token pair of a channel, refreshed by one worker at a time.

    A refresh token is single-use (Zalo): two workers refreshing with it at once would lose the
    pair. ``refresh`` therefore locks the row (``FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers), re-reads it, refreshes only if nobody did meanwhile, and commits the new pair
    before anyone uses it. When the refresher raises, the transaction rolls back and the old
    pair stays.
    """

    # Every send needs the pair; reading it at most this often keeps the database off the
    # hot path. A pair another worker replaced meanwhile is refused by the platform (-216),
    # and refresh() then finds and returns the new one.
    CACHE_SECONDS = 30.0

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._local = asyncio.Lock()
        self._cache: dict[str, tuple[TokenPair, float]] = {}

    async def get(self, channel: str) -> TokenPair | None:
        cached = self._cache.get(channel)
        if cached is not None and time.monotonic() - cached[1] < self.CACHE_SECONDS:
            return cached[0]
        async with self._sessions() as session:
            row = await session.get(ChannelToken, channel)
        if row is None:
            return None
        return self._remember(channel, _pair(row))

    def _remember(self, channel: str, pair: TokenPair) -> TokenPair:
        self._cache[channel] = (pair, time.monotonic())
        return pair

    async def seed(self, channel: str, pair: TokenPair) -> TokenPair:
        """Store ``pair`` unless the channel already has one (the database wins after the
        first start: the environment's refresh token has long been used)."""
        try:
            async with self._sessions.begin() as session:
                if await session.get(ChannelToken, channel) is None:
                    session.add(
                        ChannelToken(
                            channel=channel,
                            access_token=pair.access_token,
                            refresh_token=pair.refresh_token,
                            expires_at=pair.expires_at,
                        )
                    )
        except IntegrityError:
            pass
        self._cache.pop(channel, None)
        current = await self.get(channel)
        assert current is not None
        return current

    async def refresh(
        self, channel: str, stale_access_token: str, refresher: Refresher
    ) -> TokenPair:
        """Replace the pair whose access token is ``stale_access_token`` using ``refresher``
        (called with the refresh token); if another worker already replaced it, return theirs."""
        async with self._local, self._sessions.begin() as session:
            # Take the row lock first so a concurrent refresher waits here.
            await session.execute(
                update(ChannelToken)
                .where(ChannelToken.channel == channel)
                .values(channel=ChannelToken.channel)
            )
            row = await session.scalar(
                select(ChannelToken).where(ChannelToken.channel == channel).with_for_update()
            )
            if row is None:
                raise LookupError(f"no token pair stored for {channel}")
            if row.access_token != stale_access_token:
                return self._remember(channel, _pair(row))
            fresh = await refresher(row.refresh_token)
            row.access_token = fresh.access_token
            row.refresh_token = fresh.refresh_token
            row.expires_at = fresh.expires_at
            row.updated_at = utcnow()
        # Only once committed: a failed commit must not leave an unsaved pair in use.
        return self._remember(channel, fresh)


def _pair(row: ChannelToken) -> TokenPair:
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=dt.UTC)
    return TokenPair(row.access_token, row.refresh_token, expires)


class OfferedChoices:
    """Numbered choices shown as text; ``resolve`` turns a typed number back into a payload."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def remember(self, channel: str, external_id: str, payloads: list[str]) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(OfferedChoice, (channel, external_id))
            if row is None:
                session.add(
                    OfferedChoice(channel=channel, external_id=external_id, payloads=payloads)
                )
            else:
                row.payloads = payloads
                row.created_at = utcnow()

    async def forget(self, channel: str, external_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(OfferedChoice).where(
                    OfferedChoice.channel == channel, OfferedChoice.external_id == external_id
                )
            )

    async def resolve(
        self,
        channel: str,
        external_id: str,
        number: int,
        *,
        max_age: dt.timedelta = dt.timedelta(hours=24),
    ) -> str | None:
        """The payload of choice ``number`` of the list shown within ``max_age``; a number
        typed days later is just text."""
        async with self._sessions() as session:
            row = await session.get(OfferedChoice, (channel, external_id))
            if row is None or not 1 <= number <= len(row.payloads):
                return None
            shown = (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
            )
            if utcnow() - shown > max_age:
                return None
            return str(row.payloads[number - 1])
