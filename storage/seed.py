"""Bulk seeding of subscribers, for benchmarks and load tests.

One executemany INSERT per chunk, each chunk its own transaction, rows streamed from an
iterable (a generator of a million rows stays flat in memory). Nothing else is written: no
``subscription_changes`` audit rows, no upsert, no checks. Real citizens subscribe through
``SubscriberRepository.subscribe``, which records their consent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Subscriber, utcnow
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
