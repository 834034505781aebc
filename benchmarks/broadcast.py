"""Broadcast benchmark: the engine's throughput, its rate fidelity against Telegram's limit,
and its memory while expanding a large audience, in one run.

    .venv/bin/python benchmarks/broadcast.py [--recipients 20000] [--fidelity-seconds 20]
        [--memory-sizes 10000,1000000] [--postgres-url URL] [--only throughput,fidelity,memory]

Everything runs on 127.0.0.1, in a temporary folder removed at the end. This process runs
the fake Bot APIs and reads what they received; the bot's side runs in child processes
(each started fresh, settings from ``BOT_*`` variables as in production, uvloop as in
``bot serve``), so the two never share a core (the machine has two). Quiet hours are off in
every part (``BOT_BROADCAST_QUIET_START=END=00:00``): at night they would hold the runs.

(a) Throughput, limits off (``BOT_BROADCAST_TELEGRAM_RATE=0``,
    ``BOT_BROADCAST_TELEGRAM_PER_CHAT_SECONDS=0``). The child opens the services as
    ``bot campaign send --wait`` does (migrations, content pack, ``open_couriers``), seeds
    ``--recipients`` Telegram subscribers and makes an approved campaign (text, bold, link
    button). First the ceiling: a bare loop of ``TelegramCourier.deliver`` (the same HTTP
    client and rendering, no database) with as many in flight as the engine allows itself
    without a rate limit (``min(claim_batch, 64)``: 50), to as many other chats. Then the
    engine end to end: ``send_now`` → the supervisor expands the run into the ledger → the
    sender claims rows → courier → HTTP → fake → outcomes written → run done.
    deliveries/s = recipients / (the run's ``started_at`` → ``finished_at``: stamped by
    send_now, and by the supervisor once the ledger has nothing left; ``engine.wait`` polls
    every 0.5 s as the CLI does). "sending phase" = (sent − 1) / (the ledger's first → last
    ``sent_at``). The fake here is a minimal Bot API (answers sendMessage as Telegram does,
    counts arrivals per chat): the tests' ``FakeTelegram`` checks each message's HTML and
    records every call, which caps it near 2,300 calls/s on one core, so it would measure
    itself. Once on SQLite (a file, WAL) and once on PostgreSQL (``--postgres-url``; a
    fresh database created for the run and dropped; skipped, with the reason, when
    unreachable).
(b) Rate fidelity: the tests' ``FakeTelegram`` with ``rate_limit=30`` (more than 30
    sendMessage in any sliding second → 429 with ``retry_after`` 1), the bot with its
    default pacing (``telegram_rate`` 25/s, per-chat spacing 1 s). The audience is
    25 × ``--fidelity-seconds`` + 1 chats. Achieved rate = (accepted − 1) / (last − first
    arrival at the fake); also the most accepted in any one-second window and the 429s.
(c) Memory of the expansion, for each of ``--memory-sizes``: one child seeds N Telegram
    subscribers into a fresh SQLite file (``storage.seed.bulk_subscribers``); a fresh child
    opens the storage only (no content pack, to keep the baseline low), makes an approved
    campaign, ``Campaigns.send_now`` and calls ``BroadcastEngine.supervise_once()`` (no
    couriers) until the run leaves "expanding". It reports its peak RSS
    (``ru_maxrss``, whole process) and the expansion's time; a second fresh child repeats
    the expansion on a copy of the seeded file under ``tracemalloc`` (peak of Python
    allocations during the expansion; tracing slows it, so it is not timed). Ledger rows
    written must equal N.

Targets (from the issue): (a) ≥ 2,000 deliveries/s on SQLite; (b) achieved ≥ 97 % of
25/s and no 429; (c) peak RSS at the largest size ≤ 1.2 × at the smallest, ledger rows = N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from bench_support import drop_database, fresh_database, table

TOKEN = "123456:bench-token"
AUTHOR, APPROVER = "Lan (benchmark)", "Minh (benchmark)"
TEXT = (
    "**Thông báo:** từ ngày 01/12, hồ sơ cấp đổi giấy phép lái xe được nộp trực tuyến tại "
    "https://dichvucong.gov.vn, không cần đến Bộ phận Một cửa."
)
LINK_TITLE, LINK_URL = "Nộp hồ sơ", "https://dichvucong.gov.vn"
# Chat ids of the campaign's audience and of the bare loop's chats (the sink tells them apart).
AUDIENCE_BASE = 1_000_000_000
CEILING_BASE = 2_000_000_000
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FAKE_RATE_LIMIT = 30
TARGET_RATE = 2000.0
TARGET_SHARE = 0.97
TARGET_MEMORY_RATIO = 1.2
ROOT = Path(__file__).resolve().parent.parent


# --- the fakes (this process) ---------------------------------------------------------------


class Sink:
    """A minimal Bot API: sendMessage answered as Telegram does (the message it created),
    arrivals counted per chat; any other method answers ``true``."""

    def __init__(self) -> None:
        self.chats: Counter[int] = Counter()
        self.message_id = 0
        self.runner = web.AppRunner(self._app(), access_log=None)
        self.url = ""

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        return app

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if request.match_info["method"] != "sendMessage":
            return web.json_response({"ok": True, "result": True})
        form = await request.post()
        chat = int(str(form["chat_id"]))
        self.chats[chat] += 1
        self.message_id += 1
        return web.json_response(
            {
                "ok": True,
                "result": {
                    "message_id": self.message_id,
                    "from": {"id": 123456, "is_bot": True, "first_name": "Bench"},
                    "chat": {"id": chat, "type": "private", "first_name": "Dân"},
                    "date": int(time.time()),
                    "text": str(form.get("text", "")),
                },
            }
        )

    def received(self, base: int) -> tuple[int, int]:
        """(messages, distinct chats) received for the chats numbered from ``base``."""
        mine = [n for chat, n in self.chats.items() if base <= chat < base + 1_000_000_000]
        return sum(mine), len(mine)


def timed_fake(rate_limit: int) -> Any:
    """The tests' FakeTelegram (imported from tests/, not an installed package), noting when
    each sendMessage arrived and what it was answered."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fakes.telegram_api import FakeTelegram

    class TimedFakeTelegram(FakeTelegram):
        def __init__(self) -> None:
            super().__init__(TOKEN, rate_limit=rate_limit)
            self.arrivals: list[tuple[float, int]] = []

        async def _handle(self, request: web.Request) -> web.Response:
            arrived = time.monotonic()
            response = await super()._handle(request)
            if request.match_info["method"] == "sendMessage":
                self.arrivals.append((arrived, response.status))
            return response

    return TimedFakeTelegram()


# --- child processes -------------------------------------------------------------------------


def worker_env(database_url: str, api_url: str | None = None, **broadcast: str) -> dict[str, str]:
    """The child's environment: none of the caller's BOT_* settings, ours instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update(
        {
            "BOT_DATABASE_URL": database_url,
            "BOT_LOG_LEVEL": "WARNING",
            "BOT_BROADCAST_QUIET_START": "00:00",
            "BOT_BROADCAST_QUIET_END": "00:00",
        }
    )
    if api_url is not None:
        env.update({"BOT_TELEGRAM_TOKEN": TOKEN, "BOT_TELEGRAM_API_URL": api_url})
    env.update({f"BOT_BROADCAST_{key.upper()}": value for key, value in broadcast.items()})
    return env


async def run_worker(role: str, config: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--worker",
        role,
        json.dumps(config),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"{role} child failed (exit {process.returncode}):\n{err.decode()[-4000:]}"
        )
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["warnings"] = sum("WARNING" in line for line in err.decode().splitlines())
    return result


def audience(count: int, base: int = AUDIENCE_BASE) -> Iterator[dict[str, Any]]:
    return ({"channel": "telegram", "external_id": str(base + i)} for i in range(count))


async def approved_campaign(campaigns: Any) -> int:
    from broadcasts.workflow import CampaignSpec

    spec = CampaignSpec(
        name="Benchmark",
        text=TEXT,
        channels=("telegram",),
        link_title=LINK_TITLE,
        link_url=LINK_URL,
    )
    campaign = await campaigns.create(spec, author=AUTHOR)
    await campaigns.submit(campaign.id, actor=AUTHOR)
    await campaigns.approve(campaign.id, by=APPROVER)
    return int(campaign.id)


async def bare_loop(courier: Any, message: Any, count: int, in_flight: int) -> float:
    """sendMessage after sendMessage through the courier, ``in_flight`` at once, no
    database: the most the engine could reach with this HTTP client and this fake."""
    numbers = iter(range(count))

    async def sender() -> None:
        for n in numbers:
            await courier.deliver(str(CEILING_BASE + n), message)

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(in_flight)))
    return count / (time.perf_counter() - began)


async def engine_child(config: dict[str, Any]) -> dict[str, Any]:
    """Seed, measure the bare loop (optional), then one campaign through the engine."""
    from bot.channels.couriers import open_couriers
    from bot.services import broadcast_engine, build_campaigns, open_services, opt_out_line
    from bot.settings import Settings
    from broadcasts.engine import UNLIMITED_IN_FLIGHT
    from broadcasts.message import compose
    from storage.seed import bulk_subscribers

    settings = Settings()
    recipients = int(config["recipients"])
    result: dict[str, Any] = {"ceiling": None}
    async with open_services(settings) as services:
        await bulk_subscribers(services.storage.db, audience(recipients))
        campaigns = build_campaigns(services)
        campaign_id = await approved_campaign(campaigns)
        async with open_couriers(settings, services) as couriers:
            if config["ceiling"]:
                message = compose(
                    TEXT, opt_out_line(services), link_title=LINK_TITLE, link_url=LINK_URL
                )
                in_flight = min(settings.broadcast.claim_batch, UNLIMITED_IN_FLIGHT)
                result["ceiling"] = await bare_loop(
                    couriers["telegram"], message, int(config["ceiling"]), in_flight
                )
            engine = broadcast_engine(services, couriers, worker="bench")
            async with engine:
                run = await campaigns.send_now(campaign_id, actor=AUTHOR)
                # Polled as `bot campaign send --wait` does; the time comes from the run's
                # own stamps (started by send_now, finished by the supervisor).
                final = await asyncio.wait_for(
                    engine.wait(run.id, poll=0.5), timeout=float(config["timeout"])
                )
        counts = await campaigns.repo.counts([run.id])
        first, last = await campaigns.repo.sent_span([run.id])
    began, ended = final.started_at, final.finished_at
    result.update(
        seconds=(ended - began).total_seconds() if began and ended else None,
        status=final.status,
        status_reason=final.status_reason,
        total=final.total,
        counts={f"{c}:{s}": n for (c, s), n in counts.items()},
        sent=counts.get(("telegram", "sent"), 0),
        sent_span=(last - first).total_seconds() if first and last else None,
        rate=settings.broadcast.telegram_rate,
    )
    return result


async def seed_child(config: dict[str, Any]) -> dict[str, Any]:
    from storage import db
    from storage.seed import bulk_subscribers

    database = db.create_engine(config["url"])
    try:
        await db.upgrade(database)
        began = time.perf_counter()
        seeded = await bulk_subscribers(database, audience(int(config["recipients"])))
        return {"seeded": seeded, "seconds": time.perf_counter() - began}
    finally:
        await database.dispose()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def expand_child(config: dict[str, Any]) -> dict[str, Any]:
    """Only the expansion: send_now, then the supervisor's step until the audience is in
    the ledger."""
    import tracemalloc

    from bot.services import open_storage
    from bot.settings import Settings
    from broadcasts.engine import BroadcastEngine
    from broadcasts.workflow import Campaigns
    from storage.campaigns import RUN_EXPANDING

    settings = Settings()
    trace = bool(config["trace"])
    async with open_storage(settings, migrate=False) as storage:
        campaigns = Campaigns(storage.campaigns, settings.broadcast)
        campaign_id = await approved_campaign(campaigns)
        engine = BroadcastEngine(
            campaigns, storage.rate_buckets, {}, settings.broadcast, opt_out_line="Gõ HỦY."
        )
        before = peak_rss_mb()
        if trace:
            tracemalloc.start()
        began = time.perf_counter()
        run = await campaigns.send_now(campaign_id, actor=AUTHOR)
        steps = 0
        while True:
            await engine.supervise_once()
            steps += 1
            current = await storage.campaigns.run(run.id)
            if current is None or current.status != RUN_EXPANDING:
                break
        seconds = time.perf_counter() - began
        traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else None
        tracemalloc.stop()
        counts = await storage.campaigns.counts([run.id])
    return {
        "seconds": seconds,
        "steps": steps,
        "rows": sum(counts.values()),
        "total": current.total if current else None,
        "rss_before": before,
        "rss_peak": peak_rss_mb(),
        "traced_peak": traced,
    }


CHILDREN = {"engine": engine_child, "seed": seed_child, "expand": expand_child}


def child_main(role: str, config: str) -> int:
    import logging

    from bot.cli.core import _event_loop

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    with asyncio.Runner(loop_factory=_event_loop) as runner:
        result = runner.run(CHILDREN[role](json.loads(config)))
    print(json.dumps(result))
    return 0


# --- the three parts (this process) ----------------------------------------------------------


Row = Sequence[str]


def n0(value: float) -> str:
    return f"{value:,.0f}"


class Verdicts:
    def __init__(self) -> None:
        self.lines: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.lines.append((name, ok, detail))

    @property
    def missed(self) -> bool:
        return any(not ok for _, ok, _ in self.lines)


async def throughput(args: argparse.Namespace, folder: str, verdicts: Verdicts) -> None:
    sink = Sink()
    await sink.start()
    n = args.recipients
    rows: list[Row] = []
    notes: list[str] = []
    try:
        for label in ("SQLite", "PostgreSQL"):
            dropped: tuple[str, str] | None = None
            if label == "SQLite":
                url = f"sqlite+aiosqlite:///{folder}/throughput.db"
            else:
                fresh, why = await fresh_database(args.postgres_url, "bench_broadcast")
                if fresh is None:
                    notes.append(f"PostgreSQL skipped: {why}")
                    continue
                url, dropped = fresh, (args.postgres_url, why)
            sink.chats.clear()
            env = worker_env(url, sink.url, telegram_rate="0", telegram_per_chat_seconds="0")
            try:
                result = await run_worker(
                    "engine", {"recipients": n, "ceiling": n, "timeout": 600}, env
                )
            finally:
                if dropped is not None:
                    await drop_database(*dropped)
            got, chats = sink.received(AUDIENCE_BASE)
            ceiling_got, _ = sink.received(CEILING_BASE)
            rate = n / result["seconds"]
            ceiling = float(result["ceiling"])
            span = result["sent_span"]
            phase = (result["sent"] - 1) / span if span else 0.0
            complete = result["sent"] == n and got == n and chats == n and ceiling_got == n
            verdict = ""
            if label == "SQLite":
                ok = rate >= TARGET_RATE and complete
                verdict = ("met" if ok else "MISSED") + f" (≥ {n0(TARGET_RATE)}/s)"
                verdicts.add(
                    f"(a) engine throughput on SQLite ≥ {n0(TARGET_RATE)} deliveries/s",
                    ok,
                    f"{n0(rate)}/s" + ("" if complete else ", NOT every recipient sent once"),
                )
            if not complete:
                notes.append(
                    f"{label}: ledger sent {result['sent']}, fake received {got} messages to "
                    f"{chats} chats (want {n}); run {result['status']} "
                    f"{result['status_reason'] or ''} {result['counts']}"
                )
            rows.append(
                [
                    label,
                    n0(n),
                    f"{result['seconds']:.2f}",
                    n0(rate),
                    n0(phase),
                    n0(ceiling),
                    f"{rate / ceiling:.0%}",
                    n0(result["sent"]),
                    n0(got),
                    verdict or "—",
                ]
            )
    finally:
        await sink.runner.cleanup()
    print(
        f"(a) Throughput, limits off: {n0(n)} Telegram recipients, the engine in its own "
        "process, the fake Bot API in this one.\n"
    )
    print(
        table(
            [
                "database",
                "recipients",
                "seconds",
                "deliveries/s",
                "sending phase/s",
                "bare loop/s (ceiling)",
                "of ceiling",
                "ledger sent",
                "fake received",
                "target",
            ],
            rows,
        )
    )
    for note in notes:
        print(f"\n{note}")
    print()


async def fidelity(args: argparse.Namespace, folder: str, verdicts: Verdicts) -> None:
    from bot.settings import BroadcastSettings

    configured = BroadcastSettings().telegram_rate
    recipients = round(configured * args.fidelity_seconds) + 1
    fake = timed_fake(FAKE_RATE_LIMIT)
    async with fake:
        env = worker_env(f"sqlite+aiosqlite:///{folder}/fidelity.db", fake.url)
        result = await run_worker(
            "engine",
            {"recipients": recipients, "ceiling": 0, "timeout": args.fidelity_seconds * 5 + 60},
            env,
        )
    accepted = sorted(t for t, status in fake.arrivals if status == 200)
    rejected = fake.rejected_429
    span = accepted[-1] - accepted[0] if len(accepted) > 1 else 0.0
    achieved = (len(accepted) - 1) / span if span else 0.0
    share = achieved / configured
    busiest, start = 0, 0
    for end, moment in enumerate(accepted):
        while moment - accepted[start] >= 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    complete = result["sent"] == recipients and len(accepted) == recipients
    ok_share = share >= TARGET_SHARE and complete
    verdicts.add(
        f"(b) achieved rate ≥ {TARGET_SHARE:.0%} of {configured:g}/s",
        ok_share,
        f"{share:.1%}" + ("" if complete else ", NOT every recipient sent"),
    )
    verdicts.add("(b) 429s received = 0", rejected == 0, str(rejected))
    print(
        f"(b) Rate fidelity: the bot at {result['rate']:g}/s (its default), FakeTelegram "
        f"refusing beyond {FAKE_RATE_LIMIT} in any sliding second; {recipients} recipients.\n"
    )
    print(
        table(
            [
                "bot rate",
                "fake limit",
                "recipients",
                "first→last s",
                "achieved/s",
                "of configured",
                "most in 1 s",
                "429s",
                "ledger sent",
                "target",
            ],
            [
                [
                    f"{configured:g}/s",
                    f"{FAKE_RATE_LIMIT}/s",
                    str(recipients),
                    f"{span:.2f}",
                    f"{achieved:.2f}",
                    f"{share:.1%}",
                    str(busiest),
                    str(rejected),
                    str(result["sent"]),
                    ("met" if ok_share and rejected == 0 else "MISSED")
                    + f" (≥ {TARGET_SHARE:.0%}, 0 × 429)",
                ]
            ],
        )
    )
    print()


async def memory(args: argparse.Namespace, folder: str, verdicts: Verdicts) -> None:
    sizes = sorted({int(s) for s in args.memory_sizes.split(",") if s.strip()})
    rows: list[Row] = []
    peaks: dict[int, float] = {}
    traced: dict[int, float] = {}
    all_rows_ok = True
    for size in sizes:
        path = Path(folder) / f"memory-{size}.db"
        url = f"sqlite+aiosqlite:///{path}"
        env = worker_env(url)
        seeded = await run_worker("seed", {"url": url, "recipients": size}, env)
        copy = path.with_name(f"memory-{size}-traced.db")
        shutil.copyfile(path, copy)
        plain = await run_worker("expand", {"trace": False}, env)
        path.unlink()
        traced_run = await run_worker(
            "expand", {"trace": True}, worker_env(f"sqlite+aiosqlite:///{copy}")
        )
        copy.unlink()
        ok = plain["rows"] == size and plain["total"] == size and traced_run["rows"] == size
        all_rows_ok &= ok
        peaks[size] = plain["rss_peak"]
        traced[size] = traced_run["traced_peak"]
        rows.append(
            [
                n0(size),
                f"{seeded['seconds']:.1f}",
                f"{plain['seconds']:.1f}",
                n0(size / plain["seconds"]),
                n0(plain["rows"]) + ("" if ok else " (WRONG)"),
                f"{plain['rss_before']:.1f}",
                f"{plain['rss_peak']:.1f}",
                f"{traced[size]:.2f}",
            ]
        )
    smallest, largest = sizes[0], sizes[-1]
    ratio = peaks[largest] / peaks[smallest]
    traced_ratio = traced[largest] / traced[smallest] if traced[smallest] else float("nan")
    print(
        "(c) Memory while expanding (SQLite; a fresh process per measurement; "
        "peak RSS = ru_maxrss of the whole process, tracemalloc = the expansion's Python "
        "allocations, in a separate run).\n"
    )
    print(
        table(
            [
                "recipients",
                "seed s",
                "expand s",
                "rows/s",
                "ledger rows",
                "RSS before MB",
                "peak RSS MB",
                "tracemalloc peak MB",
            ],
            rows,
        )
    )
    print(
        f"\npeak RSS {n0(largest)} / {n0(smallest)}: {ratio:.2f}×; "
        f"tracemalloc peak: {traced_ratio:.2f}×\n"
    )
    verdicts.add(
        f"(c) peak RSS at {n0(largest)} ≤ {TARGET_MEMORY_RATIO}× at {n0(smallest)}",
        ratio <= TARGET_MEMORY_RATIO,
        f"{ratio:.2f}×",
    )
    verdicts.add("(c) ledger rows = recipients", all_rows_ok, "yes" if all_rows_ok else "no")


PARTS = ("throughput", "fidelity", "memory")


async def main_async(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(only) - set(PARTS)
    if unknown:
        raise SystemExit(f"--only: unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    folder = tempfile.mkdtemp(prefix="bench-broadcast-")
    verdicts = Verdicts()
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} cores; load average {load:.2f} at the start (other work on the "
        "machine slows every figure below).\n"
    )
    try:
        if "throughput" in only:
            await throughput(args, folder, verdicts)
        if "fidelity" in only:
            await fidelity(args, folder, verdicts)
        if "memory" in only:
            await memory(args, folder, verdicts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for name, ok, detail in verdicts.lines:
        print(f"{name}: {'met' if ok else 'MISSED'} ({detail})")
    elapsed = time.perf_counter() - began
    print(f"\nwhole benchmark: {elapsed // 60:.0f} min {elapsed % 60:.0f} s")
    return 1 if verdicts.missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--fidelity-seconds", type=float, default=20.0)
    parser.add_argument("--memory-sizes", default="10000,1000000")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--only", default=",".join(PARTS), help="parts, comma-separated")
    parser.add_argument("--worker", nargs=2, metavar=("ROLE", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return child_main(*args.worker)
    from bot.cli.core import _event_loop

    with asyncio.Runner(loop_factory=_event_loop) as runner:
        return runner.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
