"""What the ``bot feedback`` actions share: the context they run in, the error that means exit
code 2, who is acting, and citizens' text in JSON, table cells and tables."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import getpass
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.text import printable, safe_json
from bot.feedback_report import Catalog
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.feedback_desk import FeedbackDesk
    from bot.services import Storage
    from storage.feedback import FeedbackRepository
    from storage.feedback_inbox import FeedbackInbox

POINT_WIDTH = 30


class UsageError(Exception):
    """Bad input found after parsing (message in Vietnamese): exit code 2."""


class Context:
    """What every action needs: the storage, the time zone and the pack's names."""

    def __init__(self, settings: Settings, storage: Storage, zone: dt.tzinfo) -> None:
        self.settings = settings
        self.storage = storage
        self.zone = zone

    @property
    def repository(self) -> FeedbackRepository:
        return self.storage.feedback

    @property
    def inbox(self) -> FeedbackInbox:
        return self.storage.feedback_inbox

    @property
    def desk(self) -> FeedbackDesk:
        from bot.feedback_desk import FeedbackDesk

        return FeedbackDesk(self.storage.feedback, self.storage.audit)

    @property
    def catalog(self) -> Catalog:
        """Service point names and procedure titles (the content pack, read when needed)."""
        return _catalog(self.settings.content.dir, dt.date.today())

    def local(self, moment: dt.datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%d/%m/%Y %H:%M") if moment else "-"

    def iso(self, moment: dt.datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.zone).replace(microsecond=0).isoformat()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The UTC instant a local day starts."""
        return dt.datetime.combine(day, dt.time(), tzinfo=self.zone).astimezone(dt.UTC)


@functools.lru_cache(maxsize=4)
def _catalog(directory: Path | None, day: dt.date) -> Catalog:
    """The pack is parsed once per process and day: ``bot feedback`` needs only its names,
    and a caller running many commands in one process (the tests) then pays for it once."""
    from content.loader import load_pack

    return Catalog.of(load_pack(directory, today=day))


Action = Callable[["argparse.Namespace", "Context"], Awaitable[int]]


def print_json(value: Any) -> None:
    print(safe_json(value, indent=2))


def actor_of(args: argparse.Namespace) -> str:
    """``--by``, or the name the operator is logged in as."""
    name: str | None = args.by
    if name is None:
        try:
            name = getpass.getuser()
        except (OSError, KeyError, ImportError):
            name = ""
    name = " ".join(name.split())
    if not name:
        raise UsageError("Hãy cho biết ai thực hiện: --by TÊN.")
    return name[:100]


def contact_actor_of(args: argparse.Namespace) -> str | None:
    """Who asked to see contacts (``--with-contact`` needs an explicit ``--by``), or None."""
    if not args.with_contact:
        return None
    if args.by is None or not args.by.strip():
        raise UsageError(
            "--with-contact cần --by TÊN: việc xem số điện thoại được ghi vào nhật ký truy cập."
        )
    return actor_of(args)


def one_line(text: str | None) -> str:
    """Citizen text for a table cell: one line, control characters escaped."""
    return printable(" ".join((text or "").split()))
