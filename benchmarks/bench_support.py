"""What the benchmarks share: their markdown tables, and a fresh PostgreSQL database for one
run (dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence


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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table with aligned columns (text left, numbers right)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [
        all(r[i][:1].isdigit() or r[i][:1] in "-—" for r in rows) if rows else False
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(
        "-" * (w + 1) + ":" if num else "-" * (w + 2)
        for w, num in zip(widths, numeric, strict=True)
    )
    return "\n".join([line(headers), rule + "|", *(line(r) for r in rows)])
