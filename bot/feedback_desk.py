"""What staff do with feedback: assign, answer, resolve, reject (the CLI's verbs).

Every action is a compare-and-set transition recorded with who and when. An answer, a
rejection, or resolving an item that was never answered queues a notice for the citizen
(``notify_status = pending``): ``bot serve`` pushes it on the channel they wrote from, or it
waits for their next message (see ``bot.notices``). Items whose citizen asked for their data
to be deleted have nobody to tell, so nothing is queued for them.
"""

from __future__ import annotations

from typing import Any

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
    cleaned = value.strip()
    if not cleaned:
        raise FeedbackError(f"{what} không được để trống.")
    if len(cleaned) > MAX_ANSWER:
        raise FeedbackError(f"{what} dài quá {MAX_ANSWER} ký tự.")
    return cleaned


def _answered(text: str, actor: str) -> dict[str, Any]:
    """What staff wrote to the citizen, by whom and when."""
    return {"answer": text, "answered_by": actor[:100], "answered_at": utcnow()}


class FeedbackDesk:
    def __init__(self, repository: FeedbackRepository) -> None:
        self.repository = repository

    async def _item(self, code: str) -> FeedbackView:
        item = await self.repository.get(code)
        if item is None:
            raise FeedbackError(f"Không có mục nào mã {code}.")
        return item

    async def assign(self, code: str, *, to: str, actor: str) -> FeedbackView:
        name = _text(to, "Tên người xử lý")[:100]
        return await self.repository.transition(
            code,
            expected=OPEN,
            to=IN_PROGRESS,
            actor=actor,
            note=f"giao cho {name}",
            changes={"assignee": name},
        )

    async def answer(self, code: str, *, text: str, actor: str) -> FeedbackView:
        return await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=ANSWERED,
            actor=actor,
            changes=_answered(_text(text, "Nội dung trả lời"), actor),
            notify=True,
        )

    async def resolve(self, code: str, *, actor: str, text: str | None = None) -> FeedbackView:
        item = await self._item(code)
        changes = _answered(_text(text, "Nội dung trả lời"), actor) if text is not None else {}
        return await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS, ANSWERED),
            to=RESOLVED,
            actor=actor,
            changes=changes,
            # Without a written answer the citizen still learns it was settled.
            notify=text is not None or item.answer is None,
        )

    async def reject(self, code: str, *, reason: str, actor: str) -> FeedbackView:
        why = _text(reason, "Lý do từ chối")
        return await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=REJECTED,
            actor=actor,
            note=why[:500],
            changes=_answered(why, actor),
            notify=True,
        )
