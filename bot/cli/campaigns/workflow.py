"""``bot campaign submit``, ``approve``, ``reject``, ``schedule``, ``pause``, ``resume`` and
``cancel``: a campaign moved through the workflow (``broadcasts.workflow`` has the rules)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bot.cli.campaigns.common import Action, Context, quiet_warning, status_label

if TYPE_CHECKING:
    from storage.campaigns import CampaignView


def _moved(campaign: CampaignView, by: str) -> None:
    print(
        f"Chiến dịch số {campaign.id} «{campaign.name}»: {status_label(campaign.status)} "
        f"(bởi {' '.join(by.split())})."
    )


async def _submit(args: argparse.Namespace, context: Context) -> int:
    campaign = await context.campaigns.submit(args.id, actor=args.by)
    _moved(campaign, args.by)
    print("Một đồng nghiệp khác cần duyệt: bot campaign approve " + f"{campaign.id} --by TÊN.")
    return 0


async def _approve(args: argparse.Namespace, context: Context) -> int:
    campaign = await context.campaigns.approve(args.id, by=args.by)
    _moved(campaign, args.by)
    print(
        f"Bước tiếp theo: bot campaign schedule {campaign.id} --by TÊN (gửi theo lịch) "
        f"hoặc bot campaign send {campaign.id} --by TÊN (gửi ngay)."
    )
    return 0


async def _reject(args: argparse.Namespace, context: Context) -> int:
    campaign = await context.campaigns.reject(args.id, by=args.by, reason=args.reason)
    _moved(campaign, args.by)
    print(f"Lý do trả lại: {args.reason}")
    return 0


async def _schedule(args: argparse.Namespace, context: Context) -> int:
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
    quiet_warning(campaign, first, context)
    return 0


async def _pause(args: argparse.Namespace, context: Context) -> int:
    _moved(await context.campaigns.pause(args.id, actor=args.by), args.by)
    return 0


async def _resume(args: argparse.Namespace, context: Context) -> int:
    _moved(await context.campaigns.resume(args.id, actor=args.by), args.by)
    return 0


async def _cancel(args: argparse.Namespace, context: Context) -> int:
    _moved(await context.campaigns.cancel(args.id, actor=args.by), args.by)
    return 0


ACTIONS: dict[str, Action] = {
    "submit": _submit,
    "approve": _approve,
    "reject": _reject,
    "schedule": _schedule,
    "pause": _pause,
    "resume": _resume,
    "cancel": _cancel,
}
