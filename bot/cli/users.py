"""``bot users …``: console accounts, from the server's terminal.

add, list, roles, disable, enable, reset-password. The rules are ``bot.accounts.Accounts``
(the console's account pages apply the same). Passwords are read twice from the terminal
without echo, or once from standard input with ``--password-stdin`` (for scripts); never
from the command line, where other users of the machine and the shell history would see
them. Every change is written to the audit log as done at the command line by the system
user running the command.

Exit codes: 0 done; 2 refused (the reason on stderr, in Vietnamese); 1 unexpected.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import logging
import sys
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.accounts import ROLE_LABELS, ROLES
from bot.cli.text import print_table, printable, safe_json
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.accounts import Accounts
    from storage.accounts import AccountView

log = logging.getLogger(__name__)


class UsageError(Exception):
    """Bad input (message in Vietnamese): exit code 2."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roles_help = "comma-separated: " + ", ".join(ROLES)
    stdin = argparse.ArgumentParser(add_help=False)
    stdin.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    name = argparse.ArgumentParser(add_help=False)
    name.add_argument("name", metavar="NAME", help="the user name")

    command = sub.add_parser("users", help="staff console accounts and their roles")
    actions = command.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[name, stdin], help="create an account")
    add.add_argument("--role", required=True, metavar="ROLE[,ROLE…]", help=roles_help)
    add.add_argument("--full-name", metavar="TEXT", help="the person's name as colleagues read it")
    listing = actions.add_parser("list", help="every account, its roles and state")
    listing.add_argument("--json", action="store_true", help="print JSON")
    roles = actions.add_parser("roles", parents=[name], help="replace an account's roles")
    roles.add_argument("roles", metavar="ROLE[,ROLE…]", help=roles_help)
    actions.add_parser("disable", parents=[name], help="stop an account from signing in")
    actions.add_parser("enable", parents=[name], help="let a disabled account sign in again")
    actions.add_parser(
        "reset-password",
        parents=[name, stdin],
        help="set a temporary password (changed at the next sign-in); ends its sessions",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.accounts import AccountError

    try:
        return asyncio.run(_run(args, settings))
    except (AccountError, UsageError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except Exception as exc:
        log.exception("bot users %s failed", args.action)
        print(f"Lỗi không mong đợi: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1


def _role_list(value: str) -> list[str]:
    return [part for part in value.split(",") if part.strip()]


def _operator() -> str:
    """Who runs the command: the system user (recorded in the audit log as a claim)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "(không rõ)"


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        return password.removesuffix("\r")
    if not sys.stdin.isatty():
        raise UsageError(
            "Không có bàn phím để nhập mật khẩu; dùng --password-stdin để đọc từ đầu vào."
        )
    first = getpass.getpass("Mật khẩu: ")
    if first != getpass.getpass("Nhập lại mật khẩu: "):
        raise UsageError("Hai lần nhập mật khẩu không khớp.")
    return first


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.accounts import Accounts
    from bot.services import open_storage
    from storage.audit import CLI, Actor

    # The password is read before the database opens: a typo costs no migration wait.
    password = _password(args) if args.action in ("add", "reset-password") else ""
    async with open_storage(settings) as storage:
        accounts = Accounts(storage.accounts, storage.audit)
        actor = Actor(_operator(), CLI)
        if args.action == "list":
            return await _list(accounts, ZoneInfo(settings.feedback.timezone), as_json=args.json)
        if args.action == "add":
            account = await accounts.add(
                args.name,
                roles=_role_list(args.role),
                password=password,
                full_name=args.full_name,
                actor=actor,
            )
            print(f"Đã tạo tài khoản {account.username} ({_roles(account)}).")
        elif args.action == "roles":
            account = await accounts.set_roles(args.name, _role_list(args.roles), actor=actor)
            print(f"Vai trò của {account.username}: {_roles(account)}.")
        elif args.action == "disable":
            account = await accounts.disable(args.name, actor=actor)
            print(f"Đã vô hiệu hóa {account.username}; các phiên đăng nhập đã kết thúc.")
        elif args.action == "enable":
            account = await accounts.enable(args.name, actor=actor)
            print(f"Đã bật lại {account.username}.")
        else:
            account = await accounts.reset_password(args.name, password, actor=actor)
            print(f"Đã đặt mật khẩu tạm cho {account.username}; người dùng phải đổi khi đăng nhập.")
    return 0


def _roles(account: AccountView) -> str:
    return ", ".join(f"{r} – {ROLE_LABELS.get(r, r)}" for r in account.roles)


async def _list(accounts: Accounts, zone: dt.tzinfo, *, as_json: bool) -> int:
    everyone = await accounts.all()
    if as_json:
        print(
            safe_json(
                [
                    {
                        "username": a.username,
                        "full_name": a.full_name,
                        "roles": list(a.roles),
                        "active": a.active,
                        "must_change_password": a.must_change_password,
                        "last_signin_at": a.last_signin_at.isoformat()
                        if a.last_signin_at
                        else None,
                        "created_at": a.created_at.isoformat(),
                    }
                    for a in everyone
                ],
                indent=2,
            )
        )
        return 0
    if not everyone:
        print("Chưa có tài khoản nào. Tạo tài khoản đầu tiên: bot users add TÊN --role admin")
        return 0
    rows = [
        (
            a.username,
            printable(a.full_name),
            ",".join(a.roles),
            "hoạt động" if a.active else "đã vô hiệu hóa",
            a.last_signin_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")
            if a.last_signin_at
            else "-",
        )
        for a in everyone
    ]
    headers = ("Tên đăng nhập", "Họ tên", "Vai trò", "Trạng thái", "Đăng nhập gần nhất")
    print_table(headers, rows)
    return 0
