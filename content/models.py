"""Frozen models of a content pack: what the loader produces and the engine reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Topic:
    id: str
    title: str
    description: str = ""
    order: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionTopic:
    """A kind of news citizens can subscribe to."""

    id: str
    title: str
    default: bool = False


@dataclass(frozen=True, slots=True)
class Agency:
    id: str
    name: str
    group: str
    note: str = ""
    phone: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePoint:
    """Where a citizen was served, as the satisfaction survey names it."""

    id: str
    name: str
    group: str
    agency: str | None = None


@dataclass(frozen=True, slots=True)
class ServicePointGroup:
    """A group of service points: the survey's first tap, the point being the second."""

    id: str
    title: str
    points: tuple[ServicePoint, ...] = ()


@dataclass(frozen=True, slots=True)
class ProcedureCard:
    """The official facts of an administrative procedure (thủ tục hành chính) as its card
    shows them: an entry imported by ``bot content import-tthc`` carries one."""

    code: str
    name: str
    agency: str = ""
    level: str = ""
    time_limit: str = ""
    fee: str = ""


@dataclass(frozen=True, slots=True)
class FaqEntry:
    """One question and its answer (an FAQ entry of the knowledge base)."""

    id: str
    title: str
    topic: str
    answer: str
    source: str
    reviewed: dt.date
    agencies: tuple[str, ...] = ()
    phrasings: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    source_url: str | None = None
    related: tuple[str, ...] = ()
    file: str = ""
    # Codes of procedures whose official card is shown under the answer.
    procedures: tuple[str, ...] = ()
    # (section title, full text) pairs, each offered as a "show in full" button.
    details: tuple[tuple[str, str], ...] = ()
    # Set on an entry imported from the procedure catalogue.
    procedure: ProcedureCard | None = None


@dataclass(frozen=True, slots=True)
class Hotline:
    label: str
    phone: str


@dataclass(frozen=True, slots=True)
class PackInfo:
    name: str
    province: str
    portal_url: str
    former_names: tuple[str, ...] = ()
    hotlines: tuple[Hotline, ...] = ()


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Words the matcher needs to understand citizens: abbreviations, synonyms, particles."""

    abbreviations: dict[str, str] = field(default_factory=dict)
    synonyms: tuple[tuple[str, ...], ...] = ()
    particles: frozenset[str] = frozenset()
    # Indices into ``synonyms`` of the groups that are aspects, not subjects.
    aspects: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """A validated content pack."""

    info: PackInfo
    topics: tuple[Topic, ...]
    agencies: dict[str, Agency]
    entries: tuple[FaqEntry, ...]
    messages: dict[str, str]
    lexicon: Lexicon
    subscription_topics: tuple[SubscriptionTopic, ...] = ()
    service_groups: tuple[ServicePointGroup, ...] = ()
    directory: str = ""
    # Problems that do not stop the bot (``bot content check`` prints them).
    warnings: tuple[str, ...] = ()

    _by_id: dict[str, FaqEntry] = field(init=False, repr=False, compare=False)
    _by_code: dict[str, FaqEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass sets derived fields through object.__setattr__.
        object.__setattr__(self, "_by_id", {e.id: e for e in self.entries})
        by_code = {e.procedure.code: e for e in self.entries if e.procedure is not None}
        object.__setattr__(self, "_by_code", by_code)

    def service_point(self, point_id: str) -> ServicePoint | None:
        for group in self.service_groups:
            for point in group.points:
                if point.id == point_id:
                    return point
        return None

    def service_group(self, group_id: str) -> ServicePointGroup | None:
        return next((g for g in self.service_groups if g.id == group_id), None)

    def entry(self, entry_id: str) -> FaqEntry | None:
        return self._by_id.get(entry_id)

    def procedure_entry(self, code: str) -> FaqEntry | None:
        """The imported entry of the procedure with this code (as ``normalize_code`` gives it)."""
        return self._by_code.get(code)

    def topic(self, topic_id: str) -> Topic | None:
        return next((t for t in self.topics if t.id == topic_id), None)

    def entries_in(self, topic_id: str) -> list[FaqEntry]:
        return [e for e in self.entries if e.topic == topic_id]
