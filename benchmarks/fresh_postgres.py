"""A fresh PostgreSQL database for one benchmark run, and dropping it afterwards."""

from __future__ import annotations

import uuid


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def fresh_database(url: str, prefix: str) -> tuple[str | None, str]:
    """(the URL of a new, empty database beside ``url``'s, or None; its name, or why not)."""
    import asyncpg

    try:
        connection = await asyncpg.connect(_plain(url), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return None, f"PostgreSQL unreachable at {url}: {type(exc).__name__}: {exc}"
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{url.rpartition('/')[0]}/{name}", name


async def drop_database(url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_plain(url), timeout=3)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
