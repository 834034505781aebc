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
    NOTICE_PENDING,
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


class FeedbackDesk:
    def __init__(self, repository: FeedbackRepository) -> None:
        self.repository = repository

    async def _item(self, code: str) -> FeedbackView:
        item = await self.repository.get(code)
        if item is None:
            raise FeedbackError(f"Không có mục nào mã {code}.")
        return item

    @staticmethod
    def _notice(item: FeedbackView) -> dict[str, Any]:
        return {"notify_status": NOTICE_PENDING} if item.external_id else {}

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
        body = _text(text, "Nội dung trả lời")
        item = await self._item(code)
        return await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=ANSWERED,
            actor=actor,
            changes={
                "answer": body,
                "answered_by": actor[:100],
                "answered_at": utcnow(),
                **self._notice(item),
            },
        )

    async def resolve(self, code: str, *, actor: str, text: str | None = None) -> FeedbackView:
        item = await self._item(code)
        changes: dict[str, Any] = {}
        if text is not None:
            changes = {
                "answer": _text(text, "Nội dung trả lời"),
                "answered_by": actor[:100],
                "answered_at": utcnow(),
                **self._notice(item),
            }
        elif item.answer is None:
            # The citizen learns it was settled even without a written answer.
            changes = self._notice(item)
        return await self.repository.transition(
            code, expected=(NEW, IN_PROGRESS, ANSWERED), to=RESOLVED, actor=actor, changes=changes
        )

    async def reject(self, code: str, *, reason: str, actor: str) -> FeedbackView:
        why = _text(reason, "Lý do từ chối")
        item = await self._item(code)
        return await self.repository.transition(
            code,
            expected=(NEW, IN_PROGRESS),
            to=REJECTED,
            actor=actor,
            note=why[:500],
            changes={
                "answer": why,
                "answered_by": actor[:100],
                "answered_at": utcnow(),
                **self._notice(item),
            },
        )
