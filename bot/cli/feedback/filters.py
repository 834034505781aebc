"""The filters ``bot feedback list`` and ``export`` take (and ``stats`` some of): local dates to
UTC instants, a service point checked against the pack, and the filters as typed again."""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from typing import TYPE_CHECKING

from bot.cli.feedback.common import Context, UsageError
from bot.cli.feedback.parser import LISTED
from bot.cli.text import printable

if TYPE_CHECKING:
    from storage.feedback import FeedbackFilter


def utc_period(
    args: argparse.Namespace, context: Context
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--from`` / ``--to`` local dates as UTC instants; the end is exclusive (the day after
    ``--to`` starts)."""
    since, until = args.since, args.until
    if since and until and since > until:
        raise UsageError(f"--from ({since:%d/%m/%Y}) phải trước hoặc bằng --to ({until:%d/%m/%Y}).")
    return (
        context.midnight(since) if since else None,
        context.midnight(until + dt.timedelta(days=1)) if until else None,
    )


def item_filter(args: argparse.Namespace, context: Context) -> FeedbackFilter:
    from storage.feedback import FeedbackFilter

    since, until = utc_period(args, context)
    point = point_option(args, context)
    return FeedbackFilter(
        kind=args.kind,
        statuses=tuple(dict.fromkeys(args.status)) if args.status else LISTED,
        point_id=point,
        since=since,
        until=until,
        max_rating=args.rating_max,
        text=(args.search.strip() or None) if args.search else None,
        overdue_at=dt.datetime.now(dt.UTC) if args.overdue else None,
    )


def point_option(args: argparse.Namespace, context: Context) -> str | None:
    """``--point``; an id the pack does not know is still used (items keep the ids of points
    since removed), with a warning in case it is a typo."""
    point = args.point.strip() if args.point else None
    if point and point not in context.catalog.points:
        print(
            f"Lưu ý: nội dung hiện tại không có nơi giải quyết mã {printable(point)}.",
            file=sys.stderr,
        )
    return point or None


def filter_text(args: argparse.Namespace) -> str:
    """The filters given, as options to type again (for the access log)."""
    options: list[str] = []
    for option, value in (
        ("--kind", args.kind),
        *(("--status", status) for status in args.status or ()),
        ("--point", args.point),
        ("--from", args.since),
        ("--to", args.until),
        ("--rating-max", args.rating_max),
        ("--search", args.search),
    ):
        if value is not None:
            options += [option, str(value)]
    if args.overdue:
        options.append("--overdue")
    return shlex.join(options) if options else "không lọc"
