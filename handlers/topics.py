"""Browsing: the topic menu → the entries of a topic → an answer."""

from __future__ import annotations

from bot.messages import Inbound, Reply
from content.normalize import fold
from handlers.answers import entry_list, entry_reply, topics_menu
from handlers.context import HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

_MENU_WORDS = frozenset({"chu de", "menu", "danh muc", "cac chu de", "xem chu de"})
_FEEDBACK_WORDS = frozenset({"gop y", "phan anh", "kien nghi", "khieu nai", "gui gop y"})
FEEDBACK_TOPIC = "phan-anh"


@router.command("chude", "menu", "topics")
@router.payload("topics")
@router.text(lambda text: fold(text) in _MENU_WORDS)
async def menu(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    return HandlerResult((topics_menu(ctx),), outcome="menu")


@router.payload("topic")
async def topic(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    topic_id = (inbound.payload or "").partition(":")[2]
    found = ctx.kb.topic(topic_id)
    entries = ctx.kb.entries_in(topic_id) if found else []
    if found is None or not entries:
        return HandlerResult((topics_menu(ctx, ctx.say("topic_empty")),), outcome="menu")
    reply = entry_list(ctx, ctx.say("topic_entries", topic=found.title), entries)
    return HandlerResult((reply,), outcome="menu")


@router.payload("faq")
async def show_entry(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    entry = ctx.kb.entry((inbound.payload or "").partition(":")[2])
    if entry is None:
        return HandlerResult((topics_menu(ctx, ctx.say("topic_empty")),), outcome="menu")
    return HandlerResult((entry_reply(ctx, entry),), outcome="answer", entry_id=entry.id, score=1.0)


@router.command("gopy", "feedback")
@router.payload("feedback")
@router.text(lambda text: fold(text) in _FEEDBACK_WORDS)
async def feedback(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """Where to send feedback and petitions (the guided feedback flow comes with its own issue)."""
    entries = ctx.kb.entries_in(FEEDBACK_TOPIC)
    if entries:
        return HandlerResult((entry_list(ctx, ctx.say("feedback_info"), entries),), outcome="menu")
    return HandlerResult((Reply(ctx.say("feedback_info")),), outcome="menu")
