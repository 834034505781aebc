"""``bot content check|evaluate|gaps|import-tthc``: validate a content pack, measure how well the
bot answers from it, list the questions the bot could not answer, and import the national
procedure catalogue into a pack."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from bot.cli import evaluate
from bot.settings import Settings
from content.loader import BUNDLED_PACK, load_pack


def pack_option() -> argparse.ArgumentParser:
    """The ``--content DIR`` option shared by the commands that read a content pack."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--content",
        type=Path,
        metavar="DIR",
        help="content pack folder (default: BOT_CONTENT_DIR or the bundled pack)",
    )
    return parent


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], pack: argparse.ArgumentParser
) -> None:
    content_cmd = sub.add_parser("content", help="knowledge base tools")
    content_sub = content_cmd.add_subparsers(dest="action", required=True)
    content_sub.add_parser("check", parents=[pack], help="validate a content pack")
    gaps = content_sub.add_parser("gaps", help="most frequent unanswered questions")
    gaps.add_argument("--days", type=int, default=30, help="look back this many days (30)")
    gaps.add_argument("--limit", type=int, default=20, help="how many rows (20)")
    gaps.add_argument("--json", action="store_true")
    tthc = content_sub.add_parser(
        "import-tthc",
        parents=[pack],
        help="import the procedure catalogue (CSV, XLSX or JSON from the national portal)",
    )
    tthc.add_argument("file", type=Path, help="the catalogue file (.csv, .xlsx or .json)")
    tthc.add_argument(
        "--into",
        type=Path,
        metavar="PACKDIR",
        help="the pack to write into (default: --content, BOT_CONTENT_DIR or the bundled pack)",
    )
    tthc.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    evaluate.add_parser(content_sub, [pack])


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "check":
        return _check(settings)
    if args.action == "import-tthc":
        return _import_tthc(args, settings)
    if args.action == "evaluate":
        return evaluate.run(args, settings)
    return asyncio.run(_gaps(args, settings))


def _check(settings: Settings) -> int:
    kb = load_pack(settings.content.dir)
    print(
        f"Nội dung hợp lệ: {len(kb.entries)} câu hỏi, {len(kb.topics)} chủ đề, "
        f"{len(kb.agencies)} cơ quan ({kb.directory})."
    )
    for warning in kb.warnings:
        print(f"Cảnh báo: {warning}")
    return 0


def _import_tthc(args: argparse.Namespace, settings: Settings) -> int:
    from content.tthc_import import GENERATED_DIR, apply_plan, plan_import, report_lines
    from content.tthc_source import CatalogueError, read_catalogue

    pack = Path(args.into or settings.content.dir or BUNDLED_PACK)
    # The pack must be valid before the import, so a failure afterwards is the import's.
    kb = load_pack(pack)
    try:
        catalogue = read_catalogue(args.file)
    except CatalogueError as exc:
        print(exc, file=sys.stderr)
        return 2
    plan = plan_import(
        catalogue,
        pack,
        topics={t.id for t in kb.topics},
        agencies=kb.agencies,
        source_name=args.file.name,
        now=dt.datetime.now(dt.UTC),
    )
    where = pack / GENERATED_DIR
    print(f"Đọc {len(catalogue.records)} thủ tục từ {args.file.name} → {where}")
    for line in report_lines(plan, catalogue):
        print(line)
    if args.dry_run:
        print("Chạy thử (--dry-run): chưa ghi tệp nào.")
        return 0
    apply_plan(plan, pack)
    kb = load_pack(pack)
    print(f"Đã ghi. Gói nội dung hợp lệ: {len(kb.entries)} câu hỏi ({kb.directory}).")
    return 0


async def _gaps(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import open_storage

    async with open_storage(settings) as storage:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days)
        rows = await storage.gaps.top(since=since, limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "text": r.normalized_text,
                        "count": r.count,
                        "last_seen": r.last_seen.isoformat(),
                        "top_score": r.top_score,
                        "candidates": r.candidates,
                    }
                    for r in rows
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if not rows:
        print(f"Không có câu hỏi nào chưa trả lời được trong {args.days} ngày qua.")
        return 0
    print(f"{'Số lần':>6}  {'Gần nhất':<16}  {'Điểm':>5}  Câu hỏi (đã chuẩn hóa) → gợi ý gần nhất")
    for r in rows:
        best = r.candidates[0]["entry_id"] if r.candidates else "-"
        score = f"{r.top_score:.2f}" if r.top_score is not None else "-"
        when = r.last_seen.astimezone().strftime("%d/%m/%Y %H:%M")
        print(f"{r.count:>6}  {when:<16}  {score:>5}  {r.normalized_text} → {best}")
    return 0
