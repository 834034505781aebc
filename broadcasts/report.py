"""What a campaign did (``campaign_report``) and what it would do if sent now
(``campaign_plan``): pure reads over the repository, nothing printed.

Rates are messages per second per channel, as configured (``channel_rates``); 0 means no
limit, and then no duration can be estimated (None). Channels send in parallel, so the
overall duration is the longest channel's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.settings import BroadcastSettings
from broadcasts.quiet import in_quiet_hours, quiet_resume_at
from broadcasts.workflow import FINAL, Campaigns
from storage.campaigns import (
    DELIVERY_STATUSES,
    FAILED,
    OUT_OF_WINDOW,
    PENDING,
    SENDING,
    SENT,
    UNCERTAIN,
    CampaignView,
    RunView,
)
from storage.models import utcnow

TOP_ERRORS = 10
UPCOMING = 5


def channel_rates(settings: BroadcastSettings) -> dict[str, float]:
    """The configured sending rate of each channel, messages per second."""
    return {"telegram": settings.telegram_rate, "zalo": settings.zalo_rate}


def duration(rows: int, rate: float | None) -> float | None:
    """Seconds to send ``rows`` at ``rate`` per second; None when the rate is unknown or
    unlimited (and there is something to send)."""
    if rows <= 0:
        return 0.0
    if not rate or rate <= 0:
        return None
    return rows / rate


def eta(pending: Mapping[str, int], rates: Mapping[str, float]) -> float | None:
    """Seconds until every channel has sent its pending rows, channels in parallel."""
    per_channel = [duration(n, rates.get(channel)) for channel, n in pending.items()]
    if any(value is None for value in per_channel):
        return None
    return max((v for v in per_channel if v is not None), default=0.0)


@dataclass(frozen=True, slots=True)
class Counts:
    """Delivery rows by status and by channel and status."""

    by_status: dict[str, int]
    by_channel: dict[str, dict[str, int]]

    @classmethod
    def of(cls, grouped: Mapping[tuple[str, str], int]) -> Counts:
        by_status: dict[str, int] = dict.fromkeys(DELIVERY_STATUSES, 0)
        by_channel: dict[str, dict[str, int]] = {}
        for (channel, status), number in sorted(grouped.items()):
            by_status[status] = by_status.get(status, 0) + number
            row = by_channel.setdefault(channel, dict.fromkeys(DELIVERY_STATUSES, 0))
            row[status] = row.get(status, 0) + number
        return cls(by_status, by_channel)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def pending(self) -> int:
        """Not yet sent: waiting, or in flight right now."""
        return self.by_status.get(PENDING, 0) + self.by_status.get(SENDING, 0)

    def pending_by_channel(self) -> dict[str, int]:
        return {c: s.get(PENDING, 0) + s.get(SENDING, 0) for c, s in self.by_channel.items()}


@dataclass(frozen=True, slots=True)
class CampaignReport:
    campaign: CampaignView
    runs: list[RunView]  # not the test sends, oldest first
    totals: Counts  # over every run
    latest: Counts | None  # the latest run's, None before the first run
    sent: int
    failed: int
    out_of_window: int
    uncertain: int
    pending: int  # pending or in flight
    rate: float | None  # achieved messages per second in the latest run
    eta_seconds: float | None  # for the pending rows, at the configured rates
    errors: list[tuple[str, int]]  # (reason, rows), most frequent first
    next_occurrences: list[dt.datetime] = field(default_factory=list)

    @property
    def latest_run(self) -> RunView | None:
        return self.runs[-1] if self.runs else None


def achieved_rate(sent: int, first: dt.datetime | None, last: dt.datetime | None) -> float | None:
    """Messages per second between the first and the last one sent: ``sent`` messages span
    ``sent - 1`` intervals. None with fewer than two messages or no time between them."""
    if sent < 2 or first is None or last is None:
        return None
    seconds = (last - first).total_seconds()
    if seconds <= 0:
        return None
    return (sent - 1) / seconds


async def campaign_report(
    campaigns: Campaigns, campaign_id: int, *, rates: dict[str, float]
) -> CampaignReport:
    """Raises WorkflowError (Vietnamese) when there is no such campaign."""
    campaign = await campaigns.get(campaign_id)
    repo = campaigns.repo
    runs = await repo.runs(campaign_id, include_tests=False)
    run_ids = [r.id for r in runs]
    totals = Counts.of(await repo.counts(run_ids))
    latest: Counts | None = None
    rate: float | None = None
    if runs:
        last_run = runs[-1].id
        latest = Counts.of(await repo.counts([last_run])) if len(runs) > 1 else totals
        first, last = await repo.sent_span([last_run])
        rate = achieved_rate(latest.by_status.get(SENT, 0), first, last)
    status = totals.by_status
    return CampaignReport(
        campaign=campaign,
        runs=runs,
        totals=totals,
        latest=latest,
        sent=status.get(SENT, 0),
        failed=status.get(FAILED, 0),
        out_of_window=status.get(OUT_OF_WINDOW, 0),
        uncertain=status.get(UNCERTAIN, 0),
        pending=totals.pending,
        rate=rate,
        eta_seconds=eta(totals.pending_by_channel(), rates),
        errors=await repo.errors(run_ids, limit=TOP_ERRORS),
        next_occurrences=[] if campaign.status in FINAL else campaigns.upcoming(campaign, UPCOMING),
    )


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    campaign: CampaignView
    now: dt.datetime
    audience: dict[str, int]  # channel → recipients reachable now
    out_of_window: dict[str, int]  # channel → outside Zalo's window (0 for Telegram)
    durations: dict[str, float | None]  # channel → seconds at the configured rate
    duration_seconds: float | None  # all channels (in parallel): the longest
    start: dt.datetime  # when sending would start (UTC): its time, the next occurrence, now
    quiet: bool  # the start falls in quiet hours
    held_until: dt.datetime | None  # quiet and not urgent: when sending would begin (UTC)
    window_cutoff: dt.datetime | None  # Zalo: last interaction needed after this

    @property
    def total(self) -> int:
        return sum(self.audience.values())


async def campaign_plan(
    campaigns: Campaigns,
    campaign_id: int,
    *,
    settings: BroadcastSettings,
    now: dt.datetime | None = None,
) -> CampaignPlan:
    """The audience as it is now, how long it would take, and whether quiet hours hold it.

    Raises WorkflowError (Vietnamese) when there is no such campaign."""
    campaign = await campaigns.get(campaign_id)
    now = now or utcnow()
    cutoffs: dict[str, dt.datetime] = {}
    if "zalo" in campaign.channels:
        cutoffs["zalo"] = now - dt.timedelta(days=settings.zalo_window_days)
    counts = await campaigns.repo.audience_counts(
        channels=campaign.channels, topics=campaign.topics, window_cutoffs=cutoffs
    )
    audience = {channel: counts.get(channel, (0, 0))[0] for channel in campaign.channels}
    outside = {channel: counts.get(channel, (0, 0))[1] for channel in campaign.channels}
    rates = channel_rates(settings)
    durations = {channel: duration(n, rates.get(channel)) for channel, n in audience.items()}
    overall = eta(audience, rates)
    start = campaigns.next_fire(campaign, after=now) if campaign.schedule_kind != "now" else None
    start = start or now
    local = start.astimezone(campaigns.zone).time()
    quiet = in_quiet_hours(local, settings.quiet_start, settings.quiet_end)
    held = quiet_resume_at(start, settings) if quiet and not campaign.urgent else None
    return CampaignPlan(
        campaign=campaign,
        now=now,
        audience=audience,
        out_of_window=outside,
        durations=durations,
        duration_seconds=overall,
        start=start,
        quiet=quiet,
        held_until=held,
        window_cutoff=cutoffs.get("zalo"),
    )
