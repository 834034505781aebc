"""The broadcast engine across real processes: ``bot serve`` and ``bot campaign`` run as
subprocesses (as operators run them) against the fake Bot API served by this test process.

- A sender killed with SIGKILL mid-send, then a new ``bot serve``: nothing is sent twice,
  what the dead sender had in flight is reported uncertain (the crash policy: at most once).
- Two ``bot serve`` processes on one PostgreSQL database: disjoint claims, one shared rate.
- A bot configured faster than the platform allows: the 429s are honoured (in-process).
- A scheduled campaign survives a restart of ``bot serve`` and goes out once, on time.

Every subprocess is killed in ``finally``; their logs are under ``tmp_path`` and quoted in
failure messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.channels.couriers import open_couriers
from bot.services import broadcast_engine, build_campaigns, open_services, open_storage
from bot.settings import BroadcastSettings, DatabaseSettings, Settings, TelegramSettings
from broadcasts.workflow import Campaigns, CampaignSpec
from storage.campaigns import RUN_DONE, SENT, UNCERTAIN
from tests.fakes.telegram_api import RATE_RETRY_AFTER, FakeTelegram

TOKEN = "123456789:AAH-test_token_Zq8xY"
AUTHOR, APPROVER = "Nguyễn Văn An", "Trần Thị Bình"
TOPIC = "thu-tuc-moi"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
FINAL_RUN = frozenset({"done", "cancelled", "failed", "paused"})


class TimedTelegram(FakeTelegram):
    """The fake, also noting when each sendMessage arrived (wall clock) and whether its rate
    limit refused it. The rate check runs on arrival, once per sendMessage."""

    def __init__(self, token: str, **options: Any) -> None:
        super().__init__(token, **options)
        self.arrivals: list[tuple[float, bool]] = []

    async def __aenter__(self) -> TimedTelegram:
        await super().__aenter__()
        return self

    def _over_rate_limit(self) -> bool:
        limited = super()._over_rate_limit()
        self.arrivals.append((time.time(), limited))
        return limited

    def received(self) -> Counter[str]:
        """chat id → how many messages Telegram accepted for it."""
        return Counter(str(p["chat_id"]) for p in self.sent())


# --- processes ------------------------------------------------------------------------------


def bot_env(db_url: str, api: FakeTelegram, **broadcast: object) -> dict[str, str]:
    """The environment of every ``bot`` subprocess: this database, the fake Bot API, no quiet
    hours, and ``BOT_BROADCAST_<NAME>`` for each keyword."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_TELEGRAM", "BOT_ZALO", "BOT_BROADCAST", "BOT_DATABASE"))
    }
    env.update(
        {
            "PYTHONIOENCODING": "utf-8",
            # SIGABRT then writes every thread's stack to the log (see Serve.ready).
            "PYTHONFAULTHANDLER": "1",
            "BOT_DATABASE_URL": db_url,
            "BOT_TELEGRAM_TOKEN": TOKEN,
            "BOT_TELEGRAM_WEBHOOK_SECRET": "webhook-Secret_42",
            "BOT_TELEGRAM_API_URL": api.url,
            "BOT_BROADCAST_QUIET_START": "00:00",
            "BOT_BROADCAST_QUIET_END": "00:00",
        }
    )
    env.update({f"BOT_BROADCAST_{k.upper()}": str(v) for k, v in broadcast.items()})
    return env


async def campaign_cli(env: dict[str, str], *args: str) -> dict[str, Any] | str:
    """``bot campaign ARGS``; its JSON (with --json) or its output. Exit code 0 required."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "campaign",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, f"bot campaign {' '.join(args)}: {err.decode()}"
    if "--json" in args:
        data: dict[str, Any] = json.loads(out)
        return data
    return out.decode()


async def approved_campaign(env: dict[str, str], *extra: str) -> int:
    """A Telegram campaign to every subscriber, written, submitted and approved (by someone
    else) with the CLI."""
    created = await campaign_cli(
        env,
        "create",
        "--name",
        "Dịch vụ công trực tuyến",
        "--text",
        "Từ 01/12, nộp hồ sơ cấp đổi giấy phép lái xe **trực tuyến**.",
        "--channels",
        "telegram",
        "--by",
        AUTHOR,
        "--json",
        *extra,
    )
    assert isinstance(created, dict)
    campaign = int(created["id"])
    await campaign_cli(env, "submit", str(campaign), "--by", AUTHOR)
    await campaign_cli(env, "approve", str(campaign), "--by", APPROVER)
    return campaign


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Serve:
    """One ``bot serve`` subprocess on a free port, its output in a log file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, port: int) -> None:
        self.process = process
        self.log = log
        self.port = port

    @classmethod
    async def start(cls, env: dict[str, str], log: Path) -> Serve:
        port = free_port()
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                "--port",
                str(port),
                env=env,
                cwd=log.parent,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log, port)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.log.name} (pid {self.pid}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.returncode is not None:
            raise AssertionError(f"bot serve exited with {self.process.returncode}\n{self.tail()}")

    async def ready(self, seconds: float = 15.0) -> float:
        """Wait until /healthz answers (the broadcast engine and the scheduler start before
        the port is bound); the wall-clock time it did."""
        deadline = time.monotonic() + seconds
        url = f"http://127.0.0.1:{self.port}/healthz"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                self.check_alive()
                try:
                    async with session.get(url) as response:
                        if response.status == 200:
                            return time.time()
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    # Where it is stuck: faulthandler dumps the stacks on SIGABRT.
                    self.process.send_signal(signal.SIGABRT)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.process.wait(), 5)
                    raise AssertionError(f"bot serve not ready after {seconds} s\n{self.tail(80)}")
                await asyncio.sleep(0.05)

    async def kill(self) -> int:
        """SIGKILL: no shutdown code runs."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()

    async def terminate(self, seconds: float = 25.0) -> int:
        """SIGTERM, as a service manager stops it; SIGKILL if it does not exit in time."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            await self.kill()
            raise AssertionError(
                f"bot serve ignored SIGTERM for {seconds} s\n{self.tail()}"
            ) from None

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


# --- the database, seen from the test -----------------------------------------------------


def settings_for(url: str, **values: Any) -> Settings:
    return Settings(database=DatabaseSettings(url=url), **values)


async def migrate(url: str) -> None:
    """The schema, before any process uses the database (they all migrate on start)."""
    async with open_storage(settings_for(url)):
        pass


async def seed(url: str, count: int, first: int = 7_100_000) -> list[str]:
    """``count`` active Telegram subscribers (numeric chat ids, as Telegram's)."""
    chats = [str(first + i) for i in range(count)]
    async with open_storage(settings_for(url), migrate=False) as storage:
        for start in range(0, count, 50):
            await asyncio.gather(
                *(
                    storage.subscribers.subscribe("telegram", chat, [TOPIC], source="test")
                    for chat in chats[start : start + 50]
                )
            )
    return chats


async def approved_in_process(url: str) -> int:
    """The same campaign as ``approved_campaign``, through the workflow service."""
    async with open_storage(settings_for(url), migrate=False) as storage:
        campaigns = Campaigns(storage.campaigns, BroadcastSettings())
        spec = CampaignSpec(
            name="Dịch vụ công trực tuyến",
            text="Từ 01/12, nộp hồ sơ cấp đổi giấy phép lái xe **trực tuyến**.",
            channels=("telegram",),
        )
        campaign = await campaigns.create(spec, author=AUTHOR)
        await campaigns.submit(campaign.id, actor=AUTHOR)
        await campaigns.approve(campaign.id, by=APPROVER)
        return campaign.id


async def ledger(url: str, run_id: int) -> list[dict[str, Any]]:
    async with open_storage(settings_for(url), migrate=False) as storage:
        return await storage.campaigns.deliveries(run_id)


async def wait_run_final(url: str, run_id: int, seconds: float, *serving: Serve) -> str:
    """Poll the repository until the run is done (or cancelled, failed, paused); fail early
    if a ``bot serve`` died."""
    deadline = time.monotonic() + seconds
    async with open_storage(settings_for(url), migrate=False) as storage:
        while True:
            run = await storage.campaigns.run(run_id)
            assert run is not None
            if run.status in FINAL_RUN:
                return run.status
            for serve in serving:
                serve.check_alive()
            if time.monotonic() > deadline:
                counts = await storage.campaigns.counts([run_id])
                logs = "\n".join(s.tail() for s in serving)
                raise AssertionError(
                    f"run {run_id} still {run.status} after {seconds} s: {counts}\n{logs}"
                )
            await asyncio.sleep(0.1)


async def until(predicate: Callable[[], bool], seconds: float, *serving: Serve) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        for serve in serving:
            serve.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {seconds} s")
        await asyncio.sleep(0.005)


def max_per_second(moments: list[float]) -> int:
    """The most moments in any sliding one-second window."""
    ordered = sorted(moments)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def window_trace(moments: list[float]) -> str:
    """The busiest second: its start (from the first moment) and the arrivals in it, per
    50 ms (what a failure message needs to tell a burst from a steady excess)."""
    ordered = sorted(moments)
    best, best_start, start = 0, 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= 1.0:
            start += 1
        if end - start + 1 > best:
            best, best_start = end - start + 1, start
    first = ordered[best_start]
    buckets = Counter(int((t - first) / 0.05) for t in ordered[best_start : best_start + best])
    return f"at +{first - ordered[0]:.2f}s: {[buckets.get(i, 0) for i in range(20)]}"


# --- 1. kill -9 mid-send, then a new bot serve ----------------------------------------------

CRASH_AUDIENCE = 400
CLAIM_BATCH = 20


async def test_sigkill_mid_send_then_restart_sends_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    # A little latency keeps sends in flight; a lease of 1 s lets the new process declare the
    # dead one's rows uncertain quickly.
    async with TimedTelegram(TOKEN, latency=0.03) as api:
        env = bot_env(
            database_url,
            api,
            telegram_rate=150,
            claim_lease_seconds=1,
            claim_batch=CLAIM_BATCH,
        )
        await migrate(database_url)
        first = await Serve.start(env, tmp_path / "serve-1.log")
        try:
            chats, campaign, _ = await asyncio.gather(
                seed(database_url, CRASH_AUDIENCE), approved_campaign(env), first.ready()
            )
            started = await campaign_cli(env, "send", str(campaign), "--by", APPROVER, "--json")
            assert isinstance(started, dict)
            run_id = int(started["run_id"])
            await until(lambda: len(api.sent()) >= 100, 20, first)
            assert await first.kill() == -signal.SIGKILL
        finally:
            await first.close()
        at_kill = len(api.sent())
        assert at_kill < CRASH_AUDIENCE, "the first sender finished before it was killed"

        second = await Serve.start(env, tmp_path / "serve-2.log")
        try:
            await second.ready()
            assert await wait_run_final(database_url, run_id, 20, second) == RUN_DONE
            # The report from another process, while the sender stops.
            report, code = await asyncio.gather(
                campaign_cli(env, "report", str(campaign), "--json"), second.terminate()
            )
        finally:
            await second.close()
        assert code == 0, second.tail()

    received = api.received()
    rows = await ledger(database_url, run_id)
    by_status = Counter(r["status"] for r in rows)
    sent = {r["external_id"]: r for r in rows if r["status"] == SENT}
    uncertain = {r["external_id"]: r for r in rows if r["status"] == UNCERTAIN}
    # Nobody received the campaign twice.
    assert [chat for chat, n in received.items() if n > 1] == []
    assert set(received) <= set(chats)
    # Every subscriber is in the ledger, sent or uncertain; nothing pending or sending.
    assert sorted(r["external_id"] for r in rows) == sorted(chats)
    assert set(by_status) <= {SENT, UNCERTAIN}, by_status
    # Every row recorded sent was received, with the message id Telegram gave it.
    assert set(sent) <= set(received)
    for chat, row in sent.items():
        assert row["message_id"] == str(api.message_ids(chat)[0])
    # What was received but not recorded sent was in flight at the kill: uncertain.
    assert set(received) - set(sent) <= set(uncertain)
    # The uncertain rows were the dead sender's, and no more than it could have in flight.
    # (Rows whose outcome waits in the engine's outcome buffer are still "sending" too.)
    assert 0 < len(uncertain) <= CLAIM_BATCH, (len(uncertain), len(set(received) - set(sent)))
    assert all(f":{first.pid}:" in r["claimed_by"] for r in uncertain.values())
    # The new sender sent the rest.
    assert len(received) > at_kill
    assert any(f":{second.pid}:" in r["claimed_by"] for r in sent.values())

    assert isinstance(report, dict)
    assert report["campaign"]["status"] == "done"
    assert report["latest_run"]["run"]["status"] == RUN_DONE
    assert (report["sent"], report["uncertain"], report["pending"], report["failed"]) == (
        len(sent),
        len(uncertain),
        0,
        0,
    )
    assert report["totals"]["total"] == CRASH_AUDIENCE
    assert {k: n for k, n in report["totals"]["by_status"].items() if n} == dict(by_status)


# --- 2. two senders on PostgreSQL -------------------------------------------------------------

SHARED_AUDIENCE = 600
SHARED_RATE = 60
PLATFORM_LIMIT = 70


async def test_two_senders_on_postgres_share_the_rate_and_never_send_a_row_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    # Telegram refuses what goes over 70 per second; the bot is set to 60 for all its workers.
    async with TimedTelegram(TOKEN, rate_limit=PLATFORM_LIMIT, latency=0.02) as api:
        env = bot_env(postgres_url, api, telegram_rate=SHARED_RATE)
        await migrate(postgres_url)
        workers = [
            await Serve.start(env, tmp_path / "serve-a.log"),
            await Serve.start(env, tmp_path / "serve-b.log"),
        ]
        try:
            # The workflow through the CLI is test 1's and 4's; here only the senders matter.
            chats, campaign, *_ = await asyncio.gather(
                seed(postgres_url, SHARED_AUDIENCE),
                approved_in_process(postgres_url),
                *(w.ready() for w in workers),
            )
            assert isinstance(chats, list)
            started = await campaign_cli(env, "send", str(campaign), "--by", APPROVER, "--json")
            assert isinstance(started, dict)
            run_id = int(started["run_id"])
            assert await wait_run_final(postgres_url, run_id, 30, *workers) == RUN_DONE
        finally:
            codes = await asyncio.gather(*(w.terminate() for w in workers))
            for worker in workers:
                await worker.close()
        assert codes == [0, 0], [w.tail() for w in workers]

    assert api.received() == Counter(dict.fromkeys(chats, 1))
    rows = await ledger(postgres_url, run_id)
    assert Counter(r["status"] for r in rows) == {SENT: SHARED_AUDIENCE}
    claimers = Counter(r["claimed_by"] for r in rows)
    assert len(claimers) == 2, claimers
    for worker in workers:
        assert any(f":{worker.pid}:" in name for name in claimers), (worker.pid, claimers)
    # One shared bucket: at most rate + burst (rate / 10) in any second, and the whole
    # audience took as long as one sender at that rate would, not half.
    moments = [t for t, _ in api.arrivals]
    start = min(moments)
    refused = [round(t - start, 3) for t, limited in api.arrivals if limited]
    assert api.rejected_429 == 0, (refused, max_per_second(moments), window_trace(moments))
    assert max_per_second(moments) <= PLATFORM_LIMIT
    assert max(moments) - min(moments) >= (SHARED_AUDIENCE - SHARED_RATE) / SHARED_RATE


# --- 3. 429 from the platform, in-process -----------------------------------------------------

THROTTLED_AUDIENCE = 30


async def test_429s_from_a_stricter_platform_are_honoured(sqlite_url: str) -> None:
    async with TimedTelegram(TOKEN, rate_limit=10) as api:
        settings = settings_for(
            sqlite_url,
            telegram=TelegramSettings(token=TOKEN, api_url=api.url),
            broadcast=BroadcastSettings(
                quiet_start="00:00",
                quiet_end="00:00",
                telegram_rate=40,  # misconfigured: the platform allows 10
            ),
        )
        await migrate(sqlite_url)
        chats = await seed(sqlite_url, THROTTLED_AUDIENCE)
        async with open_services(settings) as services:
            campaigns = build_campaigns(services)
            spec = CampaignSpec(
                name="Tin thử", text="Dịch vụ công **trực tuyến**.", channels=("telegram",)
            )
            campaign = await campaigns.create(spec, author=AUTHOR)
            await campaigns.submit(campaign.id, actor=AUTHOR)
            await campaigns.approve(campaign.id, by=APPROVER)
            async with open_couriers(settings, services) as couriers:
                engine = broadcast_engine(services, couriers, supervise_interval=0.05)
                async with engine:
                    run = await campaigns.send_now(campaign.id, actor=APPROVER)
                    final = await asyncio.wait_for(engine.wait(run.id, poll=0.05), 30)
            rows = await services.storage.campaigns.deliveries(run.id)

    assert final.status == RUN_DONE
    assert api.received() == Counter(dict.fromkeys(chats, 1))
    assert Counter(r["status"] for r in rows) == {SENT: THROTTLED_AUDIENCE}
    assert api.rejected_429 > 0, "the platform's limit was never reached"
    # After each 429 (retry_after 1 s) nothing more reached Telegram for about a second: only
    # requests already on their way when the 429 came back may arrive in the first moment.
    grace, pause = 0.15, RATE_RETRY_AFTER * 0.95
    refused = [t for t, limited in api.arrivals if limited]
    early = sorted(
        {round(t - r, 3) for r in refused for t, _ in api.arrivals if r + grace < t < r + pause}
    )
    assert early == [], early
    # Refusals come in short bursts (what was in flight when the first came back).
    assert api.rejected_429 <= THROTTLED_AUDIENCE // 2, api.rejected_429


# --- 4. a scheduled campaign across a restart -------------------------------------------------

SCHEDULED_AUDIENCE = 20


async def test_scheduled_campaign_survives_a_restart_and_goes_out_once_on_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    async with TimedTelegram(TOKEN) as api:
        env = bot_env(sqlite_url, api, telegram_rate=100)
        await migrate(sqlite_url)
        chats = await seed(sqlite_url, SCHEDULED_AUDIENCE)
        # Writing, submitting, approving and scheduling are four CLI calls (two to four
        # seconds each on a busy machine), then a `bot serve` starts and stops: the time
        # leaves a few seconds once all that is done.
        at = dt.datetime.now(VN).replace(microsecond=0) + dt.timedelta(seconds=22)
        campaign = await approved_campaign(env, "--at", at.strftime("%Y-%m-%d %H:%M:%S"))
        out = await campaign_cli(env, "schedule", str(campaign), "--by", APPROVER)
        assert f"Sẽ gửi lúc {at.strftime('%d/%m/%Y %H:%M')}" in str(out)
        fire = at.timestamp()
        assert fire - time.time() > 2.0, "the CLI was too slow to leave time before the send"

        # The first process takes the campaign into its scheduler, and is stopped before
        # the time.
        first = await Serve.start(env, tmp_path / "serve-1.log")
        try:
            await first.ready()
            code = await first.terminate()
        finally:
            await first.close()
        assert code == 0, first.tail()
        assert f"campaign {campaign}: job added" in first.log.read_text(encoding="utf-8")
        assert time.time() < fire, "the first bot serve was not stopped before the time"
        assert api.sent() == []

        second = await Serve.start(env, tmp_path / "serve-2.log")
        try:
            ready = await second.ready()
            await until(
                lambda: len(api.sent()) >= SCHEDULED_AUDIENCE, fire - time.time() + 10, second
            )
            runs = await campaigns_runs(sqlite_url, campaign)
            assert len(runs) == 1, runs
            assert await wait_run_final(sqlite_url, runs[0], 10, second) == RUN_DONE
            # The report from another process, while the sender still runs (a duplicate
            # would have time to show).
            report = await campaign_cli(env, "report", str(campaign), "--json")
        finally:
            code = await second.terminate()
            await second.close()
        assert code == 0, second.tail()

    assert api.received() == Counter(dict.fromkeys(chats, 1))
    moments = [t for t, _ in api.arrivals]
    # Not before its time; at about its time (or as soon as the new process was up, if later).
    assert min(moments) >= fire - 0.05, min(moments) - fire
    assert max(moments) <= max(fire, ready) + 3.0, (max(moments) - fire, ready - fire)
    assert isinstance(report, dict)
    assert report["campaign"]["status"] == "done"
    assert (report["sent"], report["pending"], report["uncertain"]) == (SCHEDULED_AUDIENCE, 0, 0)
    assert [(r["id"], r["status"]) for r in report["runs"]] == [(runs[0], "done")]


async def campaigns_runs(url: str, campaign_id: int) -> list[int]:
    async with open_storage(settings_for(url), migrate=False) as storage:
        return [r.id for r in await storage.campaigns.runs(campaign_id)]


@pytest.fixture(autouse=True)
def _no_bot_env_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in this process read BOT_* too: none from the caller's shell."""
    for name in list(os.environ):
        if name.startswith(("BOT_TELEGRAM", "BOT_ZALO", "BOT_BROADCAST", "BOT_DATABASE")):
            monkeypatch.delenv(name)
