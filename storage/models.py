"""SQLAlchemy models. The schema is created and changed only by Alembic migrations."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
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
