"""Procedure codes and full sections: a citizen who types a code ("1.001193", "tt 1.001193 cần
gì") gets that procedure's entry; a "Xem đầy đủ" button shows one section of an entry in full.

Registered before the FAQ's free-text route, so every channel answers codes the same way.
"""

from __future__ import annotations

from bot.messages import Button, Inbound, Reply
from content.procedures import find_code, parse_detail_payload, portal_url
from handlers.answers import entry_reply, topics_button, topics_menu
from handlers.context import HandlerContext
from handlers.router import HandlerResult, Router

router = Router()

UNKNOWN_CODE = (
    "Trong cơ sở tri thức của {name} chưa có thủ tục mã {code}. Bạn có thể tra cứu thủ tục "
    "này trên Cổng Dịch vụ công quốc gia: {url}"
)


@router.text(lambda text: find_code(text) is not None)
async def by_code(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    code = find_code(inbound.text) or ""
    entry = ctx.kb.procedure_entry(code)
    if entry is not None:
        return HandlerResult((entry_reply(ctx, entry),), "answer", entry.id, 1.0)
    url = portal_url(code)
    text = ctx.say("procedure_unknown", default=UNKNOWN_CODE, code=code, url=url)
    portal = ctx.say("button_portal", default="Xem trên Cổng Dịch vụ công")
    reply = Reply(text, (Button(portal, url=url), topics_button(ctx)))
    return HandlerResult((reply,), outcome="fallback")


@router.payload("faqd")
async def detail(inbound: Inbound, ctx: HandlerContext) -> HandlerResult:
    """One section of an entry in full (the answer shows it shortened)."""
    parsed = parse_detail_payload(inbound.payload or "")
    entry = ctx.kb.entry(parsed[0]) if parsed else None
    if parsed is None or entry is None or parsed[1] >= len(entry.details):
        return HandlerResult((topics_menu(ctx, ctx.say("topic_empty")),), outcome="menu")
    section, text = entry.details[parsed[1]]
    back = Button(entry.title, payload=f"faq:{entry.id}")
    card = entry.procedure
    about = f"{card.name} (mã {card.code})" if card is not None else entry.title
    reply = Reply(f"**{section}** – {about}\n\n{text}", (back, topics_button(ctx)))
    return HandlerResult((reply,), outcome="answer", entry_id=entry.id, score=1.0)
