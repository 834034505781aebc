"""``bot feedback export``: every matching item as CSV or XLSX, written to the access log (with
or without contacts) even when it stops half-way."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli.feedback.common import Action, Context, UsageError, actor_of, contact_actor_of
from bot.cli.feedback.filters import filter_text, item_filter
from bot.cli.text import CannotWrite, open_output

if TYPE_CHECKING:
    from storage.feedback import FeedbackView


async def _export(args: argparse.Namespace, context: Context) -> int:
    from bot.feedback_report import binary_file, export_row, write_csv, write_xlsx

    actor = contact_actor_of(args)
    who = actor or actor_of(args)
    where = item_filter(args, context)
    to_stdout = args.output == "-"
    if to_stdout and args.format == "xlsx":
        raise UsageError("Tệp XLSX cần --output TỆP (chỉ CSV mới ghi ra màn hình với '-').")
    catalog, zone = context.catalog, context.zone

    def row(item: FeedbackView) -> list[Any]:
        return export_row(item, catalog, zone, with_contact=actor is not None)

    # iter_items reads each page in its own session: an export stopped half-way holds nothing.
    items = context.inbox.iter_items(where)
    written: int | None = None
    try:
        if args.format == "csv":
            with open_output(None if to_stdout else Path(args.output)) as out:
                written = await write_csv(items, out, row)
        else:
            path = Path(args.output)
            try:
                with binary_file(path) as file:
                    written = await write_xlsx(items, file, row)
            except OSError as exc:
                raise CannotWrite(f"Không ghi được tệp {path}: {exc.strerror or exc}") from exc
    finally:
        # Logged even when the export failed half-way.
        count = "dừng giữa chừng" if written is None else f"{written} mục"
        detail = f"{args.format}, {count}; {filter_text(args)}"
        await context.desk.log_export(actor=who, detail=detail, with_contact=actor is not None)
    where_to = "" if to_stdout else f" vào {args.output}"
    contact = " (kèm số điện thoại, đã ghi nhật ký truy cập)" if actor else ""
    print(f"Đã xuất {written} mục{where_to}{contact}.", file=sys.stderr)
    return 0


ACTIONS: dict[str, Action] = {"export": _export}
