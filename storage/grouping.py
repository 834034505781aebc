"""Reads and writes that many callers make at once are grouped into one statement; each
caller waits on a future of its own. What those groups share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any


def fail_waiting(waiting: Mapping[Any, Iterable[asyncio.Future[Any]]], exc: BaseException) -> None:
    """The group's statement failed: every caller still waiting gets the error."""
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.set_exception(exc)
