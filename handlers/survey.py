"""The satisfaction survey, in the structure of SIPAS (the national index of satisfaction with
public administrative services).

Steps: the service point (a group, then the point: two taps, or its name typed), optionally
the procedure (searched in the knowledge base by name), a 1–5 rating of each of SIPAS's five
factors (access, procedure, civil servant, result, handling of feedback), then an optional
comment. Every step takes buttons or typed answers, has "Bỏ qua" and "Hủy", and answers an
invalid reply (a 7, a word where a number is needed) with a clear re-prompt.

The survey is written to the database from its first step as ``partial``: an abandoned one
(cancelled, or lapsed after ``BOT_FEEDBACK_FLOW_MINUTES``) is kept as partial and never
counted in the index; it becomes ``new`` when the citizen reaches the end.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bot.messages import Button, Inbound, Reply
from content.normalize import fold
from content.search import Outcome
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
    over_limit,
    step_buttons,
)
from handlers.router import HandlerResult, Router
from storage.feedback import FACTORS, SURVEY
from storage.models import utcnow
from storage.sessions import SessionState

router = Router()

FLOW = "survey"
PREFIX = "sv"
MAX_COMMENT = 1000
# A rating at most this offers a complaint at the end (1 and 2: "not satisfied").
UNHAPPY = 2
# The factor keys of messages.yaml (factor_*, question_*), in FACTORS' order.
FACTOR_KEYS = ("access", "procedure", "staff", "result", "feedback")
_WORDS = frozenset(
    {
        "gop y",
        "danh gia",
        "gui gop y",
        "danh gia dich vu",
        "danh gia hai long",
        "khao sat",
        "danh gia su hai long",
    }
)
_RATING_WORDS = {
    "rat khong hai long": 1,
    "khong hai long": 2,
    "binh thuong": 3,
    "tam duoc": 3,
    "hai long": 4,
    "rat hai long": 5,
}
_RATING_RE = re.compile(r"^(?:so\s*)?([0-9]+)\s*(?:sao|diem|d)?\.?$")


def wants_survey(text: str) -> bool:
    return fold(text) in _WORDS


def parse_rating(text: str) -> int | None:
    """1–5 from "4", "4 sao", "5 điểm", "hài lòng"; None for anything else (a 7, a word)."""
    folded = fold(text)
    if folded in _RATING_WORDS:
        return _RATING_WORDS[folded]
    match = _RATING_RE.match(folded)
    if match is None:
        return None
    value = int(match.group(1))
    return value if 1 <= value <= 5 else None


def _rating_step(index: int) -> str:
    return f"rate:{index}"


def _rating_reply(ctx: HandlerContext, index: int, *, invalid: bool = False) -> Reply:
    key = FACTOR_KEYS[index]
    text = ctx.say(
        "survey_rating",
        step=index + 1,
        total=len(FACTORS),
        factor=ctx.say(f"factor_{key}"),
        question=ctx.say(f"question_{key}"),
    )
    if invalid:
        text = ctx.say("survey_rating_invalid") + "\n\n" + text
    choices = tuple(
        Button(ctx.say(f"rating_{value}"), payload=f"{PREFIX}:rate:{value}")
        for value in range(1, 6)
    )
    return Reply(text, step_buttons(ctx, PREFIX, extra=choices))


def _groups_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    return groups_reply(ctx, PREFIX, ctx.say("survey_group"), lead)


def _procedure_reply(ctx: HandlerContext, lead: str | None = None) -> Reply:
    text = lead or ctx.say("survey_procedure")
    return Reply(text, step_buttons(ctx, PREFIX))


def _comment_reply(ctx: HandlerContext) -> Reply:
    return Reply(ctx.say("survey_comment"), step_buttons(ctx, PREFIX))


def _result(reply: Reply) -> HandlerResult:
    return HandlerResult((reply,), outcome=FLOW)


@router.command("danhgia", "gopy", "khaosat")
@router.text(wants_survey)
async def start_survey(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    refused = await over_limit(ctx, inbound, SURVEY)
    if refused is not None:
        return refused
    deadline = utcnow() + dt.timedelta(days=ctx.feedback_settings.survey_days)
    item = await ctx.feedback.start_survey(inbound.channel, inbound.user_id, deadline_at=deadline)
    intro = ctx.say("survey_intro", total=len(FACTORS))
    data = {"item": item.id}
    if not ctx.kb.service_groups:
        return await ask(ctx, inbound, FLOW, "procedure", data, _procedure_reply(ctx))
    return await ask(ctx, inbound, FLOW, "group", data, _groups_reply(ctx, intro))


@router.payload(PREFIX)
async def stale_button(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """A survey button pressed after the survey ended or lapsed."""
    if inbound.payload in (f"{PREFIX}:cancel", f"{PREFIX}:start"):
        if inbound.payload == f"{PREFIX}:start":
            return await start_survey(inbound, ctx)
        return await cancelled(ctx, inbound, "survey")
    restart = Button(ctx.say("button_restart_survey"), payload=f"{PREFIX}:start")
    return _result(Reply(ctx.say("flow_expired"), (restart, topics_button(ctx))))


async def _after_point(
    ctx: HandlerContext, inbound: Inbound, data: dict[str, Any], point_id: str | None
) -> HandlerResult:
    if point_id is not None:
        await ctx.feedback.update_survey(data["item"], point_id=point_id)
    data.pop("group", None)
    return await ask(ctx, inbound, FLOW, "procedure", data, _procedure_reply(ctx))


async def _next_rating(
    ctx: HandlerContext, inbound: Inbound, data: dict[str, Any], index: int
) -> HandlerResult:
    if index < len(FACTORS):
        return await ask(ctx, inbound, FLOW, _rating_step(index), data, _rating_reply(ctx, index))
    return await ask(ctx, inbound, FLOW, "comment", data, _comment_reply(ctx))


async def _finish(
    ctx: HandlerContext, inbound: Inbound, data: dict[str, Any], comment: str | None
) -> HandlerResult:
    values = {"comment": comment} if comment else {}
    item = await ctx.feedback.complete_survey(data["item"], **values)
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    if item is None:
        return _result(Reply(ctx.say("flow_expired"), (topics_button(ctx),)))
    text = ctx.say("survey_done", code=item.code)
    buttons: tuple[Button, ...] = (topics_button(ctx),)
    if any(r is not None and r <= UNHAPPY for r in item.ratings):
        # A survey is counted, not answered: someone this unhappy is offered the way to be.
        text = f"{text}\n\n{ctx.say('survey_unhappy')}"
        buttons = (Button(ctx.say("button_complaint"), payload="pa:start"), *buttons)
    reply = Reply(text, buttons)
    return HandlerResult((reply,), outcome="survey", private_text=comment is not None)


@router.flow(FLOW)
async def survey_step(
    inbound: Inbound, ctx: HandlerContext, state: SessionState
) -> HandlerResult | None:
    if lets_go(inbound, (PREFIX,)):
        return None
    if is_cancel(inbound) or inbound.payload == f"{PREFIX}:cancel":
        return await cancelled(ctx, inbound, "survey")
    if inbound.payload == f"{PREFIX}:start":
        return await start_survey(inbound, ctx)
    data = dict(state.data)
    if "item" not in data:
        return None
    skip = is_skip(inbound) or inbound.payload == f"{PREFIX}:skip"
    step = state.step or ""
    action, _, value = (inbound.payload or "").partition(":")[2].partition(":")

    if step in ("group", "point"):
        prompt = ctx.say("survey_group")
        choice = choose_point(
            ctx, inbound, data, step=step, prefix=PREFIX, prompt=prompt, skip=skip
        )
        if choice.reply is not None:
            return await ask(ctx, inbound, FLOW, choice.step, data, choice.reply)
        return await _after_point(ctx, inbound, data, choice.point_id)

    if step in ("procedure", "procedure_pick"):
        if skip or action == "other":
            data.pop("offered", None)
            return await _next_rating(ctx, inbound, data, 0)
        offered = data.get("offered") or []
        picked = inbound.text.strip() if inbound.payload is None else ""
        if step == "procedure_pick" and picked.isdigit() and 1 <= int(picked) <= len(offered):
            # "2" picks the second offered procedure, as on channels that number buttons.
            action, value = "proc", offered[int(picked) - 1]
        if action == "proc" and ctx.kb.entry(value) is not None:
            data.pop("offered", None)
            await ctx.feedback.update_survey(data["item"], procedure_id=value)
            return await _next_rating(ctx, inbound, data, 0)
        if inbound.payload is None and inbound.text.strip():
            result = ctx.engine.match(inbound.text)
            hits = [h.entry for h in result.hits] if result.outcome is not Outcome.FALLBACK else []
            if result.outcome is Outcome.ANSWER and result.best is not None:
                hits = [result.best.entry, *[h for h in hits if h.id != result.best.entry.id]]
            if hits:
                data["offered"] = [e.id for e in hits[:3]]
                buttons = (
                    *(Button(e.title, payload=f"{PREFIX}:proc:{e.id}") for e in hits[:3]),
                    Button(ctx.say("button_procedure_other"), payload=f"{PREFIX}:other"),
                )
                reply = Reply(
                    ctx.say("survey_procedure_pick"), step_buttons(ctx, PREFIX, extra=buttons)
                )
                return await ask(ctx, inbound, FLOW, "procedure_pick", data, reply)
        reply = _procedure_reply(ctx, ctx.say("survey_procedure_none"))
        return await ask(ctx, inbound, FLOW, "procedure", data, reply)

    if step.startswith("rate:"):
        number = step.partition(":")[2]
        index = int(number) if number.isdigit() else -1
        if not 0 <= index < len(FACTORS):
            return None
        if skip:
            return await _next_rating(ctx, inbound, data, index + 1)
        rating = None
        if action == "rate" and value.isdigit():
            rating = int(value) if 1 <= int(value) <= 5 else None
        elif inbound.payload is None:
            rating = parse_rating(inbound.text)
        if rating is None:
            return await ask(
                ctx, inbound, FLOW, step, data, _rating_reply(ctx, index, invalid=True)
            )
        await ctx.feedback.update_survey(data["item"], **{FACTORS[index]: rating})
        return await _next_rating(ctx, inbound, data, index + 1)

    if step == "comment":
        if skip:
            return await _finish(ctx, inbound, data, None)
        comment = clean_text(inbound.text) if inbound.payload is None else ""
        if not comment:
            return await ask(ctx, inbound, FLOW, step, data, _comment_reply(ctx))
        if len(comment) > MAX_COMMENT:
            reply = Reply(ctx.say("text_too_long", limit=MAX_COMMENT), step_buttons(ctx, PREFIX))
            return HandlerResult((reply,), outcome="survey", private_text=True)
        return await _finish(ctx, inbound, data, comment)
    return None
