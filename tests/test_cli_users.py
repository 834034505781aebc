"""``bot users …`` as an operator uses it: through the real CLI entry on SQLite and
PostgreSQL, and once in a real pseudo-terminal, where the password is typed twice without
echo."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import os
import pty
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.services import open_storage
from bot.settings import AdminSettings, DatabaseSettings, Settings
from bot.signin import SignIn, SignInRefused
from storage.audit import AuditFilter, AuditView

PASSWORD = "mật khẩu của quản trị 2026"
Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def db(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    return database_url


@pytest.fixture
def cli(db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    def call(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(["users", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return call


def settings_for(url: str) -> Settings:
    return Settings(database=DatabaseSettings(url=url))


def audit(url: str) -> list[AuditView]:
    async def go() -> list[AuditView]:
        async with open_storage(settings_for(url)) as storage:
            return await storage.audit.page(AuditFilter())

    return asyncio.run(go())


def sign_in(url: str, username: str, password: str) -> str:
    async def go() -> str:
        async with open_storage(settings_for(url)) as storage:
            signin = SignIn(storage.accounts, storage.audit, AdminSettings())
            try:
                opened = await signin.sign_in(username, password, address=None)
            except SignInRefused as exc:
                return exc.message
            return "ok, must change" if opened.account.must_change_password else "ok"

    return asyncio.run(go())


def test_the_operator_manages_accounts_from_the_terminal(db: str, cli: Cli) -> None:
    code, out, err = cli("list")
    assert (code, out) == (
        0,
        "Chưa có tài khoản nào. Tạo tài khoản đầu tiên: bot users add TÊN --role admin\n",
    )
    code, out, err = cli(
        "add",
        "QT.Vien",
        "--role",
        "admin",
        "--full-name",
        "Nguyễn Quản Trị",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert out == "Đã tạo tài khoản qt.vien (admin – Quản trị tài khoản).\n"
    assert sign_in(db, "qt.vien", PASSWORD) == "ok"
    code, out, err = cli(
        "add", "cv.hoa", "--role", "staff,viewer", "--password-stdin", stdin="một mật khẩu khác nữa"
    )
    assert code == 0, err
    code, out, err = cli("list")
    lines = out.splitlines()
    assert lines[0].split() == [
        "Tên",
        "đăng",
        "nhập",
        "Họ",
        "tên",
        "Vai",
        "trò",
        "Trạng",
        "thái",
        "Đăng",
        "nhập",
        "gần",
        "nhất",
    ]
    assert lines[1].split()[:3] == ["cv.hoa", "cv.hoa", "staff,viewer"]
    assert lines[2].split()[:5] == ["qt.vien", "Nguyễn", "Quản", "Trị", "admin"]
    assert "/" in lines[2]  # signed in once: the time is shown
    code, out, err = cli("roles", "cv.hoa", "viewer")
    assert (code, out) == (0, "Vai trò của cv.hoa: viewer – Chỉ xem.\n")
    code, out, err = cli("disable", "cv.hoa")
    assert code == 0, err
    assert sign_in(db, "cv.hoa", "một mật khẩu khác nữa").startswith(
        "Tài khoản này đã bị vô hiệu hóa"
    )
    code, out, err = cli("enable", "cv.hoa")
    assert code == 0, err
    code, out, err = cli(
        "reset-password", "cv.hoa", "--password-stdin", stdin="mật khẩu tạm thời mới\n"
    )
    assert code == 0, err
    assert sign_in(db, "cv.hoa", "mật khẩu tạm thời mới") == "ok, must change"
    code, out, err = cli("list", "--json")
    listed = {a["username"]: a for a in json.loads(out)}
    assert listed["cv.hoa"]["roles"] == ["viewer"]
    assert listed["cv.hoa"]["must_change_password"] is True
    assert listed["qt.vien"]["full_name"] == "Nguyễn Quản Trị"
    operator = getpass.getuser()
    done = [
        (r.action, r.target, r.actor, r.via) for r in audit(db) if r.action.startswith("account.")
    ]
    assert done == [
        ("account.reset_password", "cv.hoa", operator, "cli"),
        ("account.enable", "cv.hoa", operator, "cli"),
        ("account.disable", "cv.hoa", operator, "cli"),
        ("account.roles", "cv.hoa", operator, "cli"),
        ("account.create", "cv.hoa", operator, "cli"),
        ("account.create", "qt.vien", operator, "cli"),
    ]


def test_refusals_say_why_and_exit_2(db: str, cli: Cli) -> None:
    assert cli("add", "qt.vien", "--role", "admin", "--password-stdin", stdin=PASSWORD)[0] == 0
    for args, stdin, message in (
        (("add", "qt.vien", "--role", "staff"), PASSWORD, "Đã có tài khoản qt.vien"),
        (("add", "cv.moi", "--role", "staff"), "ngắn", "ít nhất 12 ký tự"),
        (
            ("add", "cv.moi", "--role", "staff"),
            "cv.moi-mat-khau-dai",
            "không được chứa tên đăng nhập",
        ),
        (("add", "cv.moi", "--role", "sep"), PASSWORD, "Vai trò không hợp lệ: sep"),
        (("reset-password", "khong.co"), PASSWORD, "Không có tài khoản khong.co"),
    ):
        code, out, err = cli(*args, "--password-stdin", stdin=stdin)
        assert (code, out) == (2, ""), args
        assert message in err, (args, err)
    code, out, err = cli("roles", "qt.vien", "staff")
    assert code == 2
    assert "quản trị viên cuối cùng" in err
    code, out, err = cli("disable", "khong.co")
    assert (code, err) == (2, "Không có tài khoản khong.co.\n")
    # Without a terminal and without --password-stdin there is nobody to ask.
    code, out, err = cli("add", "cv.moi", "--role", "staff", stdin="")
    assert code == 2
    assert "--password-stdin" in err


def _read_until(fd: int, marker: bytes, seconds: float = 20.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {marker!r}, got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _typed_twice(url: str, first: str, second: str) -> tuple[int, str]:
    """Run ``bot users add`` in a pseudo-terminal and type the two passwords at its prompts."""
    bot = str(Path(sys.executable).with_name("bot"))
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal, as in a real session
        os.environ["BOT_DATABASE_URL"] = url
        os.execv(bot, [bot, "users", "add", "cv.tty", "--role", "staff"])
    try:
        _read_until(fd, "Mật khẩu: ".encode())
        os.write(fd, first.encode() + b"\n")
        _read_until(fd, "Nhập lại mật khẩu: ".encode())
        os.write(fd, second.encode() + b"\n")
        rest = _read_until(fd, b"\x00-never-", seconds=30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), rest.decode(errors="replace")


def test_the_password_is_typed_twice_at_a_terminal_without_echo(sqlite_url: str) -> None:
    code, shown = _typed_twice(sqlite_url, "mật khẩu gõ lần một", "mật khẩu gõ lần hai")
    assert code == 2
    assert "Hai lần nhập mật khẩu không khớp." in shown
    code, shown = _typed_twice(sqlite_url, "mật khẩu gõ hai lần", "mật khẩu gõ hai lần")
    assert code == 0, shown
    assert "Đã tạo tài khoản cv.tty" in shown
    assert "mật khẩu gõ hai lần" not in shown  # never echoed
    assert sign_in(sqlite_url, "cv.tty", "mật khẩu gõ hai lần") == "ok"
