"""Shared fixtures: settings on a fresh SQLite file, PostgreSQL when reachable, the bundled
knowledge base, and a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.services import Services, build_engine, open_services
from bot.settings import DatabaseSettings, Settings
from content.loader import load_pack
from content.models import KnowledgeBase
from content.search import FaqEngine

POSTGRES_URL = os.environ.get(
    "BOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("BOT_TEST_REQUIRE_POSTGRES") == "1"
T = TypeVar("T")


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _postgres_reachable() -> str | None:
    try:
        conn = await asyncpg.connect(_plain_dsn(POSTGRES_URL), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL unreachable at {POSTGRES_URL}: {exc}"
    await conn.close()
    return None


@pytest.fixture(scope="session", autouse=True)
def _one_calibration_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite's processes share one calibration cache, as a deployment's workers do: the
    bundled pack is calibrated once, not in every `bot serve` or CLI command a test starts (the
    cache's own behaviour is tested in test_calibration.py)."""
    if "BOT_CONTENT_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["BOT_CONTENT_CACHE_DIR"] = str(tmp_path_factory.mktemp("calibration"))
    # Calibrated here, before any test starts a clock: a `bot serve` then starts as fast as a
    # restarted worker does.
    build_engine(Settings())
    try:
        yield
    finally:
        os.environ.pop("BOT_CONTENT_CACHE_DIR", None)


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return load_pack()


@pytest.fixture(scope="session")
def engine(kb: KnowledgeBase) -> FaqEngine:
    return build_engine(Settings(), kb)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous fixture code (in its own thread, as
    the test's event loop may already be running)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_plain_dsn(POSTGRES_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    problem = _run(_postgres_reachable())
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem + " (BOT_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(problem)
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    _run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        base, _, _ = POSTGRES_URL.rpartition("/")
        yield f"{base}/{name}"
    finally:
        _run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each contract test runs on SQLite always and on PostgreSQL when reachable."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=sqlite_url))


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[object, object]]:
    """A real aiohttp server listening on 127.0.0.1 with a client talking HTTP to it."""
    server = TestServer(create_app(settings), host="127.0.0.1")
    async with TestClient(server) as test_client:
        yield test_client


@pytest.fixture
def repo_root() -> Iterator[Path]:
    return Path(__file__).resolve().parent.parent
