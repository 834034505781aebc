"""A citizen's request to delete their data ("xóa dữ liệu của tôi"), Decree 13/2023.

The bot says what will be erased and asks to confirm (a button, or typed "đồng ý"); anything
else keeps the data. On confirmation their subscription and its history, their conversation
log, unanswered questions and numbered choices are deleted, and the contact fields of their
feedback erased (the items stay, no longer linked to them: see
``FeedbackRepository.erase_citizen``). The confirming turn itself leaves no trace.
"""

from __future__ import annotations

import logging

from bot.messages import Button, Inbound, Reply
from content.normalize import fold
from handlers.answers import topics_button
from handlers.context import HandlerContext
from handlers.flows import is_cancel, lets_go, save
from handlers.router import HandlerResult, Router
from storage.sessions import SessionState

router = Router()
log = logging.getLogger(__name__)

FLOW = "erase"
PREFIX = "erase"
_WORDS = frozenset(
    {
        "xoa du lieu cua toi",
        "xoa du lieu",
        "xoa thong tin cua toi",
        "xoa du lieu ca nhan",
        "xoa het du lieu cua toi",
        "delete my data",
    }
)
_CONFIRM = frozenset({"dong y", "dong y xoa", "co", "xoa", "ok", "yes", "xac nhan"})


def wants_erase(text: str) -> bool:
    return fold(text) in _WORDS


@router.command("xoadulieu")
@router.text(wants_erase)
async def ask(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    await save(ctx, inbound, FLOW, "confirm", {})
    buttons = (
        Button(ctx.say("button_erase_yes"), payload=f"{PREFIX}:yes"),
        Button(ctx.say("button_erase_no"), payload=f"{PREFIX}:no"),
    )
    return HandlerResult((Reply(ctx.say("erase_confirm"), buttons),), outcome="erase")


async def _erase(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    ctx.subscribers.forget_touch(inbound.channel, inbound.user_id)
    # The log is written behind: what this worker still holds goes in first, to be deleted.
    # (Another worker's queue holds at most its last quarter second of turns.)
    await ctx.conversations.flush()
    counts = await ctx.feedback.erase_citizen(inbound.channel, inbound.user_id)
    await ctx.sessions.erase(inbound.channel, inbound.user_id)
    # Counts only: the point is that nothing identifies the citizen any more.
    log.info("erased a citizen's data on request (%s): %s", inbound.channel, counts)
    reply = Reply(ctx.say("erase_done"), (topics_button(ctx),))
    return HandlerResult((reply,), outcome="erase", record=False)


async def _kept(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    return HandlerResult((Reply(ctx.say("erase_kept"), (topics_button(ctx),)),), outcome="erase")


@router.payload(PREFIX)
async def stale_button(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """A confirmation button pressed after the question lapsed: ask again, never erase on
    an old button."""
    if inbound.payload == f"{PREFIX}:no":
        return await _kept(inbound, ctx)
    return await ask(inbound, ctx)


@router.flow(FLOW)
async def confirm(
    inbound: Inbound, ctx: HandlerContext, _state: SessionState
) -> HandlerResult | None:
    if lets_go(inbound, (PREFIX,)):
        return None
    if inbound.payload == f"{PREFIX}:yes" or (
        inbound.payload is None and fold(inbound.text) in _CONFIRM
    ):
        return await _erase(inbound, ctx)
    if is_cancel(inbound) or inbound.payload == f"{PREFIX}:no":
        return await _kept(inbound, ctx)
    # Anything else is not a confirmation: the data stays and the message is answered.
    await ctx.sessions.end_flow(inbound.channel, inbound.user_id)
    return None
