"""One survey or complaint: what the citizen wrote (always as text), where, the deadline, the
masked phone with a logged "show", the full history, and the staff actions (assign, answer,
resolve, reject), which call ``FeedbackDesk`` exactly as ``bot feedback`` does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.accounts import STAFF
from bot.console import guard, keys
from bot.console.guard import field
from bot.console.inbox import deadline_text
from bot.console.render import catalog, render
from bot.feedback_desk import MAX_ANSWER, FeedbackDesk
from bot.feedback_report import FACTOR_LABELS, NOTICE_LABELS, RATING_LABELS, mask_phone
from storage.audit import Actor
from storage.feedback import ANSWERED, OPEN, FeedbackError, FeedbackView
from storage.models import utcnow

# What is read of a typed answer: more than the desk accepts, so that a refused text comes
# back whole to be shortened (the body itself is capped at 64 KiB).
TYPED_LIMIT = 10_000


async def _item(request: web.Request) -> FeedbackView:
    code = request.match_info["code"].strip().upper()[:12]
    item = await keys.services(request).storage.feedback.get(code)
    if item is None:
        raise web.HTTPNotFound(text=f"Không có mục nào mã {code}.")
    return item


async def _page(
    request: web.Request,
    item: FeedbackView,
    *,
    phone: str | None = None,
    error: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    storage = keys.services(request).storage
    names = catalog(request)
    everyone = await storage.accounts.all()
    context: dict[str, Any] = {
        "item": item,
        "point": names.point(item.point_id),
        "procedure": names.procedure(item.procedure_id),
        "ratings": [
            (label, rating, RATING_LABELS.get(rating or 0, ""))
            for label, rating in zip(FACTOR_LABELS.values(), item.ratings, strict=True)
        ],
        "phone": phone or mask_phone(item.phone),
        "phone_shown": phone is not None,
        "deadline": deadline_text(item, utcnow()),
        "overdue": item.overdue(utcnow()),
        "events": await storage.feedback_inbox.events(item.id),
        "people": {a.username: a.full_name for a in everyone},
        "colleagues": [a for a in everyone if a.active and STAFF in a.roles],
        "notice_label": NOTICE_LABELS.get(item.notify_status or ""),
        "can_assign": item.status in OPEN,
        "can_answer": item.status in OPEN,
        "can_resolve": item.status in (*OPEN, ANSWERED),
        "can_reject": item.status in OPEN,
        "error": error,
        "typed": typed or {},
        "max_answer": MAX_ANSWER,
    }
    return render(request, "item.html", context, status=status)


async def show(request: web.Request) -> web.Response:
    await guard.require(request, "feedback.read")
    return await _page(request, await _item(request))


async def contact(request: web.Request) -> web.Response:
    """The phone number unmasked, in this response only; the access is logged."""
    await guard.require(request, "feedback.contact")
    item = await _item(request)
    shown = await guard.feedback_desk(request).reveal_contact(item.code, actor=guard.actor(request))
    return await _page(request, shown, phone=shown.phone or "–")


async def assign(request: web.Request) -> web.Response:
    current = await guard.require(request, "feedback.act")
    item = await _item(request)
    chosen = field(await request.post(), "to", 64)
    to = current.account.username if chosen in ("", "me") else chosen
    accounts = await keys.services(request).storage.accounts.all()
    if to not in {a.username for a in accounts if a.active and STAFF in a.roles}:
        return await _page(
            request, item, error="Hãy chọn một cán bộ xử lý trong danh sách.", status=422
        )

    async def act(desk: FeedbackDesk, who: Actor) -> FeedbackView:
        return await desk.assign(item.code, to=to, actor=who)

    return await _act(request, item, "assigned", act)


async def answer(request: web.Request) -> web.Response:
    await guard.require(request, "feedback.act")
    item = await _item(request)
    text = field(await request.post(), "text", TYPED_LIMIT)

    async def act(desk: FeedbackDesk, who: Actor) -> FeedbackView:
        return await desk.answer(item.code, text=text, actor=who)

    return await _act(request, item, "answered", act, typed={"text": text})


async def resolve(request: web.Request) -> web.Response:
    await guard.require(request, "feedback.act")
    item = await _item(request)
    text = field(await request.post(), "text", TYPED_LIMIT).strip()

    async def act(desk: FeedbackDesk, who: Actor) -> FeedbackView:
        return await desk.resolve(item.code, actor=who, text=text or None)

    return await _act(request, item, "resolved", act, typed={"final": text})


async def reject(request: web.Request) -> web.Response:
    await guard.require(request, "feedback.act")
    item = await _item(request)
    reason = field(await request.post(), "reason", TYPED_LIMIT)

    async def act(desk: FeedbackDesk, who: Actor) -> FeedbackView:
        return await desk.reject(item.code, reason=reason, actor=who)

    return await _act(request, item, "rejected", act, typed={"reason": reason})


Action = Callable[[FeedbackDesk, Actor], Awaitable[FeedbackView]]


async def _act(
    request: web.Request,
    item: FeedbackView,
    done: str,
    action: Action,
    *,
    typed: dict[str, str] | None = None,
) -> web.Response:
    """Run a desk action; on success back to the item (POST → redirect → GET: a reload
    never acts twice), on refusal the item again with the reason and what was typed."""
    try:
        await action(guard.feedback_desk(request), guard.actor(request))
    except FeedbackError as exc:
        fresh = await _item(request)
        return await _page(request, fresh, error=str(exc), typed=typed, status=409)
    return guard.see_other(f"{keys.PREFIX}/feedback/{item.code}?ok={done}")


def setup(console: web.Application) -> None:
    console.router.add_get("/feedback/{code}", show)
    console.router.add_post("/feedback/{code}/contact", contact)
    console.router.add_post("/feedback/{code}/assign", assign)
    console.router.add_post("/feedback/{code}/answer", answer)
    console.router.add_post("/feedback/{code}/resolve", resolve)
    console.router.add_post("/feedback/{code}/reject", reject)
