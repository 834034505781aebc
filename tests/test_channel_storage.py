"""Channel plumbing shared by workers, on SQLite and PostgreSQL: dedupe, tokens, choices."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from storage import db
from storage.channels import OfferedChoices, ProcessedUpdates, TokenPair, TokenStore
from storage.subscribers import SubscriberRepository


def pair(n: int) -> TokenPair:
    return TokenPair(f"access-{n}", f"refresh-{n}", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))


async def test_each_update_is_claimed_once_even_concurrently(database_url: str) -> None:
    engines = [db.create_engine(database_url) for _ in range(2)]
    try:
        await db.upgrade(engines[0])
        stores = [ProcessedUpdates(db.sessionmaker(e)) for e in engines]
        claims = await asyncio.gather(
            *(stores[i % 2].first_time("telegram", "1001") for i in range(6))
        )
        assert sorted(claims) == [False] * 5 + [True]
        assert await stores[0].first_time("zalo", "1001")  # per channel
        assert await stores[0].purge(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) == 2
        assert await stores[1].first_time("telegram", "1001")
    finally:
        for engine in engines:
            await engine.dispose()


async def test_refresh_uses_the_single_use_token_once(database_url: str) -> None:
    engines = [db.create_engine(database_url) for _ in range(2)]
    calls: list[str] = []

    async def refresher(refresh_token: str) -> TokenPair:
        calls.append(refresh_token)
        await asyncio.sleep(0.05)  # the other worker arrives while this one is refreshing
        return pair(2)

    try:
        await db.upgrade(engines[0])
        stores = [TokenStore(db.sessionmaker(e)) for e in engines]
        assert await stores[0].seed("zalo", pair(1)) == pair(1)
        assert await stores[1].seed("zalo", pair(9)) == pair(1)  # the database wins
        results = await asyncio.gather(
            stores[0].refresh("zalo", "access-1", refresher),
            stores[1].refresh("zalo", "access-1", refresher),
        )
        assert calls == ["refresh-1"]
        assert results == [pair(2), pair(2)]
        assert await stores[1].get("zalo") == pair(2)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_failed_refresh_keeps_the_old_pair(database_url: str) -> None:
    engine = db.create_engine(database_url)

    async def failing(_refresh_token: str) -> TokenPair:
        raise RuntimeError("refresh refused")

    try:
        await db.upgrade(engine)
        store = TokenStore(db.sessionmaker(engine))
        await store.seed("zalo", pair(1))
        with pytest.raises(RuntimeError):
            await store.refresh("zalo", "access-1", failing)
        assert await store.get("zalo") == pair(1)
    finally:
        await engine.dispose()


async def test_offered_choices_resolve_numbers(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        choices = OfferedChoices(db.sessionmaker(engine))
        await choices.remember("zalo", "u1", ["topic:a", "topic:b"])
        assert await choices.resolve("zalo", "u1", 2) == "topic:b"
        await choices.remember("zalo", "u1", ["faq:x"])
        assert await choices.resolve("zalo", "u1", 2) is None
        assert await choices.resolve("zalo", "u1", 1) == "faq:x"
        assert await choices.resolve("zalo", "other", 1) is None
        assert await choices.resolve("zalo", "u1", 1, max_age=dt.timedelta(0)) is None
    finally:
        await engine.dispose()


async def test_subscriber_rows_are_unique_under_concurrent_first_contact(
    database_url: str,
) -> None:
    engines = [db.create_engine(database_url) for _ in range(2)]
    try:
        await db.upgrade(engines[0])
        repos = [SubscriberRepository(db.sessionmaker(e)) for e in engines]
        await asyncio.gather(*(repos[i % 2].touch("zalo", "77") for i in range(6)))
        assert await repos[0].count(channel="zalo") == 1
        view = await repos[1].get("zalo", "77")
        assert view is not None
        assert view.last_interaction_at is not None
        with pytest.raises(ValueError, match="unknown subscriber status"):
            await repos[0].set_status("zalo", "77", "gone", source="test")
    finally:
        for engine in engines:
            await engine.dispose()
