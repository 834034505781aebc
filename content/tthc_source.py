"""Read the national procedure catalogue (thủ tục hành chính) as exported from the portal:
CSV, XLSX or JSON, its columns recognised by their Vietnamese headers or the portal's keys.

Headers are compared folded (no case, no diacritics, punctuation as spaces), so "Mã thủ tục",
"MA THU TUC" and ``MA_THU_TUC`` are the same column. Nothing is guessed about a row: a row
without a valid code or a name is skipped and reported with its row number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content.normalize import fold, nfc
from content.procedures import normalize_code

# Field key → the folded headers and JSON keys that name it, the preferred first.
FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("ma thu tuc", "ma tthc", "tthc ma", "ma thu tuc hanh chinh", "id"),
    "name": (
        "ten thu tuc",
        "ten tthc",
        "ten thu tuc hanh chinh",
        "procedure name",
        "name",
        "tthc ten",
    ),
    "field": ("linh vuc", "linh vuc thuc hien", "ten linh vuc"),
    "level": ("cap thuc hien", "cap"),
    "agency": ("co quan thuc hien", "co quan giai quyet"),
    "steps": ("trinh tu thuc hien",),
    "methods": ("cach thuc thuc hien",),
    "documents": ("thanh phan ho so", "thanh phan so luong ho so"),
    "time_limit": ("thoi han giai quyet", "thoi gian giai quyet"),
    "fee": ("phi le phi", "le phi", "phi"),
    "subjects": ("doi tuong thuc hien",),
    "result": ("ket qua thuc hien", "ket qua"),
    "legal_basis": ("can cu phap ly",),
    "conditions": ("yeu cau dieu kien", "yeu cau dieu kien thuc hien"),
}
_ALIASES = {alias: key for key, aliases in FIELDS.items() for alias in aliases}
_PRIORITY = {alias: i for aliases in FIELDS.values() for i, alias in enumerate(aliases)}
# Where a JSON export nests its list of records.
_JSON_LIST_KEYS = ("data", "items", "result", "results", "records", "procedures", "rows")
# Rows searched for the header line (an export may open with a title row or a note).
_HEADER_SEARCH_ROWS = 10


class CatalogueError(Exception):
    """The file cannot be imported at all (unreadable, or no code or name column)."""


@dataclass(frozen=True, slots=True)
class ProcedureRecord:
    """One procedure of the catalogue: its row number, code, name and the other fields."""

    row: int
    code: str
    name: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Catalogue:
    records: list[ProcedureRecord] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # "dòng" for spreadsheet rows, "mục" for JSON items.
    row_word: str = "dòng"


def column_key(header: str) -> str | None:
    """The field a column header names ("Phí/Lệ phí" → "fee"), or None."""
    return _ALIASES.get(fold(header))


def text_value(value: Any) -> str:
    """A cell or JSON value as NFC text: lists become lines, numbers keep their digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ""
    if isinstance(value, float):
        # A spreadsheet may have turned the code 2.000480 into the number 2.00048.
        return f"{value:.6f}" if 0 < value < 10 else f"{value:g}"
    if isinstance(value, list):
        return "\n".join(t for t in (text_value(v) for v in value) if t)
    if isinstance(value, dict):
        return "; ".join(t for t in (text_value(v) for v in value.values()) if t)
    lines = (line.rstrip() for line in nfc(str(value)).replace("\r\n", "\n").split("\n"))
    return "\n".join(lines).strip()


def _columns(headers: list[str]) -> tuple[dict[int, str], list[str]]:
    """Map column positions to fields (the preferred header wins a field named twice)."""
    chosen: dict[str, tuple[int, int]] = {}
    unknown: list[str] = []
    for position, header in enumerate(headers):
        folded = fold(header)
        key = _ALIASES.get(folded)
        if key is None:
            if header.strip():
                unknown.append(header.strip())
            continue
        rank = _PRIORITY[folded]
        if key not in chosen or rank < chosen[key][1]:
            if key in chosen:
                unknown.append(headers[chosen[key][0]].strip())
            chosen[key] = (position, rank)
        else:
            unknown.append(header.strip())
    return {position: key for key, (position, _) in chosen.items()}, unknown


def _refuse_without(columns: Iterable[str], path: Path) -> None:
    present = set(columns)
    missing = [
        label
        for key, label in (("code", "Mã thủ tục"), ("name", "Tên thủ tục"))
        if key not in present
    ]
    if missing:
        raise CatalogueError(
            f"{path.name}: không tìm thấy cột {' và '.join(repr(m) for m in missing)}. "
            "Tệp cần có cột mã thủ tục và tên thủ tục như trên Cổng Dịch vụ công quốc gia "
            "(ví dụ 'Mã thủ tục', 'Tên thủ tục' hoặc khóa MA_TTHC, TEN_TTHC)."
        )


def _records(
    rows: Iterator[tuple[int, dict[str, str]]], catalogue: Catalogue
) -> list[ProcedureRecord]:
    records: list[ProcedureRecord] = []
    seen: dict[str, int] = {}
    word = catalogue.row_word
    for number, values in rows:
        if not any(values.values()):
            continue
        raw_code, name = values.get("code", ""), " ".join(values.get("name", "").split())
        code = normalize_code(raw_code) if raw_code else None
        if code is None:
            reason = f"mã thủ tục không hợp lệ ({raw_code})" if raw_code else "thiếu mã thủ tục"
            catalogue.skipped.append(f"{word} {number}: {reason}")
            continue
        if not name:
            catalogue.skipped.append(f"{word} {number}: thiếu tên thủ tục ({code})")
            continue
        if code in seen:
            catalogue.skipped.append(f"{word} {number}: mã {code} trùng với {word} {seen[code]}")
            continue
        seen[code] = number
        fields = {k: v for k, v in values.items() if k not in ("code", "name") and v}
        records.append(ProcedureRecord(number, code, name.rstrip("."), fields))
    return records


def _table(rows: list[list[Any]], path: Path) -> Catalogue:
    """Spreadsheet rows (CSV or XLSX): find the header line, then read every row below it."""
    index, columns, unknown = 0, {}, []
    for number, row in enumerate(rows[:_HEADER_SEARCH_ROWS]):
        found, ignored = _columns([text_value(cell) for cell in row])
        if "code" in found.values() or "name" in found.values():
            index, columns, unknown = number, found, ignored
            break
    _refuse_without(columns.values(), path)
    catalogue = Catalogue(unknown_columns=unknown)

    def values() -> Iterator[tuple[int, dict[str, str]]]:
        for number, row in enumerate(rows[index + 1 :], start=index + 2):
            yield (
                number,
                {
                    key: text_value(row[position]) if position < len(row) else ""
                    for position, key in columns.items()
                },
            )

    catalogue.records = _records(values(), catalogue)
    return catalogue


def _read_csv(path: Path) -> Catalogue:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path.name}: tệp CSV phải được lưu với bảng mã UTF-8.") from exc
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    return _table(list(csv.reader(io.StringIO(text), dialect)), path)


def _read_xlsx(path: Path) -> Catalogue:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a damaged file
        raise CatalogueError(f"{path.name}: không đọc được tệp Excel ({exc}).") from exc
    try:
        sheet = workbook.worksheets[0]
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return _table(rows, path)


def _json_items(data: Any) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in _JSON_LIST_KEYS:
            found = next((v for k, v in data.items() if k.lower() == key), None)
            items = _json_items(found) if found is not None else None
            if items is not None:
                return items
    return None


def _read_json(path: Path) -> Catalogue:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogueError(f"{path.name}: không đọc được JSON ({exc}).") from exc
    items = _json_items(data)
    if items is None:
        raise CatalogueError(
            f"{path.name}: cần một danh sách thủ tục, hoặc một đối tượng chứa danh sách đó "
            '(ví dụ trong khóa "data").'
        )
    keys = list(dict.fromkeys(str(k) for item in items if isinstance(item, dict) for k in item))
    columns, unknown = _columns(keys)
    _refuse_without(columns.values(), path)
    field_of = {keys[position]: key for position, key in columns.items()}
    catalogue = Catalogue(unknown_columns=unknown, row_word="mục")

    def values() -> Iterator[tuple[int, dict[str, str]]]:
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                catalogue.skipped.append(f"mục {number}: không phải một đối tượng JSON")
                continue
            yield number, {field_of[k]: text_value(v) for k, v in item.items() if k in field_of}

    catalogue.records = _records(values(), catalogue)
    return catalogue


def read_catalogue(path: Path) -> Catalogue:
    """Read ``path`` (by its extension: .csv, .xlsx, .json) or raise CatalogueError."""
    if not path.is_file():
        raise CatalogueError(f"{path}: không tìm thấy tệp.")
    readers = {".csv": _read_csv, ".xlsx": _read_xlsx, ".json": _read_json}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise CatalogueError(f"{path.name}: chỉ nhập được tệp .csv, .xlsx hoặc .json.")
    return reader(path)
