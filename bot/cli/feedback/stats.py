"""``bot feedback stats``: the satisfaction index per service point and per month, as a table,
JSON or a chart (the definition is in ``bot.feedback_report``)."""

from __future__ import annotations

import argparse
from typing import Any

from bot.cli.feedback.common import (
    POINT_WIDTH,
    Action,
    Context,
    one_line,
    print_json,
)
from bot.cli.feedback.filters import point_option, utc_period
from bot.cli.text import CannotWrite, print_table, shorten
from bot.feedback_report import FACTOR_LABELS, FACTORS, Tally, decimal

SHORT_FACTORS = ("Tiếp cận", "Thủ tục", "Công chức", "Kết quả", "Góp ý")


async def _stats(args: argparse.Namespace, context: Context) -> int:
    from bot.feedback_report import index_chart, satisfaction
    from storage.feedback import FeedbackFilter

    since, until = utc_period(args, context)
    point = point_option(args, context)
    where = FeedbackFilter(point_id=point, since=since, until=until)
    stats = await satisfaction(context.inbox, where, context.zone)
    catalog = context.catalog
    points = sorted(stats.by_point, key=catalog.point_order)
    period = _period_text(args)
    if args.chart is not None:
        bars = [
            (catalog.point(p) or "Không rõ nơi giải quyết", tally.index, tally.responses)
            for p in points
            if (tally := stats.by_point[p]).index is not None
        ]
        overall = stats.overall
        note = (
            f"{overall.responses} phiếu đánh giá đã hoàn thành{period}; chung: "
            f"{decimal(overall.index, 1)}%. Hài lòng = chấm 4 hoặc 5."
        )
        try:
            index_chart(
                bars,
                args.chart,
                title="Chỉ số hài lòng theo nơi giải quyết thủ tục",
                note=note,
            )
        except OSError as exc:
            raise CannotWrite(f"Không ghi được tệp {args.chart}: {exc.strerror or exc}") from exc
    if args.json:
        print_json(
            {
                "from": args.since.isoformat() if args.since else None,
                "to": args.until.isoformat() if args.until else None,
                "point": point,
                "timezone": context.settings.feedback.timezone,
                "factors": [{"id": f, "label": label} for f, label in FACTOR_LABELS.items()],
                "overall": _tally_json(stats.overall),
                "points": [
                    {
                        "point_id": p,
                        "point_name": catalog.point(p),
                        **_tally_json(stats.by_point[p]),
                    }
                    for p in points
                ],
                "months": [
                    {"month": month, "responses": tally.responses, "index": tally.index}
                    for month, tally in stats.by_month.items()
                ],
                "chart": str(args.chart) if args.chart else None,
            }
        )
        return 0
    print(f"Mức độ hài lòng — {stats.overall.responses} phiếu đánh giá đã hoàn thành{period}.")
    if not stats.overall.responses:
        return 0
    print("Mỗi ô: điểm trung bình (1–5) · tỷ lệ hài lòng (chấm 4 hoặc 5).")
    print("Chỉ số: bình quân tỷ lệ hài lòng của các yếu tố có người trả lời.\n")
    headers = ("Nơi giải quyết", "Phiếu", *SHORT_FACTORS, "Chỉ số")
    table = [
        _tally_cells(
            shorten(one_line(catalog.point(p) or "Không rõ nơi giải quyết"), POINT_WIDTH),
            stats.by_point[p],
        )
        for p in points
    ]
    table.append(_tally_cells("Chung", stats.overall))
    print_table(headers, table, right=set(range(1, len(headers))))
    print("\nTheo tháng:")
    months = [
        (f"{month[5:]}/{month[:4]}", str(tally.responses), _percent(tally.index))
        for month, tally in stats.by_month.items()
    ]
    print_table(("Tháng", "Phiếu", "Chỉ số"), months, right={1, 2}, indent="  ")
    if args.chart is not None:
        print(f"\nĐã vẽ biểu đồ vào {args.chart}.")
    return 0


def _period_text(args: argparse.Namespace) -> str:
    if args.since and args.until:
        return f", từ {args.since:%d/%m/%Y} đến {args.until:%d/%m/%Y}"
    if args.since:
        return f", từ {args.since:%d/%m/%Y}"
    if args.until:
        return f", đến {args.until:%d/%m/%Y}"
    return ""


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "responses": tally.responses,
        "factors": {
            factor: {
                "answered": stats.answered,
                "mean": stats.mean,
                "satisfied_percent": stats.satisfied,
            }
            for factor, stats in zip(FACTORS, tally.factors, strict=True)
        },
        "index": tally.index,
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{decimal(value, 1)}%"


def _tally_cells(label: str, tally: Tally) -> tuple[str, ...]:
    factors = (
        f"{decimal(f.mean, 2)} · {_percent(f.satisfied)}" if f.answered else "-"
        for f in tally.factors
    )
    return (label, str(tally.responses), *factors, _percent(tally.index))


ACTIONS: dict[str, Action] = {"stats": _stats}
