"""``bot campaign …``: write, approve, schedule, send and follow broadcast campaigns.

create, edit, list, show, submit, approve, reject, schedule, send [--wait], pause, resume,
cancel, test, report, plan. Every action that changes a campaign needs ``--by NAME``: the
workflow records who did what, and four-eyes approval compares names.

Exit codes: 0 done; 2 the workflow refused or the input is wrong (the reason on stderr, in
Vietnamese); 1 something unexpected. Times are shown in the broadcast time zone
(``BOT_BROADCAST_TIMEZONE``) as ``dd/mm/YYYY HH:MM``; JSON carries ISO 8601 with the offset.

The rules live in ``broadcasts.workflow`` and the numbers in ``broadcasts.report``; this
package only parses, calls and prints. The database layer is imported when a command runs,
so building the parser stays light.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.cli.campaigns import authoring, reading, reports, sending, workflow
from bot.cli.campaigns.common import Action, Context, UsageError
from bot.cli.campaigns.parser import STATUSES, add_parser
from bot.settings import Settings

__all__ = ["STATUSES", "add_parser", "run"]

log = logging.getLogger(__name__)

_ACTIONS: dict[str, Action] = {
    **authoring.ACTIONS,
    **reading.ACTIONS,
    **workflow.ACTIONS,
    **sending.ACTIONS,
    **reports.ACTIONS,
}


def run(args: argparse.Namespace, settings: Settings) -> int:
    from broadcasts.workflow import WorkflowError
    from content.loader import ContentError

    try:
        return asyncio.run(_run(args, settings))
    except (WorkflowError, UsageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except ContentError:
        raise  # the caller prints it (exit code 2), as for every command
    except KeyboardInterrupt:
        print(
            "\nĐã ngừng theo dõi. Nếu `bot serve` đang chạy, chiến dịch vẫn tiếp tục được gửi.",
            file=sys.stderr,
        )
        return 130
    except Exception as exc:
        log.exception("bot campaign %s failed", args.action)
        print(f"Lỗi không mong đợi: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import build_campaigns, open_services

    async with open_services(settings) as services:
        context = Context(settings, services, build_campaigns(services))
        return await _ACTIONS[args.action](args, context)
