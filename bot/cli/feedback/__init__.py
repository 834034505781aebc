"""``bot feedback …``: staff review citizens' satisfaction surveys and complaints.

list, show, assign, answer, resolve, reject, export, stats, purge, access-log.

- ``list`` and ``export`` take the same filters (``--kind``, ``--status`` repeatable, default
  every status but ``partial``; ``--point``, ``--from`` / ``--to`` local dates, ``--to``
  inclusive; ``--rating-max``, ``--search``, ``--overdue``), combined with AND.
- ``assign``, ``answer``, ``resolve`` and ``reject`` move an item through its workflow
  (``bot.feedback_desk``); ``--by`` names who did it (default: the operating system user) and
  goes into the item's history.
- Phone numbers are masked (``09******78``) unless ``--with-contact`` is given, which needs an
  explicit ``--by NAME`` and is written to the access log (``access-log`` lists it).
- ``stats`` computes the satisfaction index; its definition is in ``bot.feedback_report``.

Everything a citizen typed is printed with control and format characters (ANSI escapes,
carriage returns, bidi overrides …) shown as visible escapes, so a complaint cannot drive the
operator's terminal; JSON escapes them as ``\\uNNNN``.

Exit codes: 0 done; 2 the workflow refused or the input is wrong (the reason on stderr, in
Vietnamese); 1 something unexpected or an output file that cannot be written. Times are shown
in the feedback time zone (``BOT_FEEDBACK_TIMEZONE``) as ``dd/mm/YYYY HH:MM``; JSON carries
ISO 8601 with the offset. The database layer loads only when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli.feedback import data_protection, export, reading, stats, workflow
from bot.cli.feedback.common import Action, Context, UsageError
from bot.cli.feedback.parser import KINDS, LISTED, STATUSES, add_parser
from bot.cli.text import CannotWrite
from bot.feedback_report import FACTORS
from bot.settings import Settings

# The kinds, statuses (and those listed by default) and survey factors the command works with.
__all__ = ["FACTORS", "KINDS", "LISTED", "STATUSES", "add_parser", "run"]

log = logging.getLogger(__name__)

_ACTIONS: dict[str, Action] = {
    **reading.ACTIONS,
    **workflow.ACTIONS,
    **export.ACTIONS,
    **stats.ACTIONS,
    **data_protection.ACTIONS,
}


def run(args: argparse.Namespace, settings: Settings) -> int:
    from content.loader import ContentError
    from storage.feedback import FeedbackError

    try:
        return asyncio.run(_run(args, settings))
    except (FeedbackError, UsageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except CannotWrite as exc:
        print(exc, file=sys.stderr)
        return 1
    except ContentError:
        raise  # the caller prints it (exit code 2), as for every command
    except Exception as exc:
        log.exception("bot feedback %s failed", args.action)
        print(f"Lỗi không mong đợi: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"Múi giờ không hợp lệ: {name!r} (BOT_FEEDBACK_TIMEZONE, ví dụ Asia/Ho_Chi_Minh)."
        ) from None


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import open_storage

    zone = _zone(settings.feedback.timezone)  # a bad setting fails before the database opens
    async with open_storage(settings) as storage:
        return await _ACTIONS[args.action](args, Context(settings, storage, zone))
