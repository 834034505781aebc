"""The application's core services, opened and closed together.

Used by the web app's cleanup context and by the CLI commands that need the database, so both
wire the same objects the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings
from content.loader import BUNDLED_PACK, load_pack
from content.models import KnowledgeBase
from content.search import FaqEngine
from handlers import (
    complaints,
    faq,
    feedback,
    privacy,
    procedures,
    start,
    subscriptions,
    survey,
    topics,
)
from handlers.context import HandlerContext
from handlers.router import Dispatcher
from storage import db
from storage.accounts import AccountRepository
from storage.audit import AuditLog
from storage.campaigns import CampaignRepository
from storage.channels import OfferedChoices, ProcessedUpdates, TokenStore
from storage.feedback import FeedbackRepository
from storage.feedback_inbox import FeedbackInbox
from storage.log_writer import LogWriter
from storage.rate_buckets import RateBuckets
from storage.repositories import ConversationLog, GapLog
from storage.sessions import CitizenSessions
from storage.subscribers import SubscriberRepository

if TYPE_CHECKING:
    from broadcasts.engine import BroadcastEngine
    from broadcasts.message import Courier
    from broadcasts.workflow import Campaigns

log = logging.getLogger(__name__)


def build_engine(settings: Settings, kb: KnowledgeBase | None = None) -> FaqEngine:
    """Load the content pack (failing with every problem named) and index it."""
    kb = kb or load_pack(settings.content.dir)
    return FaqEngine(
        kb,
        suggestions=settings.faq.suggestions,
        overrides=settings.faq.overrides(),
        cache_dir=settings.content.cache_dir,
    )


_ENGINES: dict[tuple[Any, ...], FaqEngine] = {}


def shared_engine(settings: Settings) -> FaqEngine:
    """``build_engine``, once per process while the pack's files and the thresholds are the
    same: every ``open_services`` of one process (a CLI command, the test suite) shares the
    index instead of spending a second building it again. The engine is read-only."""
    folder = Path(settings.content.dir) if settings.content.dir else BUNDLED_PACK
    files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
    stamp = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    key = (str(folder.resolve()), stamp, settings.faq.model_dump_json(), dt.date.today())
    engine = _ENGINES.get(key)
    if engine is None:
        engine = build_engine(settings)
        if len(_ENGINES) >= 4:
            _ENGINES.clear()
        _ENGINES[key] = engine
    return engine


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: FaqEngine
    storage: Storage
    dispatcher: Dispatcher

    @property
    def kb(self) -> KnowledgeBase:
        return self.engine.kb

    @property
    def conversations(self) -> ConversationLog:
        return self.storage.conversations

    @property
    def gaps(self) -> GapLog:
        return self.storage.gaps

    async def purge_expired(self, now: dt.datetime | None = None) -> tuple[int, int]:
        return await purge_expired(self.storage, self.settings, now)


@dataclass(slots=True)
class Storage:
    db: AsyncEngine
    conversations: ConversationLog
    gaps: GapLog
    subscribers: SubscriberRepository
    updates: ProcessedUpdates
    tokens: TokenStore
    choices: OfferedChoices
    campaigns: CampaignRepository
    rate_buckets: RateBuckets
    sessions: CitizenSessions
    feedback: FeedbackRepository
    feedback_inbox: FeedbackInbox
    accounts: AccountRepository
    audit: AuditLog


@asynccontextmanager
async def open_storage(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Storage]:
    """The database with its repositories, migrated to the latest schema."""
    database = db.create_engine(settings.database.url, echo=settings.database.echo)
    writer = LogWriter(database)
    try:
        if migrate:
            await db.upgrade(database)
        sessions = db.sessionmaker(database)
        await writer.start()
        try:
            yield Storage(
                database,
                ConversationLog(sessions, writer),
                GapLog(sessions, writer),
                SubscriberRepository(sessions, writer),
                ProcessedUpdates(sessions),
                TokenStore(sessions),
                OfferedChoices(sessions),
                CampaignRepository(sessions),
                RateBuckets(sessions),
                CitizenSessions(sessions),
                FeedbackRepository(sessions),
                FeedbackInbox(sessions),
                AccountRepository(sessions),
                AuditLog(sessions),
            )
        finally:
            await writer.close()
    finally:
        await database.dispose()


async def purge_expired(
    storage: Storage, settings: Settings, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Delete logs older than the retention settings; returns (turns, gaps) deleted."""
    now = now or dt.datetime.now(dt.UTC)
    privacy = settings.privacy
    turns = await storage.conversations.purge(
        now - dt.timedelta(days=privacy.conversation_retention_days)
    )
    gaps = await storage.gaps.purge(now - dt.timedelta(days=privacy.gap_retention_days))
    deliveries = await storage.campaigns.purge_deliveries(
        now - dt.timedelta(days=privacy.delivery_retention_days)
    )
    if deliveries:
        log.info("retention: deleted %d broadcast delivery records", deliveries)
    contacts = await storage.feedback.purge_contacts(
        now - dt.timedelta(days=settings.feedback.contact_retention_days)
    )
    if contacts:
        log.info("retention: erased contact fields of %d closed feedback items", contacts)
    await storage.sessions.purge(now)
    admin = settings.admin
    await storage.accounts.purge_sessions(
        idle_before=now - dt.timedelta(minutes=admin.idle_minutes),
        opened_before=now - dt.timedelta(hours=admin.absolute_hours),
    )
    await storage.accounts.purge_throttle(now - dt.timedelta(minutes=admin.lockout_minutes))
    audited = await storage.audit.purge(now - dt.timedelta(days=admin.audit_retention_days))
    if audited:
        log.info("retention: deleted %d audit log rows", audited)
    # Delivery ids are remembered as long as a platform may redeliver them, and no longer.
    await storage.updates.purge(now - dt.timedelta(seconds=settings.zalo.event_max_age_seconds))
    if turns or gaps:
        log.info("retention: deleted %d conversation turns and %d gap records", turns, gaps)
    return turns, gaps


@asynccontextmanager
async def open_services(settings: Settings, *, migrate: bool = True) -> AsyncIterator[Services]:
    engine = shared_engine(settings)
    async with open_storage(settings, migrate=migrate) as storage:
        context = HandlerContext(
            engine.kb,
            engine,
            storage.conversations,
            storage.gaps,
            storage.subscribers,
            storage.sessions,
            storage.feedback,
            settings.feedback,
        )
        # Order matters: the first route that matches wins; the FAQ catches all other text.
        # A guided flow (survey, complaint) in progress takes the citizen's messages first.
        dispatcher = Dispatcher(
            [
                start.router,
                privacy.router,
                survey.router,
                complaints.router,
                feedback.router,
                subscriptions.router,
                topics.router,
                # Before the FAQ: a typed procedure code goes straight to its procedure.
                procedures.router,
                faq.router,
            ],
            context,
        )
        yield Services(settings, engine, storage, dispatcher)


def build_campaigns(services: Services) -> Campaigns:
    """The campaign workflow over this deployment's storage, settings and topics."""
    from broadcasts.workflow import Campaigns

    return Campaigns(
        services.storage.campaigns,
        services.settings.broadcast,
        topics={t.id for t in services.kb.subscription_topics},
    )


def opt_out_line(services: Services) -> str:
    """The line every broadcast ends with (content pack message ``opt_out_hint``)."""
    return services.dispatcher.context.say("opt_out_hint")


def broadcast_engine(
    services: Services, couriers: Mapping[str, Courier], **options: Any
) -> BroadcastEngine:
    """The broadcast engine over this deployment's campaigns and channels (``options``:
    ``worker``, ``supervise_interval``)."""
    from broadcasts.engine import BroadcastEngine

    return BroadcastEngine(
        build_campaigns(services),
        services.storage.rate_buckets,
        couriers,
        services.settings.broadcast,
        opt_out_line=opt_out_line(services),
        **options,
    )
