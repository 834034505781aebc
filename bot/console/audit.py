"""The audit log, for admins: who did what, to which item, when, from which address;
filtered by person, action and period, newest first in keyset pages, and as a CSV download
(UTF-8 with a byte order mark, cells a spreadsheet could run as formulas neutralised)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.cli.text import csv_cell
from bot.console import guard, keys
from bot.console.render import day_start, render, zone
from bot.feedback_report import file_text
from storage.audit import ACTION_LABELS, VIA_LABELS, AuditFilter
from storage.models import utcnow

PAGE = 50
CSV_HEADERS = (
    "Thời điểm",
    "Người",
    "Mã tài khoản",
    "Qua",
    "Thao tác",
    "Đối tượng",
    "Chi tiết",
    "Địa chỉ",
)


def _filter(params: Mapping[str, Any], request: web.Request) -> tuple[AuditFilter, dict[str, str]]:
    def text(name: str, limit: int = 100) -> str:
        value = params.get(name, "")
        return value.strip()[:limit] if isinstance(value, str) else ""

    def day(name: str) -> dt.date | None:
        try:
            return dt.date.fromisoformat(text(name))
        except ValueError:
            return None

    since, until = day("from"), day("to")
    action = text("action") if text("action") in ACTION_LABELS else ""
    chosen = {
        "actor": text("actor"),
        "action": action,
        "from": since.isoformat() if since else "",
        "to": until.isoformat() if until else "",
    }

    where = AuditFilter(
        actor=chosen["actor"] or None,
        action=action or None,
        since=day_start(request, since) if since else None,
        until=day_start(request, until + dt.timedelta(days=1)) if until else None,
    )
    return where, chosen


async def listing(request: web.Request) -> web.Response:
    await guard.require(request, "audit")
    where, chosen = _filter(request.query, request)
    before = request.query.get("before", "")
    cursor = int(before) if before.isdigit() and len(before) < 19 else None
    rows = await keys.services(request).storage.audit.page(where, before=cursor, limit=PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    query = {k: v for k, v in chosen.items() if v}
    return render(
        request,
        "audit.html",
        {
            "rows": rows,
            "chosen": chosen,
            "actions": ACTION_LABELS,
            "first_link": urllib.parse.urlencode(query) if cursor is not None else None,
            "older_link": urllib.parse.urlencode({**query, "before": rows[-1].id})
            if more
            else None,
        },
    )


async def export(request: web.Request) -> web.Response:
    await guard.require(request, "audit")
    form = await request.post()
    where, chosen = _filter(form, request)
    local = zone(request)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    written = 0
    async for e in keys.services(request).storage.audit.iter_entries(where):
        cells = (
            e.at.astimezone(local).replace(microsecond=0).isoformat(),
            e.actor,
            e.account_id,
            VIA_LABELS.get(e.via, e.via),
            ACTION_LABELS.get(e.action, e.action),
            e.target,
            e.detail,
            e.address,
        )
        writer.writerow(csv_cell(file_text(c) if isinstance(c, str) else c) for c in cells)
        written += 1
    detail = "; ".join(f"{k}={v}" for k, v in chosen.items() if v) or "không lọc"
    await keys.services(request).storage.audit.record(
        guard.actor(request), "audit.export", None, f"{written} dòng; {detail}"
    )
    stamp = utcnow().astimezone(local).strftime("%Y%m%d-%H%M")
    return web.Response(
        body=out.getvalue().encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="nhat-ky-{stamp}.csv"'},
    )


def setup(console: web.Application) -> None:
    console.router.add_get("/audit", listing)
    console.router.add_post("/audit/export", export)
