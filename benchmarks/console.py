"""Staff console benchmark: the time of the inbox and item pages over a large feedback table,
beside a bare aiohttp handler, in one run.

    .venv/bin/python benchmarks/console.py [--items 100000] [--audit 10000] [--requests 200]
        [--in-flight 8] [--postgres-url URL]

Everything runs on 127.0.0.1, in a temporary folder removed at the end. This process seeds a
fresh database (migrated with ``storage.db.upgrade``): ``--items`` feedback items filed over
a year with their histories (``storage.seed.sample_feedback``: surveys and complaints,
statuses by age, service points and procedures of the bundled pack, Vietnamese texts with
their folded search column) and ``--audit`` audit rows (``sample_audit``), and creates the
accounts with ``bot.accounts.Accounts.add``: a staff member (who gets a fifth of the handled
items), eight colleagues and an admin. The bot then runs as ``bot serve`` in its own process
(settings from ``BOT_*`` variables, uvloop, the console under ``/admin`` as in production);
a bare aiohttp handler answering GET with a fixed 20 KB HTML page runs in a process of its
own, on the same event loop. This process signs in over HTTP (the sign-in form, its token
and the session cookie, as a browser does) and generates the load.

- sequential: for each page, ``--warmup`` requests, then ``--requests`` one after another on
  one kept-alive connection; latency = request sent → whole body read. Pages that take a
  parameter rotate through many values (item codes spread over the table, cursors among the
  oldest items, dossier codes). p50/p95/p99 in ms; "KB" is the median body size, "rows" the
  median number of items listed.
- concurrent: the target pages round-robin, ``--in-flight`` at once, 2 × ``--requests``
  requests; pages/s and p50/p95/p99 (and the bare handler the same way).

Once on SQLite (a file, WAL; no ANALYZE, as the bot never runs it) and once on PostgreSQL
(``--postgres-url``; a fresh database created for the run and dropped; ANALYZE after seeding,
as autovacuum would do soon after a bulk load; skipped, with the reason, when unreachable;
``--postgres-url ''`` skips it).

Target (from the issue): the inbox and an item page with 100,000 feedback items and 10,000
audit rows: p95 < 150 ms per page. The home, statistics and audit-log pages are reported
without a target.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aiohttp import ClientSession, CookieJar, TCPConnector, web
from bench_support import drop_database, fresh_database, table
from yarl import URL

STAFF = ("bench.staff", "Lê Thị Bích Ngọc")
ADMIN = ("bench.admin", "Phạm Quốc Huy")
COLLEAGUES = (
    ("nguyen.van.an", "Nguyễn Văn An"),
    ("tran.thi.binh", "Trần Thị Bình"),
    ("le.van.cuong", "Lê Văn Cường"),
    ("pham.thi.dung", "Phạm Thị Dung"),
    ("hoang.van.em", "Hoàng Văn Em"),
    ("vu.thi.giang", "Vũ Thị Giang"),
    ("dang.van.hai", "Đặng Văn Hải"),
    ("bui.thi.khanh", "Bùi Thị Khánh"),
)
PASSWORD = "Mật khẩu thử tải 2026!"
SEARCH = "tre hen"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET_P95_MS = 150.0
BARE_BYTES = 20_000
ROW = re.compile(rb'<th scope="row" data-label="M')


# --- the bare handler (its own process) ------------------------------------------------------


def bare_page(size: int = BARE_BYTES) -> str:
    """About ``size`` bytes of HTML shaped like a console list page."""
    head = (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Góp ý, phản ánh'
        '</title></head><body><main><table class="list"><tbody>'
    )
    row = (
        '<tr><th scope="row"><a href="/admin/feedback/PA-7K3Q9">PA-7K3Q9</a></th>'
        "<td>Phản ánh</td><td>Đang xử lý</td><td>Trung tâm Phục vụ hành chính công</td>"
        "<td>04/12/2026 09:15</td><td>Hồ sơ đã trễ hẹn 5 ngày so với giấy hẹn…</td></tr>\n"
    )
    tail = "</tbody></table></main></body></html>"
    rows = max(1, (size - len(head.encode()) - len(tail)) // len(row.encode()))
    return head + row * rows + tail


def run_bare(port: int) -> None:
    page = bare_page()

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", handler)
    app.router.add_get("/healthz", handler)
    # The same event loop as 'bot serve', so the difference is the console's own work.
    from bot.cli.core import _event_loop

    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=_event_loop())


# --- seeding (this process, before any measurement) -----------------------------------------


@dataclass
class Seeded:
    """What the pages are asked about, found in the seeded database."""

    items: int = 0
    events: int = 0
    audit: int = 0
    seconds: float = 0.0
    codes: list[str] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)
    dossiers: list[str] = field(default_factory=list)


async def seed(url: str, args: argparse.Namespace) -> Seeded:
    from feedback_samples import sample_audit, sample_feedback
    from sqlalchemy import func, select, text

    from bot.accounts import STAFF as STAFF_ROLE
    from bot.accounts import Accounts
    from content.loader import load_pack
    from storage import db
    from storage.accounts import AccountRepository
    from storage.audit import CLI, Actor, AuditLog
    from storage.feedback import PARTIAL
    from storage.models import FeedbackEvent, FeedbackItem
    from storage.seed import bulk_audit, bulk_feedback

    began = time.perf_counter()
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
        sessions = db.sessionmaker(engine)
        accounts = Accounts(AccountRepository(sessions), AuditLog(sessions))
        actor = Actor("benchmark", CLI)
        made = []
        for (name, full), roles in [
            (STAFF, [STAFF_ROLE]),
            (ADMIN, ["admin"]),
            *((c, [STAFF_ROLE]) for c in COLLEAGUES),
        ]:
            account = await accounts.add(
                name, roles=roles, password=PASSWORD, actor=actor, full_name=full
            )
            made.append((account.id, account.username))
        kb = load_pack()
        points = [p.id for group in kb.service_groups for p in group.points]
        procedures = [e.id for e in kb.entries]
        handlers = [STAFF[0], *(c[0] for c in COLLEAGUES)]
        result = Seeded()
        result.items = await bulk_feedback(
            engine,
            sample_feedback(args.items, points=points, procedures=procedures, assignees=handlers),
        )
        async with engine.connect() as connection:
            listed = (
                await connection.execute(
                    select(FeedbackItem.id, FeedbackItem.code, FeedbackItem.dossier_code)
                    .where(FeedbackItem.status != PARTIAL)
                    .order_by(FeedbackItem.id)
                )
            ).all()
            result.events = int(
                await connection.scalar(select(func.count()).select_from(FeedbackEvent)) or 0
            )
        codes = [row.code for row in listed]
        result.audit = await bulk_audit(
            engine,
            sample_audit(args.audit, actors=[a for a in made if a[1] != ADMIN[0]], codes=codes),
        )
        if engine.dialect.name == "postgresql":
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
        # Item pages: codes spread over the whole table. Deep pages: cursors among the
        # oldest 2 % (the last pages of the unfiltered inbox). Searches for one dossier code.
        step = max(1, len(codes) // max(1, args.requests))
        result.codes = codes[::step]
        oldest = listed[: max(60, len(listed) // 50)]
        result.cursors = [row.id for row in oldest[50::7]] or [listed[-1].id]
        result.dossiers = [row.dossier_code for row in listed if row.dossier_code][-500:][::5]
        result.seconds = time.perf_counter() - began
        return result
    finally:
        await engine.dispose()


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_env(database_url: str) -> dict[str, str]:
    """The bot's environment: none of the caller's BOT_* settings, ours instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env.update({"BOT_DATABASE_URL": database_url, "BOT_LOG_LEVEL": "WARNING"})
    return env


@dataclass
class Child:
    process: subprocess.Popen[bytes]
    log: TextIO
    path: Path

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        return self.path.read_text(errors="replace")


async def start_process(args: list[str], env: dict[str, str], health: str, log: Path) -> Child:
    # stderr to a file: a pipe nobody reads would stall the server once it filled up.
    out = log.open("w")
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=out)
    child = Child(process, out, log)
    async with ClientSession() as session:
        for _ in range(600):
            try:
                async with session.get(health) as response:
                    if response.status == 200:
                        return child
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"{args} died:\n{child.stop()[-4000:]}")
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{health} did not come up:\n{child.stop()[-4000:]}")


# --- the load (this process) -----------------------------------------------------------------


async def sign_in(base: str, username: str) -> ClientSession:
    """A session signed in through the form, as a browser does: GET the form (its token
    comes in the ``cchc_signin`` cookie), POST it back with the token, keep the cookie."""
    session = ClientSession(cookie_jar=CookieJar(unsafe=True), connector=TCPConnector(limit=64))
    async with session.get(f"{base}/admin/login") as response:
        assert response.status == 200, response.status
        await response.read()
    token = session.cookie_jar.filter_cookies(URL(f"{base}/admin/login"))["cchc_signin"].value
    form = {"username": username, "password": PASSWORD, "csrf": token, "next": "/admin/feedback"}
    async with session.post(f"{base}/admin/login", data=form, allow_redirects=False) as response:
        body = await response.text()
        assert response.status == 303, (response.status, body[:500])
        assert response.headers["Location"] == "/admin/feedback", response.headers
    assert "cchc_console" in session.cookie_jar.filter_cookies(URL(f"{base}/admin/feedback"))
    return session


@dataclass
class Page:
    name: str
    paths: list[str]
    target: bool = True
    admin: bool = False


@dataclass
class Result:
    name: str
    latencies: list[float]
    sizes: list[int]
    rows: list[int]
    target: bool | None  # None: the baseline

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, round(q * (len(ordered) - 1)))]


async def fetch(session: ClientSession, url: str) -> tuple[float, bytes]:
    sent = time.perf_counter()
    async with session.get(url, allow_redirects=False) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:300]!r}")
    return (time.perf_counter() - sent) * 1000, body


async def sequential(
    session: ClientSession, base: str, page: Page, count: int, warmup: int
) -> Result:
    result = Result(page.name, [], [], [], page.target)
    for n in range(warmup + count):
        path = page.paths[n % len(page.paths)]
        took, body = await fetch(session, base + path)
        if n >= warmup:
            result.latencies.append(took)
            result.sizes.append(len(body))
            result.rows.append(len(ROW.findall(body)))
    return result


async def concurrent(
    session: ClientSession, base: str, paths: Sequence[str], count: int, in_flight: int
) -> tuple[float, list[float]]:
    """Pages/s and latencies with ``in_flight`` requests at once."""
    latencies: list[float] = []
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            took, _ = await fetch(session, base + paths[n % len(paths)])
            latencies.append(took)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return count / (time.perf_counter() - began), latencies


def pages(seeded: Seeded) -> list[Page]:
    inbox = "/admin/feedback"
    return [
        Page("inbox, first page", [inbox]),
        Page("inbox, status=new", [f"{inbox}?status=new"]),
        Page("inbox, deep page (older=)", [f"{inbox}?older={c}" for c in seeded.cursors]),
        Page(f"inbox, search q={SEARCH}", [f"{inbox}?q={SEARCH.replace(' ', '+')}"]),
        Page(
            "inbox, search a dossier code",
            [f"{inbox}?q={d}" for d in seeded.dossiers] or [f"{inbox}?q=H10-"],
        ),
        Page("inbox, overdue=1", [f"{inbox}?overdue=1"]),
        Page("inbox, mine=1", [f"{inbox}?mine=1"]),
        Page("item page", [f"{inbox}/{c}" for c in seeded.codes]),
        Page("home (/admin/)", ["/admin/"], target=False),
        Page("stats, days=365", ["/admin/stats?days=365"], target=False),
        Page("audit log (admin)", ["/admin/audit"], target=False, admin=True),
    ]


@dataclass
class Run:
    label: str
    seeded: Seeded
    results: list[Result]
    rate: dict[str, tuple[float, list[float]]]
    load: tuple[float, float]  # the machine's 1-minute load average before and after


async def measure(url: str, label: str, args: argparse.Namespace, folder: Path) -> Run:
    print(f"[{label}] seeding {args.items:,} items and {args.audit:,} audit rows …", flush=True)
    seeded = await seed(url, args)
    print(
        f"[{label}] seeded {seeded.items:,} items, {seeded.events:,} history rows, "
        f"{seeded.audit:,} audit rows in {seeded.seconds:.0f} s; measuring …",
        flush=True,
    )
    bot_port, bare_port = free_port(), free_port()
    env = child_env(url)
    slug = label.lower()
    bot = await start_process(
        [sys.executable, "-m", "bot", "serve", "--port", str(bot_port)],
        env,
        f"http://127.0.0.1:{bot_port}/healthz",
        folder / f"bot-{slug}.log",
    )
    bare = await start_process(
        [sys.executable, __file__, "--bare-server", str(bare_port)],
        env,
        f"http://127.0.0.1:{bare_port}/healthz",
        folder / f"bare-{slug}.log",
    )
    base, bare_base = f"http://127.0.0.1:{bot_port}", f"http://127.0.0.1:{bare_port}"
    results: list[Result] = []
    rate: dict[str, tuple[float, list[float]]] = {}
    load = os.getloadavg()[0]
    try:
        staff = await sign_in(base, STAFF[0])
        admin = await sign_in(base, ADMIN[0])
        plain = ClientSession(connector=TCPConnector(limit=64))
        try:
            baseline = Page("bare aiohttp, 20 KB HTML", ["/page"])
            result = await sequential(plain, bare_base, baseline, args.requests, args.warmup)
            result.target = None
            results.append(result)
            listed = pages(seeded)
            for page in listed:
                session = admin if page.admin else staff
                results.append(await sequential(session, base, page, args.requests, args.warmup))
            if args.in_flight > 0:
                mix = [p.paths[n % len(p.paths)] for n in range(50) for p in listed if p.target]
                rate["bare"] = await concurrent(
                    plain, bare_base, ["/page"], 2 * args.requests, args.in_flight
                )
                rate["console"] = await concurrent(
                    staff, base, mix, 2 * args.requests, args.in_flight
                )
        finally:
            for session in (staff, admin, plain):
                await session.close()
    finally:
        bare.stop()
        log = bot.stop()
        problems = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
        if problems:
            print(f"[{label}] the bot logged errors:\n" + log[-4000:], file=sys.stderr)
    return Run(label, seeded, results, rate, (load, os.getloadavg()[0]))


# --- reporting -------------------------------------------------------------------------------


def report(run: Run, args: argparse.Namespace) -> bool:
    """Print the run's tables; True if a target was missed."""
    seeded = run.seeded
    print(
        f"\n{run.label}: {seeded.items:,} feedback items ({seeded.events:,} history rows), "
        f"{seeded.audit:,} audit rows. Sequential: {args.warmup} warm-up + {args.requests} "
        "requests per page, one connection; the bot and the bare handler each in their own "
        f"process. Load average {run.load[0]:.1f} before, {run.load[1]:.1f} after, on "
        f"{os.cpu_count()} cores.\n"
    )
    rows = []
    missed = False
    for r in run.results:
        if r.target is None:
            verdict = "baseline"
        elif r.target:
            ok = r.p(0.95) < TARGET_P95_MS
            missed |= not ok
            verdict = "met" if ok else "MISSED"
        else:
            verdict = "(no target)"
        rows.append(
            [
                r.name,
                str(len(r.latencies)),
                f"{statistics.median(r.sizes) / 1000:.1f}",
                f"{statistics.median(r.rows):.0f}" if r.name.startswith("inbox") else "—",
                f"{statistics.median(r.latencies):.1f}",
                f"{r.p(0.95):.1f}",
                f"{r.p(0.99):.1f}",
                verdict,
            ]
        )
    headers = ["page", "n", "KB", "rows", "p50 ms", "p95 ms", "p99 ms"]
    print(table([*headers, f"p95 < {TARGET_P95_MS:.0f} ms"], rows))
    if run.rate:
        print(
            f"\n{run.label}, concurrent: {args.in_flight} in flight, {2 * args.requests} "
            "requests (the target pages round-robin for the console).\n"
        )
        lines = []
        for name, (per_second, latencies) in (
            ("bare aiohttp, 20 KB HTML", run.rate["bare"]),
            ("console target pages", run.rate["console"]),
        ):
            ordered = sorted(latencies)

            def q(x: float, ordered: list[float] = ordered) -> str:
                return f"{ordered[max(0, round(x * (len(ordered) - 1)))]:.1f}"

            lines.append([name, f"{per_second:,.0f}", q(0.5), q(0.95), q(0.99)])
        print(table(["", "pages/s", "p50 ms", "p95 ms", "p99 ms"], lines))
    return missed


# --- PostgreSQL ------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
    runs: list[Run] = []
    notes: list[str] = []
    try:
        runs.append(await measure(f"sqlite+aiosqlite:///{folder}/bench.db", "SQLite", args, folder))
        if args.postgres_url:
            fresh, name = await fresh_database(args.postgres_url, "bench_console")
            if fresh is None:
                notes.append(f"PostgreSQL skipped: {name}")
            else:
                try:
                    runs.append(await measure(fresh, "PostgreSQL", args, folder))
                finally:
                    await drop_database(args.postgres_url, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    missed = False
    for run in runs:
        missed |= report(run, args)
    for note in notes:
        print(f"\n{note}")
    print(
        f"\nTarget: inbox and item pages p95 < {TARGET_P95_MS:.0f} ms "
        f"({'MISSED' if missed else 'met'})."
    )
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--warmup", type=int, default=10, help="per page, not measured")
    parser.add_argument("--in-flight", type=int, default=8, help="0: no concurrent run")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="'' to skip PostgreSQL")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        run_bare(args.bare_server)
        return 0
    from bot.cli.core import _event_loop

    with asyncio.Runner(loop_factory=_event_loop) as runner:
        return runner.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
