"""Turn the procedure catalogue into knowledge-base entries: one generated file per procedure
in ``entries/thu-tuc/`` of a pack, and a report of what was added, changed and removed.

An answer says only what the catalogue says. Long sections are shortened in the answer and
kept in full under ``details`` (each one a "Xem đầy đủ" button). Hand-written entries live
outside the generated folder and are never read or written here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from content.models import Agency
from content.normalize import fold
from content.procedures import entry_id, portal_url
from content.tthc_source import Catalogue, ProcedureRecord

GENERATED_DIR = Path("entries") / "thu-tuc"
OTHER_TOPIC = "thu-tuc-khac"
OTHER_TOPIC_TITLE = "Thủ tục hành chính khác"
DEFAULT_SOURCE = "Cơ sở dữ liệu quốc gia về thủ tục hành chính"
SHORT_CHARS = 300
SOURCE_CHARS = 200
CARD_CHARS = 120

# Folded keywords of "Lĩnh vực" → topic id, the first that appears wins.
TOPIC_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("ho kinh doanh", "kinh-doanh"),
    ("ho tich", "ho-tich"),
    ("chung thuc", "ho-tich"),
    ("ly lich tu phap", "ho-tich"),
    ("nuoi con nuoi", "ho-tich"),
    ("cu tru", "cu-tru"),
    ("can cuoc", "dinh-danh"),
    ("dinh danh", "dinh-danh"),
    ("dat dai", "dat-dai-xay-dung"),
    ("xay dung", "dat-dai-xay-dung"),
    ("nha o", "dat-dai-xay-dung"),
    ("kinh doanh", "kinh-doanh"),
    ("doanh nghiep", "kinh-doanh"),
    ("duong bo", "giao-thong"),
    ("giao thong", "giao-thong"),
    ("xuat nhap canh", "giao-thong"),
    ("lao dong", "lao-dong-an-sinh"),
    ("viec lam", "lao-dong-an-sinh"),
    ("bao hiem", "lao-dong-an-sinh"),
    ("bao tro xa hoi", "lao-dong-an-sinh"),
    ("nguoi co cong", "lao-dong-an-sinh"),
)

# (field key, label in the answer, section title as the portal names it), in answer order.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("agency", "Làm ở đâu", "Cơ quan thực hiện"),
    ("methods", "Cách thức", "Cách thức thực hiện"),
    ("documents", "Cần chuẩn bị", "Thành phần hồ sơ"),
    ("time_limit", "Thời hạn giải quyết", "Thời hạn giải quyết"),
    ("fee", "Phí, lệ phí", "Phí, lệ phí"),
    ("subjects", "Ai thực hiện", "Đối tượng thực hiện"),
    ("result", "Kết quả", "Kết quả thực hiện"),
    ("conditions", "Yêu cầu, điều kiện", "Yêu cầu, điều kiện"),
    ("steps", "Các bước", "Trình tự thực hiện"),
)
_LEGAL_TITLE = "Căn cứ pháp lý"
_PROPER_STARTS = ("viet nam", "nha nuoc", "chinh phu", "quoc hoi", "bo ", "so ", "ngan hang")
_BULLETS = ("-", "+", "•", "*", "–")


def shorten(text: str, limit: int = SHORT_CHARS) -> tuple[str, bool]:
    """The first lines of ``text`` within ``limit`` characters, ending with "…" when cut."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    if len(kept) == len(lines):
        return "\n".join(kept), False
    if not kept:
        cut = lines[0][:limit].rsplit(" ", 1)[0] if " " in lines[0][:limit] else lines[0][:limit]
        kept = [cut.rstrip(" ,;:.")]
    kept[-1] = kept[-1].rstrip(" ,;:.") + "…"
    return "\n".join(kept), True


def _one_line(text: str, limit: int) -> str:
    """Whole lines of ``text`` within ``limit``, joined with "; " (ending with "…" when cut)."""
    short, _ = shorten(text, limit)
    return "; ".join(line.strip(" ;") for line in short.splitlines() if line.strip(" ;"))


def question_title(name: str) -> str:
    """The citizen's question of a procedure name: "Đăng ký khai sinh" → "Thủ tục đăng ký
    khai sinh thực hiện thế nào?" ("thủ tục" said once)."""
    name = " ".join(name.split()).rstrip(".?")
    if fold(name).startswith("thu tuc "):
        name = name.split(" ", 2)[2]
    first = name.split(" ", 1)[0]
    # Procedure names open with a verb ("Đăng ký", "Cấp"); only an acronym ("UBND", "BHYT")
    # or a name of a place or a body keeps its capital.
    proper = (first.isupper() and len(first) > 1) or fold(name).startswith(_PROPER_STARTS)
    if not proper:
        name = name[:1].lower() + name[1:]
    return f"Thủ tục {name} thực hiện thế nào?"


def topic_for(field_text: str, topics: set[str]) -> str:
    padded = f" {fold(field_text)} "
    for keyword, topic in TOPIC_KEYWORDS:
        if f" {keyword} " in padded and topic in topics:
            return topic
    return OTHER_TOPIC


def agencies_for(text: str, agencies: dict[str, Agency]) -> list[str]:
    """Agency ids whose name is exactly one of the agencies the text names (nothing guessed)."""
    names: dict[str, str] = {}
    for agency in agencies.values():
        names.setdefault(fold(agency.name), agency.id)
        names.setdefault(fold(agency.name.split("(", 1)[0]), agency.id)
    found: list[str] = []
    for piece in text.replace("\n", ";").split(";"):
        agency_id = names.get(fold(piece))
        if agency_id and agency_id not in found:
            found.append(agency_id)
    return found


def _section(label: str, text: str) -> str:
    lines = text.splitlines()
    if len(lines) == 1:
        return f"**{label}:** {lines[0]}"
    bullets = [line if line.startswith(_BULLETS) else f"- {line}" for line in lines]
    return f"**{label}:**\n" + "\n".join(bullets)


def build_entry(
    record: ProcedureRecord, topics: set[str], agencies: dict[str, Agency], today: dt.date
) -> dict[str, Any]:
    """The entry of one procedure, as the YAML mapping written to its file."""
    f = record.fields
    parts = [f"**{record.name}** (mã thủ tục {record.code})"]
    details: dict[str, str] = {}
    for key, label, title in SECTIONS:
        text = f.get(key, "")
        level = f.get("level", "")
        if key == "agency" and level and fold(level) not in fold(text):
            text = f"{text} ({level})" if text else f"Cấp thực hiện: {level}"
        if not text:
            continue
        short, cut = shorten(text)
        parts.append(_section(label, short))
        if cut:
            details[title] = f.get(key, text)
    source = DEFAULT_SOURCE
    if f.get("legal_basis"):
        source = _one_line(f["legal_basis"], SOURCE_CHARS)
        if source.endswith("…"):
            details[_LEGAL_TITLE] = f["legal_basis"]
    entry: dict[str, Any] = {
        "id": entry_id(record.code),
        "title": question_title(record.name),
        "topic": topic_for(f.get("field", ""), topics),
    }
    agency_ids = agencies_for(f.get("agency", ""), agencies)
    if agency_ids:
        entry["agency"] = agency_ids[0] if len(agency_ids) == 1 else agency_ids
    entry["answer"] = "\n".join(parts)
    # How citizens ask for a procedure by its name: "thủ tục đăng ký khai sinh".
    entry["phrasings"] = [entry["title"].removesuffix(" thực hiện thế nào?")]
    entry["keywords"] = [k for k in (record.name, f.get("field", "")) if k]
    entry["source"] = source
    entry["source_url"] = portal_url(record.code)
    entry["reviewed"] = today
    card = {"code": record.code, "name": record.name}
    for key, card_key in (
        ("agency", "agency"),
        ("level", "level"),
        ("time_limit", "time_limit"),
        ("fee", "fee"),
    ):
        if f.get(key):
            card[card_key] = _one_line(f[key], CARD_CHARS)
    entry["procedure"] = card
    if details:
        entry["details"] = details
    return entry


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, so the generated files read like hand-written ones."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


@dataclass(slots=True)
class ImportPlan:
    """What an import changes: codes with names, and the files to write and delete."""

    added: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    writes: dict[Path, str] = field(default_factory=dict)
    deletes: list[Path] = field(default_factory=list)
    add_topic: bool = False


def _comparable(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "reviewed"}


def _existing(folder: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Entries of the generated folder by procedure code (unreadable files count as absent)."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            data = None
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
        card = item.get("procedure")
        code = card.get("code") if isinstance(card, dict) else None
        found[str(code) if code else f"?{path.name}"] = (path, item)
    return found


def plan_import(
    catalogue: Catalogue,
    pack: Path,
    *,
    topics: set[str],
    agencies: dict[str, Agency],
    source_name: str,
    now: dt.datetime,
) -> ImportPlan:
    folder = pack / GENERATED_DIR
    old = _existing(folder)
    plan = ImportPlan()
    header = (
        f"# Tệp sinh tự động bởi `bot content import-tthc` từ {source_name} "
        f"lúc {now:%Y-%m-%d %H:%M} UTC.\n"
        "# Đừng sửa tay: lần nhập sau sẽ ghi đè. Sửa dữ liệu nguồn rồi nhập lại, hoặc viết câu\n"
        "# hỏi riêng ngoài thư mục này (có thể dẫn tới thủ tục bằng 'procedures: [mã]').\n"
    )
    for record in catalogue.records:
        entry = build_entry(record, topics, agencies, now.date())
        plan.add_topic = plan.add_topic or entry["topic"] == OTHER_TOPIC
        previous = old.pop(record.code, None)
        if previous is not None and _comparable(previous[1]) == _comparable(entry):
            plan.unchanged += 1
            continue
        (plan.changed if previous else plan.added).append((record.code, record.name))
        if previous is not None and previous[0].name != f"{record.code}.yaml":
            plan.deletes.append(previous[0])
        body = yaml.dump([entry], Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
        plan.writes[folder / f"{record.code}.yaml"] = header + "\n" + body
    for code, (path, item) in sorted(old.items()):
        card = item.get("procedure")
        name = card.get("name") if isinstance(card, dict) else None
        plan.removed.append((code.lstrip("?"), str(name or path.name)))
        plan.deletes.append(path)
    plan.add_topic = plan.add_topic and OTHER_TOPIC not in topics
    return plan


def apply_plan(plan: ImportPlan, pack: Path) -> None:
    """Write the plan: generated files, deletions, and the catch-all topic when it is new."""
    (pack / GENERATED_DIR).mkdir(parents=True, exist_ok=True)
    for path in plan.deletes:
        path.unlink(missing_ok=True)
    for path, text in plan.writes.items():
        path.write_text(text, encoding="utf-8")
    if plan.add_topic:
        topics_file = pack / "topics.yaml"
        data = yaml.safe_load(topics_file.read_text(encoding="utf-8")) or []
        order = max((int(t.get("order") or 0) for t in data if isinstance(t, dict)), default=0)
        text = topics_file.read_text(encoding="utf-8").rstrip("\n")
        topics_file.write_text(
            f"{text}\n- id: {OTHER_TOPIC}\n  title: {OTHER_TOPIC_TITLE}\n"
            "  description: Các thủ tục hành chính đã nhập chưa xếp vào chủ đề nào ở trên.\n"
            f"  order: {order + 1}\n",
            encoding="utf-8",
        )


def report_lines(plan: ImportPlan, catalogue: Catalogue) -> list[str]:
    """The import report in Vietnamese, for the staff who ran it."""
    lines = [
        f"Thêm mới: {len(plan.added)}; thay đổi: {len(plan.changed)}; "
        f"bỏ đi: {len(plan.removed)}; không đổi: {plan.unchanged}."
    ]
    for title, items in (
        ("Thêm mới", plan.added),
        ("Thay đổi", plan.changed),
        ("Bỏ đi (không còn trong tệp)", plan.removed),
    ):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  {code}  {name}" for code, name in items)
    if plan.add_topic:
        lines.append(f"Thêm chủ đề '{OTHER_TOPIC}' ({OTHER_TOPIC_TITLE}) vào topics.yaml.")
    if catalogue.unknown_columns:
        lines.append("Cột không dùng (bỏ qua): " + ", ".join(catalogue.unknown_columns) + ".")
    if catalogue.skipped:
        lines.append(f"Bỏ qua {len(catalogue.skipped)} dòng:")
        lines.extend(f"  {reason}" for reason in catalogue.skipped)
    return lines
