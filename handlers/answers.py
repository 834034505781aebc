"""Build the replies that show entries and topic menus, shared by browsing and the FAQ."""

from __future__ import annotations

from bot.messages import Button, Reply
from content.models import FaqEntry
from content.procedures import card_text, detail_payload
from handlers.context import HandlerContext

MAX_BUTTONS = 10
# Official procedure cards shown under one answer, at most.
MAX_CARDS = 3


def topics_button(ctx: HandlerContext) -> Button:
    return Button(ctx.say("button_topics"), payload="topics")


def feedback_button(ctx: HandlerContext) -> Button:
    return Button(ctx.say("button_feedback"), payload="feedback")


def topics_menu(ctx: HandlerContext, text: str | None = None) -> Reply:
    buttons = tuple(Button(t.title, payload=f"topic:{t.id}") for t in ctx.kb.topics)
    return Reply(text or ctx.say("topics_menu"), buttons[: MAX_BUTTONS * 2])


def entry_reply(ctx: HandlerContext, entry: FaqEntry) -> Reply:
    """The answer, its legal basis and review date, and where to go next."""
    parts = [entry.answer.strip()]
    agencies = [ctx.kb.agencies[a].name for a in entry.agencies if a in ctx.kb.agencies]
    if agencies:
        parts.append("Nơi giải quyết: " + "; ".join(agencies) + ".")
    parts.append(
        ctx.say("source_line", source=entry.source, reviewed=entry.reviewed.strftime("%d/%m/%Y"))
    )
    if entry.source_url:
        parts.append(entry.source_url)
    buttons: list[Button] = []
    for index, (section, _) in enumerate(entry.details):
        title = ctx.say("button_detail", default="Xem đầy đủ: {section}", section=section)
        buttons.append(Button(title, payload=detail_payload(entry.id, index)))
    for code in entry.procedures[:MAX_CARDS]:
        parts.append(card_text(ctx.kb, code))
        imported = ctx.kb.procedure_entry(code)
        if imported is not None and imported.id != entry.id:
            title = ctx.say("button_procedure", default="Thủ tục {code}", code=code)
            buttons.append(Button(title, payload=f"faq:{imported.id}"))
    for related_id in entry.related[:3]:
        related = ctx.kb.entry(related_id)
        if related is not None:
            buttons.append(Button(related.title, payload=f"faq:{related.id}"))
    buttons.append(topics_button(ctx))
    return Reply("\n\n".join(parts), tuple(buttons))


def entry_list(ctx: HandlerContext, text: str, entries: list[FaqEntry]) -> Reply:
    buttons = [Button(e.title, payload=f"faq:{e.id}") for e in entries[:MAX_BUTTONS]]
    buttons.append(Button(ctx.say("button_back"), payload="topics"))
    return Reply(text, tuple(buttons))
