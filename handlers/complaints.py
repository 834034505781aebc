"""Complaints and petitions (phản ánh, kiến nghị): describe the problem, optionally where it
happened and the dossier code, optionally a phone number with an explicit consent question;
the citizen gets a tracking code (PA-7K3Q9) and the handling deadline.

Nothing is written to the feedback table until the citizen finishes: the answers so far wait
in their session (which lapses after ``BOT_FEEDBACK_FLOW_MINUTES``). A phone number is asked
for only after the citizen agreed to leave one, and the consent time is stored with it.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from bot.messages import Button, Inbound, Reply
from content.normalize import fold
from handlers.answers import topics_button
from handlers.context import HandlerContext
from handlers.flows import (
    ask,
    cancelled,
    choose_point,
    clean_text,
    groups_reply,
    is_cancel,
    is_skip,
    lets_go,
    local_date,
    over_limit,
    step_buttons,
)
from handlers.router import HandlerResult, Router
from storage.feedback import COMPLAINT
from storage.models import utcnow
from storage.sessions import SessionState

router = Router()

FLOW = "complaint"
PREFIX = "pa"
MIN_LETTERS = 10
MAX_DESCRIPTION = 2000
_WORDS = frozenset(
    {
        "phan anh",
        "kien nghi",
        "khieu nai",
        "phan anh kien nghi",
        "gui phan anh",
        "gui kien nghi",
        "pakn",
    }
)
_DOSSIER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./_-]{3,39}$")
_PHONE_SEPARATORS = re.compile(r"[\s.()-]")
_YES = frozenset({"co", "dong y", "ok", "yes", "u", "uh", "vang", "de lai", "dong y de lai so"})
_NO = frozenset({"khong", "ko", "k", "no", "thoi", "khong de lai", "khong de lai so"})


def wants_complaint(text: str) -> bool:
    return fold(text) in _WORDS


def parse_phone(text: str) -> str | None:
    """A Vietnamese phone number as 0xxxxxxxxx (mobile 10 digits, landline 10–11), from
    "0912 345 678", "+84 912345678", "84912345678"; None otherwise."""
    digits = _PHONE_SEPARATORS.sub("", text.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if re.fullmatch(r"0\d{9,10}", digits):
        return digits
    return None


def _letters(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch)[0] == "L")


def _describe_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    text = lead or ctx.say("complaint_describe")
    return Reply(text, step_buttons(ctx, PREFIX, skip=False))


def _groups_reply(ctx: HandlerContext) -> Reply:
    return groups_reply(ctx, PREFIX, ctx.say("complaint_point"))


def _dossier_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    return Reply(lead or ctx.say("complaint_dossier"), step_buttons(ctx, PREFIX))


def _consent_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    text = ctx.say("complaint_consent", days=ctx.feedback_settings.contact_retention_days)
    if lead:
        text = f"{lead}\n\n{text}"
    choices = (
        Button(ctx.say("button_consent_yes"), payload=f"{PREFIX}:consent:yes"),
        Button(ctx.say("button_consent_no"), payload=f"{PREFIX}:consent:no"),
    )
    return Reply(text, step_buttons(ctx, PREFIX, skip=False, extra=choices))


def _phone_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    return Reply(lead or ctx.say("complaint_phone"), step_buttons(ctx, PREFIX))


@router.command("phananh", "kiennghi")
@router.text(wants_complaint)
async def start_complaint(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    refused = await over_limit(ctx, inbound, COMPLAINT)
    if refused is not None:
        return refused
    return await ask(ctx, inbound, FLOW, "describe", {}, _describe_reply(ctx))


@router.payload(PREFIX)
async def stale_button(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """A complaint button pressed after the flow ended or lapsed."""
    if inbound.payload == f"{PREFIX}:start":
        return await start_complaint(inbound, ctx)
    if inbound.payload == f"{PREFIX}:cancel":
        return await cancelled(ctx, inbound, "complaint")
    restart = Button(ctx.say("button_complaint"), payload=f"{PREFIX}:start")
    reply = Reply(ctx.say("flow_expired"), (restart, topics_button(ctx)))
    return HandlerResult((reply,), outcome="complaint")


async def _submit(ctx: HandlerContext, inbound: Inbound, data: dict[str, Any]) -> HandlerResult:
    days = ctx.feedback_settings.complaint_days
    deadline = utcnow() + dt.timedelta(days=days)
    phone = data.get("phone")
    consent = dt.datetime.fromisoformat(data["consent_at"]) if phone else None
    item = await ctx.feedback.create_complaint(
        inbound.channel,
        inbound.user_id,
        description=data["description"],
        deadline_at=deadline,
        point_id=data.get("point"),
        dossier_code=data.get("dossier"),
        phone=phone,
        contact_consent_at=consent,
    )
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    text = ctx.say(
        "complaint_done", code=item.code, days=days, deadline=local_date(ctx, item.deadline_at)
    )
    track = Button(ctx.say("button_track"), payload=f"track:{item.code}")
    return HandlerResult(
        (Reply(text, (track, topics_button(ctx))),), outcome="complaint", private_text=True
    )


@router.flow(FLOW)
async def complaint_step(
    inbound: Inbound, ctx: HandlerContext, state: SessionState
) -> HandlerResult | None:
    if lets_go(inbound, (PREFIX,)):
        return None
    if is_cancel(inbound) or inbound.payload == f"{PREFIX}:cancel":
        return await cancelled(ctx, inbound, "complaint")
    if inbound.payload == f"{PREFIX}:start":
        return await start_complaint(inbound, ctx)
    data = dict(state.data)
    step = state.step or ""
    skip = is_skip(inbound) or inbound.payload == f"{PREFIX}:skip"
    action, _, value = (inbound.payload or "").partition(":")[2].partition(":")

    if step == "describe":
        text = clean_text(inbound.text) if inbound.payload is None else ""
        if len(text) > MAX_DESCRIPTION:
            lead = ctx.say("text_too_long", limit=MAX_DESCRIPTION)
            return await ask(
                ctx, inbound, FLOW, step, data, _describe_reply(ctx, lead), private=True
            )
        if skip or _letters(text) < MIN_LETTERS:
            lead = ctx.say("complaint_too_short")
            return await ask(
                ctx, inbound, FLOW, step, data, _describe_reply(ctx, lead), private=True
            )
        data["description"] = text
        if not ctx.kb.service_groups:
            return await ask(ctx, inbound, FLOW, "dossier", data, _dossier_reply(ctx), private=True)
        return await ask(ctx, inbound, FLOW, "group", data, _groups_reply(ctx), private=True)

    if "description" not in data:
        return None

    if step in ("group", "point"):
        prompt = ctx.say("complaint_point")
        choice = choose_point(
            ctx, inbound, data, step=step, prefix=PREFIX, prompt=prompt, skip=skip
        )
        if choice.reply is not None:
            return await ask(ctx, inbound, FLOW, choice.step, data, choice.reply)
        data.pop("group", None)
        if choice.point_id is not None:
            data["point"] = choice.point_id
        return await ask(ctx, inbound, FLOW, "dossier", data, _dossier_reply(ctx))

    if step == "dossier":
        if not skip:
            code = inbound.text.strip() if inbound.payload is None else ""
            if not _DOSSIER_RE.match(code):
                lead = ctx.say("complaint_dossier_invalid")
                return await ask(
                    ctx, inbound, FLOW, step, data, _dossier_reply(ctx, lead), private=True
                )
            data["dossier"] = code
        # A dossier code identifies the citizen's case: kept in the item only, not the log.
        return await ask(ctx, inbound, FLOW, "consent", data, _consent_reply(ctx), private=True)

    if step == "consent":
        answer = fold(inbound.text) if inbound.payload is None else ""
        if action == "consent" and value in ("yes", "no"):
            answer = "co" if value == "yes" else "khong"
        if answer in _YES:
            data["consent_at"] = utcnow().isoformat()
            return await ask(ctx, inbound, FLOW, "phone", data, _phone_reply(ctx))
        if answer in _NO or skip:
            return await _submit(ctx, inbound, data)
        lead = ctx.say("complaint_consent_invalid")
        return await ask(ctx, inbound, FLOW, step, data, _consent_reply(ctx, lead))

    if step == "phone":
        if skip:
            # Skipping the number withdraws the consent just given: nothing is kept.
            data.pop("consent_at", None)
            return await _submit(ctx, inbound, data)
        phone = parse_phone(inbound.text) if inbound.payload is None else None
        if phone is None or "consent_at" not in data:
            lead = ctx.say("complaint_phone_invalid")
            return await ask(ctx, inbound, FLOW, step, data, _phone_reply(ctx, lead), private=True)
        data["phone"] = phone
        return await _submit(ctx, inbound, data)
    return None
