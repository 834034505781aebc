"""Browsing: the topic menu → the entries of a topic → an answer."""

from __future__ import annotations

from bot.messages import Inbound
from content.normalize import fold
from handlers.answers import entry_list, entry_reply, topics_menu
from handlers.context import HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

_MENU_WORDS = frozenset({"chu de", "menu", "danh muc", "cac chu de", "xem chu de"})


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
