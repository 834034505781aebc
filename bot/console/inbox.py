"""The feedback inbox: surveys and complaints with the filters ``bot feedback list`` has
(kind, status, service point, overdue, rating ≤ N, text search; here also "assigned to me"
and the period), counts per status, keyset pages newest first, and the export of the current
filter as CSV or XLSX (the same files as ``bot feedback export``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.accounts import can
from bot.console import guard, keys
from bot.console.render import catalog, day_start, render, zone
from bot.feedback_report import KIND_LABELS, export_row, write_csv, write_xlsx
from storage.feedback import PARTIAL, STATUS_LABELS, FeedbackFilter, FeedbackView
from storage.models import utcnow

PAGE = 50
EXCERPT = 120
LISTED = tuple(s for s in STATUS_LABELS if s != PARTIAL)
CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Chosen:
    """The filter as the form shows it (strings, "" for none)."""

    kind: str = ""
    status: str = ""
    point: str = ""
    overdue: bool = False
    rating: str = ""
    q: str = ""
    mine: bool = False
    since: str = ""
    until: str = ""

    def query(self, **extra: str) -> str:
        values = {
            "kind": self.kind,
            "status": self.status,
            "point": self.point,
            "overdue": "1" if self.overdue else "",
            "rating": self.rating,
            "q": self.q,
            "mine": "1" if self.mine else "",
            "from": self.since,
            "to": self.until,
            **extra,
        }
        return urllib.parse.urlencode({k: v for k, v in values.items() if v})


def _day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def parse_filter(params: Mapping[str, Any], request: web.Request) -> tuple[FeedbackFilter, Chosen]:
    """The filter from a query string or a posted form; values that make no sense are
    ignored (the form then shows what was applied)."""

    def text(name: str, limit: int = 100) -> str:
        value = params.get(name, "")
        return value.strip()[:limit] if isinstance(value, str) else ""

    kind = text("kind") if text("kind") in KIND_LABELS else ""
    status = text("status") if text("status") in STATUS_LABELS else ""
    rating = text("rating") if text("rating") in {"1", "2", "3", "4", "5"} else ""
    since, until = _day(text("from")), _day(text("to"))

    chosen = Chosen(
        kind=kind,
        status=status,
        point=text("point", 64),
        overdue=text("overdue") == "1",
        rating=rating,
        q=text("q", 200),
        mine=text("mine") == "1",
        since=since.isoformat() if since else "",
        until=until.isoformat() if until else "",
    )
    where = FeedbackFilter(
        kind=kind or None,
        statuses=(status,) if status else LISTED,
        point_id=chosen.point or None,
        since=day_start(request, since) if since else None,
        until=day_start(request, until + dt.timedelta(days=1)) if until else None,
        max_rating=int(rating) if rating else None,
        text=chosen.q or None,
        overdue_at=utcnow() if chosen.overdue else None,
        assignee=keys.session(request).account.username if chosen.mine else None,
    )
    return where, chosen


def excerpt(item: FeedbackView) -> str:
    text = item.description if item.kind == "complaint" else item.comment
    if text and text.strip():
        flat = " ".join(text.split())
        return flat if len(flat) <= EXCERPT else flat[: EXCERPT - 1] + "…"
    if item.kind == "survey":
        return "Điểm: " + " ".join("–" if r is None else str(r) for r in item.ratings)
    return "–"


def deadline_text(item: FeedbackView, now: dt.datetime) -> str:
    """How long is left for an open item ("còn 3 ngày", "quá hạn 2 ngày"); "" once closed."""
    if item.status not in ("new", "in_progress"):
        return ""
    left = (item.deadline_at - now).total_seconds() / 86400
    if left < 0:
        return f"quá hạn {max(1, math.floor(-left))} ngày"
    if left < 1:
        return "còn dưới 1 ngày"
    return f"còn {math.ceil(left)} ngày"


async def people(request: web.Request) -> dict[str, str]:
    """User names → full names, for showing who handles what."""
    return {a.username: a.full_name for a in await keys.services(request).storage.accounts.all()}


def _cursor(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


async def inbox(request: web.Request) -> web.Response:
    await guard.require(request, "feedback.read")
    where, chosen = parse_filter(request.query, request)
    store = keys.services(request).storage.feedback_inbox
    older, newer = _cursor(request.query.get("older", "")), _cursor(request.query.get("newer", ""))
    page, counts = await store.listing(where, older_than=older, newer_than=newer, limit=PAGE)
    now = utcnow()
    names = catalog(request)
    rows = [
        {
            "item": item,
            "point": names.point(item.point_id) or "–",
            "excerpt": excerpt(item),
            "deadline": deadline_text(item, now),
            "overdue": item.overdue(now),
        }
        for item in page.items
    ]
    tabs = [("", "Tất cả", sum(counts.get(s, 0) for s in LISTED))] + [
        (s, STATUS_LABELS[s], counts.get(s, 0)) for s in LISTED
    ]
    return render(
        request,
        "inbox.html",
        {
            "rows": rows,
            "page": page,
            "chosen": chosen,
            "tabs": tabs,
            "groups": keys.services(request).kb.service_groups,
            "kinds": KIND_LABELS,
            "people": await people(request),
            "newer_link": chosen.query(newer=str(page.items[0].id)) if page.has_newer else None,
            "older_link": chosen.query(older=str(page.items[-1].id)) if page.has_older else None,
        },
    )


async def export(request: web.Request) -> web.StreamResponse:
    current = await guard.require(request, "feedback.export")
    form = await request.post()
    where, chosen = parse_filter(form, request)
    kind = "xlsx" if form.get("format") == "xlsx" else "csv"
    with_contact = form.get("with_contact") == "1" and can(
        current.account.roles, "feedback.contact"
    )
    names, local = catalog(request), zone(request)

    def row(item: FeedbackView) -> list[Any]:
        return export_row(item, names, local, with_contact=with_contact)

    items = keys.services(request).storage.feedback_inbox.iter_items(where)
    with tempfile.TemporaryFile() as file:
        if kind == "csv":
            text = io.TextIOWrapper(file, encoding="utf-8", newline="")
            written = await write_csv(items, text, row)
            text.flush()
            text.detach()
        else:
            written = await write_xlsx(items, file, row)
        await guard.feedback_desk(request).log_export(
            actor=guard.actor(request),
            detail=f"{kind}, {written} mục; {chosen.query() or 'không lọc'}",
            with_contact=with_contact,
        )
        stamp = utcnow().astimezone(local).strftime("%Y%m%d-%H%M")
        response = web.StreamResponse(
            headers={
                **guard.HEADERS,
                "Content-Type": (
                    "text/csv; charset=utf-8"
                    if kind == "csv"
                    else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                ),
                "Content-Disposition": f'attachment; filename="gop-y-phan-anh-{stamp}.{kind}"',
            }
        )
        file.seek(0, io.SEEK_END)
        response.content_length = file.tell()
        file.seek(0)
        await response.prepare(request)
        while chunk := file.read(CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response


def setup(console: web.Application) -> None:
    console.router.add_get("/feedback", inbox)
    console.router.add_post("/feedback/export", export)
