"""Repositories: the only code that reads and writes the database."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.log_writer import LogWriter
from storage.models import ConversationTurn, UnansweredQuestion, utcnow

MAX_LOGGED_TEXT = 1000
# Phone numbers, identity card and tax numbers, e-mail addresses: a citizen may type them in a
# question; the logs must not keep them (Decree 13/2023, data minimisation).
_PERSONAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d .-]{7,}\d")


def scrub(text: str) -> str:
    """Mask personal numbers and addresses in text that is about to be stored."""
    return _PERSONAL.sub("[đã ẩn]", text)[:MAX_LOGGED_TEXT]


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite gives back naive datetimes; everything stored is UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def _purge(
    sessions: async_sessionmaker[AsyncSession],
    model: type[ConversationTurn] | type[UnansweredQuestion],
    older_than: dt.datetime,
) -> int:
    """Delete the rows of a log older than the retention limit; returns how many."""
    async with sessions.begin() as session:
        result = await session.execute(delete(model).where(model.created_at < older_than))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class GapSummary:
    normalized_text: str
    count: int
    last_seen: dt.datetime
    top_score: float | None
    candidates: list[dict[str, Any]]


class ConversationLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], writer: LogWriter) -> None:
        self._sessions = sessions
        self._writer = writer

    async def record(
        self,
        *,
        channel: str,
        user_id: str,
        text: str,
        outcome: str | None,
        entry_id: str | None,
        score: float | None,
    ) -> None:
        self._writer.add(
            ConversationTurn.__table__,  # type: ignore[arg-type]
            {
                "channel": channel,
                "user_id": user_id,
                "text": scrub(text),
                "outcome": outcome,
                "entry_id": entry_id,
                "score": score,
                "created_at": utcnow(),
            },
        )

    async def flush(self) -> None:
        """Write the queued turns (and questions) now, e.g. before deleting a citizen's."""
        await self._writer.flush()

    async def recent(self, limit: int = 50) -> list[ConversationTurn]:
        await self._writer.flush()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ConversationTurn).order_by(ConversationTurn.id.desc()).limit(limit)
            )
            return list(rows)

    async def purge(self, older_than: dt.datetime) -> int:
        await self._writer.flush()
        return await _purge(self._sessions, ConversationTurn, older_than)


class GapLog:
    """Questions answered with a clarifying question or the fallback."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], writer: LogWriter) -> None:
        self._sessions = sessions
        self._writer = writer

    async def record(
        self,
        *,
        channel: str,
        user_id: str,
        normalized_text: str,
        outcome: str,
        top_score: float | None,
        candidates: list[dict[str, Any]],
    ) -> None:
        self._writer.add(
            UnansweredQuestion.__table__,  # type: ignore[arg-type]
            {
                "channel": channel,
                "user_id": user_id,
                "normalized_text": scrub(normalized_text)[:400],
                "outcome": outcome,
                "top_score": top_score,
                "candidates": candidates,
                "created_at": utcnow(),
            },
        )

    async def top(self, *, since: dt.datetime | None = None, limit: int = 20) -> list[GapSummary]:
        """The most frequent unanswered questions, most frequent first."""
        await self._writer.flush()
        count = func.count().label("n")
        last = func.max(UnansweredQuestion.created_at).label("last_seen")
        latest_id = func.max(UnansweredQuestion.id).label("latest_id")
        query = select(UnansweredQuestion.normalized_text, count, last, latest_id).group_by(
            UnansweredQuestion.normalized_text
        )
        if since is not None:
            query = query.where(UnansweredQuestion.created_at >= since)
        query = query.order_by(count.desc(), last.desc()).limit(limit)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            latest = {
                row.id: row
                for row in await session.scalars(
                    select(UnansweredQuestion).where(
                        UnansweredQuestion.id.in_([r.latest_id for r in rows])
                    )
                )
            }
        return [
            GapSummary(
                normalized_text=r.normalized_text,
                count=int(r.n),
                last_seen=_aware(r.last_seen),
                top_score=latest[r.latest_id].top_score,
                candidates=list(latest[r.latest_id].candidates or []),
            )
            for r in rows
        ]

    async def purge(self, older_than: dt.datetime) -> int:
        await self._writer.flush()
        return await _purge(self._sessions, UnansweredQuestion, older_than)
