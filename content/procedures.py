"""Administrative procedure codes (mã thủ tục hành chính): parsing, finding them in what a
citizen typed, and the procedure fields of an entry (``procedure``, ``procedures``, ``details``).

A code of the national procedure database looks like ``1.001193`` or ``2.000488``, with a
suffix for a local variant (``1.012753.H19``). Imported entries are named after their code
(``tthc-1-001193``), so the bot can go from a typed code straight to the entry.
"""

from __future__ import annotations

import re
from typing import Any

from content.models import FaqEntry, KnowledgeBase, ProcedureCard
from content.normalize import fold

PORTAL_PROCEDURE_URL = (
    "https://dichvucong.gov.vn/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc={code}"
)
ENTRY_ID_PREFIX = "tthc-"
# The payload of a "show this section in full" button: faqd:<entry id>:<section index>.
DETAIL_PAYLOAD = "faqd"
# Telegram's callback_data limit, in UTF-8 bytes: every payload must fit in it.
MAX_PAYLOAD_BYTES = 64

# One digit, a dot, six digits, then an optional letter-led suffix. Look-arounds keep
# amounts ("1.000.000 đồng") and decimals inside longer numbers from matching.
_CODE_RE = re.compile(r"(?<![\w.])([1-9]\.\d{6})(\.[A-Za-z][A-Za-z0-9]{0,9})?(?![\w]|\.\d)")
_CARD_KEYS = {"code", "name", "agency", "level", "time_limit", "fee"}


def normalize_code(raw: str) -> str | None:
    """The canonical form of a procedure code (suffix upper-cased), or None if it is not one."""
    match = _CODE_RE.fullmatch(raw.strip())
    if match is None:
        return None
    return match.group(1) + (match.group(2) or "").upper()


def find_code(text: str) -> str | None:
    """The first procedure code in ``text`` ("thủ tục 1.001193 cần gì" → "1.001193")."""
    match = _CODE_RE.search(text)
    if match is None:
        return None
    return match.group(1) + (match.group(2) or "").upper()


def entry_id(code: str) -> str:
    """The stable entry id of an imported procedure: 1.012753.H19 → tthc-1-012753-h19."""
    return ENTRY_ID_PREFIX + code.lower().replace(".", "-")


def portal_url(code: str) -> str:
    """The procedure's page on the national public service portal."""
    return PORTAL_PROCEDURE_URL.format(code=code)


def detail_payload(entry_id_: str, index: int) -> str:
    return f"{DETAIL_PAYLOAD}:{entry_id_}:{index}"


def parse_detail_payload(payload: str) -> tuple[str, int] | None:
    """``faqd:<id>:<n>`` → (id, n); None when malformed."""
    _, _, rest = payload.partition(":")
    entry, _, index = rest.rpartition(":")
    if not entry or not index.isdigit():
        return None
    return entry, int(index)


class ProcedureFields:
    """Reads and checks an entry's procedure fields for the loader; problems go to ``problems``."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def codes(self, where: str, value: Any) -> tuple[str, ...]:
        """``procedures: [1.001193, 1.004222]``: the codes of official cards to show."""
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        codes: list[str] = []
        for item in items:
            # Unquoted in YAML, 2.000480 is the number 2.00048: codes have six decimals.
            raw = f"{item:.6f}" if isinstance(item, float) else item
            code = normalize_code(raw) if isinstance(raw, str) else None
            if code is None:
                self.problems.append(f"{where}: mã thủ tục không hợp lệ trong 'procedures': {item}")
                continue
            codes.append(code)
        return tuple(codes)

    def details(self, where: str, entry_id_: str, value: Any) -> tuple[tuple[str, str], ...]:
        """``details``: a mapping of section title → full text."""
        if value is None:
            return ()
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
        ):
            self.problems.append(f"{where}: 'details' phải là bảng tên mục: nội dung (không rỗng)")
            return ()
        last = detail_payload(entry_id_, max(len(value) - 1, 0))
        if len(last.encode()) > MAX_PAYLOAD_BYTES:
            self.problems.append(
                f"{where}: id quá dài cho nút 'Xem đầy đủ' (tối đa {MAX_PAYLOAD_BYTES} byte)"
            )
        return tuple(value.items())

    def card(self, where: str, value: Any) -> ProcedureCard | None:
        """``procedure``: code, name, agency, level, time_limit, fee of an imported procedure."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problems.append(f"{where}: 'procedure' phải là một bảng khóa: giá trị")
            return None
        for key in sorted(set(value) - _CARD_KEYS):
            self.problems.append(f"{where}: khóa lạ trong 'procedure': '{key}'")
        code = normalize_code(str(value.get("code") or ""))
        if code is None or not value.get("name"):
            self.problems.append(f"{where}: 'procedure' cần 'code' (mã hợp lệ) và 'name'")
            return None
        return ProcedureCard(
            code=code,
            name=str(value["name"]),
            agency=str(value.get("agency") or ""),
            level=str(value.get("level") or ""),
            time_limit=str(value.get("time_limit") or ""),
            fee=str(value.get("fee") or ""),
        )


def duplicate_codes(entries: list[FaqEntry]) -> list[str]:
    """Problems for two entries carrying the same procedure code."""
    seen: dict[str, FaqEntry] = {}
    problems: list[str] = []
    for entry in entries:
        if entry.procedure is None:
            continue
        first = seen.setdefault(entry.procedure.code, entry)
        if first is not entry:
            problems.append(
                f"{entry.file} [{entry.id}]: mã thủ tục {entry.procedure.code} đã có ở {first.id}"
            )
    return problems


def unknown_codes(kb_entries: tuple[FaqEntry, ...] | list[FaqEntry]) -> list[str]:
    """Warnings for ``procedures`` codes that no imported entry carries.

    A warning, not an error: the card then shows only the code and the portal link, which is
    still correct, and a pack may name codes before the province imports its catalogue."""
    known = {e.procedure.code for e in kb_entries if e.procedure is not None}
    return [
        f"{entry.file} [{entry.id}]: mã thủ tục {code} chưa có trong danh mục đã nhập "
        "(entries/thu-tuc/); câu trả lời chỉ kèm liên kết tới Cổng Dịch vụ công quốc gia"
        for entry in kb_entries
        for code in entry.procedures
        if code not in known
    ]


def card_text(kb: KnowledgeBase, code: str) -> str:
    """The short official block of a procedure shown under a hand-written answer."""
    entry = kb.procedure_entry(code)
    card = entry.procedure if entry is not None else None
    if card is None:
        return f"Thủ tục mã {code} trên Cổng Dịch vụ công quốc gia: {portal_url(code)}"
    lines = [f"**Thủ tục: {card.name}** (mã {card.code})"]
    where = card.agency
    if card.level and fold(card.level) not in fold(card.agency):
        where = f"{where} ({card.level})" if where else card.level
    if where:
        lines.append(f"- Cơ quan thực hiện: {where}")
    if card.time_limit:
        lines.append(f"- Thời hạn giải quyết: {card.time_limit}")
    if card.fee:
        lines.append(f"- Phí, lệ phí: {card.fee}")
    lines.append(f"- Chi tiết: {portal_url(card.code)}")
    return "\n".join(lines)
