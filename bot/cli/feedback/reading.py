"""``bot feedback list`` and ``show``: the matching items as a table, one item with every field
and its history (phone numbers masked unless ``--with-contact``)."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.cli.feedback.common import (
    POINT_WIDTH,
    Action,
    Context,
    UsageError,
    contact_actor_of,
    one_line,
    print_json,
)
from bot.cli.feedback.filters import item_filter
from bot.cli.text import pad, print_table, printable, shorten, text_width
from bot.feedback_report import (
    FACTOR_LABELS,
    FACTORS,
    KIND_LABELS,
    NOTICE_LABELS,
    RATING_LABELS,
    mask_phone,
)
from storage.audit import CLI, CONSOLE, VIA_LABELS
from storage.feedback import STATUS_LABELS

if TYPE_CHECKING:
    from storage.feedback import FeedbackEventView, FeedbackView

EXCERPT_WIDTH = 40


def _record(item: FeedbackView, context: Context, *, with_contact: bool = False) -> dict[str, Any]:
    catalog = context.catalog
    record: dict[str, Any] = {
        "code": item.code,
        "kind": item.kind,
        "kind_label": KIND_LABELS.get(item.kind, item.kind),
        "status": item.status,
        "status_label": STATUS_LABELS.get(item.status, item.status),
        "channel": item.channel,
        "point_id": item.point_id,
        "point_name": catalog.point(item.point_id),
        "procedure_id": item.procedure_id,
        "procedure_title": catalog.procedure(item.procedure_id),
        "ratings": dict(zip(FACTORS, item.ratings, strict=True)),
        "comment": item.comment,
        "description": item.description,
        "dossier_code": item.dossier_code,
        "phone": item.phone if with_contact else mask_phone(item.phone),
        "contact_consent_at": context.iso(item.contact_consent_at),
        "contact_erased_at": context.iso(item.contact_erased_at),
        "assignee": item.assignee,
        "answer": item.answer,
        "answered_by": item.answered_by,
        "answered_at": context.iso(item.answered_at),
        "notify_status": item.notify_status,
        "notified_at": context.iso(item.notified_at),
        "deadline_at": context.iso(item.deadline_at),
        "overdue": item.overdue(dt.datetime.now(dt.UTC)),
        "completed_at": context.iso(item.completed_at),
        "closed_at": context.iso(item.closed_at),
        "created_at": context.iso(item.created_at),
        "updated_at": context.iso(item.updated_at),
    }
    if with_contact:
        record["external_id"] = item.external_id
    return record


def _excerpt(item: FeedbackView) -> str:
    text = item.description if item.kind == "complaint" else item.comment
    if text and text.strip():
        return shorten(one_line(text), EXCERPT_WIDTH)
    if item.kind == "survey":
        return "điểm " + " ".join("-" if r is None else str(r) for r in item.ratings)
    return "-"


async def _list(args: argparse.Namespace, context: Context) -> int:
    found = await context.inbox.find(item_filter(args, context), limit=args.limit + 1)
    rows, more = found[: args.limit], len(found) > args.limit
    if args.json:
        print_json([_record(item, context) for item in rows])
        return 0
    if not rows:
        print("Không có mục nào khớp điều kiện.")
        return 0
    now = dt.datetime.now(dt.UTC)
    headers = (
        "Mã",
        "Loại",
        "Trạng thái",
        "Nơi giải quyết",
        "Gửi lúc",
        "Hạn xử lý",
        "Người xử lý",
        "Nội dung",
    )
    table = [
        (
            item.code,
            KIND_LABELS.get(item.kind, item.kind),
            STATUS_LABELS.get(item.status, item.status),
            shorten(one_line(context.catalog.point(item.point_id) or "-"), POINT_WIDTH),
            context.local(item.created_at),
            context.local(item.deadline_at) + (" QUÁ HẠN" if item.overdue(now) else ""),
            shorten(one_line(item.assignee) or "-", 20),
            _excerpt(item),
        )
        for item in rows
    ]
    print_table(headers, table)
    if more:
        print(
            f"(Chỉ hiện {args.limit} mục đầu tiên; còn nữa — dùng --limit N, thêm điều kiện lọc "
            "hoặc `bot feedback export`.)"
        )
    return 0


async def _show(args: argparse.Namespace, context: Context) -> int:
    actor = contact_actor_of(args)
    if actor is not None:
        item = await context.desk.reveal_contact(args.code, actor=actor)
    else:
        found = await context.repository.get(args.code)
        if found is None:
            raise UsageError(f"Không có mục nào mã {args.code}.")
        item = found
    events = await context.inbox.events(item.id)
    if args.json:
        print_json(
            {
                **_record(item, context, with_contact=actor is not None),
                "history": [
                    {
                        "at": context.iso(e.at),
                        "from": e.from_status,
                        "to": e.to_status,
                        "actor": e.actor,
                        "via": e.via,
                        "note": e.note,
                    }
                    for e in events
                ],
            }
        )
        return 0
    _print_item(item, events, context, with_contact=actor is not None)
    return 0


def _print_item(
    item: FeedbackView,
    events: Sequence[FeedbackEventView],
    context: Context,
    *,
    with_contact: bool,
) -> None:
    catalog = context.catalog
    status = STATUS_LABELS.get(item.status, item.status)
    overdue = item.overdue(dt.datetime.now(dt.UTC))
    print(f"{KIND_LABELS.get(item.kind, item.kind)} {item.code}: {status}")

    def named(name: str | None, ident: str | None) -> str:
        if not ident:
            return "-"
        return printable(name or ident) + ("" if name == ident else f" ({printable(ident)})")

    phone = "-"
    if item.phone:
        phone = item.phone if with_contact else f"{mask_phone(item.phone)} (ẩn; --with-contact)"
        if item.contact_consent_at:
            phone += f", đồng ý liên hệ lúc {context.local(item.contact_consent_at)}"
    elif item.contact_erased_at:
        phone = f"đã xóa lúc {context.local(item.contact_erased_at)}"
    sender = printable(item.channel)
    if with_contact:
        sender += f", mã người dùng {printable(item.external_id or 'đã xóa')}"
    fields = [
        ("Kênh", sender),
        ("Nơi giải quyết", named(catalog.point(item.point_id), item.point_id)),
    ]
    if item.kind == "survey":
        fields.append(("Thủ tục", named(catalog.procedure(item.procedure_id), item.procedure_id)))
    else:
        fields.append(("Mã hồ sơ", one_line(item.dossier_code) or "-"))
        fields.append(("Điện thoại", printable(phone)))
    fields += [
        ("Người xử lý", one_line(item.assignee) or "-"),
        ("Gửi lúc", context.local(item.created_at)),
        ("Hoàn thành lúc", context.local(item.completed_at)),
        ("Hạn xử lý", context.local(item.deadline_at) + (" (QUÁ HẠN)" if overdue else "")),
        ("Đóng lúc", context.local(item.closed_at)),
        ("Cập nhật lúc", context.local(item.updated_at)),
    ]
    width = max(text_width(label) for label, _ in fields) + 1
    for label, value in fields:
        print(f"  {pad(label + ':', width)} {value}")
    if item.kind == "survey":
        print("\nĐiểm đánh giá:")
        factor_width = max(text_width(label) for label in FACTOR_LABELS.values()) + 1
        for factor, rating in zip(FACTORS, item.ratings, strict=True):
            value = f"{rating} – {RATING_LABELS.get(rating, '?')}" if rating else "bỏ qua"
            print(f"  {pad(FACTOR_LABELS[factor] + ':', factor_width)} {value}")
    for title, text in (("Ý kiến", item.comment), ("Nội dung phản ánh", item.description)):
        if text:
            print(f"\n{title}:")
            _print_block(text)
    if item.answer:
        title = "Lý do từ chối" if item.status == "rejected" else "Trả lời"
        by = f"bởi {one_line(item.answered_by)}, " if item.answered_by else ""
        sent = ""
        if item.notify_status:
            sent = "; " + NOTICE_LABELS.get(item.notify_status, printable(item.notify_status))
            if item.notified_at:
                sent += f" lúc {context.local(item.notified_at)}"
        print(f"\n{title} ({by}{context.local(item.answered_at)}{sent}):")
        _print_block(item.answer)
    print("\nLịch sử:")
    for event in events:
        to = STATUS_LABELS.get(event.to_status, event.to_status)
        moved = (
            f"{STATUS_LABELS.get(event.from_status, event.from_status)} → {to}"
            if event.from_status
            else f"tạo ({to})"
        )
        actor = "người dân" if event.actor == "citizen" else one_line(event.actor)
        if event.via in (CLI, CONSOLE):
            actor += f" ({VIA_LABELS[event.via]})"
        note = f" — {one_line(event.note)}" if event.note else ""
        print(f"  {context.local(event.at)}  {moved}, bởi {actor}{note}")


def _print_block(text: str) -> None:
    for line in text.splitlines() or [""]:
        print(f"  | {printable(line)}")


ACTIONS: dict[str, Action] = {"list": _list, "show": _show}
