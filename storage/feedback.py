"""Feedback items (satisfaction surveys, complaints and petitions), their status history, the
way staff answers travel back to citizens, and the access log of contact data."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from content.normalize import fold
from storage.audit import CITIZEN, Actor, actor_of
from storage.models import (
    CitizenSession,
    ConversationTurn,
    DataAccess,
    FeedbackEvent,
    FeedbackItem,
    OfferedChoice,
    Subscriber,
    UnansweredQuestion,
    aware,
    utcnow,
)

SURVEY = "survey"
COMPLAINT = "complaint"
KINDS = (SURVEY, COMPLAINT)
PREFIX = {SURVEY: "DG", COMPLAINT: "PA"}

PARTIAL = "partial"
NEW = "new"
IN_PROGRESS = "in_progress"
ANSWERED = "answered"
RESOLVED = "resolved"
REJECTED = "rejected"
STATUSES = (PARTIAL, NEW, IN_PROGRESS, ANSWERED, RESOLVED, REJECTED)
OPEN = (NEW, IN_PROGRESS)
_ALL_BUT_PARTIAL = frozenset(STATUSES) - {PARTIAL}
# What staff read for each status.
STATUS_LABELS = {
    PARTIAL: "Chưa hoàn thành",
    NEW: "Mới",
    IN_PROGRESS: "Đang xử lý",
    ANSWERED: "Đã trả lời",
    RESOLVED: "Đã giải quyết",
    REJECTED: "Từ chối",
}
CLOSED = (ANSWERED, RESOLVED, REJECTED)

# The SIPAS factors, in the order the survey asks them (column names of FeedbackItem).
FACTORS = ("r_access", "r_procedure", "r_staff", "r_result", "r_feedback")

# Notice states of the staff answer's way back to the citizen.
NOTICE_PENDING = "pending"
NOTICE_SENDING = "sending"
NOTICE_WAITING = "waiting"
NOTICE_DELIVERED = "delivered"

# Letters and digits that cannot be misread for one another (no 0/O, 1/I/L, U/V).
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
CODE_LENGTH = 5

EDITABLE = frozenset({"point_id", "procedure_id", "comment", *FACTORS})


def _with_search_text(values: dict[str, Any]) -> dict[str, Any]:
    """A survey's answers, checked, with the folded comment when it changes."""
    unknown = set(values) - EDITABLE
    if unknown:
        raise ValueError(f"unknown feedback fields: {sorted(unknown)}")
    if "comment" in values:
        return {**values, "search_text": search_text(values["comment"])}
    return values


def new_code(kind: str) -> str:
    body = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{PREFIX[kind]}-{body}"


class FeedbackError(Exception):
    """A staff action that cannot be done; the message is Vietnamese, for the operator."""


@dataclass(frozen=True, slots=True)
class FeedbackView:
    id: int
    code: str
    kind: str
    status: str
    channel: str
    external_id: str | None
    point_id: str | None
    procedure_id: str | None
    ratings: tuple[int | None, ...]
    comment: str | None
    description: str | None
    dossier_code: str | None
    phone: str | None
    contact_consent_at: dt.datetime | None
    contact_erased_at: dt.datetime | None
    assignee: str | None
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    notify_status: str | None
    notified_at: dt.datetime | None
    deadline_at: dt.datetime
    completed_at: dt.datetime | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def overdue(self, now: dt.datetime) -> bool:
        return self.status in OPEN and self.deadline_at < now


@dataclass(frozen=True, slots=True)
class FeedbackEventView:
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: dt.datetime
    via: str | None = None


@dataclass(frozen=True, slots=True)
class AccessView:
    actor: str
    action: str
    detail: str | None
    at: dt.datetime
    via: str | None = None


def search_text(*values: str | None) -> str | None:
    """What the text search looks in: the citizen's and the staff's words, folded (no
    diacritics, lower case), so "tre hen" finds "Trễ hẹn" with SQL LIKE on every backend.
    Contact fields stay out (the dossier code is matched on its own column)."""
    text = " | ".join(fold(value) for value in values if value)
    return text or None


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def item_view(row: FeedbackItem) -> FeedbackView:
    return FeedbackView(
        id=row.id,
        code=row.code,
        kind=row.kind,
        status=row.status,
        channel=row.channel,
        external_id=row.external_id,
        point_id=row.point_id,
        procedure_id=row.procedure_id,
        ratings=tuple(getattr(row, f) for f in FACTORS),
        comment=row.comment,
        description=row.description,
        dossier_code=row.dossier_code,
        phone=row.phone,
        contact_consent_at=aware(row.contact_consent_at),
        contact_erased_at=aware(row.contact_erased_at),
        assignee=row.assignee,
        answer=row.answer,
        answered_by=row.answered_by,
        answered_at=aware(row.answered_at),
        notify_status=row.notify_status,
        notified_at=aware(row.notified_at),
        deadline_at=aware(row.deadline_at) or row.deadline_at,
        completed_at=aware(row.completed_at),
        closed_at=aware(row.closed_at),
        created_at=aware(row.created_at) or row.created_at,
        updated_at=aware(row.updated_at) or row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class FeedbackFilter:
    """What ``bot feedback list`` and ``export`` and the console's inbox select. Dates are
    UTC instants; ``until`` is exclusive. ``max_rating`` keeps surveys with any factor rated
    at most that. ``text`` is searched without diacritics and case in the comment,
    description and answer, and in the dossier code."""

    kind: str | None = None
    statuses: tuple[str, ...] | None = None
    point_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    max_rating: int | None = None
    text: str | None = None
    overdue_at: dt.datetime | None = None
    assignee: str | None = None

    def conditions(self) -> list[Any]:
        conditions: list[Any] = []
        if self.kind:
            conditions.append(FeedbackItem.kind == self.kind)
        if self.statuses and set(self.statuses) == _ALL_BUT_PARTIAL:
            # Spelled as "not partial": an IN list of five would send SQLite's planner to a
            # status index and a sort, instead of reading the newest ids first.
            conditions.append(FeedbackItem.status != PARTIAL)
        elif self.statuses:
            conditions.append(FeedbackItem.status.in_(list(self.statuses)))
        if self.point_id:
            conditions.append(FeedbackItem.point_id == self.point_id)
        if self.since:
            conditions.append(FeedbackItem.created_at >= self.since)
        if self.until:
            conditions.append(FeedbackItem.created_at < self.until)
        if self.max_rating is not None:
            conditions.append(or_(*(getattr(FeedbackItem, f) <= self.max_rating for f in FACTORS)))
        if self.overdue_at:
            conditions.append(FeedbackItem.status.in_(list(OPEN)))
            conditions.append(FeedbackItem.deadline_at < self.overdue_at)
        if self.assignee:
            conditions.append(FeedbackItem.assignee == self.assignee)
        if self.text and self.text.strip():
            code = _like(self.text.strip().lower())
            matches = [func.lower(FeedbackItem.dossier_code).like(code, escape="\\")]
            if needle := fold(self.text):
                matches.append(FeedbackItem.search_text.like(_like(needle), escape="\\"))
            conditions.append(or_(*matches))
        return conditions


async def _flag_session(session: AsyncSession, channel: str, external_id: str) -> None:
    dialect = (await session.connection()).dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(CitizenSession).values(
        channel=channel,
        external_id=external_id,
        data={},
        has_notice=True,
        updated_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["channel", "external_id"], set_={"has_notice": True}
        )
    )


class FeedbackRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # citizens' side

    async def _insert(
        self, session: AsyncSession, kind: str, values: dict[str, Any]
    ) -> FeedbackItem:
        """A new item with a fresh random code (drawn again on the rare collision)."""
        for _ in range(20):
            try:
                async with session.begin_nested():
                    row = FeedbackItem(kind=kind, code=new_code(kind), **values)
                    session.add(row)
                    await session.flush()
                    return row
            except IntegrityError:
                continue
        raise RuntimeError("could not draw a free feedback code")

    async def start_survey(
        self, channel: str, external_id: str, *, deadline_at: dt.datetime
    ) -> FeedbackView:
        """A survey starts as ``partial``: kept if abandoned, never counted."""
        async with self._sessions.begin() as session:
            row = await self._insert(
                session,
                SURVEY,
                {
                    "status": PARTIAL,
                    "channel": channel,
                    "external_id": external_id,
                    "deadline_at": deadline_at,
                },
            )
            session.add(
                FeedbackEvent(item_id=row.id, to_status=PARTIAL, actor="citizen", via=CITIZEN)
            )
            return item_view(row)

    async def update_survey(self, item_id: int, **values: Any) -> None:
        """Record answers of a survey still in progress."""
        values = _with_search_text(values)
        async with self._sessions.begin() as session:
            await session.execute(
                update(FeedbackItem)
                .where(FeedbackItem.id == item_id, FeedbackItem.status == PARTIAL)
                .values(updated_at=utcnow(), **values)
            )

    async def complete_survey(self, item_id: int, **values: Any) -> FeedbackView | None:
        values = _with_search_text(values)
        now = utcnow()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(FeedbackItem)
                .where(FeedbackItem.id == item_id, FeedbackItem.status == PARTIAL)
                .values(status=NEW, completed_at=now, updated_at=now, **values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            session.add(
                FeedbackEvent(
                    item_id=item_id,
                    from_status=PARTIAL,
                    to_status=NEW,
                    actor="citizen",
                    via=CITIZEN,
                )
            )
            row = await session.get(FeedbackItem, item_id)
            assert row is not None
            await session.refresh(row)
            return item_view(row)

    async def create_complaint(
        self,
        channel: str,
        external_id: str,
        *,
        description: str,
        deadline_at: dt.datetime,
        point_id: str | None = None,
        dossier_code: str | None = None,
        phone: str | None = None,
        contact_consent_at: dt.datetime | None = None,
    ) -> FeedbackView:
        if phone and contact_consent_at is None:
            raise ValueError("a phone number is kept only with the citizen's consent")
        async with self._sessions.begin() as session:
            row = await self._insert(
                session,
                COMPLAINT,
                {
                    "status": NEW,
                    "channel": channel,
                    "external_id": external_id,
                    "description": description,
                    "search_text": search_text(description),
                    "point_id": point_id,
                    "dossier_code": dossier_code,
                    "phone": phone,
                    "contact_consent_at": contact_consent_at,
                    "deadline_at": deadline_at,
                    "completed_at": utcnow(),
                },
            )
            session.add(FeedbackEvent(item_id=row.id, to_status=NEW, actor="citizen", via=CITIZEN))
            return item_view(row)

    async def get(self, code: str) -> FeedbackView | None:
        async with self._sessions() as session:
            row = await session.scalar(select(FeedbackItem).where(FeedbackItem.code == code))
            return item_view(row) if row else None

    async def get_by_id(self, item_id: int) -> FeedbackView | None:
        async with self._sessions() as session:
            row = await session.get(FeedbackItem, item_id)
            return item_view(row) if row else None

    async def owned(self, channel: str, external_id: str, code: str) -> FeedbackView | None:
        """The item with ``code`` if this citizen filed it; None for anyone else's."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(FeedbackItem).where(
                    FeedbackItem.code == code,
                    FeedbackItem.channel == channel,
                    FeedbackItem.external_id == external_id,
                )
            )
            return item_view(row) if row else None

    async def recent_for(
        self, channel: str, external_id: str, *, kind: str | None = None, limit: int = 5
    ) -> list[FeedbackView]:
        query = select(FeedbackItem).where(
            FeedbackItem.channel == channel,
            FeedbackItem.external_id == external_id,
            FeedbackItem.status != PARTIAL,
        )
        if kind:
            query = query.where(FeedbackItem.kind == kind)
        async with self._sessions() as session:
            rows = await session.scalars(query.order_by(FeedbackItem.id.desc()).limit(limit))
            return [item_view(r) for r in rows]

    async def count_since(
        self, channel: str, external_id: str, kind: str, since: dt.datetime
    ) -> int:
        """How many items of ``kind`` this citizen started since ``since``."""
        async with self._sessions() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(FeedbackItem)
                    .where(
                        FeedbackItem.channel == channel,
                        FeedbackItem.external_id == external_id,
                        FeedbackItem.kind == kind,
                        FeedbackItem.created_at >= since,
                    )
                )
                or 0
            )

    # staff side

    async def transition(
        self,
        code: str,
        *,
        expected: Iterable[str],
        to: str,
        actor: Actor | str,
        note: str | None = None,
        changes: dict[str, Any] | None = None,
        notify: bool = False,
    ) -> FeedbackView:
        """Move the item to ``to`` if it is in one of ``expected`` (compare-and-set, so two
        staff members cannot both answer), apply ``changes`` and record who and when.
        ``notify`` queues a notice for the citizen (when the item still points to one)."""
        now = utcnow()
        allowed = list(expected)
        who = actor_of(actor)
        async with self._sessions.begin() as session:
            row = await session.scalar(select(FeedbackItem).where(FeedbackItem.code == code))
            if row is None:
                raise FeedbackError(f"Không có mục nào mã {code}.")
            previous = row.status
            values = {"status": to, "updated_at": now, **(changes or {})}
            if "answer" in values:
                values["search_text"] = search_text(row.comment, row.description, values["answer"])
            if to in CLOSED and row.closed_at is None:
                values["closed_at"] = now
            notify = notify and row.external_id is not None
            if notify:
                values["notify_status"] = NOTICE_PENDING
            result = await session.execute(
                update(FeedbackItem)
                .where(FeedbackItem.id == row.id, FeedbackItem.status.in_(allowed))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                now_label = STATUS_LABELS.get(previous, previous).lower()
                raise FeedbackError(
                    f"Mục {code} đang ở trạng thái “{now_label}”; không thể chuyển sang "
                    f"“{STATUS_LABELS.get(to, to).lower()}”."
                )
            if notify and row.external_id:
                # The citizen's next message hands the answer over even if no worker can
                # push it (web chat, outside Zalo's window, 'bot serve' not running).
                await _flag_session(session, row.channel, row.external_id)
            session.add(
                FeedbackEvent(
                    item_id=row.id,
                    from_status=previous,
                    to_status=to,
                    actor=who.name[:100],
                    via=who.via,
                    note=note[:500] if note else None,
                )
            )
            await session.flush()
            await session.refresh(row)
            return item_view(row)

    # answers on their way back to citizens

    async def notices_to_push(self, *, limit: int = 50) -> list[FeedbackView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(FeedbackItem)
                .where(FeedbackItem.notify_status == NOTICE_PENDING)
                .order_by(FeedbackItem.id)
                .limit(limit)
            )
            return [item_view(r) for r in rows]

    async def claim_notice(self, item_id: int, *, lease_expired_before: dt.datetime) -> bool:
        """Take a pending notice for pushing (one worker wins); a claim older than the lease
        belongs to a worker that died and is taken again."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(FeedbackItem)
                .where(
                    FeedbackItem.id == item_id,
                    or_(
                        FeedbackItem.notify_status == NOTICE_PENDING,
                        and_(
                            FeedbackItem.notify_status == NOTICE_SENDING,
                            FeedbackItem.notify_claimed_at < lease_expired_before,
                        ),
                    ),
                )
                .values(notify_status=NOTICE_SENDING, notify_claimed_at=utcnow())
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def set_notice(self, item_id: int, status: str, *, expected: str) -> bool:
        values: dict[str, Any] = {"notify_status": status}
        if status == NOTICE_DELIVERED:
            values["notified_at"] = utcnow()
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(FeedbackItem)
                .where(FeedbackItem.id == item_id, FeedbackItem.notify_status == expected)
                .values(**values)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def expire_notice_claims(self, older_than: dt.datetime) -> int:
        """Claims of a worker that died: the answer waits for the citizen's next message."""
        async with self._sessions.begin() as session:
            stale = (
                await session.execute(
                    select(FeedbackItem.id, FeedbackItem.channel, FeedbackItem.external_id).where(
                        FeedbackItem.notify_status == NOTICE_SENDING,
                        FeedbackItem.notify_claimed_at < older_than,
                    )
                )
            ).all()
            expired = 0
            for item_id, channel, external_id in stale:
                result = await session.execute(
                    update(FeedbackItem)
                    .where(FeedbackItem.id == item_id, FeedbackItem.notify_status == NOTICE_SENDING)
                    .values(notify_status=NOTICE_WAITING)
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                expired += 1
                if external_id:
                    # Raised again: the citizen may have written meanwhile and lowered it.
                    await _flag_session(session, channel, external_id)
            return expired

    async def waiting_for(self, channel: str, external_id: str) -> list[FeedbackView]:
        """Answers this citizen has not received yet (waiting for their message, or not yet
        pushed), oldest first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(FeedbackItem)
                .where(
                    FeedbackItem.channel == channel,
                    FeedbackItem.external_id == external_id,
                    FeedbackItem.notify_status.in_([NOTICE_WAITING, NOTICE_PENDING]),
                )
                .order_by(FeedbackItem.id)
            )
            return [item_view(r) for r in rows]

    # data protection

    async def log_access(self, actor: Actor | str, action: str, detail: str | None = None) -> None:
        who = actor_of(actor)
        async with self._sessions.begin() as session:
            session.add(
                DataAccess(
                    actor=who.name[:100],
                    via=who.via,
                    action=action[:32],
                    detail=(detail or "")[:300],
                )
            )

    async def purge_contacts(self, closed_before: dt.datetime) -> int:
        """Erase the contact fields (phone, dossier code) of items closed before the cutoff."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(FeedbackItem)
                .where(
                    FeedbackItem.status.in_(list(CLOSED)),
                    FeedbackItem.closed_at < closed_before,
                    FeedbackItem.contact_erased_at.is_(None),
                    or_(FeedbackItem.phone.is_not(None), FeedbackItem.dossier_code.is_not(None)),
                )
                .values(phone=None, dossier_code=None, contact_erased_at=utcnow())
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def erase_citizen(self, channel: str, external_id: str) -> dict[str, int]:
        """A citizen's request to delete their data: contact fields of their feedback are
        erased and the items no longer point at them (the ratings stay, anonymous, in the
        statistics); their subscription with its history, their conversation log and their
        unanswered questions are deleted. Returns how many rows of each were touched."""
        now = utcnow()
        async with self._sessions.begin() as session:
            items = await session.execute(
                update(FeedbackItem)
                .where(FeedbackItem.channel == channel, FeedbackItem.external_id == external_id)
                .values(
                    external_id=None,
                    phone=None,
                    dossier_code=None,
                    contact_erased_at=now,
                    notify_status=None,
                )
            )
            counts = {"feedback": int(items.rowcount or 0)}  # type: ignore[attr-defined]
            for name, model, column in (
                ("subscriptions", Subscriber, Subscriber.external_id),
                ("conversation", ConversationTurn, ConversationTurn.user_id),
                ("questions", UnansweredQuestion, UnansweredQuestion.user_id),
                ("choices", OfferedChoice, OfferedChoice.external_id),
            ):
                result = await session.execute(
                    delete(model).where(model.channel == channel, column == external_id)
                )
                counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
            return counts


def known_statuses(values: Sequence[str]) -> tuple[str, ...]:
    unknown = [v for v in values if v not in STATUSES]
    if unknown:
        raise FeedbackError("Trạng thái không hợp lệ: " + ", ".join(unknown))
    return tuple(values)
