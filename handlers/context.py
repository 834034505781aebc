"""What handlers receive besides the message: the knowledge base, the FAQ engine and the logs.

Passed explicitly by the composition root; handlers hold no globals.
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from typing import Any

from bot.messages import Inbound, Reply
from bot.settings import FeedbackSettings
from content.models import KnowledgeBase
from content.search import FaqEngine, MatchResult
from handlers.router import HandlerResult
from storage.feedback import FeedbackRepository
from storage.repositories import ConversationLog, GapLog
from storage.sessions import CitizenSessions
from storage.subscribers import SubscriberRepository

# Channels that can push messages to a citizen (and so keep subscriber records).
PUSH_CHANNELS = frozenset({"telegram", "zalo"})

log = logging.getLogger(__name__)


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


_FORMATTER = string.Formatter()


@dataclass(slots=True)
class HandlerContext:
    kb: KnowledgeBase
    engine: FaqEngine
    conversations: ConversationLog
    gaps: GapLog
    subscribers: SubscriberRepository
    sessions: CitizenSessions
    feedback: FeedbackRepository
    feedback_settings: FeedbackSettings

    def say(self, key: str, *, default: str | None = None, **values: Any) -> str:
        """A fixed message from the pack's messages.yaml with its placeholders filled
        (``default`` for a message a pack written before it existed may lack)."""
        info = self.kb.info
        hotlines = "; ".join(f"{h.label}: {h.phone}" for h in info.hotlines)
        mapping = _Blank(
            name=info.name,
            province=info.province,
            portal_url=info.portal_url,
            hotlines=hotlines or info.portal_url,
        )
        mapping.update(values)
        template = self.kb.messages.get(key, default)
        if template is None:
            raise KeyError(key)
        return _FORMATTER.vformat(template, (), mapping).strip()

    async def take_notices(self, inbound: Inbound) -> list[Reply]:
        """Staff answers waiting for this citizen's next message (see handlers.notices)."""
        from handlers.notices import take_notices

        try:
            return await take_notices(self, inbound)
        except Exception:
            # The citizen's own question still gets its answer; the notice waits.
            log.exception("could not hand over waiting answers (channel %s)", inbound.channel)
            return []

    async def touch(self, inbound: Inbound) -> None:
        """Keep the subscriber record's last interaction (Zalo's 7-day window depends on it)."""
        if inbound.channel not in PUSH_CHANNELS:
            return
        self.subscribers.touch_soon(
            inbound.channel, inbound.user_id, display_name=inbound.display_name
        )

    async def record_turn(self, inbound: Inbound, result: HandlerResult) -> None:
        """Log the turn. A failing log must not cost the citizen the answer: it is reported
        and the reply still goes out."""
        if not result.record:
            return
        text = inbound.text if inbound.payload is None else f"[{inbound.payload}]"
        if result.private_text:
            # What a citizen wrote into a complaint or a survey lives in the feedback item
            # (with its own retention), not twice.
            text = "[nội dung góp ý]"
        try:
            await self.conversations.record(
                channel=inbound.channel,
                user_id=inbound.user_id,
                text=text,
                outcome=result.outcome,
                entry_id=result.entry_id,
                score=result.score,
            )
        except Exception:
            log.exception("could not record a conversation turn (channel %s)", inbound.channel)

    async def record_gap(self, inbound: Inbound, result: MatchResult) -> None:
        """Log a question answered with a clarification or the fallback, for the content team."""
        if not result.normalized:
            return
        try:
            await self.gaps.record(
                channel=inbound.channel,
                user_id=inbound.user_id,
                normalized_text=result.normalized,
                outcome=result.outcome.value,
                top_score=result.best.score if result.best else None,
                candidates=[{"entry_id": h.entry.id, "score": h.score} for h in result.hits],
            )
        except Exception:
            log.exception("could not record an unanswered question (channel %s)", inbound.channel)
