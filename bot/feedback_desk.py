"""What staff do with feedback: assign, answer, resolve, reject, see a phone number, export
(``bot feedback`` and the console both call ``FeedbackDesk``).

Every action is a compare-and-set transition recorded with who, through what (console or
command line) and when. An answer, a rejection, or resolving an item that was never answered
queues a notice for the citizen (``notify_status = pending``): ``bot serve`` pushes it on the
channel they wrote from, or it waits for their next message (see ``bot.notices``). Items whose
citizen asked for their data to be deleted have nobody to tell, so nothing is queued for them.

Seeing a phone number unmasked and exporting with contacts go to the access log of contact
data; every action also goes to the audit log.
"""

from __future__ import annotations

from typing import Any

from storage.audit import Actor, AuditLog, actor_of
from storage.feedback import (
    ANSWERED,
    IN_PROGRESS,
    NEW,
    OPEN,
    REJECTED,
    RESOLVED,
    FeedbackError,
    FeedbackRepository,
    FeedbackView,
)
from storage.models import utcnow

MAX_ANSWER = 1500


def _text(value: str, what: str) -> str:
    # Browsers send a text box's line breaks as CRLF; the citizen's channel wants LF, and
    # the length limit counts what they will read.
    cleaned = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not cleaned:
        raise FeedbackError(f"{what} không được để trống.")
    if len(cleaned) > MAX_ANSWER:
        raise FeedbackError(f"{what} dài quá {MAX_ANSWER} ký tự.")
    return cleaned


def _answered(text: str, actor: Actor) -> dict[str, Any]:
    """What staff wrote to the citizen, by whom and when."""
    return {"answer": text, "answered_by": actor.name[:100], "answered_at": utcnow()}


class FeedbackDesk:
    def __init__(self, repository: FeedbackRepository, audit: AuditLog | None = None) -> None:
        self.repository = repository
        self.audit = audit

    async def _item(self, code: str) -> FeedbackView:
        item = await self.repository.get(code)
        if item is None:
            raise FeedbackError(f"Không có mục nào mã {code}.")
        return item

    async def _audit(
        self, actor: Actor, action: str, target: str | None, detail: str | None = None
    ) -> None:
        if self.audit is not None:
            await self.audit.record(actor, action, target, detail)

    async def assign(self, code: str, *, to: str, actor: Actor | str) -> FeedbackView:
        who = actor_of(actor)
        name = _text(to, "Tên người xử lý")[:100]
        item = await self.repository.transition(
            code,
            expected=OPEN,
            to=IN_PROGRESS,
            actor=who,
            note=f"giao cho {name}",
            changes={"assignee": name},
        )
        await self._audit(who, "feedback.assign", code, f"giao cho {name}")
        return item

    async def answer(self, code: str, *, text: str, actor: Actor | str) -> FeedbackView:
        who = actor_of(actor)
        item = await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=ANSWERED,
            actor=who,
            changes=_answered(_text(text, "Nội dung trả lời"), who),
            notify=True,
        )
        await self._audit(who, "feedback.answer", code)
        return item

    async def resolve(
        self, code: str, *, actor: Actor | str, text: str | None = None
    ) -> FeedbackView:
        who = actor_of(actor)
        item = await self._item(code)
        changes = _answered(_text(text, "Nội dung trả lời"), who) if text is not None else {}
        moved = await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS, ANSWERED),
            to=RESOLVED,
            actor=who,
            changes=changes,
            # Without a written answer the citizen still learns it was settled.
            notify=text is not None or item.answer is None,
        )
        await self._audit(who, "feedback.resolve", code)
        return moved

    async def reject(self, code: str, *, reason: str, actor: Actor | str) -> FeedbackView:
        who = actor_of(actor)
        why = _text(reason, "Lý do từ chối")
        item = await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=REJECTED,
            actor=who,
            note=why[:500],
            changes=_answered(why, who),
            notify=True,
        )
        await self._audit(who, "feedback.reject", code, why[:200])
        return item

    async def reveal_contact(self, code: str, *, actor: Actor | str) -> FeedbackView:
        """The item, for showing its phone number unmasked: logged as a data access."""
        who = actor_of(actor)
        item = await self._item(code)
        await self.repository.log_access(who, "show", item.code)
        await self._audit(who, "feedback.contact", item.code)
        return item

    async def log_export(self, *, actor: Actor | str, detail: str, with_contact: bool) -> None:
        """An export was made (``detail``: format, count, filters). With contacts it is a
        data access too."""
        who = actor_of(actor)
        if with_contact:
            await self.repository.log_access(who, "export", detail)
        await self._audit(who, "feedback.export", None, ("kèm liên hệ; " * with_contact) + detail)
