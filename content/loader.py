"""Load and validate a content pack (see content/README.md for the format).

Validation collects every problem before failing, each named by file and entry id, so a
communicator fixes a pack in one pass. The same function backs start-up and ``bot content check``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from content.models import (
    Agency,
    FaqEntry,
    Hotline,
    KnowledgeBase,
    Lexicon,
    PackInfo,
    ServicePoint,
    ServicePointGroup,
    SubscriptionTopic,
    Topic,
)
from content.normalize import nfc
from content.procedures import ProcedureFields, duplicate_codes, unknown_codes

BUNDLED_PACK = Path(__file__).parent / "pack"
# libyaml's safe loader where PyYAML was built with it (ten times faster on a whole pack);
# the pure-Python one otherwise. Both are the safe loader: plain data, no Python objects.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LEXICON_DIR = Path(__file__).parent / "lexicon"

_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ENTRY_KEYS = {
    "id",
    "title",
    "topic",
    "answer",
    "source",
    "reviewed",
    "agency",
    "phrasings",
    "keywords",
    "source_url",
    "related",
    "procedures",
    "details",
    "procedure",
}
_REQUIRED_ENTRY_KEYS = ("id", "title", "topic", "answer", "source", "reviewed")
REQUIRED_MESSAGES = (
    "welcome",
    "help",
    "fallback",
    "clarify",
    "topics_menu",
    "topic_entries",
    "topic_empty",
    "empty_input",
    "unreadable_input",
    "source_line",
    "see_also",
    "feedback_info",
    "button_topics",
    "button_feedback",
    "button_back",
    "button_other",
)


class ContentError(Exception):
    """A pack failed validation; ``problems`` lists each one with its file and entry."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Nội dung không hợp lệ:\n" + "\n".join(f"- {p}" for p in problems))


def _clean(value: Any) -> Any:
    """NFC-normalise every string of a parsed YAML document, keeping its structure."""
    if isinstance(value, str):
        return nfc(value).strip()
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


class _Loader:
    def __init__(self, directory: Path, today: dt.date) -> None:
        self.dir = directory
        self.today = today
        self.problems: list[str] = []
        self.procedure_fields = ProcedureFields()

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def read(self, path: Path, *, required: bool = True) -> Any:
        if not path.exists():
            if required:
                self.problem(str(path), "thiếu tệp")
            return None
        try:
            text = path.read_text(encoding="utf-8")
            return _clean(yaml.load(text, Loader=_YAML_LOADER))  # noqa: S506 (a safe loader)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            self.problem(str(path), f"không đọc được YAML ({exc})")
            return None

    def info(self) -> PackInfo | None:
        path = self.dir / "pack.yaml"
        data = self.read(path)
        if not isinstance(data, dict):
            if data is not None:
                self.problem(str(path), "phải là một bảng khóa: giá trị")
            return None
        missing = [k for k in ("name", "province", "portal_url") if not data.get(k)]
        for key in missing:
            self.problem(str(path), f"thiếu '{key}'")
        hotlines: list[Hotline] = []
        for item in data.get("hotlines") or []:
            if not isinstance(item, dict) or not item.get("label") or not item.get("phone"):
                self.problem(str(path), "mỗi đường dây nóng cần 'label' và 'phone'")
                continue
            hotlines.append(Hotline(label=item["label"], phone=str(item["phone"])))
        if missing:
            return None
        return PackInfo(
            name=data["name"],
            province=data["province"],
            portal_url=data["portal_url"],
            former_names=tuple(data.get("former_names") or ()),
            hotlines=tuple(hotlines),
        )

    def topics(self) -> list[Topic]:
        path = self.dir / "topics.yaml"
        data = self.read(path) or []
        topics: list[Topic] = []
        seen: set[str] = set()
        for i, item in enumerate(data if isinstance(data, list) else []):
            where = f"{path} #{i + 1}"
            if not isinstance(item, dict) or not item.get("id") or not item.get("title"):
                self.problem(where, "chủ đề cần 'id' và 'title'")
                continue
            if item["id"] in seen:
                self.problem(f"{path} [{item['id']}]", "id chủ đề bị trùng")
                continue
            seen.add(item["id"])
            topics.append(
                Topic(
                    id=item["id"],
                    title=item["title"],
                    description=item.get("description") or "",
                    order=int(item.get("order") or 0),
                )
            )
        if not topics:
            self.problem(str(path), "cần ít nhất một chủ đề")
        return sorted(topics, key=lambda t: (t.order, t.title))

    def subscription_topics(self) -> list[SubscriptionTopic]:
        path = self.dir / "subscriptions.yaml"
        data = self.read(path) or []
        topics: list[SubscriptionTopic] = []
        for i, item in enumerate(data if isinstance(data, list) else []):
            if not isinstance(item, dict) or not item.get("id") or not item.get("title"):
                self.problem(f"{path} #{i + 1}", "chủ đề nhận tin cần 'id' và 'title'")
                continue
            if not _ID_RE.match(str(item["id"])) or any(t.id == item["id"] for t in topics):
                self.problem(
                    f"{path} [{item['id']}]", "id chủ đề nhận tin không hợp lệ hoặc bị trùng"
                )
                continue
            topics.append(
                SubscriptionTopic(
                    id=item["id"], title=item["title"], default=bool(item.get("default"))
                )
            )
        if topics and not any(t.default for t in topics):
            self.problem(str(path), "cần ít nhất một chủ đề mặc định (default: true)")
        return topics

    def agencies(self) -> dict[str, Agency]:
        path = self.dir / "agencies.yaml"
        data = self.read(path) or []
        agencies: dict[str, Agency] = {}
        for i, item in enumerate(data if isinstance(data, list) else []):
            if not isinstance(item, dict) or not item.get("id") or not item.get("name"):
                self.problem(f"{path} #{i + 1}", "cơ quan cần 'id' và 'name'")
                continue
            if item["id"] in agencies:
                self.problem(f"{path} [{item['id']}]", "id cơ quan bị trùng")
                continue
            website = item.get("website")
            if website and not str(website).startswith("https://"):
                self.problem(f"{path} [{item['id']}]", "website phải bắt đầu bằng https://")
            agencies[item["id"]] = Agency(
                id=item["id"],
                name=item["name"],
                group=item.get("group") or "",
                note=item.get("note") or "",
                phone=str(item["phone"]) if item.get("phone") else None,
                website=website,
            )
        return agencies

    def service_groups(self, agencies: set[str]) -> list[ServicePointGroup]:
        """``service_points.yaml``: groups of service points for the satisfaction survey."""
        path = self.dir / "service_points.yaml"
        data = self.read(path, required=False) or []
        groups: list[ServicePointGroup] = []
        seen: set[str] = set()
        for i, item in enumerate(data if isinstance(data, list) else []):
            where = f"{path} #{i + 1}"
            if not isinstance(item, dict) or not item.get("id") or not item.get("title"):
                self.problem(where, "nhóm nơi giải quyết cần 'id' và 'title'")
                continue
            points: list[ServicePoint] = []
            for point in item.get("points") or []:
                if not isinstance(point, dict) or not point.get("id") or not point.get("name"):
                    self.problem(f"{path} [{item['id']}]", "mỗi nơi giải quyết cần 'id' và 'name'")
                    continue
                point_id = str(point["id"])
                if not _ID_RE.match(point_id) or point_id in seen:
                    self.problem(
                        f"{path} [{point_id}]", "id nơi giải quyết không hợp lệ hoặc bị trùng"
                    )
                    continue
                agency = point.get("agency")
                if agency and agency not in agencies:
                    self.problem(
                        f"{path} [{point_id}]", f"cơ quan không có trong agencies.yaml: {agency}"
                    )
                seen.add(point_id)
                points.append(
                    ServicePoint(id=point_id, name=point["name"], group=item["id"], agency=agency)
                )
            if not points:
                self.problem(f"{path} [{item['id']}]", "nhóm cần ít nhất một nơi giải quyết")
                continue
            groups.append(
                ServicePointGroup(id=item["id"], title=item["title"], points=tuple(points))
            )
        return groups

    def messages(self) -> dict[str, str]:
        path = self.dir / "messages.yaml"
        data = self.read(path)
        if not isinstance(data, dict):
            if data is not None:
                self.problem(str(path), "phải là một bảng khóa: câu chữ")
            return {}
        messages = {str(k): str(v) for k, v in data.items() if v is not None}
        for key in REQUIRED_MESSAGES:
            if not messages.get(key):
                self.problem(str(path), f"thiếu câu '{key}'")
        return messages

    def entries(self, topics: set[str], agencies: set[str]) -> list[FaqEntry]:
        folder = self.dir / "entries"
        # Sub-folders too: the procedure catalogue import writes to entries/thu-tuc/.
        files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
        if not files:
            self.problem(str(folder), "không có tệp câu hỏi nào (*.yaml)")
        entries: list[FaqEntry] = []
        first_seen: dict[str, str] = {}
        for path in files:
            data = self.read(path)
            if data is None:
                continue
            if not isinstance(data, list):
                self.problem(str(path), "phải là một danh sách câu hỏi")
                continue
            for i, item in enumerate(data):
                entry = self.entry(path, i, item, topics, agencies)
                if entry is None:
                    continue
                if entry.id in first_seen:
                    self.problem(
                        f"{path} [{entry.id}]", f"id bị trùng (đã có trong {first_seen[entry.id]})"
                    )
                    continue
                first_seen[entry.id] = str(path)
                entries.append(entry)
        known = set(first_seen)
        for entry in entries:
            for rel in entry.related:
                if rel not in known:
                    self.problem(
                        f"{entry.file} [{entry.id}]", f"'related' trỏ tới id không có: {rel}"
                    )
        self.problems.extend(duplicate_codes(entries))
        return entries

    def entry(
        self, path: Path, index: int, item: Any, topics: set[str], agencies: set[str]
    ) -> FaqEntry | None:
        if not isinstance(item, dict):
            self.problem(f"{path} #{index + 1}", "mỗi câu hỏi phải là một bảng khóa: giá trị")
            return None
        entry_id = item.get("id")
        where = f"{path} [{entry_id}]" if entry_id else f"{path} #{index + 1}"
        ok = True
        for key in sorted(set(item) - _ENTRY_KEYS):
            self.problem(where, f"khóa lạ '{key}' (có phải gõ nhầm?)")
            ok = False
        for key in _REQUIRED_ENTRY_KEYS:
            if item.get(key) in (None, ""):
                self.problem(where, f"thiếu '{key}'" if key != "answer" else "câu trả lời trống")
                ok = False
        if entry_id and (not isinstance(entry_id, str) or not _ID_RE.match(entry_id)):
            self.problem(where, "id chỉ gồm chữ thường không dấu, số và dấu gạch ngang")
            ok = False
        title = item.get("title")
        if isinstance(title, str) and title and not title.endswith("?"):
            self.problem(where, "tiêu đề là câu hỏi của người dân, phải kết thúc bằng '?'")
            ok = False
        topic = item.get("topic")
        if topic and topic not in topics:
            self.problem(where, f"chủ đề không có trong topics.yaml: {topic}")
            ok = False
        agency = item.get("agency") or []
        agency_ids = [agency] if isinstance(agency, str) else list(agency)
        for agency_id in agency_ids:
            if agency_id not in agencies:
                self.problem(where, f"cơ quan không có trong agencies.yaml: {agency_id}")
                ok = False
        reviewed = item.get("reviewed")
        if isinstance(reviewed, str):
            try:
                reviewed = dt.date.fromisoformat(reviewed)
            except ValueError:
                reviewed = None
        if item.get("reviewed") is not None:
            if not isinstance(reviewed, dt.date):
                self.problem(where, "'reviewed' phải là ngày dạng YYYY-MM-DD")
                ok = False
            elif reviewed > self.today:
                self.problem(where, "'reviewed' là một ngày trong tương lai")
                ok = False
        url = item.get("source_url")
        if url and not str(url).startswith("https://"):
            self.problem(where, "'source_url' phải bắt đầu bằng https://")
            ok = False
        lists: dict[str, tuple[str, ...]] = {}
        for key in ("phrasings", "keywords", "related"):
            value = item.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                self.problem(where, f"'{key}' phải là danh sách chuỗi không rỗng")
                ok = False
                value = []
            lists[key] = tuple(value)
        fields = self.procedure_fields
        before = len(fields.problems)
        procedures = fields.codes(where, item.get("procedures"))
        details = fields.details(where, str(entry_id), item.get("details"))
        card = fields.card(where, item.get("procedure"))
        if len(fields.problems) > before:
            self.problems.extend(fields.problems[before:])
            ok = False
        if not ok or not isinstance(reviewed, dt.date):
            return None
        return FaqEntry(
            id=str(entry_id),
            title=str(title),
            topic=str(topic),
            answer=item["answer"],
            source=str(item["source"]),
            reviewed=reviewed,
            agencies=tuple(agency_ids),
            phrasings=lists["phrasings"],
            keywords=lists["keywords"],
            source_url=url,
            related=lists["related"],
            file=str(path),
            procedures=procedures,
            details=details,
            procedure=card,
        )

    def lexicon(self) -> Lexicon:
        abbreviations: dict[str, str] = {}
        for path in (LEXICON_DIR / "teencode.yaml", self.dir / "abbreviations.yaml"):
            data = self.read(path, required=path.parent == LEXICON_DIR)
            if data is None:
                continue
            if not isinstance(data, dict):
                self.problem(str(path), "phải là một bảng từ viết tắt: nghĩa")
                continue
            abbreviations.update({nfc(str(k)).casefold(): str(v) for k, v in data.items() if v})
        synonyms: list[tuple[str, ...]] = []
        path = self.dir / "synonyms.yaml"
        data = self.read(path, required=False) or []
        for i, group in enumerate(data if isinstance(data, list) else []):
            if not isinstance(group, list) or len(group) < 2:
                self.problem(f"{path} #{i + 1}", "mỗi nhóm đồng nghĩa cần ít nhất hai từ")
                continue
            synonyms.append(tuple(str(w) for w in group))
        aspects = [tuple(str(w) for w in g) for g in self.read(LEXICON_DIR / "aspects.yaml") or []]
        particles = self.read(LEXICON_DIR / "particles.yaml") or []
        return Lexicon(
            abbreviations=abbreviations,
            synonyms=tuple(synonyms) + tuple(aspects),
            aspects=frozenset(range(len(synonyms), len(synonyms) + len(aspects))),
            particles=frozenset(nfc(str(p)).casefold() for p in particles),
        )


def load_pack(
    directory: Path | str | None = None, *, today: dt.date | None = None
) -> KnowledgeBase:
    """Load the pack at ``directory`` (the bundled one by default) or raise ContentError."""
    folder = Path(directory) if directory else BUNDLED_PACK
    loader = _Loader(folder, today or dt.date.today())
    if not folder.is_dir():
        raise ContentError([f"{folder}: không tìm thấy thư mục nội dung"])
    info = loader.info()
    topics = loader.topics()
    agencies = loader.agencies()
    messages = loader.messages()
    entries = loader.entries({t.id for t in topics}, set(agencies))
    lexicon = loader.lexicon()
    subscription_topics = loader.subscription_topics()
    service_groups = loader.service_groups(set(agencies))
    if loader.problems or info is None:
        raise ContentError(loader.problems or [f"{folder}: pack.yaml không hợp lệ"])
    return KnowledgeBase(
        info=info,
        topics=tuple(topics),
        agencies=agencies,
        entries=tuple(entries),
        messages=messages,
        lexicon=lexicon,
        subscription_topics=tuple(subscription_topics),
        service_groups=tuple(service_groups),
        directory=str(folder),
        warnings=tuple(unknown_codes(entries)),
    )
