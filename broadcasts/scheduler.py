"""The campaign scheduler inside ``bot serve``: fires each scheduled campaign at its time.

APScheduler 3 (``AsyncIOScheduler``) keeps one job per campaign, id ``campaign:{id}``, in its
``SQLAlchemyJobStore`` in the application's own database, table ``apscheduler_jobs``. That
table is APScheduler's, not ours: APScheduler creates it on start (``CREATE TABLE IF NOT
EXISTS``) and owns its format (pickled job state), so it is deliberately neither an Alembic
migration nor part of ``storage.models``. The job store is synchronous (SQLite through
``sqlite3``, PostgreSQL through psycopg), so ``AsyncIOScheduler`` runs on an event loop of its
own in a dedicated thread, and every call into it goes through that thread. On the web
server's loop, a synchronous job-store write could wait on SQLite's write lock held by one of
the application's own async transactions, which cannot finish while the loop is blocked: a
deadlock until the busy timeout. In its thread the write just waits its turn.

Jobs. "at" campaigns get a ``DateTrigger`` at ``send_at``; "now" campaigns a ``DateTrigger``
at the moment they were scheduled (``updated_at`` while the status is ``scheduled``), which
is "now" for the scheduler and, unlike a fresh ``now()``, the same value for whichever
scheduler adds the job; "cron" campaigns the ``CronTrigger`` of ``broadcasts.workflow
.cron_trigger`` (crontab line in the broadcast time zone, with its end date). Every job has
``misfire_grace_time=settings.misfire_grace_seconds``, ``coalesce=True`` and
``max_instances=1``. The job's name is a fingerprint of the schedule, stored with the job,
so a changed schedule is noticed even after a restart.

The occurrence (``fire_at``). ``Campaigns.fire(campaign_id, fire_at)`` creates the run of an
occurrence once: runs are unique per (campaign, fire_at). So ``fire_at`` must be the
*scheduled* time of the occurrence, never the moment the job happens to run: APScheduler 3
does not pass it to the job, so the executor (``_OccurrenceExecutor``, an
``AsyncIOExecutor``) runs each job in a context holding the run time APScheduler scheduled
(with ``coalesce`` there is exactly one: the latest one due). The same occurrence therefore
always maps to the same ``fire_at`` — a job fired again after a restart, or by two
schedulers at once, finds the run already there and nothing is sent twice. Called directly,
outside the executor, ``fire_campaign`` works the occurrence out from the campaign instead
(``due_occurrence``): ``send_at``, the moment it was scheduled, or the latest cron time that
is due.

Reconciliation. The CLI changes campaigns in the database without a scheduler, so the leader
re-reads the campaigns on start and every ``reconcile_seconds``: a ``scheduled`` campaign
whose job is missing or whose fingerprint differs gets its job (added or replaced); a
recurring campaign that is ``sending`` an occurrence keeps its job (``finish_run`` puts it
back to ``scheduled``); every other job (paused, cancelled, draft, done, failed, deleted) is
removed. A one-off campaign whose time passed more than the grace period ago without being
sent (the server was down) is marked failed, with the reason, instead of being sent late.

Leader. With several worker processes on PostgreSQL exactly one runs the scheduler: the one
holding a session-level advisory lock (``pg_try_advisory_lock``) on a dedicated connection
kept open for as long as it leads. The others retry every ``leader_retry_seconds``; when the
leader dies its connection closes, the lock is released and a follower takes over, loading
the jobs from the shared job store. The leader checks its connection at every tick and
steps down when it is lost (a new leader may then already run: the uniqueness of runs makes
the overlap harmless). On SQLite there is one process (the deployment runs a single worker
on a local file), so the local process is always the leader.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import utc_timestamp_to_datetime
from sqlalchemy import column, create_engine, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.settings import BroadcastSettings
from broadcasts.workflow import (
    FAILED,
    SCHEDULED,
    SENDING,
    SYSTEM,
    Campaigns,
    WorkflowError,
    cron_trigger,
)
from storage.campaigns import CampaignView, StaleCampaign
from storage.models import utcnow

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
JOB_PREFIX = "campaign:"
# The job function, by its textual reference: the job store pickles jobs, callables included.
JOB_FUNC = "broadcasts.scheduler:fire_campaign"
# Any constant works; it has to be the same in every worker (and differ from the migration
# lock in storage.db).
LEADER_LOCK_ID = 720_250_702
# How long stop() or stepping down waits for occurrences being fired to finish.
DRAIN_SECONDS = 10.0
# How long a check of the leader's connection may take before it counts as lost.
LIVENESS_TIMEOUT = 5.0


def sync_database_url(url: str) -> str:
    """The synchronous twin of the application's async URL, for APScheduler's job store:
    ``sqlite+aiosqlite`` → ``sqlite``, ``postgresql+asyncpg`` → ``postgresql+psycopg``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        driver = "sqlite"
    elif backend == "postgresql":
        driver = "postgresql+psycopg"
    else:
        raise ValueError(f"the campaign scheduler supports SQLite and PostgreSQL, not {backend}")
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _engine_options(backend: str) -> dict[str, Any]:
    if backend == "sqlite":
        # The same busy timeout as the application's engine (storage.db).
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "hide_parameters": True}


def job_id(campaign_id: int) -> str:
    return f"{JOB_PREFIX}{campaign_id}"


def _campaign_id(job: str) -> int | None:
    if not job.startswith(JOB_PREFIX):
        return None
    try:
        return int(job[len(JOB_PREFIX) :])
    except ValueError:
        return None


def _iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else "-"


def job_name(campaign: CampaignView, zone: ZoneInfo, grace_seconds: int) -> str:
    """The job's name: the campaign and a fingerprint of everything its job depends on."""
    kind = campaign.schedule_kind
    if kind == "cron":
        schedule = f"cron '{campaign.cron}' until {_iso(campaign.cron_end)} in {zone.key}"
    elif kind == "at":
        schedule = f"at {_iso(campaign.send_at)}"
    else:
        schedule = f"now (scheduled {_iso(campaign.updated_at)})"
    return f"campaign {campaign.id}: {schedule}, grace {grace_seconds}s"


def one_off_time(campaign: CampaignView) -> dt.datetime | None:
    """The single occurrence of an "at" or "now" campaign (None for a recurring one)."""
    if campaign.schedule_kind == "at":
        return campaign.send_at
    if campaign.schedule_kind == "now":
        return campaign.updated_at
    return None


def due_occurrence(
    campaigns: Campaigns, campaign: CampaignView, now: dt.datetime, grace_seconds: int
) -> dt.datetime | None:
    """The occurrence a job running at ``now`` stands for, worked out from the campaign:
    the one-off time, or the latest cron time not after ``now`` and at most
    ``grace_seconds`` old (what APScheduler's coalescing picks too). None when none is due."""
    if campaign.schedule_kind != "cron":
        return one_off_time(campaign)
    latest = None
    nxt = campaigns.next_fire(campaign, after=now - dt.timedelta(seconds=grace_seconds + 1))
    while nxt is not None and nxt <= now:
        latest = nxt
        nxt = campaigns.next_fire(campaign, after=nxt)
    return latest


@dataclass(frozen=True, slots=True)
class _Occurrence:
    owner: CampaignScheduler
    fire_at: dt.datetime


# The occurrence a job task is running for, set by _OccurrenceExecutor in the task's context.
_OCCURRENCE: contextvars.ContextVar[_Occurrence | None] = contextvars.ContextVar(
    "campaign_occurrence", default=None
)

# The scheduler leading in this process. A module-level registry because the job store
# pickles a job as the textual reference to fire_campaign plus its arguments (the campaign
# id) and nothing else: the live Campaigns service, with its database sessions, cannot be
# pickled, so the function has to find it in the process that runs it. Jobs run by the
# executor get their scheduler through the task context (exact even with two schedulers in
# one process, as in tests); the registry serves direct calls.
_leader: CampaignScheduler | None = None


class _OccurrenceExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """``AsyncIOExecutor`` that runs each job task in a context holding its scheduled run
    time, which APScheduler 3 does not pass to the job function itself."""

    def __init__(self, owner: CampaignScheduler) -> None:
        super().__init__()
        self._owner = owner

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        # coalesce=True: one run time, the latest due. The task created below copies the
        # current context, so it sees the occurrence.
        context = contextvars.copy_context()
        context.run(_OCCURRENCE.set, _Occurrence(self._owner, run_times[-1]))
        context.run(super()._do_submit_job, job, run_times)


async def fire_campaign(campaign_id: int) -> int | None:
    """The job function: an occurrence of the campaign is due; returns the run's id (None
    when nothing was fired). Exceptions are logged, never raised: a one-off occurrence that
    failed is tried again by the next reconciliation while within the grace period."""
    occurrence = _OCCURRENCE.get()
    owner = occurrence.owner if occurrence is not None else _leader
    if owner is None:
        log.warning("campaign %d: no campaign scheduler runs in this process", campaign_id)
        return None
    fire = owner._fire(campaign_id, occurrence.fire_at if occurrence else None)
    main = owner._main_loop
    if main is None or main is asyncio.get_running_loop():
        return await fire
    # Run by APScheduler's own loop: the campaign services belong to the application's.
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fire, main))


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconciliation changed (campaign ids)."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class CampaignScheduler:
    """Fires scheduled campaigns (see the module docstring); one leader per database."""

    def __init__(
        self,
        campaigns: Campaigns,
        database_url: str,
        settings: BroadcastSettings,
        *,
        reconcile_seconds: float = 2.0,
        leader_retry_seconds: float = 5.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if reconcile_seconds <= 0 or leader_retry_seconds <= 0:
            raise ValueError("reconcile_seconds and leader_retry_seconds must be positive")
        self.campaigns = campaigns
        self.settings = settings
        self._url = database_url
        self._backend = make_url(database_url).get_backend_name()
        self._sync_url = sync_database_url(database_url)
        self._zone = ZoneInfo(settings.timezone)
        self._grace = settings.misfire_grace_seconds
        self._reconcile_seconds = reconcile_seconds
        self._retry_seconds = leader_retry_seconds
        self._clock = clock
        self._aps: AsyncIOScheduler | None = None
        # APScheduler's loop and thread (see the module docstring), and the application's.
        self._aps_loop: asyncio.AbstractEventLoop | None = None
        self._aps_thread: threading.Thread | None = None
        self._aps_ended: asyncio.Event | None = None
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._lock_engine: AsyncEngine | None = None
        self._lock_conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._mutex = asyncio.Lock()
        self._inflight: dict[asyncio.Task[Any], int] = {}
        self._warned: set[tuple[int, dt.datetime]] = set()
        self._started = False

    @property
    def is_leader(self) -> bool:
        return self._aps is not None

    # lifecycle

    async def start(self) -> None:
        """Become the leader if possible (always on SQLite), reconcile, and keep doing both in
        the background. Never fails for an unreachable database: it keeps trying."""
        if self._started:
            raise RuntimeError("the campaign scheduler is already started")
        self._started = True
        self._main_loop = asyncio.get_running_loop()
        self._stopping.clear()
        await self._try_lead()
        self._task = asyncio.create_task(self._loop(), name="campaign-scheduler")

    async def stop(self) -> None:
        """Stop leading (waiting for occurrences being fired) and release everything."""
        if not self._started:
            return
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            _, pending = await asyncio.wait({task}, timeout=DRAIN_SECONDS + LIVENESS_TIMEOUT)
            if pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._step_down("stopping")
        if self._lock_engine is not None:
            await self._lock_engine.dispose()
            self._lock_engine = None
        self._started = False

    async def _loop(self) -> None:
        # start() made the first attempt; each tick comes after a pause.
        while True:
            delay = self._reconcile_seconds if self.is_leader else self._retry_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            try:
                if not self.is_leader:
                    await self._try_lead()
                elif await self._leader_alive():
                    await self.reconcile()
                else:
                    log.warning("campaign scheduler: leader connection lost, stepping down")
                    await self._step_down("connection lost")
            except Exception:
                log.exception("campaign scheduler: tick failed")

    # leadership

    async def _try_lead(self) -> None:
        if self._backend == "postgresql" and not await self._take_lock():
            return
        try:
            await self._lead()
        except Exception:
            log.exception("campaign scheduler: could not start APScheduler")
            await self._drop_lock()
            return
        await self._safe_reconcile()

    async def _take_lock(self) -> bool:
        """Take the advisory lock on the dedicated connection (opened if needed)."""
        try:
            if self._lock_conn is None:
                if self._lock_engine is None:
                    self._lock_engine = create_async_engine(
                        self._url,
                        poolclass=NullPool,
                        hide_parameters=True,
                        connect_args={"timeout": LIVENESS_TIMEOUT},
                    )
                conn = await self._lock_engine.connect()
                # No transaction left open for the connection's (long) life.
                self._lock_conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await self._lock_conn.execute(
                text("SELECT pg_try_advisory_lock(:id)"), {"id": LEADER_LOCK_ID}
            )
            return bool(result.scalar_one())
        except Exception as exc:
            log.warning("campaign scheduler: cannot try the leader lock: %s", exc)
            await self._drop_lock()
            return False

    async def _leader_alive(self) -> bool:
        if self._backend != "postgresql":
            return True
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), LIVENESS_TIMEOUT)
        except Exception as exc:
            log.warning("campaign scheduler: leader connection check failed: %s", exc)
            return False
        return True

    async def _drop_lock(self) -> None:
        """Close the lock connection, which releases the lock if held."""
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        try:
            await conn.close()
        except Exception:
            with contextlib.suppress(Exception):
                await conn.invalidate()

    async def _on_aps(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` in APScheduler's thread and wait for its result without blocking the
        application's loop."""
        loop = self._aps_loop
        if loop is None:
            raise RuntimeError("APScheduler's loop is not running")
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        return await asyncio.wrap_future(future)

    def _start_aps_thread(self) -> None:
        loop = asyncio.new_event_loop()
        main = asyncio.get_running_loop()
        ended = asyncio.Event()

        def run() -> None:
            try:
                loop.run_forever()
            finally:
                main.call_soon_threadsafe(ended.set)

        thread = threading.Thread(target=run, name="apscheduler", daemon=True)
        thread.start()
        self._aps_loop, self._aps_thread, self._aps_ended = loop, thread, ended

    async def _stop_aps_thread(self) -> None:
        loop, thread, ended = self._aps_loop, self._aps_thread, self._aps_ended
        self._aps_loop = self._aps_thread = self._aps_ended = None
        if loop is None or thread is None or ended is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        # Awaited through an event rather than joined in a worker thread, which would
        # outlive the scheduler.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ended.wait(), DRAIN_SECONDS)
            # Its loop has stopped; what is left of the thread is returning.
            thread.join(1.0)
        if not thread.is_alive():
            loop.close()

    async def _lead(self) -> None:
        global _leader
        self._start_aps_thread()
        store = SQLAlchemyJobStore(
            url=self._sync_url,
            tablename=JOB_TABLE,
            engine_options=_engine_options(self._backend),
        )
        aps = AsyncIOScheduler(
            jobstores={"default": store},
            executors={"default": _OccurrenceExecutor(self)},
            event_loop=self._aps_loop,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": self._grace,
            },
            timezone=self._zone,
        )
        try:
            await self._on_aps(aps.start)
        except Exception:
            store.shutdown()
            await self._stop_aps_thread()
            raise
        self._aps = aps
        _leader = self
        log.info("campaign scheduler: leading (%s)", self._backend)

    async def _step_down(self, reason: str) -> None:
        global _leader
        async with self._mutex:
            aps, self._aps = self._aps, None
            if _leader is self:
                _leader = None
            try:
                if aps is not None:
                    await self._on_aps(aps.pause)
                    tasks = set(self._inflight)
                    if tasks:
                        await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
            finally:
                if aps is not None:
                    # AsyncIOScheduler shuts down in a callback on its loop; the loop's
                    # thread then ends once that callback has run.
                    await self._on_aps(aps.shutdown, wait=False)
                    await self._on_aps(lambda: None)
                    await self._stop_aps_thread()
                    log.info("campaign scheduler: no longer leading (%s)", reason)
                await self._drop_lock()

    # jobs

    async def _safe_reconcile(self) -> None:
        try:
            await self.reconcile()
        except Exception:
            log.exception("campaign scheduler: reconciliation failed")

    async def reconcile(self) -> Reconciled:
        """Bring the jobs in line with the campaigns in the database (leader only; a
        follower changes nothing)."""
        async with self._mutex:
            aps = self._aps
            if aps is None:
                return Reconciled()
            result = Reconciled()
            campaigns = await self.campaigns.repo.find(statuses=(SCHEDULED, SENDING))
            jobs = {
                job.id: job
                for job in await self._on_aps(aps.get_jobs)
                if _campaign_id(job.id) is not None
            }
            busy = set(self._inflight.values())
            keep: set[str] = set()
            now = self._clock()
            for campaign in campaigns:
                jid = job_id(campaign.id)
                job = jobs.get(jid)
                name = job_name(campaign, self._zone, self._grace)
                if campaign.id in busy or (job is not None and job.name == name):
                    keep.add(jid)
                elif campaign.status == SENDING:
                    # A recurring campaign sending an occurrence keeps its job.
                    if campaign.schedule_kind == "cron" and job is not None:
                        keep.add(jid)
                elif await self._schedule(aps, campaign, name, replacing=job is not None, now=now):
                    keep.add(jid)
                    result.added.append(campaign.id)
                elif await self._fail_missed(campaign, now):
                    result.failed.append(campaign.id)
            for jid in jobs.keys() - keep:
                with contextlib.suppress(JobLookupError):
                    await self._on_aps(aps.remove_job, jid)
                cid = _campaign_id(jid)
                assert cid is not None
                result.removed.append(cid)
                log.info("campaign %d: no longer scheduled, job removed", cid)
            # APScheduler stops its timer when the job store failed in the middle of
            # processing jobs; waking it at every tick re-arms it.
            aps.wakeup()  # thread-safe: it only schedules a callback on APScheduler's loop
            return result

    async def _schedule(
        self,
        aps: AsyncIOScheduler,
        campaign: CampaignView,
        name: str,
        *,
        replacing: bool,
        now: dt.datetime,
    ) -> bool:
        """Add or replace the job of a scheduled campaign; False when it gets none."""
        trigger: Any
        if campaign.schedule_kind == "cron":
            try:
                trigger = cron_trigger(campaign.cron or "", self._zone, campaign.cron_end)
            except WorkflowError as exc:
                log.error("campaign %d: cannot schedule: %s", campaign.id, exc)
                return False
        else:
            at = one_off_time(campaign)
            if at is None:
                log.error("campaign %d: %s without a time", campaign.id, campaign.schedule_kind)
                return False
            if not replacing:
                if at + dt.timedelta(seconds=self._grace) < now:
                    return False  # too late: _fail_missed
                if await self._already_fired(campaign, at):
                    return False
            trigger = DateTrigger(run_date=at, timezone=self._zone)
        await self._on_aps(
            aps.add_job,
            JOB_FUNC,
            trigger,
            args=(campaign.id,),
            id=job_id(campaign.id),
            name=name,
            replace_existing=True,
            misfire_grace_time=self._grace,
            coalesce=True,
            max_instances=1,
        )
        log.info("campaign %d: job %s", campaign.id, "replaced" if replacing else "added")
        return True

    async def _already_fired(self, campaign: CampaignView, at: dt.datetime) -> bool:
        """Whether the one-off occurrence has a run although the campaign is still
        scheduled (a fire interrupted between creating the run and moving the campaign)."""
        runs = await self.campaigns.repo.runs(campaign.id, include_tests=False)
        if not any(run.fire_at == at for run in runs):
            return False
        if (campaign.id, at) not in self._warned:
            self._warned.add((campaign.id, at))
            log.warning(
                "campaign %d: the occurrence %s already has a run but the campaign is still "
                "scheduled; not firing it again",
                campaign.id,
                _iso(at),
            )
        return True

    async def _fail_missed(self, campaign: CampaignView, now: dt.datetime) -> bool:
        """A one-off campaign whose time is past the grace period, never sent: failed."""
        at = one_off_time(campaign)
        if at is None or at + dt.timedelta(seconds=self._grace) >= now:
            return False
        if await self._already_fired(campaign, at):
            return False
        grace = f"{self._grace // 60} phút" if self._grace % 60 == 0 else f"{self._grace} giây"
        reason = (
            f"Quá giờ gửi {self.campaigns.local(at)} hơn {grace} mà chưa gửi được "
            "(máy chủ không chạy?); chiến dịch không được gửi muộn. Hãy tạo chiến dịch mới."
        )
        try:
            await self.campaigns.repo.transition(
                campaign.id,
                expected={SCHEDULED},
                to=FAILED,
                actor=SYSTEM,
                note=reason,
                changes={"status_reason": reason},
            )
        except StaleCampaign:
            return False
        log.warning("campaign %d: missed its time %s, marked failed", campaign.id, _iso(at))
        return True

    async def _fire(self, campaign_id: int, fire_at: dt.datetime | None) -> int | None:
        task = asyncio.current_task()
        if task is not None:
            self._inflight[task] = campaign_id
        try:
            if fire_at is None:
                campaign = await self.campaigns.repo.get(campaign_id)
                if campaign is not None:
                    fire_at = due_occurrence(self.campaigns, campaign, self._clock(), self._grace)
                if fire_at is None:
                    log.info("campaign %d: no occurrence due", campaign_id)
                    return None
            fire_at = fire_at.astimezone(dt.UTC)
            run = await self.campaigns.fire(campaign_id, fire_at)
        except Exception:
            log.exception(
                "campaign %d: firing the occurrence %s failed", campaign_id, _iso(fire_at)
            )
            return None
        finally:
            if task is not None:
                self._inflight.pop(task, None)
        if run is None:
            log.info("campaign %d: not scheduled any more, %s not sent", campaign_id, _iso(fire_at))
            return None
        log.info("campaign %d: occurrence %s is run %d", campaign_id, _iso(fire_at), run.id)
        return run.id

    def jobs(self) -> dict[int, dt.datetime | None]:
        """Campaign id → next run time (UTC; None: no further run), from the job store. Works
        on any process, leader or not, started or not (the CLI's ``campaign show``)."""
        aps = self._aps
        if aps is not None:
            entries = [(job.id, job.next_run_time) for job in aps.get_jobs()]
        else:
            entries = self._read_job_table()
        result: dict[int, dt.datetime | None] = {}
        for jid, when in entries:
            cid = _campaign_id(jid)
            if cid is not None:
                result[cid] = when.astimezone(dt.UTC) if when is not None else None
        return result

    def _read_job_table(self) -> list[tuple[str, dt.datetime | None]]:
        engine = create_engine(self._sync_url, **_engine_options(self._backend))
        try:
            with engine.connect() as conn:
                if not inspect(conn).has_table(JOB_TABLE):
                    return []
                jobs_t = table(JOB_TABLE, column("id"), column("next_run_time"))
                rows = conn.execute(select(jobs_t.c.id, jobs_t.c.next_run_time)).all()
        finally:
            engine.dispose()
        return [(str(row[0]), utc_timestamp_to_datetime(row[1])) for row in rows]
