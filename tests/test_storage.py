"""Migrations and repositories, on SQLite always and on PostgreSQL when reachable."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect, text

from storage import db
from storage.log_writer import LogWriter
from storage.repositories import ConversationLog, GapLog, scrub


async def test_migrations_upgrade_downgrade_and_upgrade_again(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.HEAD
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {
            "conversation_turns",
            "unanswered_questions",
            "subscribers",
            "subscription_changes",
            "processed_updates",
            "channel_tokens",
            "alembic_version",
        } <= tables
        await db.upgrade(engine)  # idempotent: a second worker finds nothing to do
        await db.downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert tables <= {"alembic_version"}
        await db.upgrade(engine)
        assert await db.current_revision(engine) == db.HEAD
    finally:
        await engine.dispose()


async def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    engine = db.create_engine(sqlite_url)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        assert mode == "wal"
    finally:
        await engine.dispose()


async def test_logs_record_rank_and_purge(database_url: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await db.upgrade(engine)
        sessions = db.sessionmaker(engine)
        writer = LogWriter(engine)
        turns, gaps = ConversationLog(sessions, writer), GapLog(sessions, writer)
        await turns.record(
            channel="web",
            user_id="u1",
            text="hỏi gì đó",
            outcome="answer",
            entry_id="sipas-la-gi",
            score=0.9,
        )
        for question, n in (("gia vang", 3), ("thoi tiet", 1), ("bong da", 2)):
            for _ in range(n):
                await gaps.record(
                    channel="web",
                    user_id="u1",
                    normalized_text=question,
                    outcome="fallback",
                    top_score=0.1,
                    candidates=[{"entry_id": "x", "score": 0.1}],
                )
        ranked = await gaps.top(limit=2)
        assert [(g.normalized_text, g.count) for g in ranked] == [("gia vang", 3), ("bong da", 2)]
        assert ranked[0].candidates == [{"entry_id": "x", "score": 0.1}]
        assert ranked[0].last_seen.tzinfo is not None
        recent = await turns.recent()
        assert (recent[0].entry_id, recent[0].channel) == ("sipas-la-gi", "web")

        future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        assert await turns.purge(future) == 1
        assert await gaps.purge(future) == 6
        assert await gaps.top() == []
    finally:
        await engine.dispose()


def test_scrub_masks_phone_numbers_id_numbers_and_email() -> None:
    assert scrub("gọi 0912345678 nhé") == "gọi [đã ẩn] nhé"
    assert scrub("+84 912 345 678") == "[đã ẩn]"
    assert scrub("cccd 001203004567") == "cccd [đã ẩn]"
    assert scrub("mail a.b@example.vn") == "mail [đã ẩn]"
    assert scrub("Nghị định 123/2015/NĐ-CP, thủ tục 1.001612") == (
        "Nghị định 123/2015/NĐ-CP, thủ tục 1.001612"
    )
    assert len(scrub("a" * 5000)) == 1000
