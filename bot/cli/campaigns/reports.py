"""``bot campaign report`` and ``plan``: what a campaign's runs sent and what a run would take
(``broadcasts.report`` has the numbers)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.cli.campaigns.common import (
    CHANNEL_LABELS,
    RUN_LABELS,
    Action,
    Context,
    campaign_json,
    counts_json,
    duration_text,
    number_text,
    print_counts,
    print_json,
    run_json,
    status_label,
)

if TYPE_CHECKING:
    from broadcasts.report import CampaignPlan, CampaignReport


async def _report(args: argparse.Namespace, context: Context) -> int:
    from broadcasts.report import campaign_report, channel_rates

    report = await campaign_report(
        context.campaigns, args.id, rates=channel_rates(context.broadcast)
    )
    if args.json:
        print_json(_report_json(report, context))
        return 0
    _print_report(report, context)
    return 0


def _report_json(report: CampaignReport, context: Context) -> dict[str, Any]:
    latest = report.latest_run
    return {
        "campaign": campaign_json(report.campaign, context),
        "runs": [run_json(r, context) for r in report.runs],
        "totals": counts_json(report.totals),
        "latest_run": (
            {"run": run_json(latest, context), **counts_json(report.latest)}
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


def _print_report(report: CampaignReport, context: Context) -> None:
    campaign = report.campaign
    print(f"Chiến dịch số {campaign.id} «{campaign.name}»: {status_label(campaign.status)}")
    latest = report.latest_run
    if latest is None:
        print("Chưa gửi lần nào.")
    else:
        print(
            f"Số lần gửi: {len(report.runs)}; gần nhất #{latest.id} lúc "
            f"{context.local(latest.fire_at)} ({RUN_LABELS.get(latest.status, latest.status)})."
        )
        title = "Tổng các lần gửi:" if len(report.runs) > 1 else None
        print_counts(report.totals, title)
        if len(report.runs) > 1 and report.latest is not None:
            print_counts(report.latest, f"Lần gửi gần nhất (#{latest.id}):")
        rate = (
            f"{number_text(report.rate)} tin/giây" if report.rate is not None else "chưa đủ số liệu"
        )
        print(f"Tốc độ đạt được (lần gần nhất): {rate}")
        if report.pending:
            print(
                f"Còn {report.pending} tin chưa gửi; ước tính còn "
                f"{duration_text(report.eta_seconds)} (theo tốc độ cấu hình)."
            )
    if report.errors:
        print("Lỗi thường gặp:")
        for reason, number in report.errors:
            print(f"  {number:>6}  {reason}")
    if report.next_occurrences:
        print("Các lần gửi tới: " + ", ".join(context.local(m) for m in report.next_occurrences))


async def _plan(args: argparse.Namespace, context: Context) -> int:
    from broadcasts.report import campaign_plan, channel_rates

    plan = await campaign_plan(context.campaigns, args.id, settings=context.broadcast)
    rates = channel_rates(context.broadcast)
    if args.json:
        print_json(_plan_json(plan, rates, context))
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
                f", khoảng {duration_text(plan.durations[channel])}"
                f" ({number_text(rates[channel])} tin/giây)"
            )
        if plan.out_of_window.get(channel):
            line += (
                f"; {plan.out_of_window[channel]} người quá {context.broadcast.zalo_window_days}"
                " ngày không tương tác, Zalo không cho gửi"
            )
        print(line)
    print(
        f"Thời gian gửi ước tính: {duration_text(plan.duration_seconds)} (các kênh gửi song song)."
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


def _plan_json(plan: CampaignPlan, rates: Mapping[str, float], context: Context) -> dict[str, Any]:
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


ACTIONS: dict[str, Action] = {"report": _report, "plan": _plan}
