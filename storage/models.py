"""SQLAlchemy models. The schema is created and changed only by Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as an aware UTC datetime (SQLite gives back naive ones)."""
    if value is None or value.tzinfo:
        return value
    return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ConversationTurn(Base):
    """One message and how the bot answered it (kept for the retention period only)."""

    __tablename__ = "conversation_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(16))
    entry_id: Mapped[str | None] = mapped_column(String(100))
    score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_conversation_turns_created_at", "created_at"),)


class UnansweredQuestion(Base):
    """A question the bot could not answer with confidence: the content team's to-do list."""

    __tablename__ = "unanswered_questions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    normalized_text: Mapped[str] = mapped_column(String(400))
    outcome: Mapped[str] = mapped_column(String(16))
    top_score: Mapped[float | None] = mapped_column(Float)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_unanswered_questions_normalized_text", "normalized_text"),
        Index("ix_unanswered_questions_created_at", "created_at"),
    )


class Subscriber(Base):
    """A citizen on one channel: who they are there, what they receive and since when.

    ``status`` is active (receives the topics), unsubscribed (never subscribed, or stopped),
    blocked (blocked the bot; nothing is sent until they start it again) or unreachable (the
    platform refuses messages, e.g. outside Zalo's interaction window).
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="unsubscribed")
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    consent_source: Mapped[str | None] = mapped_column(String(64))
    last_interaction_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_subscribers_channel_external_id"),
        Index("ix_subscribers_status", "status"),
    )


class SubscriptionChange(Base):
    """Audit trail of every subscription change: what, when and through which source."""

    __tablename__ = "subscription_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProcessedUpdate(Base):
    """Webhook deliveries already handled (Telegram update_id, Zalo msg_id): platforms
    redeliver, and several workers must answer each one once."""

    __tablename__ = "processed_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_processed_updates_created_at", "created_at"),)


class ChannelToken(Base):
    """The current access/refresh token pair of a channel whose tokens rotate (Zalo OA)."""

    __tablename__ = "channel_tokens"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class OfferedChoice(Base):
    """The buttons last shown to a citizen as numbered text (channels with few or no buttons),
    so a typed "2" means the second one, whichever worker receives it."""

    __tablename__ = "offered_choices"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    payloads: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """A broadcast campaign: the message, who receives it, when, and where it is in the
    workflow (draft → submitted → approved → scheduled → sending → done; paused, cancelled,
    failed)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    link_title: Mapped[str | None] = mapped_column(String(100))
    link_url: Mapped[str | None] = mapped_column(String(1000))
    image_url: Mapped[str | None] = mapped_column(String(1000))
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Empty: every active subscriber of the channels.
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    # "now", "at" (send_at) or "cron" (cron expression in the broadcast time zone, until
    # cron_end).
    schedule_kind: Mapped[str] = mapped_column(String(8), default="now")
    send_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    cron: Mapped[str | None] = mapped_column(String(100))
    cron_end: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Urgent notices ignore quiet hours.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    status_reason: Mapped[str | None] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(100))
    # The console account that wrote it (none when written at the command line): the
    # four-eyes rule compares accounts when both sides have one.
    author_account_id: Mapped[int | None] = mapped_column(Integer)
    approved_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    __table_args__ = (Index("ix_campaigns_status", "status"),)


class CampaignEvent(Base):
    """Every workflow transition of a campaign: from, to, who and when."""

    __tablename__ = "campaign_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    # Where the step came from: console (a signed-in account), cli (a typed name), system.
    via: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignRun(Base):
    """One sending of a campaign (a one-off campaign has one; a recurring one, one per
    occurrence). ``fire_at`` is the occurrence it stands for: unique per campaign, so an
    occurrence fired twice (two schedulers, a restart) is still sent once."""

    __tablename__ = "campaign_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    fire_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # expanding, sending, paused, done, cancelled, failed
    status: Mapped[str] = mapped_column(String(16), default="expanding")
    status_reason: Mapped[str | None] = mapped_column(String(300))
    # Expansion streams subscribers by id; this is how far it got (resumable after a crash).
    expanded_through: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    test: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("campaign_id", "fire_at", name="uq_campaign_runs_campaign_id"),
        Index("ix_campaign_runs_status", "status"),
    )


class Delivery(Base):
    """The ledger: one row per recipient of a run, saying exactly what happened to it.

    pending → sending (claimed by one sender) → sent | failed | pending again (retry later);
    out_of_window (Zalo's 7 days had passed: not attempted); skipped (no longer subscribed
    at send time); uncertain (claimed by a sender that died mid-send: never sent twice);
    cancelled (the run was cancelled first)."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign_runs.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))
    message_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "subscriber_id", name="uq_deliveries_run_id"),
        # What senders look for: pending rows of a channel, oldest first, ties by id (in the
        # index, so a claim reads the first rows in order instead of sorting them all).
        Index("ix_deliveries_pending", "status", "channel", "next_attempt_at", "id"),
    )


class RateBucket(Base):
    """A token bucket shared by every sender process, one per channel: the platform's limit
    is per bot/OA, not per process. Times are epoch seconds (portable arithmetic)."""

    __tablename__ = "rate_buckets"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    stamp: Mapped[float] = mapped_column(Float)


class CitizenSession(Base):
    """What the bot remembers about a conversation in progress: the guided flow the citizen
    is in (a survey, a complaint), its step and answers so far, until ``expires_at``; and
    whether staff answers wait for their next message. In the database, not in a worker's
    memory, so a restart or another worker carries on where the last message left off."""

    __tablename__ = "citizen_sessions"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    flow: Mapped[str | None] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    has_notice: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackItem(Base):
    """A satisfaction survey (kind ``survey``, code DG-…) or a complaint or petition (kind
    ``complaint``, code PA-…) and its handling.

    status: partial (a survey left unfinished: kept, never counted) → new → in_progress →
    answered / resolved, or rejected. ``notify_status`` tracks the staff answer's way back to
    the citizen: pending (to push) → delivered, or waiting (for their next message)."""

    __tablename__ = "feedback_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    # Null once the citizen asked the bot to delete their data.
    external_id: Mapped[str | None] = mapped_column(String(128))
    point_id: Mapped[str | None] = mapped_column(String(64))
    procedure_id: Mapped[str | None] = mapped_column(String(100))
    # SIPAS factors, 1–5; null when skipped.
    r_access: Mapped[int | None] = mapped_column(Integer)
    r_procedure: Mapped[int | None] = mapped_column(Integer)
    r_staff: Mapped[int | None] = mapped_column(Integer)
    r_result: Mapped[int | None] = mapped_column(Integer)
    r_feedback: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # Comment, description and answer folded (no diacritics, lower case): what the staff's
    # text search looks in, with SQL LIKE on every backend.
    search_text: Mapped[str | None] = mapped_column(Text)
    dossier_code: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(20))
    contact_consent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    contact_erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assignee: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    notify_status: Mapped[str | None] = mapped_column(String(16))
    notify_claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_feedback_items_citizen", "channel", "external_id"),
        Index("ix_feedback_items_status", "kind", "status"),
        Index("ix_feedback_items_created_at", "created_at"),
        Index("ix_feedback_items_notify_status", "notify_status"),
        # The staff's inbox: a status tab newest first, counts per status, what is overdue,
        # what is assigned to me; and the surveys of a period for the statistics.
        Index("ix_feedback_items_status_id", "status", "id"),
        Index("ix_feedback_items_status_deadline", "status", "deadline_at"),
        Index("ix_feedback_items_assignee", "assignee", "status"),
        Index("ix_feedback_items_kind_created", "kind", "created_at"),
    )


class FeedbackEvent(Base):
    """Status history of a feedback item: from, to, who and when (and the note given)."""

    __tablename__ = "feedback_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("feedback_items.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    # Where the step came from: citizen, console (a signed-in account), cli (a typed name).
    via: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DataAccess(Base):
    """Who saw citizens' contact data, when and how (exports with --with-contact, …)."""

    __tablename__ = "data_access_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(100))
    via: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Account(Base):
    """A person who signs in to the staff console, with the roles they hold. Never deleted
    (the audit log and item histories name them): disabled instead."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Lower case; what people type to sign in and what histories record.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(100))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    # argon2id, in the PHC string format argon2-cffi writes.
    password_hash: Mapped[str] = mapped_column(String(200))
    # Set when someone else chose the password (a new account, a reset).
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_signin_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random 256-bit id; only its SHA-256 is kept
    here, so a copy of the database signs nobody in."""

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    # The synchronizer token every state-changing form of this session carries.
    csrf_token: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SigninThrottle(Base):
    """Failed sign-ins per key: ``name:<user name>`` (whether or not such an account exists,
    so a lockout tells nothing about which names are real) and ``addr:<address>``."""

    __tablename__ = "signin_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEntry(Base):
    """Who did what, to which item, when and from where: every console sign-in, failed
    sign-in and action, and the account and feedback actions taken at the command line."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # None for a failed sign-in under a name no account has, and for the command line.
    account_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    via: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(48))
    target: Mapped[str | None] = mapped_column(String(120))
    detail: Mapped[str | None] = mapped_column(String(500))
    address: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_account_id", "account_id", "id"),
        Index("ix_audit_log_action", "action", "id"),
    )
