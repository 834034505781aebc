"""``bot campaign send`` and ``test``: a run started now, sent from this process too with
``--wait`` (and for a test), with a progress bar on stderr."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from bot.cli.campaigns.common import (
    CHANNEL_LABELS,
    DELIVERY_LABELS,
    RUN_LABELS,
    Action,
    Context,
    UsageError,
    clock_text,
    counts_json,
    number_text,
    print_counts,
    print_json,
    quiet_warning,
)
from bot.settings import BroadcastSettings

if TYPE_CHECKING:
    from storage.campaigns import CampaignView, RunView


async def _send(args: argparse.Namespace, context: Context) -> int:
    from storage.models import utcnow

    campaigns = context.campaigns
    campaign = await campaigns.get(args.id)
    if not args.wait:
        run = await campaigns.send_now(args.id, actor=args.by)
        if args.json:
            print_json(
                {"campaign_id": campaign.id, "run_id": run.id, "status": run.status, "wait": False}
            )
        else:
            print(
                f"Đã bắt đầu gửi chiến dịch số {campaign.id} «{campaign.name}» (lần gửi #{run.id})."
            )
            print(
                f"`bot serve` đang chạy sẽ gửi đi; theo dõi bằng bot campaign report {campaign.id}."
            )
        quiet_warning(campaign, utcnow(), context)
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
        quiet_warning(campaign, utcnow(), context)
        final, counts = await _drive(run, couriers, context, urgent=campaign.urgent)
    return _print_outcome(campaign, final, counts, context, as_json=args.json)


async def _test(args: argparse.Namespace, context: Context) -> int:
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
        print_json(
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
    run: RunView, couriers: Mapping[str, Any], context: Context, *, urgent: bool
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
    context: Context,
    *,
    as_json: bool,
) -> int:
    from broadcasts.report import Counts

    counts = Counts.of(grouped)
    if as_json:
        print_json(
            {
                "campaign_id": campaign.id,
                "run_id": run.id,
                "status": run.status,
                "status_reason": run.status_reason,
                "wait": True,
                **counts_json(counts),
            }
        )
        return 0
    label = RUN_LABELS.get(run.status, run.status)
    reason = f" ({run.status_reason})" if run.status_reason else ""
    print(f"Lần gửi #{run.id} của chiến dịch số {campaign.id}: {label}{reason}.")
    print_counts(counts, None)
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
        parts.append(f"{number_text(rate)} tin/giây")
        if run.status == "expanding":
            parts.append("đang lập danh sách")
        resume = quiet_resume_at(utcnow(), self._quiet) if self._quiet else None
        if resume is not None and counts.pending:
            parts.append(f"giờ yên lặng, gửi tiếp lúc {self._local(resume)}")
        elif counts.pending:
            parts.append(f"còn ~{clock_text(remaining)}")
        text = " · ".join(parts)
        self._shown = max(self._shown, len(text))
        return text

    def close(self) -> None:
        if self._shown:
            self._out.write("\n")
            self._out.flush()


ACTIONS: dict[str, Action] = {"send": _send, "test": _test}
