"""Bulk seeding of subscribers, feedback items (with their histories) and audit rows, for
benchmarks and load tests.

One executemany INSERT per chunk, each chunk its own transaction, rows streamed from an
iterable (a generator of a million rows stays flat in memory). Nothing else is written: no
``subscription_changes`` audit rows, no upsert, no checks. Real citizens subscribe through
``SubscriberRepository.subscribe``, which records their consent; real feedback comes through
``FeedbackRepository`` and ``FeedbackDesk``. ``benchmarks/feedback_samples.py`` makes a year
of plausible feedback and audit rows to write with these.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.feedback import search_text
from storage.models import AuditEntry, FeedbackEvent, FeedbackItem, Subscriber, utcnow
from storage.subscribers import ACTIVE

SEED_SOURCE = "seed"


async def bulk_subscribers(
    engine: AsyncEngine, rows: Iterable[Mapping[str, Any]], *, chunk: int = 10_000
) -> int:
    """Insert ``rows`` into ``subscribers``; returns how many were inserted.

    Each row needs ``channel`` and ``external_id``; the other columns default to an active
    subscriber of every topic (``topics`` empty) who consented and last wrote now. Rows
    must all give the same keys. A duplicate (channel, external_id) fails its chunk."""
    now = utcnow()
    defaults: dict[str, Any] = {
        "display_name": None,
        "status": ACTIVE,
        "topics": [],
        "consent_at": now,
        "consent_source": SEED_SOURCE,
        "last_interaction_at": now,
        "created_at": now,
        "updated_at": now,
    }
    statement = insert(Subscriber.__table__)  # type: ignore[arg-type]
    total = 0
    source = iter(rows)
    while True:
        batch = [{**defaults, **row} for row in itertools.islice(source, chunk)]
        if not batch:
            return total
        async with engine.begin() as connection:
            await connection.execute(statement, batch)
        total += len(batch)


# --- feedback items and audit rows -----------------------------------------------------------


async def bulk_feedback(
    engine: AsyncEngine, rows: Iterable[Mapping[str, Any]], *, chunk: int = 5_000
) -> int:
    """Insert ``rows`` into ``feedback_items``, and each row's ``events`` (a list of
    ``feedback_events`` rows without ``item_id``) as its history; returns how many items
    were inserted.

    Each row needs ``code``, ``kind``, ``status``, ``channel`` and ``deadline_at``; any other
    column defaults to null (``created_at``, ``updated_at``: now). ``search_text``, unless
    given, is folded from the comment, description and answer as the repository does, so the
    console's text search finds what it would find in real data. A duplicate code fails its
    chunk. Items get their ids in the order given; the chunk's new ids are read back (every
    id above the largest before the chunk) to attach the histories, so nothing else may
    insert items while this runs."""
    now = utcnow()
    defaults: dict[str, Any] = dict.fromkeys(_ITEM_COLUMNS)
    defaults.update(created_at=now, updated_at=now)
    event_defaults: dict[str, Any] = {"from_status": None, "via": None, "note": None}
    source = iter(rows)
    total = 0
    while True:
        batch: list[dict[str, Any]] = []
        histories: dict[str, list[Mapping[str, Any]]] = {}
        for row in itertools.islice(source, chunk):
            values = {**defaults, **row}
            events = values.pop("events", None)
            if "search_text" not in row:
                values["search_text"] = search_text(
                    values["comment"], values["description"], values["answer"]
                )
            if events:
                histories[values["code"]] = list(events)
            batch.append(values)
        if not batch:
            return total
        async with engine.begin() as connection:
            last = await connection.scalar(select(func.max(FeedbackItem.id)))
            await connection.execute(insert(FeedbackItem), batch)
            if histories:
                found = await connection.execute(
                    select(FeedbackItem.code, FeedbackItem.id).where(FeedbackItem.id > (last or 0))
                )
                ids: dict[str, int] = dict(found.tuples().all())
                history = [
                    {**event_defaults, **event, "item_id": ids[code]}
                    for code, events in histories.items()
                    for event in events
                ]
                await connection.execute(insert(FeedbackEvent), history)
        total += len(batch)


async def bulk_audit(
    engine: AsyncEngine, rows: Iterable[Mapping[str, Any]], *, chunk: int = 10_000
) -> int:
    """Insert ``rows`` into ``audit_log``; returns how many were inserted. Each row needs
    ``actor``, ``via`` and ``action``; ``created_at`` defaults to now, the rest to null."""
    defaults: dict[str, Any] = {
        "created_at": utcnow(),
        "account_id": None,
        "target": None,
        "detail": None,
        "address": None,
    }
    source = iter(rows)
    total = 0
    while True:
        batch = [{**defaults, **row} for row in itertools.islice(source, chunk)]
        if not batch:
            return total
        async with engine.begin() as connection:
            await connection.execute(insert(AuditEntry), batch)
        total += len(batch)


_ITEM_COLUMNS = tuple(c.name for c in FeedbackItem.__table__.columns if c.name != "id")
