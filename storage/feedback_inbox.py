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
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, literal_column, select
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


@dataclass(frozen=True, slots=True)
class SurveyTotal:
    """Completed surveys of one service point in one period bucket: how many, and per
    factor (in ``FACTORS`` order) how many answered it, the sum of its ratings and how
    many rated it satisfied."""

    point_id: str | None
    bucket: int
    responses: int
    answered: tuple[int, ...]
    total: tuple[int, ...]
    satisfied: tuple[int, ...]


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

    async def listing(
        self,
        where: FeedbackFilter,
        *,
        older_than: int | None = None,
        newer_than: int | None = None,
        limit: int = 50,
    ) -> tuple[InboxPage, dict[str, int]]:
        """A page (as ``page``) and the counts per status (as ``status_counts``).

        A text search cannot use an index (``LIKE '%…%'``), so it reads the table once:
        the ids and statuses of every match, newest first, give both the counts and the
        page, whose rows are then read by id. Other filters are served by indexes, twice."""
        if not where.text:
            page = await self.page(where, older_than=older_than, newer_than=newer_than, limit=limit)
            return page, await self.status_counts(where)
        anywhere = dataclasses.replace(where, statuses=None).conditions()
        async with self._sessions() as session:
            matches = (
                await session.execute(
                    select(FeedbackItem.id, FeedbackItem.status)
                    .where(*anywhere)
                    .order_by(FeedbackItem.id.desc())
                )
            ).all()
            counts = dict(Counter(status for _, status in matches))
            wanted = set(where.statuses or ())
            ids = [i for i, status in matches if not wanted or status in wanted]
            if newer_than is not None:
                newer = [i for i in ids if i > newer_than]
                chosen, has_newer = newer[-limit:], len(newer) > limit
                has_older = bool(chosen) and ids[-1] < chosen[-1]
            else:
                older = [i for i in ids if older_than is None or i < older_than]
                chosen, has_older = older[:limit], len(older) > limit
                has_newer = bool(chosen) and ids[0] > chosen[0]
            rows = await session.scalars(
                select(FeedbackItem)
                .where(FeedbackItem.id.in_(chosen))
                .order_by(FeedbackItem.id.desc())
            )
            items = [item_view(r) for r in rows]
        return InboxPage(items, has_newer and bool(items), has_older and bool(items)), counts

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

    def _surveys(self, where: FeedbackFilter) -> list[ColumnElement[bool]]:
        """Completed surveys of ``where``'s service point and filing period."""
        return [
            FeedbackItem.kind == SURVEY,
            FeedbackItem.status != PARTIAL,
            FeedbackItem.completed_at.is_not(None),
            *FeedbackFilter(
                point_id=where.point_id, since=where.since, until=where.until
            ).conditions(),
        ]

    async def survey_span(self, where: FeedbackFilter) -> tuple[dt.datetime, dt.datetime] | None:
        """When the first and the last matching survey was completed (None: no survey)."""
        query = select(
            func.min(FeedbackItem.completed_at), func.max(FeedbackItem.completed_at)
        ).where(*self._surveys(where))
        async with self._sessions() as session:
            first, last = (await session.execute(query)).one()
        if first is None or last is None:
            return None
        return aware(first) or first, aware(last) or last

    async def survey_totals(
        self, where: FeedbackFilter, edges: Sequence[dt.datetime], *, satisfied_from: int
    ) -> list[SurveyTotal]:
        """Matching surveys summed in the database per service point and period bucket:
        bucket ``i`` holds the surveys completed before ``edges[i]`` and not before
        ``edges[i - 1]``. A statistics page over a year reads a few hundred sums instead of
        tens of thousands of rows."""
        completed = FeedbackItem.completed_at
        bucket = (
            case(*((completed < edge, i) for i, edge in enumerate(edges)), else_=len(edges))
            if edges
            else literal(0)
        ).label("bucket")
        sums: list[Any] = []
        for factor in FACTORS:
            rating = getattr(FeedbackItem, factor)
            sums += [
                func.count(rating),
                func.coalesce(func.sum(rating), 0),
                func.coalesce(func.sum(case((rating >= satisfied_from, 1), else_=0)), 0),
            ]
        query = (
            select(FeedbackItem.point_id, bucket, func.count(), *sums)
            .where(*self._surveys(where))
            # By the label: PostgreSQL would not take two copies of a CASE with parameters.
            .group_by(FeedbackItem.point_id, literal_column("bucket"))
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [
            SurveyTotal(
                point_id=row[0],
                bucket=int(row[1]),
                responses=int(row[2]),
                answered=tuple(int(v) for v in row[3::3]),
                total=tuple(int(v) for v in row[4::3]),
                satisfied=tuple(int(v) for v in row[5::3]),
            )
            for row in rows
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
