"""Rendering console pages: what every template gets (who is signed in, their CSRF token,
what they may do, the time zone), the filters that turn stored values into what staff read
(local times, Vietnamese labels, numbers with Vietnamese separators), and the messages shown
after an action (``?ok=KEY``: the text comes from ``NOTICES``, never from the URL)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.accounts import ROLE_LABELS, can
from bot.console.keys import PREFIX, SESSION, services, settings
from bot.feedback_report import KIND_LABELS, Catalog, decimal
from content.models import KnowledgeBase
from storage.audit import ACTION_LABELS, VIA_LABELS
from storage.feedback import STATUS_LABELS

CHANNEL_LABELS = {"telegram": "Telegram", "zalo": "Zalo", "web": "Trang web"}
NOTICES = {
    "assigned": "Đã giao việc.",
    "answered": "Đã gửi câu trả lời. Bot sẽ chuyển tới người dân trên kênh họ đã dùng.",
    "resolved": "Đã đánh dấu đã giải quyết.",
    "rejected": "Đã từ chối; người dân sẽ nhận được lý do.",
    "created": "Đã tạo tài khoản. Hãy báo mật khẩu tạm cho người dùng; họ phải đổi khi đăng nhập.",
    "saved": "Đã lưu thay đổi.",
    "disabled": "Đã vô hiệu hóa tài khoản; các phiên đăng nhập của tài khoản đã kết thúc.",
    "enabled": "Đã bật lại tài khoản.",
    "reset": "Đã đặt mật khẩu tạm; người dùng phải đổi mật khẩu khi đăng nhập.",
    "password": "Đã đổi mật khẩu. Các phiên đăng nhập khác của bạn đã kết thúc.",
}


def page_context(request: web.Request) -> dict[str, Any]:
    """What every page gets (merged under the page's own values by ``render``)."""
    current = request.get(SESSION)
    roles = current.account.roles if current else ()
    return {
        "prefix": PREFIX,
        "me": current.account if current else None,
        "csrf": current.csrf_token if current else "",
        "can": lambda permission: bool(current) and can(roles, permission),
        "zone": zone(request),
        "path": request.path,
        "notice": NOTICES.get(request.query.get("ok", "")),
        "role_labels": ROLE_LABELS,
    }


def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {**page_context(request), **context}, status=status
    )


def zone(request: web.Request) -> ZoneInfo:
    return _zone(settings(request).feedback.timezone)


def day_start(request: web.Request, day: dt.date) -> dt.datetime:
    """The UTC instant a local calendar day starts (the period filters' dates)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone(request)).astimezone(dt.UTC)


@functools.lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_CATALOGS: dict[int, tuple[KnowledgeBase, Catalog]] = {}


def catalog(request: web.Request) -> Catalog:
    """Service point names and procedure titles of the loaded pack (built once per pack)."""
    kb = services(request).kb
    cached = _CATALOGS.get(id(kb))
    if cached is None or cached[0] is not kb:
        if len(_CATALOGS) > 4:
            _CATALOGS.clear()
        cached = _CATALOGS[id(kb)] = (kb, Catalog.of(kb))
    return cached[1]


# --- filters --------------------------------------------------------------------------------


@jinja2.pass_context
def when(context: jinja2.runtime.Context, value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(context["zone"]).strftime("%d/%m/%Y %H:%M")


@jinja2.pass_context
def day(context: jinja2.runtime.Context, value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(context["zone"]).strftime("%d/%m/%Y")


def number(value: int | None) -> str:
    """``12345`` → ``12.345`` (Vietnamese thousands separator)."""
    return "–" if value is None else f"{value:,}".replace(",", ".")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{decimal(value, 1)}%"


def _label(labels: dict[str, str]) -> Callable[[str | None], str]:
    """A filter naming a stored code the way staff read it (the code itself if unknown)."""
    return lambda code: labels.get(code or "", code or "")


FILTERS: dict[str, Callable[..., str]] = {
    "when": when,
    "day": day,
    "number": number,
    "percent": percent,
    "decimal": decimal,
    "status_label": _label(STATUS_LABELS),
    "kind_label": _label(KIND_LABELS),
    "via_label": _label(VIA_LABELS),
    "role_label": _label(ROLE_LABELS),
    "audit_label": _label(ACTION_LABELS),
    "channel_label": _label(CHANNEL_LABELS),
}
