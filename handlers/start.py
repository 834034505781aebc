"""Greeting, help and the unreadable-input guard."""

from __future__ import annotations

import unicodedata

from bot.messages import Button, Inbound, Reply
from content.normalize import fold
from handlers.answers import feedback_button, topics_button, topics_menu
from handlers.context import PUSH_CHANNELS, HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

_GREETINGS = frozenset(
    {
        "xin chao",
        "chao",
        "chao ban",
        "chao ad",
        "chao admin",
        "hi",
        "hello",
        "alo",
        "helo",
        "chao bot",
        "xin chao ban",
        "start",
        "bat dau",
    }
)
_HELP = frozenset({"help", "tro giup", "huong dan", "giup do", "giup toi"})


def is_greeting(text: str) -> bool:
    return fold(text) in _GREETINGS


def is_help(text: str) -> bool:
    return fold(text) in _HELP


def is_blank(text: str) -> bool:
    return not text.strip()


def is_unreadable(text: str) -> bool:
    """No letter or digit at all: emoji only, punctuation, or binary junk."""
    return not any(unicodedata.category(ch)[0] in "LN" for ch in text)


@router.command("start", "batdau")
@router.payload("start")
@router.text(is_greeting)
async def welcome(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    menu = topics_menu(ctx, ctx.say("welcome"))
    menu = Reply(menu.text, (*menu.buttons, feedback_button(ctx)))
    if inbound.channel in PUSH_CHANNELS:
        # Subscribing is offered, never assumed: one tap on the welcome message.
        subscribe = Button(ctx.say("button_subscribe"), payload="subscribe")
        menu = Reply(menu.text, (*menu.buttons, subscribe))
    return HandlerResult((menu,), outcome="welcome")


@router.command("help", "trogiup")
@router.payload("help")
@router.text(is_help)
async def help_(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    reply = Reply(ctx.say("help"), (topics_button(ctx), feedback_button(ctx)))
    return HandlerResult((reply,), outcome="help")


@router.text(is_blank)
async def empty(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    return HandlerResult((Reply(ctx.say("empty_input"), (topics_button(ctx),)),), outcome="empty")


@router.text(is_unreadable)
async def unreadable(_inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    reply = Reply(ctx.say("unreadable_input"), (topics_button(ctx),))
    return HandlerResult((reply,), outcome="unreadable")
