"""The campaign scheduler (APScheduler with its job store in the app's database), on SQLite
and PostgreSQL: one-off campaigns fire once at their time, jobs survive a restart, the same
occurrence fired twice is one run, reconciliation follows the CLI's changes, missed
campaigns fail, a failing job is logged and retried, and on PostgreSQL exactly one process
leads and another takes over when it goes.

Real firing uses DateTriggers about a second ahead; cron schedules are checked with fixed
datetimes (a controlled clock) instead of waiting for the minute."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from apscheduler.triggers.date import DateTrigger

from bot.services import Storage, open_storage
from bot.settings import BroadcastSettings, DatabaseSettings, Settings
from broadcasts import scheduler as scheduler_module
from broadcasts.scheduler import (
    JOB_FUNC,
    LEADER_LOCK_ID,
    CampaignScheduler,
    due_occurrence,
    fire_campaign,
    job_name,
    sync_database_url,
)
from broadcasts.workflow import Campaigns, CampaignSpec, cron_trigger
from storage.campaigns import CampaignView
from storage.models import utcnow

VN = ZoneInfo("Asia/Ho_Chi_Minh")
UTC = dt.UTC
TOPIC = "tin-tuc"


def _settings(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    async with open_storage(_settings(database_url)) as opened:
        yield opened


@pytest.fixture
async def pg_storage(postgres_url: str) -> AsyncIterator[Storage]:
    async with open_storage(_settings(postgres_url)) as opened:
        yield opened


def _campaigns(storage: Storage) -> Campaigns:
    return Campaigns(storage.campaigns, BroadcastSettings(), topics={TOPIC})


def _url(storage: Storage) -> str:
    return storage.db.url.render_as_string(hide_password=False)


def _scheduler(storage: Storage, campaigns: Campaigns, **kwargs: Any) -> CampaignScheduler:
    kwargs.setdefault("reconcile_seconds", 0.2)
    kwargs.setdefault("leader_retry_seconds", 0.2)
    return CampaignScheduler(campaigns, _url(storage), BroadcastSettings(), **kwargs)


async def _scheduled(campaigns: Campaigns, **schedule: Any) -> CampaignView:
    """Create → submit → approve (by someone else) → schedule."""
    spec = CampaignSpec(
        name="Lịch tiếp dân", text="Nội dung thông báo", topics=(TOPIC,), **schedule
    )
    campaign = await campaigns.create(spec, author="Lan")
    await campaigns.submit(campaign.id, actor="Lan")
    await campaigns.approve(campaign.id, by="Minh")
    return await campaigns.schedule(campaign.id, actor="Lan")


async def _eventually(check: Callable[[], Any], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _run_count(campaigns: Campaigns, campaign_id: int) -> int:
    return len(await campaigns.repo.runs(campaign_id, include_tests=False))


# Pure translation, with fixed datetimes.


def test_sync_url() -> None:
    assert sync_database_url("sqlite+aiosqlite:////tmp/x/bot.db") == "sqlite:////tmp/x/bot.db"
    assert (
        sync_database_url("postgresql+asyncpg://bot:s%40cret@db:5432/bot")
        == "postgresql+psycopg://bot:s%40cret@db:5432/bot"
    )
    with pytest.raises(ValueError):
        sync_database_url("mysql+aiomysql://x/y")


def _view(**values: Any) -> CampaignView:
    now = dt.datetime(2026, 11, 1, tzinfo=UTC)
    base: dict[str, Any] = {
        "id": 7,
        "name": "n",
        "text": "t",
        "link_title": None,
        "link_url": None,
        "image_url": None,
        "channels": ("telegram",),
        "topics": (),
        "schedule_kind": "cron",
        "send_at": None,
        "cron": None,
        "cron_end": None,
        "urgent": False,
        "status": "scheduled",
        "status_reason": None,
        "author": "Lan",
        "approved_by": "Minh",
        "created_at": now,
        "updated_at": now,
    }
    base.update(values)
    return CampaignView(**base)


def test_cron_occurrences_with_a_fixed_clock() -> None:
    campaigns = Campaigns(None, BroadcastSettings())  # type: ignore[arg-type]
    end = dt.datetime(2026, 12, 14, tzinfo=VN)
    # Crontab numbering: 1 = Monday. Sunday 29/11/2026 noon → Monday 30/11 08:00 in Hà Nội.
    weekly = _view(cron="0 8 * * 1", cron_end=end.astimezone(UTC))
    sunday = dt.datetime(2026, 11, 29, 12, 0, tzinfo=VN)
    monday = dt.datetime(2026, 11, 30, 8, 0, tzinfo=VN)
    assert campaigns.next_fire(weekly, after=sunday) == monday.astimezone(UTC)
    assert campaigns.next_fire(weekly, after=monday) == dt.datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    # …and not past the end date.
    assert campaigns.next_fire(weekly, after=dt.datetime(2026, 12, 7, 9, tzinfo=VN)) is None
    trigger = cron_trigger("0 8 * * 1", VN, end)
    assert trigger.get_next_fire_time(None, sunday) == monday

    # The occurrence a job stands for is the latest cron time due, within the grace period.
    every_15 = _view(cron="*/15 8-9 * * *")
    at = dt.datetime(2026, 11, 30, 8, 20, 30, tzinfo=VN)
    expected = dt.datetime(2026, 11, 30, 8, 15, tzinfo=VN)
    assert due_occurrence(campaigns, every_15, at, 3600) == expected
    assert due_occurrence(campaigns, every_15, expected, 3600) == expected
    assert due_occurrence(campaigns, every_15, at, 60) is None  # 08:15 is 5½ minutes old
    assert due_occurrence(campaigns, weekly, sunday, 3600) is None
    # One-off campaigns: their time; "now" is the moment the campaign was scheduled.
    send_at = dt.datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    assert due_occurrence(campaigns, _view(schedule_kind="at", send_at=send_at), at, 60) == send_at
    now_view = _view(schedule_kind="now")
    assert due_occurrence(campaigns, now_view, at, 60) == now_view.updated_at

    # The job's name fingerprints the schedule: a change of schedule changes it.
    assert job_name(weekly, VN, 3600) != job_name(_view(cron="0 9 * * 1"), VN, 3600)
    assert job_name(weekly, VN, 3600) == job_name(_view(cron="0 8 * * 1", cron_end=end), VN, 3600)


# Firing, on SQLite and PostgreSQL.


async def test_at_campaign_fires_once_at_its_time(storage: Storage) -> None:
    threads = set(threading.enumerate())
    campaigns = _campaigns(storage)
    campaign = await _scheduled(campaigns, at=utcnow() + dt.timedelta(seconds=1.2))
    assert campaign.send_at is not None
    scheduler = _scheduler(storage, campaigns)
    await scheduler.start()
    try:
        assert scheduler.is_leader
        assert scheduler.jobs() == {campaign.id: campaign.send_at}
        await _eventually(lambda: _run_count(campaigns, campaign.id))
        await asyncio.sleep(0.6)  # a few more reconciliations: nothing fires again
        runs = await campaigns.repo.runs(campaign.id)
        assert len(runs) == 1
        # fire_at is the scheduled time of the occurrence, not the moment the job ran.
        assert runs[0].fire_at == campaign.send_at
        assert (await campaigns.get(campaign.id)).status == "sending"
        assert scheduler.jobs() == {}
    finally:
        await scheduler.stop()
    assert not scheduler.is_leader
    assert set(threading.enumerate()) == threads


async def test_now_campaign_fires_at_once(storage: Storage) -> None:
    campaigns = _campaigns(storage)
    campaign = await _scheduled(campaigns)
    assert campaign.schedule_kind == "now"
    scheduler = _scheduler(storage, campaigns)
    await scheduler.start()
    try:
        await _eventually(lambda: _run_count(campaigns, campaign.id), within=10)
        runs = await campaigns.repo.runs(campaign.id)
        assert [r.fire_at for r in runs] == [campaign.updated_at]
    finally:
        await scheduler.stop()


async def test_jobs_survive_a_restart_and_fire_once(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    campaigns = _campaigns(storage)
    campaign = await _scheduled(campaigns, at=utcnow() + dt.timedelta(seconds=1.5))
    assert campaign.send_at is not None
    first = _scheduler(storage, campaigns)
    await first.start()
    assert first.jobs() == {campaign.id: campaign.send_at}
    await first.stop()

    second = _scheduler(storage, campaigns)
    # Not started: read from APScheduler's table (its timestamps are floats).
    stored = second.jobs()
    assert list(stored) == [campaign.id]
    assert abs(stored[campaign.id] - campaign.send_at) < dt.timedelta(milliseconds=1)  # type: ignore[operator]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="broadcasts.scheduler"):
        await second.start()
        try:
            # Loaded from the job store, not re-added by the reconciliation.
            assert not [r for r in caplog.records if "job added" in r.getMessage()]
            assert second.jobs() == {campaign.id: campaign.send_at}
            await _eventually(lambda: _run_count(campaigns, campaign.id))
            await asyncio.sleep(0.5)
            assert await _run_count(campaigns, campaign.id) == 1
        finally:
            await second.stop()


async def test_the_same_occurrence_fired_twice_is_one_run(storage: Storage) -> None:
    campaigns = _campaigns(storage)
    # Every 1 January at 03:00: the real scheduler will not fire it during the test.
    campaign = await _scheduled(campaigns, cron="0 3 1 1 *")
    now = [dt.datetime(2027, 1, 1, 3, 0, 20, tzinfo=VN)]
    scheduler = _scheduler(storage, campaigns, clock=lambda: now[0])
    await scheduler.start()
    try:
        assert list(scheduler.jobs()) == [campaign.id]
        first = await fire_campaign(campaign.id)
        assert first is not None
        assert await fire_campaign(campaign.id) is None  # the campaign is sending
        runs = await campaigns.repo.runs(campaign.id)
        assert [r.fire_at for r in runs] == [dt.datetime(2026, 12, 31, 20, 0, tzinfo=UTC)]
        # A recurring campaign keeps its job while sending…
        await scheduler.reconcile()
        assert list(scheduler.jobs()) == [campaign.id]

        # …and is scheduled again once the engine has sent the occurrence.
        assert await campaigns.repo.set_run_status(first, "sending", expected={"expanding"})
        run = await campaigns.repo.run(first)
        assert run is not None
        await campaigns.finish_run(run)
        assert (await campaigns.get(campaign.id)).status == "scheduled"
        # The same occurrence again (a restart, a second scheduler), even concurrently.
        again = await asyncio.gather(fire_campaign(campaign.id), fire_campaign(campaign.id))
        assert again == [first, first]
        assert await _run_count(campaigns, campaign.id) == 1
        assert (await campaigns.get(campaign.id)).status == "scheduled"

        # The next occurrence is a run of its own.
        now[0] = dt.datetime(2028, 1, 1, 3, 0, 5, tzinfo=VN)
        second = await fire_campaign(campaign.id)
        assert second is not None
        assert second != first
        runs = await campaigns.repo.runs(campaign.id)
        assert [r.fire_at for r in runs] == [
            dt.datetime(2026, 12, 31, 20, 0, tzinfo=UTC),
            dt.datetime(2027, 12, 31, 20, 0, tzinfo=UTC),
        ]
    finally:
        await scheduler.stop()


async def test_the_job_gets_the_run_time_apscheduler_scheduled(storage: Storage) -> None:
    """fire_at comes from APScheduler (through the executor), not from the clock or the
    campaign: a job put in by hand at an odd time creates the run of exactly that time."""
    campaigns = _campaigns(storage)
    campaign = await _scheduled(campaigns, cron="0 3 1 1 *")
    scheduler = _scheduler(storage, campaigns, reconcile_seconds=3600)
    await scheduler.start()
    try:
        odd = (utcnow() + dt.timedelta(seconds=0.3)).replace(microsecond=123456)
        if odd < utcnow():
            odd += dt.timedelta(seconds=1)
        scheduler._aps.add_job(  # type: ignore[union-attr]
            JOB_FUNC,
            DateTrigger(run_date=odd),
            args=(campaign.id,),
            id=f"campaign:{campaign.id}",
            replace_existing=True,
        )
        await _eventually(lambda: _run_count(campaigns, campaign.id), within=10)
        runs = await campaigns.repo.runs(campaign.id)
        assert [r.fire_at for r in runs] == [odd]
    finally:
        await scheduler.stop()


async def test_reconcile_follows_the_cli(storage: Storage) -> None:
    campaigns = _campaigns(storage)
    later = utcnow() + dt.timedelta(hours=1)
    paused = await _scheduled(campaigns, at=later)
    cancelled = await _scheduled(campaigns, at=later)
    weekly = await _scheduled(campaigns, cron="0 8 * * 1")
    # Reconciling by hand only: the background tick would do the same, later.
    scheduler = _scheduler(storage, campaigns, reconcile_seconds=3600)
    await scheduler.start()
    try:
        assert set(scheduler.jobs()) == {paused.id, cancelled.id, weekly.id}
        assert scheduler.jobs()[weekly.id] == campaigns.next_fire(weekly, after=utcnow())

        await campaigns.pause(paused.id, actor="Lan")
        await campaigns.cancel(cancelled.id, actor="Lan")
        result = await scheduler.reconcile()
        assert sorted(result.removed) == sorted([paused.id, cancelled.id])
        assert set(scheduler.jobs()) == {weekly.id}

        await campaigns.resume(paused.id, actor="Lan")
        assert (await scheduler.reconcile()).added == [paused.id]
        nothing = await scheduler.reconcile()
        assert (nothing.added, nothing.removed, nothing.failed) == ([], [], [])

        # An edit sends the campaign back to draft: no job until it is scheduled again.
        spec = CampaignSpec(name="Mỗi thứ Ba", text="Nội dung", topics=(TOPIC,), cron="0 9 * * 2")
        await campaigns.edit(weekly.id, spec, actor="Lan")
        assert (await scheduler.reconcile()).removed == [weekly.id]
        await campaigns.submit(weekly.id, actor="Lan")
        await campaigns.approve(weekly.id, by="Minh")
        edited = await campaigns.schedule(weekly.id, actor="Lan")
        assert (await scheduler.reconcile()).added == [weekly.id]
        assert scheduler.jobs()[weekly.id] == campaigns.next_fire(edited, after=utcnow())
    finally:
        await scheduler.stop()
    # What the CLI shows without a scheduler: the job store as the leader left it.
    assert set(scheduler.jobs()) == {paused.id, weekly.id}


async def test_a_missed_one_off_campaign_fails(storage: Storage) -> None:
    campaigns = _campaigns(storage)
    campaign = await _scheduled(campaigns, at=utcnow() + dt.timedelta(minutes=5))
    # The server comes back two hours after the campaign's time (grace: one hour).
    scheduler = _scheduler(storage, campaigns, clock=lambda: utcnow() + dt.timedelta(hours=2))
    await scheduler.start()
    try:
        failed = await campaigns.get(campaign.id)
        assert failed.status == "failed"
        assert "60 phút" in (failed.status_reason or "")
        assert scheduler.jobs() == {}
        assert await _run_count(campaigns, campaign.id) == 0
    finally:
        await scheduler.stop()


async def test_a_failing_job_is_logged_and_tried_again(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    campaigns = _campaigns(storage)
    real_fire = campaigns.fire
    calls = []

    async def flaky(campaign_id: int, fire_at: dt.datetime) -> Any:
        calls.append(fire_at)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return await real_fire(campaign_id, fire_at)

    campaigns.fire = flaky  # type: ignore[method-assign]
    campaign = await _scheduled(campaigns, at=utcnow() + dt.timedelta(seconds=0.5))
    scheduler = _scheduler(storage, campaigns)
    with caplog.at_level(logging.INFO):
        await scheduler.start()
        try:
            await _eventually(lambda: _run_count(campaigns, campaign.id))
            assert scheduler.is_leader
        finally:
            await scheduler.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None
    assert str(errors[0].exc_info[1]) == "database went away"
    assert calls == [campaign.send_at, campaign.send_at]
    assert await _run_count(campaigns, campaign.id) == 1


# Leadership on PostgreSQL.


async def _kill_leader_connection(url: str) -> int | None:
    """Terminate the backend holding the leader lock; its pid (None: nobody held it)."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        pid: int | None = await conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted",
            LEADER_LOCK_ID,
        )
        if pid is not None:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        return pid
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_one_leader_and_failover(
    pg_storage: Storage, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    campaigns = _campaigns(pg_storage)
    first = _scheduler(pg_storage, campaigns)
    second = _scheduler(pg_storage, campaigns)
    third = _scheduler(pg_storage, campaigns)
    await first.start()
    await second.start()
    try:
        assert (first.is_leader, second.is_leader) == (True, False)
        await asyncio.sleep(0.5)  # the follower keeps retrying, in vain
        assert (first.is_leader, second.is_leader) == (True, False)
        assert await second.reconcile() == scheduler_module.Reconciled()

        campaign = await _scheduled(campaigns, at=utcnow() + dt.timedelta(seconds=1.5))
        await _eventually(lambda: campaign.id in first.jobs(), within=10)
        assert second.jobs() == first.jobs()  # the follower sees the shared job store

        # The leader goes: the follower takes over, with the job, within a few seconds.
        await first.stop()
        await _eventually(lambda: second.is_leader, within=10)
        await _eventually(lambda: _run_count(campaigns, campaign.id))
        await asyncio.sleep(0.4)
        assert await _run_count(campaigns, campaign.id) == 1

        # The leader's connection dies: it notices, steps down, and one of the two leads.
        await third.start()
        assert not third.is_leader
        with caplog.at_level(logging.WARNING, logger="broadcasts.scheduler"):
            assert await _kill_leader_connection(postgres_url) is not None
            await _eventually(lambda: "stepping down" in caplog.text, within=10)
        await _eventually(lambda: second.is_leader or third.is_leader, within=10)
        await asyncio.sleep(0.5)
        assert [second.is_leader, third.is_leader].count(True) == 1
    finally:
        for scheduler in (first, second, third):
            await scheduler.stop()
