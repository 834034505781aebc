"""The feedback menu (survey, complaint, tracking) and tracking a complaint by its code.

"tra cứu PA-7K3Q9" (or the button) shows the status, the dates and the staff answer, and only
to the citizen who filed it on this channel: anyone else's code, or an unknown one, gets the
same "not found among yours", so a guessed code reveals nothing.
"""

from __future__ import annotations

import re

from bot.messages import Button, Inbound, Reply
from content.normalize import fold
from handlers.answers import topics_button
from handlers.context import HandlerContext
from handlers.flows import local_date
from handlers.router import HandlerResult, Router, parse_command
from storage.feedback import CODE_LENGTH, PARTIAL, REJECTED, FeedbackView

router = Router()

FEEDBACK_TOPIC = "phan-anh"
_CODE_RE = re.compile(rf"^(pa|dg)\s*-?\s*([a-z0-9]{{{CODE_LENGTH}}})$")
_TRACK_RE = re.compile(
    r"^(?:tra cuu|tracuu|tra|kiem tra|xem|ma)?\s*(?:ma\s+)?"
    rf"(pa|dg)\s*-?\s*([a-z0-9]{{{CODE_LENGTH}}})$"
)
_TRACK_WORDS = frozenset({"tra cuu", "tra cuu phan anh", "tracuu", "xem phan anh", "theo doi"})
_MENU_WORDS = frozenset({"gop y phan anh", "y kien", "gui y kien"})


def tracking_code(text: str) -> str | None:
    """ "PA-7K3Q9" from "tra cứu pa 7k3q9", "PA7K3Q9", "mã PA-7K3Q9"; None otherwise."""
    match = _TRACK_RE.match(fold(text))
    if match is None:
        return None
    return f"{match.group(1).upper()}-{match.group(2).upper()}"


def wants_tracking(text: str) -> bool:
    return tracking_code(text) is not None or fold(text) in _TRACK_WORDS


def feedback_menu(ctx: HandlerContext) -> Reply:
    buttons = (
        Button(ctx.say("button_survey"), payload="sv:start"),
        Button(ctx.say("button_complaint"), payload="pa:start"),
        Button(ctx.say("button_track"), payload="track"),
        Button(ctx.say("button_feedback_info"), payload=f"topic:{FEEDBACK_TOPIC}"),
    )
    return Reply(ctx.say("feedback_menu"), buttons)


@router.command("feedback", "gopy_menu")
@router.payload("feedback")
@router.text(lambda text: fold(text) in _MENU_WORDS)
async def menu(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    return HandlerResult((feedback_menu(ctx),), outcome="menu")


def status_reply(ctx: HandlerContext, item: FeedbackView) -> Reply:
    parts = [
        ctx.say(
            "track_status",
            code=item.code,
            status=ctx.say(f"status_{item.status}"),
            received=local_date(ctx, item.created_at),
            deadline=local_date(ctx, item.deadline_at),
        )
    ]
    if item.answer:
        key = "track_reason" if item.status == REJECTED else "track_answer"
        parts.append(ctx.say(key, answer=item.answer))
    return Reply("\n\n".join(parts), (topics_button(ctx),))


async def _show(ctx: HandlerContext, inbound: Inbound, code: str) -> HandlerResult:
    item = await ctx.feedback.owned(inbound.channel, inbound.user_id, code)
    if item is None or item.status == PARTIAL:
        reply = Reply(ctx.say("track_unknown", code=code), (topics_button(ctx),))
        return HandlerResult((reply,), outcome="track")
    return HandlerResult((status_reply(ctx, item),), outcome="track")


async def _list(ctx: HandlerContext, inbound: Inbound) -> HandlerResult:
    items = await ctx.feedback.recent_for(inbound.channel, inbound.user_id)
    if not items:
        return HandlerResult((Reply(ctx.say("track_none"), (topics_button(ctx),)),), "track")
    buttons = tuple(Button(i.code, payload=f"track:{i.code}") for i in items)
    return HandlerResult((Reply(ctx.say("track_list"), buttons),), outcome="track")


@router.command("tracuu")
@router.payload("track")
@router.text(wants_tracking)
async def track(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    if inbound.payload is not None:
        code = inbound.payload.partition(":")[2].upper()
        if _CODE_RE.match(code.lower()):
            return await _show(ctx, inbound, code)
        return await _list(ctx, inbound)
    command = parse_command(inbound.text)
    text = command[1] if command is not None else inbound.text
    typed = tracking_code(text) if text.strip() else None
    if typed is not None:
        return await _show(ctx, inbound, typed)
    return await _list(ctx, inbound)
