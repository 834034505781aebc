"""``bot feedback purge`` and ``access-log``: contacts erased once items have been closed long
enough, and who saw or erased contact data."""

from __future__ import annotations

import argparse
import datetime as dt

from bot.cli.feedback.common import Action, Context, actor_of, one_line, print_json
from bot.cli.text import print_table
from storage.audit import VIA_LABELS

ACCESS_LABELS = {
    "show": "xem liên hệ",
    "export": "xuất kèm liên hệ",
    "purge": "xóa liên hệ hết hạn",
}


async def _purge(args: argparse.Namespace, context: Context) -> int:
    actor = actor_of(args)
    days = context.settings.feedback.contact_retention_days if args.days is None else args.days
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    erased = await context.repository.purge_contacts(cutoff)
    await context.repository.log_access(
        actor, "purge", f"{erased} mục đóng trước {context.iso(cutoff)}"
    )
    print(
        f"Đã xóa số điện thoại và mã hồ sơ của {erased} mục đóng trước "
        f"{context.local(cutoff)} (quá {days} ngày)."
    )
    return 0


async def _access_log(args: argparse.Namespace, context: Context) -> int:
    entries = await context.inbox.access_log(limit=args.limit)
    if args.json:
        print_json(
            [
                {
                    "at": context.iso(e.at),
                    "actor": e.actor,
                    "via": e.via,
                    "action": e.action,
                    "detail": e.detail,
                }
                for e in entries
            ]
        )
        return 0
    if not entries:
        print("Nhật ký truy cập dữ liệu liên hệ còn trống.")
        return 0
    table = [
        (
            context.local(e.at),
            one_line(e.actor) + (f" ({VIA_LABELS[e.via]})" if e.via in VIA_LABELS else ""),
            ACCESS_LABELS.get(e.action, one_line(e.action)),
            one_line(e.detail) or "-",
        )
        for e in entries
    ]
    print_table(("Thời điểm", "Người", "Thao tác", "Chi tiết"), table)
    return 0


ACTIONS: dict[str, Action] = {"purge": _purge, "access-log": _access_log}
