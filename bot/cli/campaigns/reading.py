"""``bot campaign list`` and ``show``: the campaigns, and one with its schedule, history and
runs."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.cli.campaigns.common import (
    CHANNEL_LABELS,
    RUN_LABELS,
    Action,
    Context,
    campaign_json,
    print_json,
    run_json,
    shorten,
    status_label,
)
from bot.cli.text import print_table
from storage.audit import CLI, CONSOLE, VIA_LABELS

if TYPE_CHECKING:
    from storage.campaigns import CampaignView, EventView


def _schedule_text(campaign: CampaignView, context: Context) -> str:
    if campaign.schedule_kind == "at" and campaign.send_at:
        return f"một lần, lúc {context.local(campaign.send_at)}"
    if campaign.schedule_kind == "cron" and campaign.cron:
        until = f", đến {context.local(campaign.cron_end)}" if campaign.cron_end else ""
        return f"lặp lại theo lịch «{campaign.cron}»{until}"
    return "gửi ngay khi được lên lịch"


def _event_json(event: EventView, context: Context) -> dict[str, Any]:
    return {
        "at": context.iso(event.at),
        "from": event.from_status,
        "to": event.to_status,
        "actor": event.actor,
        "via": event.via,
        "note": event.note,
    }


async def _list(args: argparse.Namespace, context: Context) -> int:
    rows = await context.campaigns.repo.find(statuses=[args.status] if args.status else None)
    if args.json:
        print_json([campaign_json(c, context) for c in rows])
        return 0
    if not rows:
        print("Chưa có chiến dịch nào" + (" ở trạng thái này." if args.status else "."))
        return 0
    headers = ("ID", "Trạng thái", "Tên", "Lịch gửi", "Kênh", "Người soạn", "Cập nhật")
    table = [
        (
            str(c.id),
            status_label(c.status),
            shorten(c.name, 40),
            _schedule_text(c, context),
            ", ".join(c.channels),
            c.author,
            context.local(c.updated_at),
        )
        for c in rows
    ]
    print_table(headers, table, right={0})
    return 0


async def _show(args: argparse.Namespace, context: Context) -> int:
    campaigns = context.campaigns
    campaign = await campaigns.get(args.id)
    events = await campaigns.repo.events(campaign.id)
    runs = await campaigns.repo.runs(campaign.id)
    upcoming = [] if campaign.status in _final() else campaigns.upcoming(campaign)
    if args.json:
        print_json(
            {
                **campaign_json(campaign, context),
                "next_occurrences": [context.iso(m) for m in upcoming],
                "history": [_event_json(e, context) for e in events],
                "runs": [run_json(r, context) for r in runs],
            }
        )
        return 0
    link = (
        f"{campaign.link_title or 'Xem chi tiết'} — {campaign.link_url}"
        if campaign.link_url
        else "-"
    )
    status = status_label(campaign.status)
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
            f"{status_label(event.from_status)} → {status_label(event.to_status)}"
            if event.from_status
            else f"tạo ({status_label(event.to_status)})"
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


ACTIONS: dict[str, Action] = {"list": _list, "show": _show}
