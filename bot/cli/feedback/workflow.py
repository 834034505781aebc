"""``bot feedback assign``, ``answer``, ``resolve`` and ``reject``: an item moved through its
workflow (``bot.feedback_desk``), with who did it in its history."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.feedback.common import Action, Context, UsageError, actor_of, one_line
from bot.cli.text import printable
from storage.feedback import STATUS_LABELS

if TYPE_CHECKING:
    from storage.feedback import FeedbackView


async def _assign(args: argparse.Namespace, context: Context) -> int:
    actor = actor_of(args)
    item = await context.desk.assign(args.code, to=args.to, actor=actor)
    _moved(item, actor, f"giao cho {one_line(item.assignee)}")
    return 0


async def _answer(args: argparse.Namespace, context: Context) -> int:
    actor = actor_of(args)
    item = await context.desk.answer(args.code, text=_read_text(args), actor=actor)
    _moved(item, actor, _notice_text(item))
    return 0


async def _resolve(args: argparse.Namespace, context: Context) -> int:
    actor = actor_of(args)
    item = await context.desk.resolve(args.code, actor=actor, text=args.text)
    _moved(item, actor, _notice_text(item))
    return 0


async def _reject(args: argparse.Namespace, context: Context) -> int:
    actor = actor_of(args)
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


ACTIONS: dict[str, Action] = {
    "assign": _assign,
    "answer": _answer,
    "resolve": _resolve,
    "reject": _reject,
}
