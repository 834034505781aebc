"""``bot serve``, ``ask``, ``chat``, ``db upgrade|current|purge`` and
``telegram set-webhook|delete-webhook|info|poll``: the bot itself, its database and its
Telegram hook. ``content check|gaps|import-tthc`` lives in ``bot.cli.content``.

Settings come from ``bot.cli.entry`` (the environment and the options). What a command needs
beyond the parser (the server, the database layer, the channels) is imported when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from bot.cli import content as content_cli
from bot.settings import Settings
from content.loader import load_pack
from content.search import FaqEngine, MatchResult, Outcome


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    content = content_cli.pack_option()
    serve = sub.add_parser("serve", parents=[content], help="run the web server")
    serve.add_argument("--host", help="default 127.0.0.1 (BOT_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="default 8080 (BOT_SERVER_PORT)")

    ask = sub.add_parser("ask", parents=[content], help="ask one question (or '-' for stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object per question")
    ask.add_argument("text", nargs="+", help="the question, or '-' to read one per line")

    sub.add_parser("chat", parents=[content], help="talk to the bot in this terminal")

    content_cli.add_parser(sub, content)

    database = sub.add_parser("db", help="database tools")
    db_sub = database.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")
    db_sub.add_parser("current", help="print the applied migration")
    db_sub.add_parser("purge", help="delete logs older than the retention period")

    tg = sub.add_parser("telegram", help="Telegram bot tools (needs BOT_TELEGRAM_TOKEN)")
    tg_sub = tg.add_subparsers(dest="action", required=True)
    set_hook = tg_sub.add_parser(
        "set-webhook", help="point Telegram at URL (with the secret and the update types)"
    )
    set_hook.add_argument(
        "--url",
        required=True,
        help="public https URL of the route, e.g. https://…/webhook/telegram",
    )
    set_hook.add_argument("--drop-pending-updates", action="store_true")
    delete_hook = tg_sub.add_parser("delete-webhook", help="stop webhook delivery")
    delete_hook.add_argument("--drop-pending-updates", action="store_true")
    tg_sub.add_parser("info", help="print getWebhookInfo as JSON")
    tg_sub.add_parser(
        "poll", parents=[content], help="run the bot with long polling (no public URL needed)"
    )


def _run(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)


def _serve(_args: argparse.Namespace, settings: Settings) -> int:
    from aiohttp import web

    from bot.app import create_app

    load_pack(settings.content.dir)  # fail fast, before binding the port
    host, port = settings.server.host, settings.server.port
    print(f"Trợ lý ảo đang chạy: http://{host}:{port}/  (Ctrl+C để dừng)", file=sys.stderr)
    admin = settings.admin
    if admin.enabled:
        where = f"{admin.host or host}:{admin.port}" if admin.port is not None else f"{host}:{port}"
        print(f"Bảng điều khiển cho cán bộ: http://{where}/admin/", file=sys.stderr)
    web.run_app(create_app(settings), host=host, port=port, print=None, loop=_event_loop())
    return 0


def _event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux, macOS): the webhook path does several network
    round trips per update, and uvloop's are markedly cheaper than the default loop's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def result_json(result: MatchResult) -> dict[str, Any]:
    """The stable shape outside evaluation tools rely on."""
    best = result.best if result.outcome is Outcome.ANSWER else None
    others = [h for h in result.hits if best is None or h.entry.id != best.entry.id]
    if result.outcome is Outcome.FALLBACK and not result.suggested:
        others = []
    return {
        "outcome": result.outcome.value,
        "entry_id": best.entry.id if best else None,
        "title": best.entry.title if best else None,
        "score": best.score if best else None,
        "answer": best.entry.answer if best else None,
        "suggestions": [
            {"entry_id": h.entry.id, "title": h.entry.title, "score": h.score} for h in others
        ],
    }


def _print_result(result: MatchResult, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(result_json(result), ensure_ascii=False) + "\n")
        out.flush()
        return
    from bot.terminal import plain

    if result.outcome is Outcome.ANSWER and result.best:
        out.write(f"{result.best.entry.title}  (độ tin cậy {result.best.score:.2f})\n\n")
        out.write(plain(result.best.entry.answer) + "\n")
    elif result.outcome is Outcome.CLARIFY:
        out.write("Bạn muốn hỏi về nội dung nào dưới đây?\n")
        for i, hit in enumerate(result.hits, 1):
            out.write(f"  [{i}] {hit.entry.title}  ({hit.score:.2f})\n")
    else:
        out.write("Xin lỗi, tôi chưa có câu trả lời chắc chắn cho câu hỏi này.\n")
        if result.suggested:
            out.write("Có thể bạn muốn hỏi:\n")
            for i, hit in enumerate(result.hits, 1):
                out.write(f"  [{i}] {hit.entry.title}  ({hit.score:.2f})\n")


def _match(engine: FaqEngine, text: str) -> MatchResult:
    """A typed procedure code goes to its imported entry, as in the chat (handlers.procedures);
    anything else to the FAQ engine."""
    from content.procedures import find_code
    from content.search import Hit

    code = find_code(text)
    if code is None:
        return engine.match(text)
    entry = engine.kb.procedure_entry(code)
    if entry is None:
        return MatchResult(Outcome.FALLBACK, (), code)
    return MatchResult(Outcome.ANSWER, (Hit(entry, 1.0, 1.0),), code)


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    """Match questions without touching the database (evaluation runs must not fill the logs)."""
    from bot.services import build_engine

    engine: FaqEngine = build_engine(settings)
    if args.text == ["-"]:
        for line in sys.stdin:
            _print_result(_match(engine, line.rstrip("\n")), args.json, sys.stdout)
        return 0
    _print_result(_match(engine, " ".join(args.text)), args.json, sys.stdout)
    return 0


def _chat(_args: argparse.Namespace, settings: Settings) -> int:
    return _run(_chat_loop(settings))


async def _chat_loop(settings: Settings) -> int:
    from bot.messages import Button, Inbound
    from bot.services import open_services
    from bot.terminal import render

    async with open_services(settings) as services:
        print("Gõ câu hỏi, hoặc số của một lựa chọn. Gõ 'thoát' hoặc Ctrl+D để kết thúc.\n")
        buttons: list[Button] = []
        inbound: Inbound | None = Inbound("console", "console", payload="start")
        while True:
            if inbound is not None:
                text, buttons = render(await services.dispatcher.dispatch(inbound))
                print(text + "\n")
            try:
                line = await asyncio.to_thread(input, "Bạn: ")
            except EOFError:
                print()
                return 0
            line = line.strip()
            if line.lower() in {"thoát", "thoat", "exit", "quit"}:
                return 0
            if line.isdigit() and 1 <= int(line) <= len(buttons):
                chosen = buttons[int(line) - 1]
                if chosen.payload is None:
                    print(f"Mở liên kết: {chosen.url}\n")
                    inbound = None
                    continue
                inbound = Inbound("console", "console", payload=chosen.payload)
            else:
                inbound = Inbound("console", "console", text=line)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    return _run(_db_async(args, settings))


async def _db_async(args: argparse.Namespace, settings: Settings) -> int:
    from bot.services import open_storage, purge_expired
    from storage import db

    async with open_storage(settings, migrate=args.action != "current") as storage:
        if args.action == "upgrade":
            print(f"Cơ sở dữ liệu ở phiên bản {await db.current_revision(storage.db)}.")
        elif args.action == "current":
            print(await db.current_revision(storage.db) or "(chưa có bảng nào)")
        else:
            turns, gaps = await purge_expired(storage, settings)
            print(f"Đã xóa {turns} lượt hội thoại và {gaps} câu hỏi chưa trả lời quá hạn lưu trữ.")
    return 0


def _telegram(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels import telegram

    try:
        return _run(_telegram_async(args, settings))
    except telegram.TelegramCommandError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code


async def _telegram_async(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels import telegram

    config = settings.telegram
    if config.token is None:
        raise telegram.TelegramCommandError(
            "Chưa cấu hình token Telegram: đặt biến môi trường BOT_TELEGRAM_TOKEN "
            "(token do @BotFather cấp).",
            exit_code=2,
        )
    if args.action == "set-webhook":
        await telegram.set_webhook(config, args.url, drop_pending=args.drop_pending_updates)
        print(f"Đã đặt webhook Telegram: {args.url}")
        if not args.url.rstrip("/").endswith(telegram.WEBHOOK_PATH):
            print(
                f"Lưu ý: máy chủ của bot nhận cập nhật ở đường dẫn {telegram.WEBHOOK_PATH}.",
                file=sys.stderr,
            )
    elif args.action == "delete-webhook":
        await telegram.delete_webhook(config, drop_pending=args.drop_pending_updates)
        print("Đã gỡ webhook Telegram.")
    elif args.action == "info":
        info = await telegram.webhook_info(config)
        print(json.dumps(info, ensure_ascii=False, indent=2))
    else:
        await _telegram_poll(settings)
    return 0


async def _telegram_poll(settings: Settings) -> None:
    import signal

    from bot.channels import telegram
    from bot.services import open_services

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        # Ctrl+C ends the wait; PTB then stops polling and the services close cleanly.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)

    def ready(username: str) -> None:
        print(
            f"Bot Telegram @{username} đang nhận tin nhắn (long polling). Nhấn Ctrl+C để dừng.",
            file=sys.stderr,
            flush=True,
        )

    try:
        async with open_services(settings) as services:
            await telegram.poll(settings.telegram, services, stop, ready)
    finally:
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    print("Đã dừng.", file=sys.stderr)


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "serve": _serve,
    "ask": _ask,
    "chat": _chat,
    "content": content_cli.run,
    "db": _db,
    "telegram": _telegram,
}
