"""What staff read of citizens' feedback: the inbox in keyset pages (newest first), every
matching item for exports (id order), counts per status, an item's history, the survey rows
behind the satisfaction statistics, and the access log of contact data.

Pages are keyset pages (``id < n`` / ``id > n``), never OFFSET: the hundredth page of a
100,000-item inbox costs what the first does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.feedback import (
    FACTORS,
    PARTIAL,
    SURVEY,
    AccessView,
    FeedbackEventView,
    FeedbackFilter,
    FeedbackView,
    item_view,
)
from storage.models import DataAccess, FeedbackEvent, FeedbackItem, aware

SurveyRow = tuple[str | None, dt.datetime, tuple[int | None, ...]]


@dataclass(frozen=True, slots=True)
class InboxPage:
    """Items newest first; whether there are newer (before the first) and older (after the
    last) ones under the same filter."""

    items: list[FeedbackView]
    has_newer: bool
    has_older: bool


class FeedbackInbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def page(
        self,
        where: FeedbackFilter,
        *,
        older_than: int | None = None,
        newer_than: int | None = None,
        limit: int = 50,
    ) -> InboxPage:
        """``limit`` items, newest first: the first page, the page after the item
        ``older_than`` or the page before the item ``newer_than``."""
        conditions = where.conditions()
        query = select(FeedbackItem).where(*conditions)
        if newer_than is not None:
            query = query.where(FeedbackItem.id > newer_than).order_by(FeedbackItem.id)
        else:
            if older_than is not None:
                query = query.where(FeedbackItem.id < older_than)
            query = query.order_by(FeedbackItem.id.desc())
        async with self._sessions() as session:
            rows = list(await session.scalars(query.limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            if newer_than is not None:
                rows.reverse()
            items = [item_view(r) for r in rows]
            if not items:
                return InboxPage([], False, False)

            async def beyond(condition: ColumnElement[bool]) -> bool:
                found = await session.scalar(
                    select(FeedbackItem.id).where(condition, *conditions).limit(1)
                )
                return found is not None

            if newer_than is not None:
                return InboxPage(items, more, await beyond(FeedbackItem.id < items[-1].id))
            has_newer = older_than is not None and await beyond(FeedbackItem.id > items[0].id)
            return InboxPage(items, has_newer, more)

    async def status_counts(self, where: FeedbackFilter) -> dict[str, int]:
        """How many items of each status match ``where`` (its own statuses ignored)."""
        conditions = dataclasses.replace(where, statuses=None).conditions()
        async with self._sessions() as session:
            rows = await session.execute(
                select(FeedbackItem.status, func.count())
                .where(*conditions)
                .group_by(FeedbackItem.status)
            )
            return {status: int(n) for status, n in rows.all()}

    async def count(self, where: FeedbackFilter) -> int:
        async with self._sessions() as session:
            found = await session.scalar(
                select(func.count()).select_from(FeedbackItem).where(*where.conditions())
            )
            return int(found or 0)

    async def find(self, where: FeedbackFilter, *, limit: int | None = None) -> list[FeedbackView]:
        """Matching items in id order (oldest first), at most ``limit``."""
        found: list[FeedbackView] = []
        async with contextlib.aclosing(self.iter_items(where)) as items:
            async for item in items:
                found.append(item)
                if limit is not None and len(found) >= limit:
                    break
        return found

    async def iter_items(
        self, where: FeedbackFilter, *, batch: int = 1000
    ) -> AsyncGenerator[FeedbackView, None]:
        """Every matching item in id order, read in keyset pages (exports of any size); each
        page in its own session, so an export stopped half-way holds nothing open."""
        last = 0
        conditions = where.conditions()
        while True:
            query = (
                select(FeedbackItem)
                .where(FeedbackItem.id > last, *conditions)
                .order_by(FeedbackItem.id)
                .limit(batch)
            )
            async with self._sessions() as session:
                page = [item_view(r) for r in await session.scalars(query)]
            for view in page:
                yield view
            if len(page) < batch:
                return
            last = page[-1].id

    async def events(self, item_id: int) -> list[FeedbackEventView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(FeedbackEvent)
                .where(FeedbackEvent.item_id == item_id)
                .order_by(FeedbackEvent.id)
            )
            return [
                FeedbackEventView(
                    r.from_status,
                    r.to_status,
                    r.actor,
                    r.note,
                    aware(r.created_at) or r.created_at,
                    r.via,
                )
                for r in rows
            ]

    async def survey_rows(self, where: FeedbackFilter) -> list[SurveyRow]:
        """(service point, completed time, ratings) of every completed survey matching
        ``where``'s service point and period."""
        query = select(
            FeedbackItem.point_id,
            FeedbackItem.completed_at,
            *(getattr(FeedbackItem, f) for f in FACTORS),
        ).where(
            FeedbackItem.kind == SURVEY,
            FeedbackItem.status != PARTIAL,
            *FeedbackFilter(
                point_id=where.point_id, since=where.since, until=where.until
            ).conditions(),
        )
        async with self._sessions() as session:
            rows = (await session.execute(query.order_by(FeedbackItem.id))).all()
        return [
            (row[0], aware(row[1]) or row[1], tuple(row[2:])) for row in rows if row[1] is not None
        ]

    async def counts(self) -> dict[tuple[str, str], int]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(FeedbackItem.kind, FeedbackItem.status, func.count()).group_by(
                    FeedbackItem.kind, FeedbackItem.status
                )
            )
            return {(k, s): int(n) for k, s, n in rows.all()}

    async def access_log(self, *, limit: int = 100) -> list[AccessView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(DataAccess).order_by(DataAccess.id.desc()).limit(limit)
            )
            return [
                AccessView(r.actor, r.action, r.detail, aware(r.created_at) or r.created_at, r.via)
                for r in rows
            ]
