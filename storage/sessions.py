"""Citizen sessions: the guided flow a citizen is in, and whether answers wait for them.

Read once per incoming message (a primary-key lookup), so a flow survives a restart and any
worker can take the next message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, delete, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.grouping import fail_waiting
from storage.models import CitizenSession, aware, utcnow


@dataclass(frozen=True, slots=True)
class SessionState:
    """A snapshot of a citizen's session. ``flow`` is None when no flow is active (none was
    started, it ended, or it expired)."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    has_notice: bool = False


class CitizenSessions:
    """Sessions are read for every incoming message, so reads are grouped: while one read is
    at the database, the lookups that arrive meanwhile wait and go together in the next
    ``SELECT … WHERE (channel, external_id) IN (…)``. An idle bot reads at once; a busy one
    makes one round trip per group instead of one per message (SQLite has one connection per
    process, which a read per message would queue behind)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._waiting: dict[tuple[str, str], list[asyncio.Future[Row[Any] | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def get(
        self, channel: str, external_id: str, *, now: dt.datetime | None = None
    ) -> SessionState | None:
        future: asyncio.Future[Row[Any] | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault((channel, external_id), []).append(future)
        if self._reading is None:
            self._reading = asyncio.create_task(self._read_groups())
        row = await future
        if row is None:
            return None
        expires = aware(row.expires_at)
        active = row.flow is not None and (expires is None or expires > (now or utcnow()))
        if not active:
            return SessionState(has_notice=row.has_notice)
        return SessionState(row.flow, row.step, dict(row.data or {}), row.has_notice)

    async def _read_groups(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                await self._read(batch)
        finally:
            self._reading = None

    async def _read(
        self, batch: dict[tuple[str, str], list[asyncio.Future[Row[Any] | None]]]
    ) -> None:
        table = CitizenSession.__table__
        query = select(table).where(tuple_(table.c.channel, table.c.external_id).in_(list(batch)))
        try:
            async with self._sessions() as session:
                # Core on the session's connection: no ORM result processing for a hot read.
                connection = await session.connection()
                result = await connection.execute(query)
                rows = {(r.channel, r.external_id): r for r in result}
        except Exception as exc:
            fail_waiting(batch, exc)
            return
        for key, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(rows.get(key))

    async def _upsert(self, channel: str, external_id: str, values: dict[str, Any]) -> None:
        now = utcnow()
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            defaults: dict[str, Any] = {
                "channel": channel,
                "external_id": external_id,
                "flow": None,
                "step": None,
                "data": {},
                "expires_at": None,
                "has_notice": False,
                "updated_at": now,
            }
            statement = insert(CitizenSession).values(**{**defaults, **values})
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=["channel", "external_id"],
                    set_={**values, "updated_at": now},
                )
            )

    async def set_flow(
        self,
        channel: str,
        external_id: str,
        flow: str,
        step: str,
        data: dict[str, Any],
        *,
        ttl: dt.timedelta,
    ) -> None:
        """Start or advance a flow; it lapses ``ttl`` after this message."""
        await self._upsert(
            channel,
            external_id,
            {"flow": flow, "step": step, "data": data, "expires_at": utcnow() + ttl},
        )

    async def end_flow(self, channel: str, external_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(CitizenSession)
                .where(CitizenSession.channel == channel, CitizenSession.external_id == external_id)
                .values(flow=None, step=None, data={}, expires_at=None, updated_at=utcnow())
            )

    async def flag_notice(self, channel: str, external_id: str, waiting: bool) -> None:
        """Say whether staff answers wait for this citizen's next message."""
        await self._upsert(channel, external_id, {"has_notice": waiting})

    async def erase(self, channel: str, external_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(CitizenSession).where(
                    CitizenSession.channel == channel, CitizenSession.external_id == external_id
                )
            )

    async def purge(self, now: dt.datetime | None = None) -> int:
        """Drop sessions whose flow lapsed and that hold no waiting answer."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(CitizenSession).where(
                    CitizenSession.has_notice.is_(False),
                    or_(
                        CitizenSession.flow.is_(None),
                        CitizenSession.expires_at < (now or utcnow()),
                    ),
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
