"""What the ``bot campaign`` actions share: the context they run in, the error that means
exit code 2, the labels, the JSON shapes of a campaign and a run, and the formatting of
numbers, durations and tables."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.cli.text import print_table
from bot.settings import BroadcastSettings, Settings

if TYPE_CHECKING:
    from bot.services import Services
    from broadcasts.report import Counts
    from broadcasts.workflow import Campaigns
    from storage.campaigns import CampaignView, RunView

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


class Context:
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


Action = Callable[["argparse.Namespace", "Context"], Awaitable[int]]


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


# --- campaigns and runs ---------------------------------------------------------------------


def status_label(status: str) -> str:
    from broadcasts.workflow import STATUS_LABELS

    return STATUS_LABELS.get(status, status)


def campaign_json(campaign: CampaignView, context: Context) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "status_label": status_label(campaign.status),
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


def run_json(run: RunView, context: Context) -> dict[str, Any]:
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


def quiet_warning(campaign: CampaignView, start: dt.datetime, context: Context) -> None:
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


# --- counts ---------------------------------------------------------------------------------


def counts_json(counts: Counts) -> dict[str, Any]:
    return {
        "total": counts.total,
        "by_status": counts.by_status,
        "by_channel": counts.by_channel,
    }


def print_counts(counts: Counts, title: str | None) -> None:
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
    print_table(headers, table, right=set(range(1, len(headers))), indent="  ")


# --- formatting -----------------------------------------------------------------------------


def number_text(value: float | None) -> str:
    """One decimal with a Vietnamese decimal comma; whole numbers without it."""
    if value is None:
        return "-"
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return text.replace(".", ",")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "không ước tính được (không giới hạn tốc độ)"
    total = round(seconds)
    if total < 60:
        return f"{number_text(seconds) if seconds < 10 else total} giây"
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} giờ {minutes} phút"
    return f"{minutes} phút {secs} giây" if secs else f"{minutes} phút"


def clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
