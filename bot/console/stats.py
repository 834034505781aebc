"""Satisfaction for a period: the SIPAS-style index per factor and per service point (as
``bot feedback stats`` computes it, see ``bot.feedback_report``), drawn as SVG bar charts on
the server (no script, nothing from elsewhere), with the numbers in tables beside them, and
the list of open items past their deadline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aiohttp import web

from bot.console import guard, keys
from bot.console.inbox import deadline_text
from bot.console.render import catalog, day_start, number, render, zone
from bot.feedback_report import FACTOR_LABELS, satisfaction
from storage.feedback import FeedbackFilter
from storage.models import utcnow

PERIODS = (30, 90, 365)
DEFAULT_DAYS = 90
OVERDUE_SHOWN = 20
# Chart geometry, in SVG user units. Each bar has its name above it, so the chart stays
# readable when it shrinks to a phone's width.
BAR_WIDTH = 280
VALUE_WIDTH = 200
ROW = 46
TOP = 8
AXIS = 24
LABEL_CHARACTERS = 52


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    note: str
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    bar_width: int

    @property
    def ticks(self) -> list[tuple[int, float]]:
        return [(pct, self.bar_width * pct / 100) for pct in range(0, 101, 25)]


def chart(title: str, rows: list[tuple[str, float, str]]) -> Chart:
    """A horizontal bar chart of percentages, best first."""
    ordered = sorted(rows, key=lambda r: -r[1])
    bars = [
        Bar(_clip(label), value, note, TOP + i * ROW, BAR_WIDTH * max(0.0, min(value, 100)) / 100)
        for i, (label, value, note) in enumerate(ordered)
    ]
    height = TOP + ROW * max(len(bars), 1) + AXIS
    return Chart(title, bars, BAR_WIDTH + VALUE_WIDTH, height, BAR_WIDTH)


def _clip(label: str) -> str:
    if len(label) <= LABEL_CHARACTERS:
        return label
    return label[: LABEL_CHARACTERS - 1] + "…"


def _period(request: web.Request) -> tuple[dt.date, dt.date, str]:
    today = utcnow().astimezone(zone(request)).date()
    query = request.query
    days = query.get("days", "")
    if days.isdigit() and int(days) in PERIODS:
        return today - dt.timedelta(days=int(days) - 1), today, days
    try:
        since = dt.date.fromisoformat(query.get("from", ""))
        until = dt.date.fromisoformat(query.get("to", ""))
    except ValueError:
        return today - dt.timedelta(days=DEFAULT_DAYS - 1), today, str(DEFAULT_DAYS)
    if since > until:
        since, until = until, since
    return since, until, ""


async def stats(request: web.Request) -> web.Response:
    await guard.require(request, "stats")
    since, until, days = _period(request)
    local = zone(request)

    names = catalog(request)
    point = request.query.get("point", "").strip()[:64]
    point = point if point in names.points else ""
    inbox = keys.services(request).storage.feedback_inbox
    where = FeedbackFilter(
        point_id=point or None,
        since=day_start(request, since),
        until=day_start(request, until + dt.timedelta(days=1)),
    )
    result = await satisfaction(inbox, where, local)
    points = sorted(result.by_point, key=names.point_order)
    by_point = [(names.point(p) or "Không rõ nơi giải quyết", result.by_point[p]) for p in points]
    factor_chart = chart(
        "Tỷ lệ hài lòng theo yếu tố",
        [
            (label, f.satisfied, f"{number(f.answered)} lượt chấm")
            for label, f in zip(FACTOR_LABELS.values(), result.overall.factors, strict=True)
            if f.satisfied is not None
        ],
    )
    point_chart = chart(
        "Chỉ số hài lòng theo nơi giải quyết",
        [
            (name, tally.index, f"{number(tally.responses)} phiếu")
            for name, tally in by_point
            if tally.index is not None
        ],
    )
    # Codes, places and deadlines only: every role may see what is late; the items
    # themselves open for those who read feedback.
    now = utcnow()
    late = await inbox.find(
        FeedbackFilter(overdue_at=now, point_id=point or None), limit=OVERDUE_SHOWN
    )
    overdue = [(item, names.point(item.point_id), deadline_text(item, now)) for item in late]
    return render(
        request,
        "stats.html",
        {
            "since": since,
            "until": until,
            "days": days,
            "periods": PERIODS,
            "point": point,
            "groups": keys.services(request).kb.service_groups,
            "overall": result.overall,
            "factors": list(zip(FACTOR_LABELS.values(), result.overall.factors, strict=True)),
            "by_point": by_point,
            "months": list(result.by_month.items()),
            "factor_chart": factor_chart,
            "point_chart": point_chart,
            "overdue": overdue,
            "overdue_limit": OVERDUE_SHOWN,
        },
    )


def setup(console: web.Application) -> None:
    console.router.add_get("/stats", stats)
