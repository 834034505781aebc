"""The first page after signing in: what waits for this person, by their roles."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from bot.accounts import can
from bot.console import keys
from bot.console.render import render, zone
from bot.feedback_report import satisfaction
from storage.audit import AuditFilter
from storage.feedback import OPEN, FeedbackFilter
from storage.models import utcnow

STATS_DAYS = 30


async def home(request: web.Request) -> web.Response:
    account = keys.session(request).account
    storage = keys.services(request).storage
    context: dict[str, Any] = {"stats_days": STATS_DAYS}
    now = utcnow()
    if can(account.roles, "feedback.read"):
        inbox = storage.feedback_inbox
        context["counts"] = await inbox.status_counts(FeedbackFilter())
        context["overdue"] = await inbox.count(FeedbackFilter(overdue_at=now))
        context["mine"] = await inbox.count(
            FeedbackFilter(statuses=OPEN, assignee=account.username)
        )
    if can(account.roles, "stats"):
        recent = FeedbackFilter(since=now - dt.timedelta(days=STATS_DAYS))
        stats = await satisfaction(storage.feedback_inbox, recent, zone(request))
        context["index"] = stats.overall
    if can(account.roles, "accounts"):
        everyone = await storage.accounts.all()
        context["accounts_total"] = len(everyone)
        context["accounts_active"] = sum(a.active for a in everyone)
        context["recent"] = await storage.audit.page(AuditFilter(), limit=8)
    return render(request, "home.html", context)


def setup(console: web.Application) -> None:
    console.router.add_get("/", home)
