"""``bot subscribers list|count|export``: who receives the news, for the communicators.

Every command takes the filters ``--status``, ``--channel`` and ``--topic`` (a subscriber whose
topic list holds that id, whatever their status); they combine with AND. Rows come from the
database in id order, in keyset batches, so ``export`` streams any number of subscribers with
flat memory.

Times are shown in Vietnam's time (Asia/Ho_Chi_Minh): ``dd/mm/YYYY HH:MM`` in the ``list``
table, ISO 8601 with the ``+07:00`` offset in exports and JSON.

Display names (and platform user ids, which a web client chooses) are typed by citizens, so
they are printed defensively:

- terminal table: control and format characters (ANSI escapes, carriage returns, bidi
  overrides …) are shown as ``\\xNN`` / ``\\uNNNN`` escapes, never sent to the terminal raw;
- JSON: besides what JSON escapes anyway, C1 controls, format characters and line/paragraph
  separators are written as ``\\uNNNN`` escapes (still valid JSON, same strings once parsed);
- CSV: formula injection is neutralised: every text cell that starts with ``=``, ``+``,
  ``-``, ``@``, a tab or a carriage return gets a leading apostrophe (``'``), so Excel,
  LibreOffice and Google Sheets show it as text instead of evaluating it (every text cell,
  so a platform id such as a negative Telegram group chat id gets one too). The file is UTF-8
  with a byte order mark (so Excel shows Vietnamese correctly), comma-separated, CRLF line
  ends, English header names.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli.text import (
    CannotWrite,
    csv_cell,
    open_output,
    positive,
    print_table,
    printable,
    safe_json,
    shorten,
)
from bot.settings import Settings

if TYPE_CHECKING:  # the database layer (SQLAlchemy) loads only when a command runs
    from storage.subscribers import SubscriberView

try:
    VIETNAM: dt.tzinfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # no tz database (e.g. Windows without tzdata): no DST anyway
    VIETNAM = dt.timezone(dt.timedelta(hours=7), "+07")

# storage.subscribers.STATUSES, spelled out so that building the parser stays light.
STATUS_LABELS = {
    "active": "đang nhận tin",
    "unsubscribed": "đã hủy đăng ký",
    "blocked": "đã chặn bot",
    "unreachable": "không liên lạc được",
}
STATUSES = tuple(STATUS_LABELS)
EXPORT_COLUMNS = (
    "id",
    "channel",
    "external_id",
    "display_name",
    "status",
    "topics",
    "consent_at",
    "consent_source",
    "last_interaction_at",
)
NAME_WIDTH = 30


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--status", choices=STATUSES, help="only this status (default: every status)"
    )
    filters.add_argument(
        "--channel", type=str.lower, metavar="CHANNEL", help="only this channel: telegram, zalo…"
    )
    filters.add_argument(
        "--topic", metavar="ID", help="only subscribers whose topics include this topic id"
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    command = sub.add_parser("subscribers", help="list, count or export subscribers")
    actions = command.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", parents=[filters, as_json], help="the first subscribers, as a table"
    )
    listing.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N rows (50)"
    )
    actions.add_parser("count", parents=[filters, as_json], help="totals per channel and status")
    export = actions.add_parser(
        "export", parents=[filters], help="every matching subscriber, as CSV or JSON"
    )
    export.add_argument("--format", choices=("csv", "json"), default="csv", help="(csv)")
    export.add_argument(
        "--output", type=Path, metavar="FILE", help="write to FILE (default: standard output)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import open_storage

    filters = {"status": args.status, "channel": args.channel, "topic": args.topic}
    async with open_storage(settings) as storage:
        repository = storage.subscribers
        if args.action == "count":
            _print_counts(await repository.count_grouped(**filters), args.json)
            return 0
        if args.action == "list":
            async with contextlib.aclosing(repository.iter_views(**filters)) as views:
                return await _list(views, args.limit, args.json)
        export = _export_csv if args.format == "csv" else _export_json
        try:
            with open_output(args.output) as out:
                async with contextlib.aclosing(repository.iter_views(**filters)) as views:
                    written = await export(views, out)
        except CannotWrite as exc:
            print(exc, file=sys.stderr)
            return 1
    where = f" vào {args.output}" if args.output else ""
    print(f"Đã xuất {written} người đăng ký{where}.", file=sys.stderr)
    return 0


# --- list -----------------------------------------------------------------------------------


async def _list(views: AsyncIterator[SubscriberView], limit: int, as_json: bool) -> int:
    rows: list[SubscriberView] = []
    more = False
    async for view in views:
        if len(rows) == limit:
            more = True
            break
        rows.append(view)
    if as_json:
        print(safe_json([_record(v) for v in rows], indent=2))
        return 0
    if not rows:
        print("Không có người đăng ký nào khớp điều kiện.")
        return 0
    headers = (
        "ID",
        "Kênh",
        "Mã người dùng",
        "Tên",
        "Trạng thái",
        "Chủ đề",
        "Đồng ý lúc",
        "Tương tác gần nhất",
    )
    table = [
        (
            str(v.id),
            printable(v.channel),
            printable(v.external_id),
            shorten(printable(v.display_name or "-"), NAME_WIDTH),
            printable(v.status),
            printable(", ".join(v.topics) or "-"),
            _local(v.consent_at),
            _local(v.last_interaction_at),
        )
        for v in rows
    ]
    print_table(headers, table, right={0})
    if more:
        print(
            f"(Chỉ hiện {limit} người đầu tiên theo ID; còn nữa — dùng --limit N "
            "hoặc `bot subscribers export`.)"
        )
    return 0


def _local(moment: dt.datetime | None) -> str:
    return moment.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") if moment else "-"


# --- count ----------------------------------------------------------------------------------


def _print_counts(groups: dict[tuple[str, str], int], as_json: bool) -> None:
    by_channel: Counter[str] = Counter()
    by_status: Counter[str] = Counter(dict.fromkeys(STATUSES, 0))
    cross: dict[str, dict[str, int]] = {}
    for (channel, status), number in sorted(groups.items()):
        by_channel[channel] += number
        by_status[status] += number
        cross.setdefault(channel, dict.fromkeys(STATUSES, 0))[status] = number
    total = sum(groups.values())
    if as_json:
        print(
            safe_json(
                {
                    "total": total,
                    "by_channel": dict(sorted(by_channel.items())),
                    "by_status": dict(by_status),
                    "by_channel_status": cross,
                },
                indent=2,
            )
        )
        return
    print(f"Tổng số: {total} người đăng ký")
    if not total:
        return
    statuses = list(by_status)  # the four known ones first, then any other found
    headers = ["Kênh", *(STATUS_LABELS.get(s, printable(s)).capitalize() for s in statuses)]
    headers.append("Tổng")
    table = [
        [
            printable(channel),
            *(str(cross[channel].get(s, 0)) for s in statuses),
            str(by_channel[channel]),
        ]
        for channel in sorted(cross)
    ]
    table.append(["Tổng", *(str(by_status[s]) for s in statuses), str(total)])
    print_table(headers, table, right=set(range(1, len(headers))))


# --- export ---------------------------------------------------------------------------------


async def _export_csv(views: AsyncIterator[SubscriberView], out: TextIO) -> int:
    out.write("\ufeff")  # Excel reads the file as UTF-8 only with the byte order mark
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    written = 0
    async for view in views:
        record = _record(view)
        record["topics"] = ";".join(view.topics)
        writer.writerow(csv_cell(record[column]) for column in EXPORT_COLUMNS)
        written += 1
    return written


async def _export_json(views: AsyncIterator[SubscriberView], out: TextIO) -> int:
    """A JSON array, one subscriber per line, written as they are read."""
    written = 0
    async for view in views:
        out.write(("[\n" if written == 0 else ",\n") + safe_json(_record(view)))
        written += 1
    out.write("\n]\n" if written else "[]\n")
    return written


def _record(view: SubscriberView) -> dict[str, Any]:
    return {
        "id": view.id,
        "channel": view.channel,
        "external_id": view.external_id,
        "display_name": view.display_name,
        "status": view.status,
        "topics": list(view.topics),
        "consent_at": _iso(view.consent_at),
        "consent_source": view.consent_source,
        "last_interaction_at": _iso(view.last_interaction_at),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(VIETNAM).replace(microsecond=0).isoformat()
