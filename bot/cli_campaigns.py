"""``bot campaign …``: write, approve, schedule, send and follow broadcast campaigns.

create, edit, list, show, submit, approve, reject, schedule, send [--wait], pause, resume,
cancel, test, report, plan. Every action that changes a campaign needs ``--by NAME``: the
workflow records who did what, and four-eyes approval compares names.

Exit codes: 0 done; 2 the workflow refused or the input is wrong (the reason on stderr, in
Vietnamese); 1 something unexpected. Times are shown in the broadcast time zone
(``BOT_BROADCAST_TIMEZONE``) as ``dd/mm/YYYY HH:MM``; JSON carries ISO 8601 with the offset.

The rules live in ``broadcasts.workflow`` and the numbers in ``broadcasts.report``; this
module only parses, calls and prints. The database layer is imported when a command runs,
so building the parser stays light.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.settings import BroadcastSettings, Settings
from storage.audit import CLI, CONSOLE, VIA_LABELS

if TYPE_CHECKING:
    from bot.services import Services
    from broadcasts.report import CampaignPlan, CampaignReport, Counts
    from broadcasts.workflow import Campaigns, CampaignSpec
    from storage.campaigns import CampaignView, EventView, RunView

log = logging.getLogger(__name__)

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
DELIVERY_LABELS = {
    "sent": "Đã gửi",
    "failed": "Lỗi",
    "out_of_window": "Ngoài cửa sổ 7 ngày (Zalo)",
    "uncertain": "Không rõ (gửi dở khi dừng)",
    "skipped": "Bỏ qua (đã hủy đăng ký)",
    "cancelled": "Đã hủy",
    "pending": "Đang chờ",
    "sending": "Đang gửi",
}
RUN_LABELS = {
    "expanding": "Đang lập danh sách",
    "sending": "Đang gửi",
    "paused": "Tạm dừng",
    "done": "Hoàn thành",
    "cancelled": "Đã hủy",
    "failed": "Thất bại",
}
CHANNEL_LABELS = {"telegram": "Telegram", "zalo": "Zalo"}


class UsageError(Exception):
    """Bad input found after parsing (message in Vietnamese): exit code 2."""


# --- parser ---------------------------------------------------------------------------------


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


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))


# --- running --------------------------------------------------------------------------------


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


Action = Callable[["argparse.Namespace", "_Context"], Awaitable[int]]


class _Context:
    """What every action needs: the services, the workflow and the broadcast settings."""

    def __init__(self, settings: Settings, services: Services, campaigns: Campaigns) -> None:
        self.settings = settings
        self.broadcast: BroadcastSettings = settings.broadcast
        self.services = services
        self.campaigns = campaigns

    def local(self, moment: dt.datetime | None) -> str:
        return self.campaigns.local(moment) if moment else "-"

    def iso(self, moment: dt.datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.campaigns.zone).replace(microsecond=0).isoformat()


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import build_campaigns, open_services

    async with open_services(settings) as services:
        context = _Context(settings, services, build_campaigns(services))
        return await _ACTIONS[args.action](args, context)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# --- authoring ------------------------------------------------------------------------------


def _read_text(args: argparse.Namespace) -> str | None:
    if args.text is not None:
        return str(args.text)
    if args.text_file is None:
        return None
    if str(args.text_file) == "-":
        return sys.stdin.read()
    try:
        return Path(args.text_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise UsageError(f"Không đọc được tệp nội dung {args.text_file}: {detail}") from None


def _until(value: str, context: _Context) -> dt.datetime:
    """A last day ('2027-03-31') includes that whole day; a time is taken as given."""
    from broadcasts.workflow import parse_local

    moment = parse_local(value, context.campaigns.zone)
    if ":" not in value:
        moment += dt.timedelta(days=1, seconds=-1)
    return moment


def _optional(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _new_spec(args: argparse.Namespace, context: _Context) -> CampaignSpec:
    from broadcasts.workflow import CHANNELS, CampaignSpec, parse_local

    zone = context.campaigns.zone
    return CampaignSpec(
        name=args.name,
        text=_read_text(args) or "",
        channels=_split(args.channels) if args.channels is not None else CHANNELS,
        topics=_split(args.topics) if args.topics is not None else (),
        link_title=_optional(args.link_title),
        link_url=_optional(args.link_url),
        image_url=_optional(args.image_url),
        at=parse_local(args.at, zone) if args.at else None,
        cron=args.cron.strip() if args.cron else None,
        cron_end=_until(args.until, context) if args.until else None,
        urgent=bool(args.urgent),
    )


def _edited_spec(
    args: argparse.Namespace, current: CampaignView, context: _Context
) -> CampaignSpec:
    """The campaign as it is, with what the options change."""
    from broadcasts.workflow import CampaignSpec, parse_local

    given = [
        args.name,
        args.text,
        args.text_file,
        args.channels,
        args.topics,
        args.link_title,
        args.link_url,
        args.image_url,
        args.at,
        args.cron,
        args.until,
        args.urgent,
    ]
    if all(value is None for value in given) and not args.now:
        raise UsageError("Không có gì để sửa: hãy cho biết điều cần thay đổi (--text, --at …).")
    if args.now and (args.at or args.cron or args.until):
        raise UsageError("--now không đi cùng --at, --cron hay --until.")
    at, cron, end = current.send_at, current.cron, current.cron_end
    if current.schedule_kind != "at":
        at = None
    if current.schedule_kind != "cron":
        cron, end = None, None
    zone = context.campaigns.zone
    if args.now:
        at, cron, end = None, None, None
    elif args.at:
        at, cron, end = parse_local(args.at, zone), None, None
    elif args.cron:
        at, cron = None, args.cron.strip()
    if args.until:
        end = _until(args.until, context)
    text = _read_text(args)

    def pick(option: str | None, value: str | None) -> str | None:
        return value if option is None else _optional(option)

    return CampaignSpec(
        name=args.name if args.name is not None else current.name,
        text=text if text is not None else current.text,
        channels=_split(args.channels) if args.channels is not None else current.channels,
        topics=_split(args.topics) if args.topics is not None else current.topics,
        link_title=pick(args.link_title, current.link_title),
        link_url=pick(args.link_url, current.link_url),
        image_url=pick(args.image_url, current.image_url),
        at=at,
        cron=cron,
        cron_end=end,
        urgent=current.urgent if args.urgent is None else bool(args.urgent),
    )


async def _create(args: argparse.Namespace, context: _Context) -> int:
    campaign = await context.campaigns.create(_new_spec(args, context), author=args.by)
    if args.json:
        _print_json(_campaign_json(campaign, context))
        return 0
    print(f"Đã tạo chiến dịch số {campaign.id} «{campaign.name}» (Nháp).")
    print(f"Bước tiếp theo: bot campaign submit {campaign.id} --by TÊN (gửi duyệt).")
    return 0


async def _edit(args: argparse.Namespace, context: _Context) -> int:
    current = await context.campaigns.get(args.id)
    spec = _edited_spec(args, current, context)
    campaign = await context.campaigns.edit(args.id, spec, actor=args.by)
    if args.json:
        _print_json(_campaign_json(campaign, context))
        return 0
    print(f"Đã sửa chiến dịch số {campaign.id} «{campaign.name}».")
    if current.status != "draft":
        print("Chiến dịch trở về trạng thái Nháp: cần gửi duyệt và được duyệt lại trước khi gửi.")
    return 0


# --- reading --------------------------------------------------------------------------------


def _status_label(status: str) -> str:
    from broadcasts.workflow import STATUS_LABELS

    return STATUS_LABELS.get(status, status)


def _schedule_text(campaign: CampaignView, context: _Context) -> str:
    if campaign.schedule_kind == "at" and campaign.send_at:
        return f"một lần, lúc {context.local(campaign.send_at)}"
    if campaign.schedule_kind == "cron" and campaign.cron:
        until = f", đến {context.local(campaign.cron_end)}" if campaign.cron_end else ""
        return f"lặp lại theo lịch «{campaign.cron}»{until}"
    return "gửi ngay khi được lên lịch"


def _campaign_json(campaign: CampaignView, context: _Context) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "status_label": _status_label(campaign.status),
        "status_reason": campaign.status_reason,
        "text": campaign.text,
        "channels": list(campaign.channels),
        "topics": list(campaign.topics),
        "link_title": campaign.link_title,
        "link_url": campaign.link_url,
        "image_url": campaign.image_url,
        "schedule": {
            "kind": campaign.schedule_kind,
            "at": context.iso(campaign.send_at),
            "cron": campaign.cron,
            "until": context.iso(campaign.cron_end),
            "timezone": context.broadcast.timezone,
        },
        "urgent": campaign.urgent,
        "author": campaign.author,
        "approved_by": campaign.approved_by,
        "created_at": context.iso(campaign.created_at),
        "updated_at": context.iso(campaign.updated_at),
    }


def _run_json(run: RunView, context: _Context) -> dict[str, Any]:
    return {
        "id": run.id,
        "fire_at": context.iso(run.fire_at),
        "status": run.status,
        "status_reason": run.status_reason,
        "total": run.total,
        "test": run.test,
        "started_at": context.iso(run.started_at),
        "finished_at": context.iso(run.finished_at),
    }


def _event_json(event: EventView, context: _Context) -> dict[str, Any]:
    return {
        "at": context.iso(event.at),
        "from": event.from_status,
        "to": event.to_status,
        "actor": event.actor,
        "via": event.via,
        "note": event.note,
    }


async def _list(args: argparse.Namespace, context: _Context) -> int:
    rows = await context.campaigns.repo.find(statuses=[args.status] if args.status else None)
    if args.json:
        _print_json([_campaign_json(c, context) for c in rows])
        return 0
    if not rows:
        print("Chưa có chiến dịch nào" + (" ở trạng thái này." if args.status else "."))
        return 0
    headers = ("ID", "Trạng thái", "Tên", "Lịch gửi", "Kênh", "Người soạn", "Cập nhật")
    table = [
        (
            str(c.id),
            _status_label(c.status),
            shorten(c.name, 40),
            _schedule_text(c, context),
            ", ".join(c.channels),
            c.author,
            context.local(c.updated_at),
        )
        for c in rows
    ]
    _print_table(headers, table, right={0})
    return 0


async def _show(args: argparse.Namespace, context: _Context) -> int:
    campaigns = context.campaigns
    campaign = await campaigns.get(args.id)
    events = await campaigns.repo.events(campaign.id)
    runs = await campaigns.repo.runs(campaign.id)
    upcoming = [] if campaign.status in _final() else campaigns.upcoming(campaign)
    if args.json:
        _print_json(
            {
                **_campaign_json(campaign, context),
                "next_occurrences": [context.iso(m) for m in upcoming],
                "history": [_event_json(e, context) for e in events],
                "runs": [_run_json(r, context) for r in runs],
            }
        )
        return 0
    link = (
        f"{campaign.link_title or 'Xem chi tiết'} — {campaign.link_url}"
        if campaign.link_url
        else "-"
    )
    status = _status_label(campaign.status)
    if campaign.status_reason:
        status += f" ({campaign.status_reason})"
    fields = [
        ("Trạng thái", status),
        ("Người soạn", campaign.author),
        ("Người duyệt", campaign.approved_by or "-"),
        ("Kênh", ", ".join(CHANNEL_LABELS.get(c, c) for c in campaign.channels)),
        ("Chủ đề", ", ".join(campaign.topics) or "mọi người đăng ký"),
        ("Lịch gửi", f"{_schedule_text(campaign, context)} (giờ {context.broadcast.timezone})"),
        ("Khẩn", "có — gửi cả trong giờ yên lặng" if campaign.urgent else "không"),
        ("Nút liên kết", link),
        ("Ảnh", campaign.image_url or "-"),
        ("Tạo lúc", context.local(campaign.created_at)),
        ("Cập nhật", context.local(campaign.updated_at)),
    ]
    print(f"Chiến dịch số {campaign.id}: {campaign.name}")
    width = max(len(label) for label, _ in fields) + 1
    for label, value in fields:
        print(f"  {label + ':':<{width}} {value}")
    print("\nNội dung:")
    for line in campaign.text.splitlines() or [""]:
        print(f"  | {line}")
    if upcoming:
        print("\nCác lần gửi tới: " + ", ".join(context.local(m) for m in upcoming))
    print("\nLịch sử:")
    for event in events:
        moved = (
            f"{_status_label(event.from_status)} → {_status_label(event.to_status)}"
            if event.from_status
            else f"tạo ({_status_label(event.to_status)})"
        )
        note = f" — {event.note}" if event.note else ""
        via = f" ({VIA_LABELS[event.via]})" if event.via in (CLI, CONSOLE) else ""
        print(f"  {context.local(event.at)}  {moved}, bởi {event.actor}{via}{note}")
    if runs:
        print("\nCác lần gửi:")
        for run in runs:
            kind = " (gửi thử)" if run.test else ""
            reason = f" — {run.status_reason}" if run.status_reason else ""
            print(
                f"  #{run.id}  {context.local(run.fire_at)}  "
                f"{RUN_LABELS.get(run.status, run.status)}{kind}, "
                f"{run.total} người nhận{reason}"
            )
    return 0


def _final() -> frozenset[str]:
    from broadcasts.workflow import FINAL

    return FINAL


# --- workflow actions -----------------------------------------------------------------------


def _moved(campaign: CampaignView, by: str) -> None:
    print(
        f"Chiến dịch số {campaign.id} «{campaign.name}»: {_status_label(campaign.status)} "
        f"(bởi {' '.join(by.split())})."
    )


async def _submit(args: argparse.Namespace, context: _Context) -> int:
    campaign = await context.campaigns.submit(args.id, actor=args.by)
    _moved(campaign, args.by)
    print("Một đồng nghiệp khác cần duyệt: bot campaign approve " + f"{campaign.id} --by TÊN.")
    return 0


async def _approve(args: argparse.Namespace, context: _Context) -> int:
    campaign = await context.campaigns.approve(args.id, by=args.by)
    _moved(campaign, args.by)
    print(
        f"Bước tiếp theo: bot campaign schedule {campaign.id} --by TÊN (gửi theo lịch) "
        f"hoặc bot campaign send {campaign.id} --by TÊN (gửi ngay)."
    )
    return 0


async def _reject(args: argparse.Namespace, context: _Context) -> int:
    campaign = await context.campaigns.reject(args.id, by=args.by, reason=args.reason)
    _moved(campaign, args.by)
    print(f"Lý do trả lại: {args.reason}")
    return 0


async def _schedule(args: argparse.Namespace, context: _Context) -> int:
    from storage.models import utcnow

    campaigns = context.campaigns
    campaign = await campaigns.schedule(args.id, actor=args.by)
    _moved(campaign, args.by)
    first = campaigns.next_fire(campaign, after=utcnow())
    if campaign.schedule_kind == "now" or first is None:
        print("Chiến dịch sẽ được gửi ngay khi `bot serve` chạy.")
        first = utcnow()
    elif campaign.schedule_kind == "cron":
        upcoming = campaigns.upcoming(campaign)
        print("Các lần gửi tới: " + ", ".join(context.local(m) for m in upcoming))
    else:
        print(f"Sẽ gửi lúc {context.local(first)}.")
    _quiet_warning(campaign, first, context)
    return 0


def _quiet_warning(campaign: CampaignView, start: dt.datetime, context: _Context) -> None:
    from broadcasts.quiet import quiet_resume_at

    if campaign.urgent:
        return
    resume = quiet_resume_at(start, context.broadcast)
    if resume is not None:
        print(
            f"Lưu ý: {context.local(start)} nằm trong giờ yên lặng "
            f"({context.broadcast.quiet_start}–{context.broadcast.quiet_end}); tin sẽ bắt đầu "
            f"được gửi lúc {context.local(resume)}.",
            file=sys.stderr,
        )


async def _pause(args: argparse.Namespace, context: _Context) -> int:
    _moved(await context.campaigns.pause(args.id, actor=args.by), args.by)
    return 0


async def _resume(args: argparse.Namespace, context: _Context) -> int:
    _moved(await context.campaigns.resume(args.id, actor=args.by), args.by)
    return 0


async def _cancel(args: argparse.Namespace, context: _Context) -> int:
    _moved(await context.campaigns.cancel(args.id, actor=args.by), args.by)
    return 0


# --- sending --------------------------------------------------------------------------------


async def _send(args: argparse.Namespace, context: _Context) -> int:
    from storage.models import utcnow

    campaigns = context.campaigns
    campaign = await campaigns.get(args.id)
    if not args.wait:
        run = await campaigns.send_now(args.id, actor=args.by)
        if args.json:
            _print_json(
                {"campaign_id": campaign.id, "run_id": run.id, "status": run.status, "wait": False}
            )
        else:
            print(
                f"Đã bắt đầu gửi chiến dịch số {campaign.id} «{campaign.name}» (lần gửi #{run.id})."
            )
            print(
                f"`bot serve` đang chạy sẽ gửi đi; theo dõi bằng bot campaign report {campaign.id}."
            )
        _quiet_warning(campaign, utcnow(), context)
        return 0
    from bot.channels.couriers import open_couriers

    async with open_couriers(context.settings, context.services) as couriers:
        missing = [c for c in campaign.channels if c not in couriers]
        if missing:
            raise UsageError(
                f"Máy này chưa cấu hình kênh {', '.join(missing)}, nên không gửi kèm được. "
                "Bỏ --wait để `bot serve` gửi, hoặc cấu hình kênh (BOT_TELEGRAM_*, BOT_ZALO_*)."
            )
        run = await campaigns.send_now(args.id, actor=args.by)
        _quiet_warning(campaign, utcnow(), context)
        final, counts = await _drive(run, couriers, context, urgent=campaign.urgent)
    return _print_outcome(campaign, final, counts, context, as_json=args.json)


async def _test(args: argparse.Namespace, context: _Context) -> int:
    from bot.channels.couriers import open_couriers
    from storage.campaigns import RUN_ACTIVE, RUN_CANCELLED

    campaigns = context.campaigns
    campaign = await campaigns.get(args.id)
    async with open_couriers(context.settings, context.services) as couriers:
        run = await campaigns.test_send(args.id, args.to, actor=args.by)
        rows = await campaigns.repo.deliveries(run.id)
        missing = sorted({r["channel"] for r in rows} - set(couriers))
        if missing:
            await campaigns.repo.set_run_status(
                run.id, RUN_CANCELLED, expected=RUN_ACTIVE, reason="channel not configured"
            )
            await campaigns.repo.cancel_pending(run.id)
            raise UsageError(
                f"Máy này chưa cấu hình kênh {', '.join(missing)} của người nhận thử; "
                "không gửi gì. Cấu hình kênh (BOT_TELEGRAM_*, BOT_ZALO_*) rồi thử lại."
            )
        final, _ = await _drive(run, couriers, context, urgent=True)
    rows = await campaigns.repo.deliveries(run.id)
    if args.json:
        _print_json(
            {
                "campaign_id": campaign.id,
                "run_id": final.id,
                "status": final.status,
                "recipients": [
                    {
                        "subscriber_id": r["subscriber_id"],
                        "channel": r["channel"],
                        "status": r["status"],
                        "error": r["last_error"],
                        "sent_at": context.iso(r["sent_at"]),
                    }
                    for r in rows
                ],
            }
        )
        return 0
    print(f"Gửi thử chiến dịch số {campaign.id} «{campaign.name}» (lần gửi thử #{final.id}):")
    for r in rows:
        error = f" — {r['last_error']}" if r["last_error"] else ""
        channel = CHANNEL_LABELS.get(r["channel"], r["channel"])
        status = DELIVERY_LABELS.get(r["status"], r["status"])
        print(f"  người đăng ký {r['subscriber_id']} ({channel}): {status}{error}")
    return 0


async def _drive(
    run: RunView, couriers: Mapping[str, Any], context: _Context, *, urgent: bool
) -> tuple[RunView, dict[tuple[str, str], int]]:
    """Run an engine in this process (next to any `bot serve` workers) until the run ends
    or pauses, with a progress bar on stderr."""
    from bot.services import broadcast_engine
    from broadcasts.report import channel_rates

    engine = broadcast_engine(context.services, couriers, worker=f"cli-{os.getpid()}")
    bar = ProgressBar(
        sys.stderr,
        channel_rates(context.broadcast),
        quiet=None if urgent or run.test else context.broadcast,
        local=context.local,
    )
    try:
        async with engine:
            final = await engine.wait(run.id, on_progress=bar, poll=0.5)
    finally:
        bar.close()
    return final, await context.campaigns.repo.counts([final.id])


def _print_outcome(
    campaign: CampaignView,
    run: RunView,
    grouped: dict[tuple[str, str], int],
    context: _Context,
    *,
    as_json: bool,
) -> int:
    from broadcasts.report import Counts

    counts = Counts.of(grouped)
    if as_json:
        _print_json(
            {
                "campaign_id": campaign.id,
                "run_id": run.id,
                "status": run.status,
                "status_reason": run.status_reason,
                "wait": True,
                **_counts_json(counts),
            }
        )
        return 0
    label = RUN_LABELS.get(run.status, run.status)
    reason = f" ({run.status_reason})" if run.status_reason else ""
    print(f"Lần gửi #{run.id} của chiến dịch số {campaign.id}: {label}{reason}.")
    _print_counts(counts, None)
    if run.status == "paused":
        print(f"Tiếp tục bằng: bot campaign resume {campaign.id} --by TÊN.")
    return 0


class ProgressBar:
    """``[#####.....]  50%  500/1000 · đã gửi 480 · lỗi 10 · 24,5 tin/giây · còn ~0:20``,
    redrawn in place with a carriage return. The rate is measured here, between polls (so it
    includes what other workers send); before there is one, the ETA uses the configured
    rates."""

    WIDTH = 24

    def __init__(
        self,
        out: TextIO,
        rates: Mapping[str, float],
        *,
        quiet: BroadcastSettings | None = None,
        local: Callable[[dt.datetime], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._rates = dict(rates)
        self._quiet = quiet
        self._local = local or (lambda m: m.isoformat())
        self._clock = clock
        self._first: tuple[float, int] | None = None
        self._shown = 0

    def __call__(self, run: RunView, grouped: dict[tuple[str, str], int]) -> None:
        self._out.write("\r" + self.line(run, grouped).ljust(self._shown))
        self._out.flush()

    def line(self, run: RunView, grouped: dict[tuple[str, str], int]) -> str:
        from broadcasts.quiet import quiet_resume_at
        from broadcasts.report import Counts, eta
        from storage.models import utcnow

        counts = Counts.of(grouped)
        status = counts.by_status
        total = max(run.total, counts.total)
        done = counts.total - counts.pending
        sent = status.get("sent", 0)
        now = self._clock()
        if self._first is None:
            self._first = (now, sent)
        started, sent_before = self._first
        rate = (sent - sent_before) / (now - started) if now > started else 0.0
        if rate > 0:
            remaining: float | None = counts.pending / rate
        else:
            remaining = eta(counts.pending_by_channel(), self._rates)
        share = done / total if total else 0.0
        filled = round(self.WIDTH * share)
        parts = [
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share * 100:3.0f}%",
            f"{done}/{total}",
            f"đã gửi {sent}",
            f"lỗi {status.get('failed', 0)}",
        ]
        if status.get("out_of_window"):
            parts.append(f"ngoài 7 ngày {status['out_of_window']}")
        if status.get("uncertain"):
            parts.append(f"không rõ {status['uncertain']}")
        parts.append(f"{_number(rate)} tin/giây")
        if run.status == "expanding":
            parts.append("đang lập danh sách")
        resume = quiet_resume_at(utcnow(), self._quiet) if self._quiet else None
        if resume is not None and counts.pending:
            parts.append(f"giờ yên lặng, gửi tiếp lúc {self._local(resume)}")
        elif counts.pending:
            parts.append(f"còn ~{_clock_text(remaining)}")
        text = " · ".join(parts)
        self._shown = max(self._shown, len(text))
        return text

    def close(self) -> None:
        if self._shown:
            self._out.write("\n")
            self._out.flush()


# --- report and plan ------------------------------------------------------------------------


def _counts_json(counts: Counts) -> dict[str, Any]:
    return {
        "total": counts.total,
        "by_status": counts.by_status,
        "by_channel": counts.by_channel,
    }


async def _report(args: argparse.Namespace, context: _Context) -> int:
    from broadcasts.report import campaign_report, channel_rates

    report = await campaign_report(
        context.campaigns, args.id, rates=channel_rates(context.broadcast)
    )
    if args.json:
        _print_json(_report_json(report, context))
        return 0
    _print_report(report, context)
    return 0


def _report_json(report: CampaignReport, context: _Context) -> dict[str, Any]:
    latest = report.latest_run
    return {
        "campaign": _campaign_json(report.campaign, context),
        "runs": [_run_json(r, context) for r in report.runs],
        "totals": _counts_json(report.totals),
        "latest_run": (
            {"run": _run_json(latest, context), **_counts_json(report.latest)}
            if latest is not None and report.latest is not None
            else None
        ),
        "sent": report.sent,
        "failed": report.failed,
        "out_of_window": report.out_of_window,
        "uncertain": report.uncertain,
        "pending": report.pending,
        "rate_per_second": report.rate,
        "eta_seconds": report.eta_seconds,
        "errors": [{"reason": reason, "count": n} for reason, n in report.errors],
        "next_occurrences": [context.iso(m) for m in report.next_occurrences],
    }


def _print_report(report: CampaignReport, context: _Context) -> None:
    campaign = report.campaign
    print(f"Chiến dịch số {campaign.id} «{campaign.name}»: {_status_label(campaign.status)}")
    latest = report.latest_run
    if latest is None:
        print("Chưa gửi lần nào.")
    else:
        print(
            f"Số lần gửi: {len(report.runs)}; gần nhất #{latest.id} lúc "
            f"{context.local(latest.fire_at)} ({RUN_LABELS.get(latest.status, latest.status)})."
        )
        title = "Tổng các lần gửi:" if len(report.runs) > 1 else None
        _print_counts(report.totals, title)
        if len(report.runs) > 1 and report.latest is not None:
            _print_counts(report.latest, f"Lần gửi gần nhất (#{latest.id}):")
        rate = f"{_number(report.rate)} tin/giây" if report.rate is not None else "chưa đủ số liệu"
        print(f"Tốc độ đạt được (lần gần nhất): {rate}")
        if report.pending:
            print(
                f"Còn {report.pending} tin chưa gửi; ước tính còn "
                f"{_duration_text(report.eta_seconds)} (theo tốc độ cấu hình)."
            )
    if report.errors:
        print("Lỗi thường gặp:")
        for reason, number in report.errors:
            print(f"  {number:>6}  {reason}")
    if report.next_occurrences:
        print("Các lần gửi tới: " + ", ".join(context.local(m) for m in report.next_occurrences))


def _print_counts(counts: Counts, title: str | None) -> None:
    if title:
        print(title)
    channels = sorted(counts.by_channel)
    statuses = [s for s in DELIVERY_LABELS if counts.by_status.get(s)]
    if not statuses:
        print("  (chưa có người nhận nào)")
        return
    headers = ["", *(CHANNEL_LABELS.get(c, c) for c in channels), "Tổng"]
    table = [
        [
            DELIVERY_LABELS[s],
            *(str(counts.by_channel[c].get(s, 0)) for c in channels),
            str(counts.by_status.get(s, 0)),
        ]
        for s in statuses
    ]
    table.append(
        ["Tổng", *(str(sum(counts.by_channel[c].values())) for c in channels), str(counts.total)]
    )
    _print_table(headers, table, right=set(range(1, len(headers))), indent="  ")


async def _plan(args: argparse.Namespace, context: _Context) -> int:
    from broadcasts.report import campaign_plan, channel_rates

    plan = await campaign_plan(context.campaigns, args.id, settings=context.broadcast)
    rates = channel_rates(context.broadcast)
    if args.json:
        _print_json(_plan_json(plan, rates, context))
        return 0
    campaign = plan.campaign
    print(
        f"Chiến dịch số {campaign.id} «{campaign.name}»: kế hoạch gửi "
        f"(tính lúc {context.local(plan.now)})"
    )
    topics = ", ".join(campaign.topics) or "mọi chủ đề"
    print(f"Người nhận (đang nhận tin, chủ đề: {topics}): {plan.total}")
    for channel in campaign.channels:
        label = CHANNEL_LABELS.get(channel, channel)
        line = f"  {label}: {plan.audience[channel]} người"
        if channel in rates:
            line += (
                f", khoảng {_duration_text(plan.durations[channel])}"
                f" ({_number(rates[channel])} tin/giây)"
            )
        if plan.out_of_window.get(channel):
            line += (
                f"; {plan.out_of_window[channel]} người quá {context.broadcast.zalo_window_days}"
                " ngày không tương tác, Zalo không cho gửi"
            )
        print(line)
    print(
        f"Thời gian gửi ước tính: {_duration_text(plan.duration_seconds)} (các kênh gửi song song)."
    )
    window = f"{context.broadcast.quiet_start}–{context.broadcast.quiet_end}"
    start = f"Bắt đầu: {context.local(plan.start)}"
    if not plan.quiet:
        print(f"{start}, ngoài giờ yên lặng ({window}).")
    elif plan.held_until is not None:
        print(
            f"{start}, trong giờ yên lặng ({window}): tin sẽ chờ đến "
            f"{context.local(plan.held_until)} mới gửi."
        )
    else:
        print(f"{start}, trong giờ yên lặng ({window}), nhưng chiến dịch khẩn nên vẫn gửi ngay.")
    return 0


def _plan_json(plan: CampaignPlan, rates: Mapping[str, float], context: _Context) -> dict[str, Any]:
    campaign = plan.campaign
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "channels": list(campaign.channels),
        "topics": list(campaign.topics),
        "urgent": campaign.urgent,
        "computed_at": context.iso(plan.now),
        "audience": plan.audience,
        "out_of_window": plan.out_of_window,
        "total": plan.total,
        "window_cutoff": context.iso(plan.window_cutoff),
        "rates_per_second": {c: rates[c] for c in campaign.channels if c in rates},
        "durations_seconds": plan.durations,
        "duration_seconds": plan.duration_seconds,
        "start": context.iso(plan.start),
        "quiet_hours": plan.quiet,
        "held_until": context.iso(plan.held_until),
    }


# --- formatting -----------------------------------------------------------------------------


def _number(value: float | None) -> str:
    """One decimal with a Vietnamese decimal comma; whole numbers without it."""
    if value is None:
        return "-"
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",")


def _duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "không ước tính được (không giới hạn tốc độ)"
    total = round(seconds)
    if total < 60:
        return f"{_number(seconds) if seconds < 10 else total} giây"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} giờ {minutes} phút"
    return f"{minutes} phút {secs} giây" if secs else f"{minutes} phút"


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: set[int] | frozenset[int] = frozenset(),
    indent: str = "",
) -> None:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = (
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print((indent + "  ".join(cells)).rstrip())


_ACTIONS: dict[str, Action] = {
    "create": _create,
    "edit": _edit,
    "list": _list,
    "show": _show,
    "submit": _submit,
    "approve": _approve,
    "reject": _reject,
    "schedule": _schedule,
    "send": _send,
    "pause": _pause,
    "resume": _resume,
    "cancel": _cancel,
    "test": _test,
    "report": _report,
    "plan": _plan,
}
