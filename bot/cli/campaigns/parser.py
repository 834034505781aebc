"""The ``bot campaign`` parser: its actions, their options and the checks of their values."""

from __future__ import annotations

import argparse
from pathlib import Path

# broadcasts.workflow.STATUS_LABELS, spelled out so that building the parser stays light.
STATUSES = (
    "draft",
    "submitted",
    "approved",
    "scheduled",
    "sending",
    "done",
    "paused",
    "cancelled",
    "failed",
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument(
        "--by", required=True, metavar="NAME", help="who does this (recorded; four-eyes rule)"
    )
    ident = argparse.ArgumentParser(add_help=False)
    ident.add_argument("id", type=_campaign_id, metavar="ID", help="campaign number")

    command = sub.add_parser(
        "campaign", help="broadcast campaigns: write, approve, schedule, send, report"
    )
    actions = command.add_subparsers(dest="action", required=True)

    create = actions.add_parser(
        "create", parents=[by, as_json], help="write a new campaign (a draft)"
    )
    _authoring(create, new=True)
    edit = actions.add_parser(
        "edit",
        parents=[ident, by, as_json],
        help="change a campaign (options not given stay); it goes back to draft",
    )
    _authoring(edit, new=False)

    listing = actions.add_parser("list", parents=[as_json], help="every campaign, as a table")
    listing.add_argument("--status", choices=STATUSES, help="only this status")
    actions.add_parser(
        "show", parents=[ident, as_json], help="a campaign: fields, schedule, history, runs"
    )
    actions.add_parser("submit", parents=[ident, by], help="draft → submitted for approval")
    actions.add_parser("approve", parents=[ident, by], help="submitted → approved (not the author)")
    reject = actions.add_parser("reject", parents=[ident, by], help="submitted → back to draft")
    reject.add_argument("--reason", required=True, help="what to change (the author reads it)")
    actions.add_parser(
        "schedule", parents=[ident, by], help="approved → scheduled (sent at its time)"
    )
    send = actions.add_parser(
        "send", parents=[ident, by, as_json], help="approved or scheduled → send now"
    )
    send.add_argument(
        "--wait",
        action="store_true",
        help="send from this process too and show progress until done",
    )
    actions.add_parser("pause", parents=[ident, by], help="stop sending for now")
    actions.add_parser("resume", parents=[ident, by], help="continue a paused campaign")
    actions.add_parser("cancel", parents=[ident, by], help="stop for good (nothing more is sent)")
    test = actions.add_parser(
        "test", parents=[ident, by, as_json], help="send a preview to named subscribers and wait"
    )
    test.add_argument(
        "--to",
        required=True,
        type=_subscriber_ids,
        metavar="SUBSCRIBER_ID[,ID…]",
        help="subscriber ids (see `bot subscribers list`)",
    )
    actions.add_parser(
        "report", parents=[ident, as_json], help="what was sent, failed, is pending; rate, ETA"
    )
    actions.add_parser(
        "plan", parents=[ident, as_json], help="audience now, time it would take, quiet hours"
    )


def _authoring(parser: argparse.ArgumentParser, *, new: bool) -> None:
    keep = "" if new else " (default: unchanged)"
    parser.add_argument("--name", required=new, help="campaign name (for staff)" + keep)
    text = parser.add_mutually_exclusive_group(required=new)
    text.add_argument("--text", help="message text (markdown-lite)" + keep)
    text.add_argument(
        "--text-file", type=Path, metavar="FILE", help="read the text from FILE ('-': stdin)"
    )
    parser.add_argument(
        "--channels", metavar="LIST", help="telegram,zalo" + (" (default: both)" if new else keep)
    )
    parser.add_argument(
        "--topics",
        metavar="LIST",
        help="topic ids, comma-separated (default: every subscriber)"
        + ("" if new else "; '' = every subscriber"),
    )
    parser.add_argument("--link-title", metavar="X", help="button title ('Xem chi tiết')")
    parser.add_argument("--link-url", metavar="URL", help="button link, https://…")
    parser.add_argument("--image-url", metavar="URL", help="image, https://…")
    parser.add_argument(
        "--at", metavar="TIME", help="send once at this local time, e.g. '2026-12-01 08:00'"
    )
    parser.add_argument("--cron", metavar="CRON", help="send repeatedly, e.g. '0 8 * * mon'")
    parser.add_argument(
        "--until", metavar="DATE", help="last day of a repeating campaign, e.g. 2027-03-31"
    )
    if new:
        parser.add_argument(
            "--urgent", action="store_true", help="an urgent notice: ignores quiet hours"
        )
    else:
        parser.add_argument(
            "--urgent",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="urgent (ignores quiet hours) or not",
        )
        parser.add_argument(
            "--now",
            action="store_true",
            help="no schedule: sent as soon as it is scheduled (clears --at/--cron)",
        )


def _campaign_id(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"mã chiến dịch phải là số nguyên dương: {value!r}")
    return int(value)


def _subscriber_ids(value: str) -> list[int]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"cần các mã người đăng ký (số), cách nhau bằng dấu phẩy: {value!r}"
        )
    return list(dict.fromkeys(int(p) for p in parts))
