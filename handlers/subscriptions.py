"""Subscribing to news and stopping it, on the channels that can push (Zalo, Telegram).

Subscribing is explicit: a button, the typed words "đăng ký" / "dang ky" or the command, then
a choice of topics. Stopping takes one word ("hủy", "huy", "dừng", "stop", …) and works at
once. A Zalo follow subscribes to the default topics. Every change is recorded with its time
and source (channel and how) for the personal-data decree's audit trail.
"""

from __future__ import annotations

from bot.messages import Button, Inbound, Reply
from content.normalize import canon, fold
from handlers.answers import topics_menu
from handlers.context import PUSH_CHANNELS, HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

_SUBSCRIBE_WORDS = frozenset({"dang ky", "dang ki", "dang ky nhan tin", "nhan tin", "subscribe"})
# Checked on the canonical form when typed with diacritics ("đúng" must not unsubscribe) and on
# the folded form when typed without.
_STOP_CANON = frozenset(
    {
        "hủy",
        "hủy đăng ký",
        "hủy nhận tin",
        "dừng",
        "dừng nhận tin",
        "stop",
        "ngừng nhận tin",
        "thôi nhận tin",
    }
)
_STOP_FOLDED = frozenset(
    {
        "huy",
        "huy dang ky",
        "huy dang ki",
        "huy nhan tin",
        "dung nhan tin",
        "stop",
        "ngung nhan tin",
        "thoi nhan tin",
        "unsubscribe",
    }
)


def wants_subscribe(text: str) -> bool:
    return fold(text) in _SUBSCRIBE_WORDS


def wants_stop(text: str) -> bool:
    return canon(text) in _STOP_CANON or (fold(text) == canon(text) and fold(text) in _STOP_FOLDED)


def subscribe_button(ctx: HandlerContext) -> Button:
    return Button(ctx.say("button_subscribe"), payload="subscribe")


def _choices(ctx: HandlerContext, exclude: tuple[str, ...] = ()) -> tuple[Button, ...]:
    buttons = [
        Button(t.title, payload=f"subscribe:{t.id}")
        for t in ctx.kb.subscription_topics
        if t.id not in exclude
    ]
    if buttons:
        buttons.append(Button(ctx.say("subscribe_all"), payload="subscribe:all"))
    return tuple(buttons)


def _unavailable(ctx: HandlerContext) -> HandlerResult:
    return HandlerResult((Reply(ctx.say("subscribe_unavailable")),), outcome="subscribe")


@router.command("subscribe", "dangky")
@router.text(wants_subscribe)
@router.payload("subscribe")
async def subscribe(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    if inbound.channel not in PUSH_CHANNELS:
        return _unavailable(ctx)
    choice = (inbound.payload or "").partition(":")[2]
    known = {t.id: t for t in ctx.kb.subscription_topics}
    if not choice or (choice != "all" and choice not in known):
        return HandlerResult((Reply(ctx.say("subscribe_choose"), _choices(ctx)),), "subscribe")
    current = await ctx.subscribers.get(inbound.channel, inbound.user_id)
    topics = list(current.topics) if current and current.status == "active" else []
    topics = list(known) if choice == "all" else [*topics, choice]
    how = "all" if choice == "all" else "topic"
    view = await ctx.subscribers.subscribe(
        inbound.channel,
        inbound.user_id,
        topics,
        source=f"{inbound.channel}:{how}",
        display_name=inbound.display_name,
    )
    titles = ", ".join(known[t].title for t in view.topics if t in known)
    reply = Reply(ctx.say("subscribe_done", topics=titles), _choices(ctx, exclude=view.topics))
    return HandlerResult((reply,), outcome="subscribe")


@router.command("unsubscribe", "huy", "stop")
@router.text(wants_stop)
@router.payload("unsubscribe")
async def unsubscribe(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    if inbound.channel not in PUSH_CHANNELS:
        return _unavailable(ctx)
    await ctx.subscribers.unsubscribe(
        inbound.channel, inbound.user_id, source=f"{inbound.channel}:stop"
    )
    reply = Reply(ctx.say("unsubscribe_done"), (subscribe_button(ctx),))
    return HandlerResult((reply,), outcome="unsubscribe")


@router.payload("follow")
async def follow(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """A Zalo follow: subscribe to the default topics and welcome the citizen."""
    defaults = [t.id for t in ctx.kb.subscription_topics if t.default]
    await ctx.subscribers.subscribe(
        inbound.channel,
        inbound.user_id,
        defaults,
        source=f"{inbound.channel}:follow",
        display_name=inbound.display_name,
    )
    return HandlerResult((topics_menu(ctx, ctx.say("welcome")),), outcome="follow")


@router.payload("unfollow")
async def unfollow(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """A Zalo unfollow: nothing can be sent any more, so there is no reply."""
    await ctx.subscribers.unsubscribe(
        inbound.channel, inbound.user_id, source=f"{inbound.channel}:unfollow"
    )
    return HandlerResult((), outcome="unfollow")
