"""The ``bot feedback`` parser: its actions, the filters ``list`` and ``export`` share, and the
checks of the values."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from bot.cli.text import positive
from bot.feedback_report import KIND_LABELS
from storage.feedback import STATUS_LABELS

KINDS = tuple(KIND_LABELS)
STATUSES = tuple(STATUS_LABELS)
LISTED = tuple(s for s in STATUSES if s != "partial")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument(
        "--by", metavar="NAME", help="who does this (recorded; default: the system user name)"
    )
    code = argparse.ArgumentParser(add_help=False)
    code.add_argument("code", type=_code, metavar="CODE", help="the item's code, e.g. PA-7K3Q9")
    contact = argparse.ArgumentParser(add_help=False)
    contact.add_argument(
        "--with-contact",
        action="store_true",
        help="show phone numbers unmasked (needs --by NAME; written to the access log)",
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--kind", choices=KINDS, help="surveys or complaints only")
    filters.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="this status (repeatable; default: every status but partial)",
    )
    filters.add_argument("--point", metavar="ID", help="this service point only")
    filters.add_argument(
        "--from", dest="since", type=_day, metavar="YYYY-MM-DD", help="filed on or after"
    )
    filters.add_argument(
        "--to", dest="until", type=_day, metavar="YYYY-MM-DD", help="filed on or before"
    )
    filters.add_argument(
        "--rating-max",
        type=int,
        choices=range(1, 6),
        metavar="N",
        help="surveys with some factor rated N or less (1-5)",
    )
    filters.add_argument(
        "--search",
        metavar="TEXT",
        help="text in the comment, description, answer or dossier code",
    )
    filters.add_argument(
        "--overdue", action="store_true", help="open items past their handling deadline"
    )

    command = sub.add_parser(
        "feedback", help="citizen feedback: review, answer, export, statistics"
    )
    actions = command.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", parents=[filters, as_json], help="matching items, oldest first, as a table"
    )
    listing.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N rows (50)"
    )
    actions.add_parser(
        "show", parents=[code, contact, by, as_json], help="one item: every field and its history"
    )
    assign = actions.add_parser("assign", parents=[code, by], help="give an item to a colleague")
    assign.add_argument("--to", required=True, metavar="NAME", help="who handles it")
    answer = actions.add_parser(
        "answer", parents=[code, by], help="answer the citizen (the bot sends it to them)"
    )
    text = answer.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the answer")
    text.add_argument(
        "--text-file", type=Path, metavar="FILE", help="read the answer from FILE ('-': stdin)"
    )
    resolve = actions.add_parser("resolve", parents=[code, by], help="mark an item settled")
    resolve.add_argument("--text", help="a final answer for the citizen (optional)")
    reject = actions.add_parser(
        "reject", parents=[code, by], help="decline an item (the citizen reads the reason)"
    )
    reject.add_argument("--reason", required=True, help="why it is not handled")
    export = actions.add_parser(
        "export", parents=[filters, contact, by], help="every matching item, as CSV or XLSX"
    )
    export.add_argument("--format", choices=("csv", "xlsx"), default="csv", help="(csv)")
    export.add_argument(
        "--output", required=True, metavar="FILE", help="write to FILE ('-': standard output, csv)"
    )
    stats = actions.add_parser(
        "stats", parents=[as_json], help="satisfaction per service point and per month"
    )
    stats.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--to", dest="until", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--point", metavar="ID", help="this service point only")
    stats.add_argument(
        "--chart", type=Path, metavar="FILE.png", help="also draw the index per service point"
    )
    purge = actions.add_parser(
        "purge", parents=[by], help="erase the contacts of items closed long ago"
    )
    purge.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="items closed more than N days ago (default: BOT_FEEDBACK_CONTACT_RETENTION_DAYS)",
    )
    access = actions.add_parser(
        "access-log", parents=[as_json], help="who saw or erased contact data, newest first"
    )
    access.add_argument(
        "--limit", type=positive, default=100, metavar="N", help="at most N rows (100)"
    )


def _code(value: str) -> str:
    cleaned = value.strip().upper()
    if not cleaned or len(cleaned) > 12:
        raise argparse.ArgumentTypeError(f"mã không hợp lệ: {value!r} (ví dụ: PA-7K3Q9)")
    return cleaned


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ngày phải có dạng YYYY-MM-DD, không phải {value!r}"
        ) from None


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"cần một số ngày (0 trở lên), không phải {value!r}")
    return int(value)
