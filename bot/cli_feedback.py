"""``bot feedback …``: staff review citizens' satisfaction surveys and complaints.

list, show, assign, answer, resolve, reject, export, stats, purge, access-log.

- ``list`` and ``export`` take the same filters (``--kind``, ``--status`` repeatable, default
  every status but ``partial``; ``--point``, ``--from`` / ``--to`` local dates, ``--to``
  inclusive; ``--rating-max``, ``--search``, ``--overdue``), combined with AND.
- ``assign``, ``answer``, ``resolve`` and ``reject`` move an item through its workflow
  (``bot.feedback_desk``); ``--by`` names who did it (default: the operating system user) and
  goes into the item's history.
- Phone numbers are masked (``09******78``) unless ``--with-contact`` is given, which needs an
  explicit ``--by NAME`` and is written to the access log (``access-log`` lists it).
- ``stats`` computes the satisfaction index; its definition is in ``bot.feedback_report``.

Everything a citizen typed is printed with control and format characters (ANSI escapes,
carriage returns, bidi overrides …) shown as visible escapes, so a complaint cannot drive the
operator's terminal; JSON escapes them as ``\\uNNNN``.

Exit codes: 0 done; 2 the workflow refused or the input is wrong (the reason on stderr, in
Vietnamese); 1 something unexpected or an output file that cannot be written. Times are shown
in the feedback time zone (``BOT_FEEDBACK_TIMEZONE``) as ``dd/mm/YYYY HH:MM``; JSON carries
ISO 8601 with the offset. The database layer loads only when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import getpass
import logging
import shlex
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.cli_text import (
    CannotWrite,
    open_output,
    pad,
    positive,
    printable,
    safe_json,
    shorten,
    text_width,
)
from bot.feedback_report import (
    FACTOR_LABELS,
    FACTORS,
    KIND_LABELS,
    NOTICE_LABELS,
    RATING_LABELS,
    Catalog,
    Tally,
    decimal,
    mask_phone,
)
from bot.settings import Settings
from storage.audit import CLI, CONSOLE, VIA_LABELS
from storage.feedback import STATUS_LABELS

if TYPE_CHECKING:
    from bot.feedback_desk import FeedbackDesk
    from bot.services import Storage
    from storage.feedback import (
        FeedbackEventView,
        FeedbackFilter,
        FeedbackRepository,
        FeedbackView,
    )
    from storage.feedback_inbox import FeedbackInbox

log = logging.getLogger(__name__)

KINDS = tuple(KIND_LABELS)
STATUSES = tuple(STATUS_LABELS)
LISTED = tuple(s for s in STATUSES if s != "partial")
ACCESS_LABELS = {
    "show": "xem liên hệ",
    "export": "xuất kèm liên hệ",
    "purge": "xóa liên hệ hết hạn",
}
SHORT_FACTORS = ("Tiếp cận", "Thủ tục", "Công chức", "Kết quả", "Góp ý")
EXCERPT_WIDTH = 40
POINT_WIDTH = 30


class UsageError(Exception):
    """Bad input found after parsing (message in Vietnamese): exit code 2."""


# --- parser ---------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument(
        "--by", metavar="NAME", help="who does this (recorded; default: the system user name)"
    )
    code = argparse.ArgumentParser(add_help=False)
    code.add_argument("code", type=_code, metavar="CODE", help="the item's code, e.g. PA-7K3Q9")
    contact = argparse.ArgumentParser(add_help=False)
    contact.add_argument(
        "--with-contact",
        action="store_true",
        help="show phone numbers unmasked (needs --by NAME; written to the access log)",
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--kind", choices=KINDS, help="surveys or complaints only")
    filters.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        help="this status (repeatable; default: every status but partial)",
    )
    filters.add_argument("--point", metavar="ID", help="this service point only")
    filters.add_argument(
        "--from", dest="since", type=_day, metavar="YYYY-MM-DD", help="filed on or after"
    )
    filters.add_argument(
        "--to", dest="until", type=_day, metavar="YYYY-MM-DD", help="filed on or before"
    )
    filters.add_argument(
        "--rating-max",
        type=int,
        choices=range(1, 6),
        metavar="N",
        help="surveys with some factor rated N or less (1-5)",
    )
    filters.add_argument(
        "--search",
        metavar="TEXT",
        help="text in the comment, description, answer or dossier code",
    )
    filters.add_argument(
        "--overdue", action="store_true", help="open items past their handling deadline"
    )

    command = sub.add_parser(
        "feedback", help="citizen feedback: review, answer, export, statistics"
    )
    actions = command.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", parents=[filters, as_json], help="matching items, oldest first, as a table"
    )
    listing.add_argument(
        "--limit", type=positive, default=50, metavar="N", help="at most N rows (50)"
    )
    actions.add_parser(
        "show", parents=[code, contact, by, as_json], help="one item: every field and its history"
    )
    assign = actions.add_parser("assign", parents=[code, by], help="give an item to a colleague")
    assign.add_argument("--to", required=True, metavar="NAME", help="who handles it")
    answer = actions.add_parser(
        "answer", parents=[code, by], help="answer the citizen (the bot sends it to them)"
    )
    text = answer.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the answer")
    text.add_argument(
        "--text-file", type=Path, metavar="FILE", help="read the answer from FILE ('-': stdin)"
    )
    resolve = actions.add_parser("resolve", parents=[code, by], help="mark an item settled")
    resolve.add_argument("--text", help="a final answer for the citizen (optional)")
    reject = actions.add_parser(
        "reject", parents=[code, by], help="decline an item (the citizen reads the reason)"
    )
    reject.add_argument("--reason", required=True, help="why it is not handled")
    export = actions.add_parser(
        "export", parents=[filters, contact, by], help="every matching item, as CSV or XLSX"
    )
    export.add_argument("--format", choices=("csv", "xlsx"), default="csv", help="(csv)")
    export.add_argument(
        "--output", required=True, metavar="FILE", help="write to FILE ('-': standard output, csv)"
    )
    stats = actions.add_parser(
        "stats", parents=[as_json], help="satisfaction per service point and per month"
    )
    stats.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--to", dest="until", type=_day, metavar="YYYY-MM-DD")
    stats.add_argument("--point", metavar="ID", help="this service point only")
    stats.add_argument(
        "--chart", type=Path, metavar="FILE.png", help="also draw the index per service point"
    )
    purge = actions.add_parser(
        "purge", parents=[by], help="erase the contacts of items closed long ago"
    )
    purge.add_argument(
        "--days",
        type=_days,
        metavar="N",
        help="items closed more than N days ago (default: BOT_FEEDBACK_CONTACT_RETENTION_DAYS)",
    )
    access = actions.add_parser(
        "access-log", parents=[as_json], help="who saw or erased contact data, newest first"
    )
    access.add_argument(
        "--limit", type=positive, default=100, metavar="N", help="at most N rows (100)"
    )


def _code(value: str) -> str:
    cleaned = value.strip().upper()
    if not cleaned or len(cleaned) > 12:
        raise argparse.ArgumentTypeError(f"mã không hợp lệ: {value!r} (ví dụ: PA-7K3Q9)")
    return cleaned


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"ngày phải có dạng YYYY-MM-DD, không phải {value!r}"
        ) from None


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"cần một số ngày (0 trở lên), không phải {value!r}")
    return int(value)


# --- running --------------------------------------------------------------------------------


def run(args: argparse.Namespace, settings: Settings) -> int:
    from content.loader import ContentError
    from storage.feedback import FeedbackError

    try:
        return asyncio.run(_run(args, settings))
    except (FeedbackError, UsageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except CannotWrite as exc:
        print(exc, file=sys.stderr)
        return 1
    except ContentError:
        raise  # the caller prints it (exit code 2), as for every command
    except Exception as exc:
        log.exception("bot feedback %s failed", args.action)
        print(f"Lỗi không mong đợi: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


Action = Callable[["argparse.Namespace", "_Context"], Awaitable[int]]


class _Context:
    """What every action needs: the storage, the time zone and the pack's names."""

    def __init__(self, settings: Settings, storage: Storage, zone: dt.tzinfo) -> None:
        self.settings = settings
        self.storage = storage
        self.zone = zone

    @property
    def repository(self) -> FeedbackRepository:
        return self.storage.feedback

    @property
    def inbox(self) -> FeedbackInbox:
        return self.storage.feedback_inbox

    @property
    def desk(self) -> FeedbackDesk:
        from bot.feedback_desk import FeedbackDesk

        return FeedbackDesk(self.storage.feedback, self.storage.audit)

    @property
    def catalog(self) -> Catalog:
        """Service point names and procedure titles (the content pack, read when needed)."""
        return _catalog(self.settings.content.dir, dt.date.today())

    def local(self, moment: dt.datetime | None) -> str:
        return moment.astimezone(self.zone).strftime("%d/%m/%Y %H:%M") if moment else "-"

    def iso(self, moment: dt.datetime | None) -> str | None:
        if moment is None:
            return None
        return moment.astimezone(self.zone).replace(microsecond=0).isoformat()

    def midnight(self, day: dt.date) -> dt.datetime:
        """The UTC instant a local day starts."""
        return dt.datetime.combine(day, dt.time(), tzinfo=self.zone).astimezone(dt.UTC)


@functools.lru_cache(maxsize=4)
def _catalog(directory: Path | None, day: dt.date) -> Catalog:
    """The pack is parsed once per process and day: ``bot feedback`` needs only its names,
    and a caller running many commands in one process (the tests) then pays for it once."""
    from content.loader import load_pack

    return Catalog.of(load_pack(directory, today=day))


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"Múi giờ không hợp lệ: {name!r} (BOT_FEEDBACK_TIMEZONE, ví dụ Asia/Ho_Chi_Minh)."
        ) from None


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import open_storage

    zone = _zone(settings.feedback.timezone)  # a bad setting fails before the database opens
    async with open_storage(settings) as storage:
        return await _ACTIONS[args.action](args, _Context(settings, storage, zone))


def _print_json(value: Any) -> None:
    print(safe_json(value, indent=2))


def _actor(args: argparse.Namespace) -> str:
    """``--by``, or the name the operator is logged in as."""
    name: str | None = args.by
    if name is None:
        try:
            name = getpass.getuser()
        except (OSError, KeyError, ImportError):
            name = ""
    name = " ".join(name.split())
    if not name:
        raise UsageError("Hãy cho biết ai thực hiện: --by TÊN.")
    return name[:100]


def _contact_actor(args: argparse.Namespace) -> str | None:
    """Who asked to see contacts (``--with-contact`` needs an explicit ``--by``), or None."""
    if not args.with_contact:
        return None
    if args.by is None or not args.by.strip():
        raise UsageError(
            "--with-contact cần --by TÊN: việc xem số điện thoại được ghi vào nhật ký truy cập."
        )
    return _actor(args)


# --- filters --------------------------------------------------------------------------------


def _period(
    args: argparse.Namespace, context: _Context
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--from`` / ``--to`` local dates as UTC instants; the end is exclusive (the day after
    ``--to`` starts)."""
    since, until = args.since, args.until
    if since and until and since > until:
        raise UsageError(f"--from ({since:%d/%m/%Y}) phải trước hoặc bằng --to ({until:%d/%m/%Y}).")
    return (
        context.midnight(since) if since else None,
        context.midnight(until + dt.timedelta(days=1)) if until else None,
    )


def _filter(args: argparse.Namespace, context: _Context) -> FeedbackFilter:
    from storage.feedback import FeedbackFilter

    since, until = _period(args, context)
    point = _point(args, context)
    return FeedbackFilter(
        kind=args.kind,
        statuses=tuple(dict.fromkeys(args.status)) if args.status else LISTED,
        point_id=point,
        since=since,
        until=until,
        max_rating=args.rating_max,
        text=(args.search.strip() or None) if args.search else None,
        overdue_at=dt.datetime.now(dt.UTC) if args.overdue else None,
    )


def _point(args: argparse.Namespace, context: _Context) -> str | None:
    """``--point``; an id the pack does not know is still used (items keep the ids of points
    since removed), with a warning in case it is a typo."""
    point = args.point.strip() if args.point else None
    if point and point not in context.catalog.points:
        print(
            f"Lưu ý: nội dung hiện tại không có nơi giải quyết mã {printable(point)}.",
            file=sys.stderr,
        )
    return point or None


def _filter_text(args: argparse.Namespace) -> str:
    """The filters given, as options to type again (for the access log)."""
    options: list[str] = []
    for option, value in (
        ("--kind", args.kind),
        *(("--status", status) for status in args.status or ()),
        ("--point", args.point),
        ("--from", args.since),
        ("--to", args.until),
        ("--rating-max", args.rating_max),
        ("--search", args.search),
    ):
        if value is not None:
            options += [option, str(value)]
    if args.overdue:
        options.append("--overdue")
    return shlex.join(options) if options else "không lọc"


# --- reading --------------------------------------------------------------------------------


def _record(item: FeedbackView, context: _Context, *, with_contact: bool = False) -> dict[str, Any]:
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


def _one_line(text: str | None) -> str:
    """Citizen text for a table cell: one line, control characters escaped."""
    return printable(" ".join((text or "").split()))


def _excerpt(item: FeedbackView) -> str:
    text = item.description if item.kind == "complaint" else item.comment
    if text and text.strip():
        return shorten(_one_line(text), EXCERPT_WIDTH)
    if item.kind == "survey":
        return "điểm " + " ".join("-" if r is None else str(r) for r in item.ratings)
    return "-"


async def _list(args: argparse.Namespace, context: _Context) -> int:
    found = await context.inbox.find(_filter(args, context), limit=args.limit + 1)
    rows, more = found[: args.limit], len(found) > args.limit
    if args.json:
        _print_json([_record(item, context) for item in rows])
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
            shorten(_one_line(context.catalog.point(item.point_id) or "-"), POINT_WIDTH),
            context.local(item.created_at),
            context.local(item.deadline_at) + (" QUÁ HẠN" if item.overdue(now) else ""),
            shorten(_one_line(item.assignee) or "-", 20),
            _excerpt(item),
        )
        for item in rows
    ]
    _print_table(headers, table)
    if more:
        print(
            f"(Chỉ hiện {args.limit} mục đầu tiên; còn nữa — dùng --limit N, thêm điều kiện lọc "
            "hoặc `bot feedback export`.)"
        )
    return 0


async def _show(args: argparse.Namespace, context: _Context) -> int:
    actor = _contact_actor(args)
    if actor is not None:
        item = await context.desk.reveal_contact(args.code, actor=actor)
    else:
        found = await context.repository.get(args.code)
        if found is None:
            raise UsageError(f"Không có mục nào mã {args.code}.")
        item = found
    events = await context.inbox.events(item.id)
    if args.json:
        _print_json(
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
    context: _Context,
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
        fields.append(("Mã hồ sơ", _one_line(item.dossier_code) or "-"))
        fields.append(("Điện thoại", printable(phone)))
    fields += [
        ("Người xử lý", _one_line(item.assignee) or "-"),
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
        by = f"bởi {_one_line(item.answered_by)}, " if item.answered_by else ""
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
        actor = "người dân" if event.actor == "citizen" else _one_line(event.actor)
        if event.via in (CLI, CONSOLE):
            actor += f" ({VIA_LABELS[event.via]})"
        note = f" — {_one_line(event.note)}" if event.note else ""
        print(f"  {context.local(event.at)}  {moved}, bởi {actor}{note}")


def _print_block(text: str) -> None:
    for line in text.splitlines() or [""]:
        print(f"  | {printable(line)}")


# --- workflow actions -----------------------------------------------------------------------


async def _assign(args: argparse.Namespace, context: _Context) -> int:
    actor = _actor(args)
    item = await context.desk.assign(args.code, to=args.to, actor=actor)
    _moved(item, actor, f"giao cho {_one_line(item.assignee)}")
    return 0


async def _answer(args: argparse.Namespace, context: _Context) -> int:
    actor = _actor(args)
    item = await context.desk.answer(args.code, text=_read_text(args), actor=actor)
    _moved(item, actor, _notice_text(item))
    return 0


async def _resolve(args: argparse.Namespace, context: _Context) -> int:
    actor = _actor(args)
    item = await context.desk.resolve(args.code, actor=actor, text=args.text)
    _moved(item, actor, _notice_text(item))
    return 0


async def _reject(args: argparse.Namespace, context: _Context) -> int:
    actor = _actor(args)
    item = await context.desk.reject(args.code, reason=args.reason, actor=actor)
    _moved(item, actor, _notice_text(item))
    return 0


def _moved(item: FeedbackView, actor: str, detail: str | None) -> None:
    status = STATUS_LABELS.get(item.status, item.status)
    extra = f"; {detail}" if detail else ""
    print(f"{item.code}: {status} (bởi {printable(actor)}{extra}).")


def _notice_text(item: FeedbackView) -> str | None:
    if item.notify_status == "pending":
        return "bot sẽ gửi thông báo tới người dân"
    if item.external_id is None:
        return "người dân đã xóa dữ liệu nên không nhận được thông báo"
    return None


def _read_text(args: argparse.Namespace) -> str:
    if args.text is not None:
        return str(args.text)
    if str(args.text_file) == "-":
        return sys.stdin.read()
    try:
        return Path(args.text_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise UsageError(f"Không đọc được tệp nội dung {args.text_file}: {detail}") from None


# --- export ---------------------------------------------------------------------------------


async def _export(args: argparse.Namespace, context: _Context) -> int:
    from bot.feedback_report import binary_file, export_row, write_csv, write_xlsx

    actor = _contact_actor(args)
    who = actor or _actor(args)
    where = _filter(args, context)
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
        detail = f"{args.format}, {count}; {_filter_text(args)}"
        await context.desk.log_export(actor=who, detail=detail, with_contact=actor is not None)
    where_to = "" if to_stdout else f" vào {args.output}"
    contact = " (kèm số điện thoại, đã ghi nhật ký truy cập)" if actor else ""
    print(f"Đã xuất {written} mục{where_to}{contact}.", file=sys.stderr)
    return 0


# --- statistics -----------------------------------------------------------------------------


async def _stats(args: argparse.Namespace, context: _Context) -> int:
    from bot.feedback_report import index_chart, survey_stats
    from storage.feedback import FeedbackFilter

    since, until = _period(args, context)
    point = _point(args, context)
    rows = await context.inbox.survey_rows(FeedbackFilter(point_id=point, since=since, until=until))
    stats = survey_stats(rows, context.zone)
    catalog = context.catalog
    points = sorted(stats.by_point, key=catalog.point_order)
    period = _period_text(args)
    if args.chart is not None:
        bars = [
            (catalog.point(p) or "Không rõ nơi giải quyết", tally.index, tally.responses)
            for p in points
            if (tally := stats.by_point[p]).index is not None
        ]
        overall = stats.overall
        note = (
            f"{overall.responses} phiếu đánh giá đã hoàn thành{period}; chung: "
            f"{decimal(overall.index, 1)}%. Hài lòng = chấm 4 hoặc 5."
        )
        try:
            index_chart(
                bars,
                args.chart,
                title="Chỉ số hài lòng theo nơi giải quyết thủ tục",
                note=note,
            )
        except OSError as exc:
            raise CannotWrite(f"Không ghi được tệp {args.chart}: {exc.strerror or exc}") from exc
    if args.json:
        _print_json(
            {
                "from": args.since.isoformat() if args.since else None,
                "to": args.until.isoformat() if args.until else None,
                "point": point,
                "timezone": context.settings.feedback.timezone,
                "factors": [{"id": f, "label": label} for f, label in FACTOR_LABELS.items()],
                "overall": _tally_json(stats.overall),
                "points": [
                    {
                        "point_id": p,
                        "point_name": catalog.point(p),
                        **_tally_json(stats.by_point[p]),
                    }
                    for p in points
                ],
                "months": [
                    {"month": month, "responses": tally.responses, "index": tally.index}
                    for month, tally in stats.by_month.items()
                ],
                "chart": str(args.chart) if args.chart else None,
            }
        )
        return 0
    print(f"Mức độ hài lòng — {stats.overall.responses} phiếu đánh giá đã hoàn thành{period}.")
    if not stats.overall.responses:
        return 0
    print("Mỗi ô: điểm trung bình (1–5) · tỷ lệ hài lòng (chấm 4 hoặc 5).")
    print("Chỉ số: bình quân tỷ lệ hài lòng của các yếu tố có người trả lời.\n")
    headers = ("Nơi giải quyết", "Phiếu", *SHORT_FACTORS, "Chỉ số")
    table = [
        _tally_cells(
            shorten(_one_line(catalog.point(p) or "Không rõ nơi giải quyết"), POINT_WIDTH),
            stats.by_point[p],
        )
        for p in points
    ]
    table.append(_tally_cells("Chung", stats.overall))
    _print_table(headers, table, right=set(range(1, len(headers))))
    print("\nTheo tháng:")
    months = [
        (f"{month[5:]}/{month[:4]}", str(tally.responses), _percent(tally.index))
        for month, tally in stats.by_month.items()
    ]
    _print_table(("Tháng", "Phiếu", "Chỉ số"), months, right={1, 2}, indent="  ")
    if args.chart is not None:
        print(f"\nĐã vẽ biểu đồ vào {args.chart}.")
    return 0


def _period_text(args: argparse.Namespace) -> str:
    if args.since and args.until:
        return f", từ {args.since:%d/%m/%Y} đến {args.until:%d/%m/%Y}"
    if args.since:
        return f", từ {args.since:%d/%m/%Y}"
    if args.until:
        return f", đến {args.until:%d/%m/%Y}"
    return ""


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "responses": tally.responses,
        "factors": {
            factor: {
                "answered": stats.answered,
                "mean": stats.mean,
                "satisfied_percent": stats.satisfied,
            }
            for factor, stats in zip(FACTORS, tally.factors, strict=True)
        },
        "index": tally.index,
    }


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{decimal(value, 1)}%"


def _tally_cells(label: str, tally: Tally) -> tuple[str, ...]:
    factors = (
        f"{decimal(f.mean, 2)} · {_percent(f.satisfied)}" if f.answered else "-"
        for f in tally.factors
    )
    return (label, str(tally.responses), *factors, _percent(tally.index))


# --- data protection ------------------------------------------------------------------------


async def _purge(args: argparse.Namespace, context: _Context) -> int:
    actor = _actor(args)
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


async def _access_log(args: argparse.Namespace, context: _Context) -> int:
    entries = await context.inbox.access_log(limit=args.limit)
    if args.json:
        _print_json(
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
            _one_line(e.actor) + (f" ({VIA_LABELS[e.via]})" if e.via in VIA_LABELS else ""),
            ACCESS_LABELS.get(e.action, _one_line(e.action)),
            _one_line(e.detail) or "-",
        )
        for e in entries
    ]
    _print_table(("Thời điểm", "Người", "Thao tác", "Chi tiết"), table)
    return 0


# --- formatting -----------------------------------------------------------------------------


def _print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: set[int] | frozenset[int] = frozenset(),
    indent: str = "",
) -> None:
    """Columns padded by terminal width (Vietnamese combining marks take none)."""
    widths = [max(text_width(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = (
            pad(cell, width, right=i in right)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print((indent + "  ".join(cells)).rstrip())


_ACTIONS: dict[str, Action] = {
    "list": _list,
    "show": _show,
    "assign": _assign,
    "answer": _answer,
    "resolve": _resolve,
    "reject": _reject,
    "export": _export,
    "stats": _stats,
    "purge": _purge,
    "access-log": _access_log,
}
