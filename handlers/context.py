"""What handlers receive besides the message: the knowledge base, the FAQ engine and the logs.

Passed explicitly by the composition root; handlers hold no globals.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from bot.messages import Inbound
from content.models import KnowledgeBase
from content.search import FaqEngine
from handlers.router import HandlerResult
from storage.repositories import ConversationLog, GapLog


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

    def say(self, key: str, **values: Any) -> str:
        """A fixed message from the pack's messages.yaml with its placeholders filled."""
        info = self.kb.info
        hotlines = "; ".join(f"{h.label}: {h.phone}" for h in info.hotlines)
        mapping = _Blank(
            name=info.name,
            province=info.province,
            portal_url=info.portal_url,
            hotlines=hotlines or info.portal_url,
        )
        mapping.update(values)
        return _FORMATTER.vformat(self.kb.messages[key], (), mapping).strip()

    async def record_turn(self, inbound: Inbound, result: HandlerResult) -> None:
        text = inbound.text if inbound.payload is None else f"[{inbound.payload}]"
        await self.conversations.record(
            channel=inbound.channel,
            user_id=inbound.user_id,
            text=text,
            outcome=result.outcome,
            entry_id=result.entry_id,
            score=result.score,
        )
