"""Staff answers on their way back to the citizen: what the citizen reads, and handing over
the answers that waited for their next message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.messages import Button, Inbound, Reply
from storage.feedback import NOTICE_DELIVERED, REJECTED, RESOLVED, FeedbackView

if TYPE_CHECKING:
    from handlers.context import HandlerContext


def notice_text(ctx: HandlerContext, item: FeedbackView) -> str:
    if item.status == REJECTED:
        return ctx.say("notice_rejected", code=item.code, answer=item.answer or "")
    if item.answer:
        return ctx.say("notice_answer", code=item.code, answer=item.answer)
    if item.status == RESOLVED:
        return ctx.say("notice_resolved", code=item.code)
    return ctx.say("notice_answer", code=item.code, answer="")


def notice_reply(ctx: HandlerContext, item: FeedbackView) -> Reply:
    track = Button(ctx.say("button_track"), payload=f"track:{item.code}")
    return Reply(notice_text(ctx, item), (track,))


async def take_notices(ctx: HandlerContext, inbound: Inbound) -> list[Reply]:
    """The answers that wait for this citizen, each marked delivered by exactly one worker
    (compare-and-set), so two messages at once do not both carry it."""
    replies: list[Reply] = []
    for item in await ctx.feedback.waiting_for(inbound.channel, inbound.user_id):
        if item.notify_status and await ctx.feedback.set_notice(
            item.id, NOTICE_DELIVERED, expected=item.notify_status
        ):
            replies.append(notice_reply(ctx, item))
    # Lower the flag, then look again: an answer that became waiting meanwhile raises it back.
    await ctx.sessions.flag_notice(inbound.channel, inbound.user_id, False)
    if await ctx.feedback.waiting_for(inbound.channel, inbound.user_id):
        await ctx.sessions.flag_notice(inbound.channel, inbound.user_id, True)
    return replies
