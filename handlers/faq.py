"""Free text: answer from the knowledge base, ask which entry was meant, or say honestly that
the bot does not know (and log the question for the content team)."""

from __future__ import annotations

from bot.messages import Button, Inbound, Reply
from content.search import Outcome
from handlers.answers import entry_reply, feedback_button, topics_button
from handlers.context import HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

# For packs written before "fallback_suggest" existed in messages.yaml.
FALLBACK_SUGGEST = "Xin lỗi, tôi chưa chắc chắn đã hiểu đúng câu hỏi của bạn. Có thể bạn muốn hỏi:"


def fallback_reply(ctx: HandlerContext) -> Reply:
    return Reply(ctx.say("fallback"), (topics_button(ctx), feedback_button(ctx)))


@router.payload("fallback")
async def not_listed(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """The citizen said none of the offered entries was what they meant."""
    return HandlerResult((fallback_reply(ctx),), outcome="fallback")


@router.text(lambda _text: True)
async def answer(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    result = ctx.engine.match(inbound.text)
    best = result.best
    if result.outcome is not Outcome.ANSWER:
        await ctx.record_gap(inbound, result)
    if result.outcome is Outcome.ANSWER and best is not None:
        return HandlerResult((entry_reply(ctx, best.entry),), "answer", best.entry.id, best.score)
    score = best.score if best else None
    if result.outcome is Outcome.CLARIFY:
        buttons = [Button(h.entry.title, payload=f"faq:{h.entry.id}") for h in result.hits]
        buttons.append(Button(ctx.say("button_other"), payload="fallback"))
        reply = Reply(ctx.say("clarify"), tuple(buttons))
        return HandlerResult((reply,), "clarify", None, score)
    if result.suggested:
        # Not sure enough to ask back, but the candidates are often right: offer them, with
        # the full fallback (hotlines, portal) one tap away.
        buttons = [Button(h.entry.title, payload=f"faq:{h.entry.id}") for h in result.hits]
        buttons.append(Button(ctx.say("button_other"), payload="fallback"))
        text = ctx.say("fallback_suggest", default=FALLBACK_SUGGEST)
        return HandlerResult((Reply(text, tuple(buttons)),), "fallback", None, score)
    return HandlerResult((fallback_reply(ctx),), "fallback", None, score)
