"""``bot content evaluate``: how well the bot will answer from a pack, before it is published.

Everything is measured on held-out questions made from the pack itself (content.heldout): the
share of questions whose first candidate is right, beside plain BM25 on the same questions;
what the calibrated thresholds do (right and wrong answers, clarifying questions, fallbacks);
the pairs of entries that take each other's questions (write phrasings that tell them apart, or
link them with ``related``); and the entries with too few phrasings to be found reliably.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.cli.text import print_table
from bot.settings import Settings
from content.calibration import ABSENT_TARGET
from content.evaluation import FEW_PHRASINGS, Report, evaluate
from content.loader import load_pack

SHOWN = 15


def add_parser(content_sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``evaluate`` under ``bot content``."""
    parser = content_sub.add_parser(
        "evaluate",
        parents=parents,
        help="held-out accuracy of a pack, beside BM25, and what to fix before publishing",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = evaluate(load_pack(settings.content.dir))
    if args.json:
        print(json.dumps(as_json(report), ensure_ascii=False, indent=2))
    else:
        show(report)
    return 0


def as_json(report: Report) -> dict[str, Any]:
    c = report.comparison
    k = c.calibration
    return {
        "entries": report.entries,
        "held_out": {
            "questions": c.questions,
            "engine_first": round(c.engine_first, 4),
            "bm25_first": round(c.bm25_first, 4),
            "accented_questions": c.accented,
            "engine_first_accented": round(c.engine_first_accented, 4),
            "bm25_first_accented": round(c.bm25_first_accented, 4),
            "right_answers": round(c.shares.right, 4),
            "wrong_answers": round(c.shares.wrong, 4),
            "clarified": round(c.shares.clarified, 4),
            "fallbacks": round(c.shares.fallbacks, 4),
            "absent_questions": c.shares.absent,
            "absent_answered": round(c.shares.absent_answered, 4),
            "offtopic_questions": c.shares.offtopic,
            "offtopic_shown": round(c.shares.offtopic_shown, 4),
        },
        "thresholds": {
            "answer": k.answer,
            "clarify": k.clarify,
            "margin": k.margin,
            "strong_margin": k.strong_margin,
            "suggest": k.suggest,
        },
        "confusions": [
            {"asked": asked, "answered": taken, "count": count}
            for asked, taken, count in report.confusions
        ],
        "thin_entries": list(report.thin),
    }


def _num(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


def _pct(x: float) -> str:
    return f"{x:.1%}".replace(".", ",")


def show(report: Report) -> None:
    c = report.comparison
    k = c.calibration
    print(f"Gói nội dung: {report.entries} câu hỏi.")
    print(
        f"Câu hỏi để riêng (held-out) làm từ chính gói: {c.shares.questions} câu về các mục có "
        f"trong gói (cách hỏi tách khỏi chỉ mục, tiêu đề bị biến đổi), {c.shares.absent} câu về "
        f"mục được bỏ ra, {c.shares.offtopic} câu ngoài phạm vi.\n"
    )
    print_table(
        ["", "Bot", "BM25"],
        [
            ["Gợi ý đầu tiên đúng", _pct(c.engine_first), _pct(c.bm25_first)],
            [
                f"… trên {c.accented} câu gõ có dấu",
                _pct(c.engine_first_accented),
                _pct(c.bm25_first_accented),
            ],
        ],
        right={1, 2},
        indent="  ",
    )
    print(
        f"\nNgưỡng tự hiệu chỉnh: trả lời từ {_num(k.answer)} (hơn mục thứ hai "
        f"{_num(k.margin)}), hỏi lại từ {_num(k.clarify)}, gợi ý khi chưa chắc từ "
        f"{_num(k.suggest)}."
    )
    sh = c.shares
    print(
        f"Với ngưỡng này, trên {sh.questions} câu hỏi về các mục có trong gói: trả lời đúng "
        f"{_pct(sh.right)}, trả lời sai {_pct(sh.wrong)} (mục tiêu ≤ 2%), hỏi lại "
        f"{_pct(sh.clarified)}, chưa trả lời {_pct(sh.fallbacks)}."
    )
    print(
        f"Câu hỏi về {sh.absent} mục được bỏ ra khỏi gói: {_pct(sh.absent_answered)} bị trả lời "
        f"bằng một mục khác (mục tiêu ≤ {_pct(ABSENT_TARGET)}). Câu hỏi ngoài phạm vi: "
        f"{_pct(sh.offtopic_shown)} được trả lời hoặc hỏi lại.\n"
    )
    if report.confusions:
        print("Các cặp câu hỏi hay bị nhầm (câu hỏi của mục bên trái được xếp cho mục bên phải):")
        print_table(
            ["Số lần", "Mục được hỏi", "Mục bị xếp nhầm"],
            [[str(n), a, b] for a, b, n in report.confusions[:SHOWN]],
            right={0},
            indent="  ",
        )
        if len(report.confusions) > SHOWN:
            print(f"  … và {len(report.confusions) - SHOWN} cặp khác (xem --json).")
        print("  Cách sửa: thêm cách hỏi phân biệt hai mục, hoặc liên kết chúng bằng `related`.\n")
    if report.thin:
        print(f"{len(report.thin)} mục có ít hơn {FEW_PHRASINGS} cách hỏi (phrasings):")
        for entry_id in report.thin[:SHOWN]:
            print(f"  - {entry_id}")
        if len(report.thin) > SHOWN:
            print(f"  … và {len(report.thin) - SHOWN} mục khác (xem --json).")
