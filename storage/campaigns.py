"""Campaigns, their workflow record, runs and the delivery ledger.

The rules (which transition is allowed, who may approve) live in ``broadcasts.workflow``;
this module only reads and writes, with compare-and-set updates so that two processes
acting on one campaign cannot both win.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import Actor
from storage.models import Campaign, CampaignEvent, CampaignRun, Delivery, Subscriber, utcnow
from storage.subscribers import ACTIVE

# Delivery statuses.
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
OUT_OF_WINDOW = "out_of_window"
SKIPPED = "skipped"
UNCERTAIN = "uncertain"
CANCELLED = "cancelled"
DELIVERY_STATUSES = (PENDING, SENDING, SENT, FAILED, OUT_OF_WINDOW, SKIPPED, UNCERTAIN, CANCELLED)
FINAL_DELIVERY = frozenset({SENT, FAILED, OUT_OF_WINDOW, SKIPPED, UNCERTAIN, CANCELLED})

# Run statuses.
RUN_EXPANDING = "expanding"
RUN_SENDING = "sending"
RUN_PAUSED = "paused"
RUN_DONE = "done"
RUN_CANCELLED = "cancelled"
RUN_FAILED = "failed"
RUN_ACTIVE = frozenset({RUN_EXPANDING, RUN_SENDING, RUN_PAUSED})


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=dt.UTC)


def _audience_page(after: int, channels: Sequence[str], batch: int) -> Any:
    """The next ``batch`` active subscribers of ``channels`` after id ``after`` (keyset
    pagination: memory stays flat whatever the audience)."""
    return (
        select(
            Subscriber.id,
            Subscriber.channel,
            Subscriber.external_id,
            Subscriber.topics,
            Subscriber.last_interaction_at,
        )
        .where(
            Subscriber.id > after,
            Subscriber.status == ACTIVE,
            Subscriber.channel.in_(list(channels)),
        )
        .order_by(Subscriber.id)
        .limit(batch)
    )


def _audience(
    rows: Sequence[Any], wanted: set[str], window_cutoffs: dict[str, dt.datetime]
) -> list[tuple[int, str, str, bool]]:
    """(subscriber id, channel, external id, outside the window) of the rows in the
    audience: any of the ``wanted`` topics (every one when empty)."""
    result = []
    for sid, channel, external_id, their_topics, last_seen in rows:
        if wanted and not wanted.intersection(their_topics or ()):
            continue
        cutoff = window_cutoffs.get(channel)
        seen = _aware(last_seen)
        result.append(
            (sid, channel, external_id, cutoff is not None and (seen is None or seen < cutoff))
        )
    return result


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: int
    name: str
    text: str
    link_title: str | None
    link_url: str | None
    image_url: str | None
    channels: tuple[str, ...]
    topics: tuple[str, ...]
    schedule_kind: str
    send_at: dt.datetime | None
    cron: str | None
    cron_end: dt.datetime | None
    urgent: bool
    status: str
    status_reason: str | None
    author: str
    approved_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    author_account_id: int | None = None


def _campaign_view(row: Campaign) -> CampaignView:
    return CampaignView(
        id=row.id,
        name=row.name,
        text=row.text,
        link_title=row.link_title,
        link_url=row.link_url,
        image_url=row.image_url,
        channels=tuple(row.channels or ()),
        topics=tuple(row.topics or ()),
        schedule_kind=row.schedule_kind,
        send_at=_aware(row.send_at),
        cron=row.cron,
        cron_end=_aware(row.cron_end),
        urgent=bool(row.urgent),
        status=row.status,
        status_reason=row.status_reason,
        author=row.author,
        approved_by=row.approved_by,
        created_at=_aware(row.created_at) or row.created_at,
        updated_at=_aware(row.updated_at) or row.updated_at,
        author_account_id=row.author_account_id,
    )


# The fields a communicator may edit (an edit of an approved campaign sends it back to draft).
EDITABLE = frozenset(
    {
        "name",
        "text",
        "link_title",
        "link_url",
        "image_url",
        "channels",
        "topics",
        "schedule_kind",
        "send_at",
        "cron",
        "cron_end",
        "urgent",
    }
)


@dataclass(frozen=True, slots=True)
class EventView:
    from_status: str | None
    to_status: str
    actor: str
    note: str | None
    at: dt.datetime
    via: str | None = None


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    campaign_id: int
    fire_at: dt.datetime
    status: str
    status_reason: str | None
    expanded_through: int
    total: int
    test: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


def _run_view(row: CampaignRun) -> RunView:
    values = {f.name: getattr(row, f.name) for f in fields(RunView)}
    for key in ("fire_at", "created_at", "started_at", "finished_at"):
        values[key] = _aware(values[key])
    return RunView(**values)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery row claimed by one sender, with what it needs to send it."""

    id: int
    run_id: int
    subscriber_id: int
    channel: str
    external_id: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a sender learned about one claimed row."""

    id: int
    status: str  # SENT, FAILED, OUT_OF_WINDOW, SKIPPED, or PENDING (retry at next_attempt_at)
    error: str | None = None
    message_id: str | None = None
    next_attempt_at: dt.datetime | None = None


class StaleCampaign(Exception):
    """The campaign changed status meanwhile (another process acted first)."""


class CampaignRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # campaigns

    async def create(self, *, author: Actor, **values: Any) -> CampaignView:
        unknown = set(values) - EDITABLE
        if unknown:
            raise ValueError(f"unknown campaign fields: {sorted(unknown)}")
        async with self._sessions.begin() as session:
            row = Campaign(
                author=author.name[:100],
                author_account_id=author.account_id,
                status="draft",
                **values,
            )
            session.add(row)
            await session.flush()
            session.add(
                CampaignEvent(
                    campaign_id=row.id,
                    from_status=None,
                    to_status="draft",
                    actor=author.name[:100],
                    via=author.via,
                )
            )
            await session.flush()
            return _campaign_view(row)

    async def get(self, campaign_id: int) -> CampaignView | None:
        async with self._sessions() as session:
            row = await session.get(Campaign, campaign_id)
            return _campaign_view(row) if row else None

    async def find(self, *, statuses: Iterable[str] | None = None) -> list[CampaignView]:
        query = select(Campaign).order_by(Campaign.id)
        if statuses is not None:
            query = query.where(Campaign.status.in_(list(statuses)))
        async with self._sessions() as session:
            return [_campaign_view(r) for r in await session.scalars(query)]

    async def transition(
        self,
        campaign_id: int,
        *,
        expected: Iterable[str],
        to: str,
        actor: Actor,
        note: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> CampaignView:
        """Move the campaign to ``to`` if it is in one of ``expected`` (compare-and-set),
        applying ``changes`` and recording the event. Raises StaleCampaign otherwise."""
        changes = dict(changes or {})
        unknown = set(changes) - EDITABLE - {"approved_by", "status_reason"}
        if unknown:
            raise ValueError(f"unknown campaign fields: {sorted(unknown)}")
        async with self._sessions.begin() as session:
            row = await session.get(Campaign, campaign_id, with_for_update=True)
            if row is None:
                raise LookupError(campaign_id)
            previous = row.status
            result = await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.status.in_(list(expected)))
                .values(status=to, updated_at=utcnow(), **changes)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise StaleCampaign(f"campaign {campaign_id} is {previous}")
            session.add(
                CampaignEvent(
                    campaign_id=campaign_id,
                    from_status=previous,
                    to_status=to,
                    actor=actor.name[:100],
                    via=actor.via,
                    note=note[:300] if note else None,
                )
            )
            await session.flush()
            await session.refresh(row)
            return _campaign_view(row)

    async def events(self, campaign_id: int) -> list[EventView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CampaignEvent)
                .where(CampaignEvent.campaign_id == campaign_id)
                .order_by(CampaignEvent.id)
            )
            return [
                EventView(
                    r.from_status,
                    r.to_status,
                    r.actor,
                    r.note,
                    _aware(r.created_at) or r.created_at,
                    r.via,
                )
                for r in rows
            ]

    # runs

    async def start_run(
        self, campaign_id: int, fire_at: dt.datetime, *, test: bool = False
    ) -> tuple[RunView, bool]:
        """The run for this occurrence, created if new. (run, created): an occurrence fired
        twice gets the existing run back with created False."""
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(CampaignRun)
            now = utcnow()
            statement = (
                ins.values(
                    campaign_id=campaign_id,
                    fire_at=fire_at,
                    status=RUN_EXPANDING,
                    expanded_through=0,
                    total=0,
                    test=test,
                    created_at=now,
                    started_at=now,
                )
                .on_conflict_do_nothing(index_elements=["campaign_id", "fire_at"])
                .returning(CampaignRun.id)
            )
            created_id = (await session.execute(statement)).scalar_one_or_none()
            row = await session.scalar(
                select(CampaignRun).where(
                    CampaignRun.campaign_id == campaign_id, CampaignRun.fire_at == fire_at
                )
            )
            assert row is not None
            return _run_view(row), created_id is not None

    async def run(self, run_id: int) -> RunView | None:
        async with self._sessions() as session:
            row = await session.get(CampaignRun, run_id)
            return _run_view(row) if row else None

    async def runs(self, campaign_id: int, *, include_tests: bool = True) -> list[RunView]:
        query = (
            select(CampaignRun)
            .where(CampaignRun.campaign_id == campaign_id)
            .order_by(CampaignRun.id)
        )
        if not include_tests:
            query = query.where(CampaignRun.test.is_(False))
        async with self._sessions() as session:
            return [_run_view(r) for r in await session.scalars(query)]

    async def active_runs(self) -> list[RunView]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(CampaignRun)
                .where(CampaignRun.status.in_(list(RUN_ACTIVE)))
                .order_by(CampaignRun.id)
            )
            return [_run_view(r) for r in rows]

    async def run_statuses(self, run_ids: Sequence[int]) -> dict[int, str]:
        if not run_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(CampaignRun.id, CampaignRun.status).where(CampaignRun.id.in_(list(run_ids)))
            )
            return {int(i): str(s) for i, s in rows.all()}

    async def set_run_status(
        self,
        run_id: int,
        status: str,
        *,
        expected: Iterable[str] | None = None,
        reason: str | None = None,
    ) -> bool:
        """Compare-and-set the run's status; True when it changed."""
        values: dict[str, Any] = {
            "status": status,
            "status_reason": reason[:300] if reason else None,
        }
        if status in (RUN_DONE, RUN_CANCELLED, RUN_FAILED):
            values["finished_at"] = utcnow()
        statement = update(CampaignRun).where(CampaignRun.id == run_id)
        if expected is not None:
            statement = statement.where(CampaignRun.status.in_(list(expected)))
        async with self._sessions.begin() as session:
            result = await session.execute(statement.values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # audience

    async def expand_batch(
        self,
        run_id: int,
        *,
        channels: Sequence[str],
        topics: Sequence[str],
        window_cutoffs: dict[str, dt.datetime],
        batch: int = 1000,
    ) -> int | None:
        """Add the next ``batch`` subscribers (by id) of the audience to the ledger, in one
        transaction with the run's progress, so a crash mid-expansion resumes where it was.
        Returns how many rows were added, or None when the audience is exhausted.

        The audience is evaluated now (at send time): active subscribers of ``channels``
        with any of ``topics`` (all active ones when ``topics`` is empty). Subscribers of a
        channel in ``window_cutoffs`` whose last interaction is older than the cutoff are
        recorded as out_of_window and never attempted."""
        wanted = set(topics)
        async with self._sessions.begin() as session:
            run = await session.get(CampaignRun, run_id, with_for_update=True)
            if run is None:
                raise LookupError(run_id)
            rows = (
                await session.execute(_audience_page(run.expanded_through, channels, batch))
            ).all()
            if not rows:
                return None
            now = utcnow()
            ledger: list[dict[str, Any]] = [
                {
                    "run_id": run_id,
                    "subscriber_id": sid,
                    "channel": channel,
                    "external_id": external_id,
                    "status": OUT_OF_WINDOW if outside else PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": "outside the 7-day interaction window" if outside else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for sid, channel, external_id, outside in _audience(rows, wanted, window_cutoffs)
            ]
            if ledger:
                dialect = (await session.connection()).dialect.name
                ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(Delivery)
                await session.execute(
                    ins.on_conflict_do_nothing(index_elements=["run_id", "subscriber_id"]),
                    ledger,
                )
            run.expanded_through = rows[-1][0]
            run.total = (run.total or 0) + len(ledger)
            return len(ledger)

    async def add_test_recipients(self, run_id: int, subscriber_ids: Sequence[int]) -> int:
        """A test run's ledger: the named subscribers, whatever their status or topics."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(Subscriber.id, Subscriber.channel, Subscriber.external_id).where(
                        Subscriber.id.in_(list(subscriber_ids))
                    )
                )
            ).all()
            now = utcnow()
            if rows:
                await session.execute(
                    insert(Delivery),
                    [
                        {
                            "run_id": run_id,
                            "subscriber_id": sid,
                            "channel": channel,
                            "external_id": external_id,
                            "status": PENDING,
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for sid, channel, external_id in rows
                    ],
                )
            await session.execute(
                update(CampaignRun).where(CampaignRun.id == run_id).values(total=len(rows))
            )
            return len(rows)

    # sending

    async def claim(
        self,
        channel: str,
        *,
        worker: str,
        limit: int,
        urgent_only: bool = False,
        now: dt.datetime | None = None,
    ) -> list[Claimed]:
        """Claim up to ``limit`` due pending rows of ``channel`` in runs that are expanding
        or sending
        (only those of urgent campaigns with ``urgent_only``: quiet hours).

        One statement: the rows are marked as being sent by ``worker`` before any is sent.
        On PostgreSQL the candidate rows are locked with SKIP LOCKED, so senders in several
        processes take disjoint batches without waiting on each other; SQLite has a single
        writer, so the statement is atomic there as it is."""
        now = now or utcnow()
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            candidates = (
                select(Delivery.id)
                .join(CampaignRun, CampaignRun.id == Delivery.run_id)
                .where(
                    Delivery.status == PENDING,
                    Delivery.channel == channel,
                    Delivery.next_attempt_at <= now,
                    # Sending starts while a large audience is still being expanded.
                    CampaignRun.status.in_((RUN_EXPANDING, RUN_SENDING)),
                )
                .order_by(Delivery.next_attempt_at, Delivery.id)
                .limit(limit)
            )
            if urgent_only:
                # Quiet hours: urgent notices and test sends still go.
                candidates = candidates.join(
                    Campaign, Campaign.id == CampaignRun.campaign_id
                ).where(or_(Campaign.urgent.is_(True), CampaignRun.test.is_(True)))
            if dialect == "postgresql":
                candidates = candidates.with_for_update(of=Delivery, skip_locked=True)
            result = await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(candidates.scalar_subquery()))
                .values(
                    status=SENDING,
                    claimed_by=worker[:64],
                    claimed_at=now,
                    attempts=Delivery.attempts + 1,
                    updated_at=now,
                )
                .returning(
                    Delivery.id,
                    Delivery.run_id,
                    Delivery.subscriber_id,
                    Delivery.channel,
                    Delivery.external_id,
                    Delivery.attempts,
                )
                .execution_options(synchronize_session=False)
            )
            claimed = [Claimed(*row) for row in result.all()]
        claimed.sort(key=lambda c: c.id)
        return claimed

    async def finish(self, worker: str, outcomes: Sequence[Outcome]) -> int:
        """Record what happened to claimed rows (one executemany). Only rows still claimed
        by ``worker`` change: a row already declared uncertain stays so. Returns how many
        changed."""
        if not outcomes:
            return 0
        now = utcnow()
        params = [
            {
                "b_id": o.id,
                "b_worker": worker[:64],
                "b_status": o.status,
                "b_error": o.error[:300] if o.error else None,
                "b_message_id": o.message_id,
                "b_sent_at": now if o.status == "sent" else None,
                "b_next": o.next_attempt_at or now,
                "b_now": now,
            }
            for o in outcomes
        ]
        statement = (
            update(Delivery.__table__)  # type: ignore[arg-type]
            .where(
                Delivery.__table__.c.id == bindparam("b_id"),
                Delivery.__table__.c.status == SENDING,
                Delivery.__table__.c.claimed_by == bindparam("b_worker"),
            )
            .values(
                status=bindparam("b_status"),
                last_error=bindparam("b_error"),
                message_id=bindparam("b_message_id"),
                sent_at=bindparam("b_sent_at"),
                next_attempt_at=bindparam("b_next"),
                updated_at=bindparam("b_now"),
            )
        )
        async with self._sessions.begin() as session:
            connection = await session.connection()
            result = await connection.execute(statement, params)
            return int(result.rowcount or 0)

    async def expire_claims(self, older_than: dt.datetime) -> int:
        """Rows claimed before ``older_than`` and never finished belong to a sender that
        died mid-send: whether the platform got them is unknown, so they are marked
        uncertain and not sent again (at most once: see the README's crash policy)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.status == SENDING, Delivery.claimed_at < older_than)
                .values(
                    status=UNCERTAIN,
                    last_error="sender stopped mid-send; delivery unknown",
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def release(self, worker: str, delivery_ids: Sequence[int]) -> int:
        """Give claimed rows back unsent (a pause or a shutdown before their turn)."""
        if not delivery_ids:
            return 0
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_(list(delivery_ids)),
                    Delivery.status == SENDING,
                    Delivery.claimed_by == worker[:64],
                )
                .values(
                    status=PENDING,
                    attempts=Delivery.attempts - 1,
                    claimed_by=None,
                    claimed_at=None,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def skip_unsubscribed(self, run_id: int) -> int:
        """Pending rows whose subscriber stopped (or blocked the bot) since the run began
        are skipped: the audience is what it is at send time."""
        gone = select(Subscriber.id).where(Subscriber.status != ACTIVE)
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.run_id == run_id,
                    Delivery.status == PENDING,
                    Delivery.subscriber_id.in_(gone.scalar_subquery()),
                )
                .values(status=SKIPPED, last_error="no longer subscribed", updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_deliveries(self, before: dt.datetime) -> int:
        """Forget who received the runs that finished before ``before`` (retention); the
        campaigns and their runs, with their totals, stay."""
        finished = select(CampaignRun.id).where(CampaignRun.finished_at < before)
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(Delivery)
                .where(Delivery.run_id.in_(finished.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def cancel_pending(self, run_id: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.run_id == run_id, Delivery.status == PENDING)
                .values(status=CANCELLED, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def has_unfinished(self, run_id: int) -> bool:
        """Whether rows of the run are still pending or being sent (EXISTS: it stops at the
        first such row instead of counting a large audience on every supervisor tick)."""
        query = select(
            exists().where(Delivery.run_id == run_id, Delivery.status.in_((PENDING, SENDING)))
        )
        async with self._sessions() as session:
            return bool(await session.scalar(query))

    # reports

    async def counts(self, run_ids: Sequence[int]) -> dict[tuple[str, str], int]:
        """(channel, status) → rows, over the given runs."""
        if not run_ids:
            return {}
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery.channel, Delivery.status, func.count())
                .where(Delivery.run_id.in_(list(run_ids)))
                .group_by(Delivery.channel, Delivery.status)
            )
            return {(c, s): int(n) for c, s, n in rows.all()}

    async def errors(self, run_ids: Sequence[int], *, limit: int = 20) -> list[tuple[str, int]]:
        """Most frequent last errors of failed, uncertain or retrying rows."""
        if not run_ids:
            return []
        async with self._sessions() as session:
            count = func.count().label("n")
            rows = await session.execute(
                select(Delivery.last_error, count)
                .where(
                    Delivery.run_id.in_(list(run_ids)),
                    Delivery.last_error.is_not(None),
                    Delivery.status != SENT,
                )
                .group_by(Delivery.last_error)
                .order_by(count.desc())
                .limit(limit)
            )
            return [(str(e), int(n)) for e, n in rows.all()]

    async def sent_span(
        self, run_ids: Sequence[int]
    ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """First and last sent_at over the runs (the achieved rate)."""
        if not run_ids:
            return None, None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(
                        Delivery.run_id.in_(list(run_ids)), Delivery.sent_at.is_not(None)
                    )
                )
            ).one()
            return _aware(row[0]), _aware(row[1])

    async def deliveries(
        self, run_id: int, *, status: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Ledger rows of a run (who got what), oldest first."""
        query = select(Delivery).where(Delivery.run_id == run_id).order_by(Delivery.id)
        if status is not None:
            query = query.where(Delivery.status == status)
        if limit is not None:
            query = query.limit(limit)
        async with self._sessions() as session:
            return [
                {
                    "id": r.id,
                    "subscriber_id": r.subscriber_id,
                    "channel": r.channel,
                    "external_id": r.external_id,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "message_id": r.message_id,
                    "sent_at": _aware(r.sent_at),
                    # The sender (worker name) that last claimed the row.
                    "claimed_by": r.claimed_by,
                }
                for r in await session.scalars(query)
            ]

    async def audience_counts(
        self,
        *,
        channels: Sequence[str],
        topics: Sequence[str],
        window_cutoffs: dict[str, dt.datetime],
        batch: int = 5000,
    ) -> dict[str, tuple[int, int]]:
        """channel → (reachable, out of window) for the audience as it is now (the planner's
        preview; streamed by id, memory flat)."""
        wanted = set(topics)
        result = dict.fromkeys(channels, (0, 0))
        after = 0
        while True:
            async with self._sessions() as session:
                rows = (await session.execute(_audience_page(after, channels, batch))).all()
            if not rows:
                return result
            for _sid, channel, _external_id, outside in _audience(rows, wanted, window_cutoffs):
                reachable, out = result[channel]
                result[channel] = (reachable, out + 1) if outside else (reachable + 1, out)
            after = rows[-1][0]
