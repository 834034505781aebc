"""Subscribers and their audit trail."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, TypeVarTuple

from sqlalchemy import ColumnElement, Row, Select, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.log_writer import LogWriter
from storage.models import Subscriber, SubscriptionChange, utcnow

ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BLOCKED = "blocked"
UNREACHABLE = "unreachable"
STATUSES = (ACTIVE, UNSUBSCRIBED, BLOCKED, UNREACHABLE)
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True, slots=True)
class SubscriberView:
    """A detached snapshot of a subscriber, safe to use after the session closed."""

    id: int
    channel: str
    external_id: str
    display_name: str | None
    status: str
    topics: tuple[str, ...]
    consent_at: dt.datetime | None
    consent_source: str | None
    last_interaction_at: dt.datetime | None


def _view(row: Subscriber) -> SubscriberView:
    return SubscriberView(
        id=row.id,
        channel=row.channel,
        external_id=row.external_id,
        display_name=row.display_name,
        status=row.status,
        topics=tuple(row.topics or ()),
        consent_at=_aware(row.consent_at),
        consent_source=row.consent_source,
        last_interaction_at=_aware(row.last_interaction_at),
    )


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=dt.UTC)


class SubscriberRepository:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], writer: LogWriter | None = None
    ) -> None:
        self._sessions = sessions
        # (channel, external id) -> (display name, time) of interactions not yet written.
        self._touches: dict[tuple[str, str], tuple[str | None, dt.datetime]] = {}
        self._statements: dict[str, Any] = {}
        if writer is not None:
            writer.add_flusher(self.flush_touches)

    def touch_soon(
        self, channel: str, external_id: str, *, display_name: str | None = None
    ) -> None:
        """Record an interaction without waiting for the database: written with the next
        batch (a quarter of a second), or before any read or change of this repository."""
        key = (channel, external_id)
        previous = self._touches.get(key)
        name = display_name or (previous[0] if previous else None)
        self._touches[key] = (name, utcnow())

    def forget_touch(self, channel: str, external_id: str) -> None:
        """Drop an interaction not yet written (the citizen just had their data deleted)."""
        self._touches.pop((channel, external_id), None)

    async def flush_touches(self) -> None:
        if not self._touches:
            return
        pending, self._touches = self._touches, {}
        try:
            await self._write_touches(pending)
        except Exception:
            # Keep them for the next attempt, without overwriting newer ones.
            self._touches = {**pending, **self._touches}
            raise

    async def _write_touches(
        self, pending: dict[tuple[str, str], tuple[str | None, dt.datetime]]
    ) -> None:
        rows: list[dict[str, object]] = [
            {
                "channel": channel,
                "external_id": external_id,
                "display_name": name[:200] if name else None,
                "status": UNSUBSCRIBED,
                "topics": [],
                "last_interaction_at": at,
                "created_at": at,
                "updated_at": at,
            }
            for (channel, external_id), (name, at) in pending.items()
        ]
        async with self._sessions.begin() as session:
            connection = await session.connection()
            # A Core executemany of one fixed statement: compiled once, whatever the batch.
            await connection.execute(self._touch_statement(connection.dialect.name), rows)
            returning = await session.scalars(
                select(Subscriber).where(
                    tuple_(Subscriber.channel, Subscriber.external_id).in_(list(pending)),
                    Subscriber.status.in_((UNREACHABLE, BLOCKED)),
                )
            )
            for row in returning:
                self._restore(session, row)

    def _touch_statement(self, dialect: str) -> Any:
        statement = self._statements.get(dialect)
        if statement is None:
            table = Subscriber.__table__
            insert = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)  # type: ignore[arg-type]
            statement = insert.on_conflict_do_update(
                index_elements=["channel", "external_id"],
                set_={
                    "last_interaction_at": insert.excluded.last_interaction_at,
                    "updated_at": insert.excluded.updated_at,
                    "display_name": func.coalesce(
                        insert.excluded.display_name, table.c.display_name
                    ),
                },
            )
            self._statements[dialect] = statement
        return statement

    @staticmethod
    def _restore(session: AsyncSession, row: Subscriber) -> None:
        """They wrote to us, so they unblocked the bot and the platform lets us answer."""
        restored = ACTIVE if row.consent_at and row.topics else UNSUBSCRIBED
        session.add(
            SubscriptionChange(
                subscriber_id=row.id,
                action=restored,
                topics=list(row.topics or []),
                source=f"{row.channel}:message",
            )
        )
        row.status = restored

    async def _row(
        self, session: AsyncSession, channel: str, external_id: str, display_name: str | None
    ) -> Subscriber:
        """The subscriber's row, created on first contact (concurrent workers may race)."""
        query = select(Subscriber).where(
            Subscriber.channel == channel, Subscriber.external_id == external_id
        )
        row = await session.scalar(query)
        if row is None:
            try:
                async with session.begin_nested():
                    row = Subscriber(
                        channel=channel,
                        external_id=external_id,
                        display_name=display_name,
                        status=UNSUBSCRIBED,
                        topics=[],
                    )
                    session.add(row)
            except IntegrityError:
                row = await session.scalar(query)
                assert row is not None
        if display_name and row.display_name != display_name:
            row.display_name = display_name[:200]
        return row

    async def get(self, channel: str, external_id: str) -> SubscriberView | None:
        await self.flush_touches()
        async with self._sessions() as session:
            row = await session.scalar(
                select(Subscriber).where(
                    Subscriber.channel == channel, Subscriber.external_id == external_id
                )
            )
            return _view(row) if row else None

    async def touch(
        self,
        channel: str,
        external_id: str,
        *,
        display_name: str | None = None,
        at: dt.datetime | None = None,
    ) -> None:
        """Record an interaction (Zalo only lets an OA write within 7 days of the last one).

        This runs for every message, so it is one upsert; only a blocked or unreachable
        subscriber (they wrote, so they are back) takes the slower path that audits it."""
        now = at or utcnow()
        values: dict[str, object] = {
            "channel": channel,
            "external_id": external_id,
            "display_name": display_name[:200] if display_name else None,
            "status": UNSUBSCRIBED,
            "topics": [],
            "last_interaction_at": now,
            "created_at": now,
            "updated_at": now,
        }
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            statement = insert(Subscriber).values(**values)
            changes: dict[str, object] = {"last_interaction_at": now, "updated_at": now}
            if display_name:
                changes["display_name"] = statement.excluded.display_name
            upsert = statement.on_conflict_do_update(
                index_elements=["channel", "external_id"], set_=changes
            ).returning(Subscriber.status)
            status = (await session.execute(upsert)).scalar_one()
            if status not in (UNREACHABLE, BLOCKED):
                return
            self._restore(session, await self._row(session, channel, external_id, None))

    async def subscribe(
        self,
        channel: str,
        external_id: str,
        topics: Sequence[str],
        *,
        source: str,
        display_name: str | None = None,
    ) -> SubscriberView:
        """Subscribe (again) to ``topics``, recording consent time and source."""
        await self.flush_touches()
        async with self._sessions.begin() as session:
            row = await self._row(session, channel, external_id, display_name)
            row.status = ACTIVE
            row.topics = list(dict.fromkeys(topics))
            row.consent_at = utcnow()
            row.consent_source = source[:64]
            session.add(
                SubscriptionChange(
                    subscriber_id=row.id, action="subscribe", topics=row.topics, source=source[:64]
                )
            )
            await session.flush()
            return _view(row)

    async def unsubscribe(self, channel: str, external_id: str, *, source: str) -> SubscriberView:
        await self.flush_touches()
        async with self._sessions.begin() as session:
            row = await self._row(session, channel, external_id, None)
            row.status = UNSUBSCRIBED
            session.add(
                SubscriptionChange(
                    subscriber_id=row.id, action="unsubscribe", topics=[], source=source[:64]
                )
            )
            await session.flush()
            return _view(row)

    async def set_status(
        self, channel: str, external_id: str, status: str, *, source: str
    ) -> SubscriberView:
        """Mark a subscriber blocked, unreachable or (after they return) active again."""
        await self.flush_touches()
        if status not in STATUSES:
            raise ValueError(f"unknown subscriber status {status!r}")
        async with self._sessions.begin() as session:
            row = await self._row(session, channel, external_id, None)
            if row.status != status:
                row.status = status
                session.add(
                    SubscriptionChange(
                        subscriber_id=row.id,
                        action=status,
                        topics=list(row.topics or []),
                        source=source[:64],
                    )
                )
            await session.flush()
            return _view(row)

    async def history(self, channel: str, external_id: str) -> list[tuple[str, str, dt.datetime]]:
        """(action, source, time) of every change, oldest first."""
        await self.flush_touches()
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    SubscriptionChange.action,
                    SubscriptionChange.source,
                    SubscriptionChange.created_at,
                )
                .join(Subscriber, Subscriber.id == SubscriptionChange.subscriber_id)
                .where(Subscriber.channel == channel, Subscriber.external_id == external_id)
                .order_by(SubscriptionChange.id)
            )
            return [(a, s, _aware(t) or t) for a, s, t in rows.all()]

    async def count(self, *, status: str | None = None, channel: str | None = None) -> int:
        await self.flush_touches()
        query = select(func.count()).select_from(Subscriber)
        if status is not None:
            query = query.where(Subscriber.status == status)
        if channel is not None:
            query = query.where(Subscriber.channel == channel)
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)

    async def count_by(
        self, *, status: str | None = None, channel: str | None = None, topic: str | None = None
    ) -> int:
        """How many subscribers :meth:`iter_views` yields with the same filters."""
        if topic is None:
            return await self.count(status=status, channel=channel)
        return sum((await self.count_grouped(status=status, channel=channel, topic=topic)).values())

    async def count_grouped(
        self, *, status: str | None = None, channel: str | None = None, topic: str | None = None
    ) -> dict[tuple[str, str], int]:
        """(channel, status) -> number of subscribers, with :meth:`iter_views`' filters."""
        await self.flush_touches()
        conditions = _conditions(status, channel)
        if topic is None:
            query = (
                select(Subscriber.channel, Subscriber.status, func.count())
                .where(*conditions)
                .group_by(Subscriber.channel, Subscriber.status)
            )
            async with self._sessions() as session:
                rows = await session.execute(query)
                return {(c, s): int(n) for c, s, n in rows.all()}
        counts: Counter[tuple[str, str]] = Counter()
        scan = select(Subscriber.id, Subscriber.channel, Subscriber.status, Subscriber.topics)
        async for page in self._pages(scan.where(*conditions), lambda row: row, 5000):
            counts.update((c, s) for _, c, s, topics in page if topic in (topics or ()))
        return dict(counts)

    async def iter_views(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        topic: str | None = None,
        batch: int = 1000,
    ) -> AsyncGenerator[SubscriberView, None]:
        """Every matching subscriber, ordered by id, read in keyset batches of ``batch`` rows
        (``WHERE id > last ORDER BY id LIMIT batch``): memory stays flat whatever the table
        size, and rows changed or added meanwhile are neither skipped nor repeated.

        ``topic`` keeps the subscribers whose ``topics`` list holds it; that test runs in
        Python on each batch, as JSON containment is spelled differently on every database.
        No session or connection is held while the caller handles a batch, so the caller may
        use this repository (e.g. mark a subscriber blocked) in the middle of the loop."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        await self.flush_touches()
        query = select(Subscriber.id, Subscriber).where(*_conditions(status, channel))
        async for page in self._pages(query, lambda row: _view(row[1]), batch):
            for view in page:
                if topic is None or topic in view.topics:
                    yield view

    async def _pages(
        self,
        query: Select[int, *Ts],
        convert: Callable[[Row[int, *Ts]], T],
        batch: int,
    ) -> AsyncIterator[list[T]]:
        """Run ``query`` (whose first column is ``Subscriber.id``) page by page on the id."""
        last: int | None = None
        while True:
            page = query.order_by(Subscriber.id).limit(batch)
            if last is not None:
                page = page.where(Subscriber.id > last)
            async with self._sessions() as session:
                rows = (await session.execute(page)).all()
                converted = [convert(row) for row in rows]
            if not rows:
                return
            yield converted
            if len(rows) < batch:
                return
            last = rows[-1][0]


def _conditions(status: str | None, channel: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Subscriber.status == status)
    if channel is not None:
        conditions.append(Subscriber.channel == channel)
    return conditions
