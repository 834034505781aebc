"""The ``bot`` command's parser, made of each command group's, and its dispatch.

Settings are built once here (from the environment and the options) and passed down.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from bot.cli import campaigns, core, feedback, subscribers, users
from bot.settings import Settings
from content.loader import ContentError

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot", description="Trợ lý ảo cải cách hành chính.")
    sub = parser.add_subparsers(dest="command", required=True)
    core.add_parser(sub)
    subscribers.add_parser(sub)
    campaigns.add_parser(sub)
    feedback.add_parser(sub)
    users.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "content", None):
        settings.content.dir = args.content
    if getattr(args, "host", None):
        settings.server.host = args.host
    if getattr(args, "port", None) is not None:
        settings.server.port = args.port
    return settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    logging.basicConfig(
        level=settings.log.level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic reports every plugin it loads at INFO; only its warnings matter here.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))
    # httpx logs every request URL at INFO and the Bot API puts the bot token in the URL; PTB
    # logs request details at DEBUG. Whatever the level asked for, they stay at WARNING.
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.root.level))
    commands: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
        **core.COMMANDS,
        "subscribers": subscribers.run,
        "campaign": campaigns.run,
        "feedback": feedback.run,
        "users": users.run,
    }
    try:
        return commands[args.command](args, settings)
    except ContentError as exc:
        print(exc, file=sys.stderr)
        return 2
