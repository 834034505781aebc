"""Who acts (``Actor``) and the audit log of what they did.

An actor is a console account (``via = console``: the name is the account's user name, the
id its account id), a name typed at the command line (``via = cli``: a claim, recorded as
such), the bot itself (``system``) or a citizen. Item and campaign histories keep ``via``
beside the name, so staff can tell a step taken by a signed-in person from one typed on the
server. The audit log keeps every console sign-in, failed sign-in and action, and the account
and feedback actions taken at the command line: who, what, which item, when, from where.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import AuditEntry, aware, utcnow

CONSOLE = "console"
CLI = "cli"
SYSTEM = "system"
CITIZEN = "citizen"
# How histories and the audit log name the ways in.
VIA_LABELS = {
    CONSOLE: "bảng điều khiển",
    CLI: "dòng lệnh",
    SYSTEM: "hệ thống",
    CITIZEN: "người dân",
}

# Every action the audit log records, as staff read it.
ACTION_LABELS = {
    "signin": "Đăng nhập",
    "signin.failed": "Đăng nhập sai",
    "signin.locked": "Đăng nhập khi đang tạm khóa",
    "signin.slowed": "Đăng nhập quá dồn dập",
    "signin.disabled": "Đăng nhập tài khoản đã vô hiệu hóa",
    "signout": "Đăng xuất",
    "password.change": "Đổi mật khẩu",
    "password.change_failed": "Đổi mật khẩu, sai mật khẩu hiện tại",
    "account.create": "Tạo tài khoản",
    "account.roles": "Đổi vai trò",
    "account.name": "Đổi họ tên",
    "account.disable": "Vô hiệu hóa tài khoản",
    "account.enable": "Bật lại tài khoản",
    "account.reset_password": "Đặt lại mật khẩu",
    "feedback.assign": "Giao xử lý góp ý",
    "feedback.answer": "Trả lời góp ý",
    "feedback.resolve": "Đánh dấu đã giải quyết",
    "feedback.reject": "Từ chối góp ý",
    "feedback.contact": "Xem số điện thoại",
    "feedback.export": "Xuất dữ liệu góp ý",
    "audit.export": "Xuất nhật ký",
    "access.denied": "Bị từ chối vì không có quyền",
    "csrf.refused": "Biểu mẫu thiếu mã bảo vệ",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something, and through what. ``address`` is the client's network address
    for console requests (for the audit log)."""

    name: str
    via: str = CLI
    account_id: int | None = None
    address: str | None = None

    def is_same_person(self, name: str, account_id: int | None) -> bool:
        """Whether this actor is the one recorded as ``name`` / ``account_id``: by account
        when both sides have one, else by name (a name typed at the command line is
        compared with the account's user name, so it cannot pose as a different person
        by using a colleague's account name either)."""
        if self.account_id is not None and account_id is not None:
            return self.account_id == account_id
        return self.name.casefold() == name.casefold()


def actor_of(value: Actor | str) -> Actor:
    """A plain string is a name typed at the command line."""
    if isinstance(value, Actor):
        return value
    return Actor(" ".join(value.split())[:100], CLI)


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: dt.datetime
    account_id: int | None
    actor: str
    via: str
    action: str
    target: str | None
    detail: str | None
    address: str | None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What the audit page and its export select; ``until`` is exclusive."""

    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.actor:
            conditions.append(AuditEntry.actor == self.actor)
        if self.action:
            conditions.append(AuditEntry.action == self.action)
        if self.since:
            conditions.append(AuditEntry.created_at >= self.since)
        if self.until:
            conditions.append(AuditEntry.created_at < self.until)
        return conditions


def _view(row: AuditEntry) -> AuditView:
    return AuditView(
        row.id,
        aware(row.created_at) or row.created_at,
        row.account_id,
        row.actor,
        row.via,
        row.action,
        row.target,
        row.detail,
        row.address,
    )


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self, actor: Actor, action: str, target: str | None = None, detail: str | None = None
    ) -> None:
        async with self._sessions.begin() as session:
            session.add(
                AuditEntry(
                    created_at=utcnow(),
                    account_id=actor.account_id,
                    actor=actor.name[:100],
                    via=actor.via,
                    action=action[:48],
                    target=target[:120] if target else None,
                    detail=detail[:500] if detail else None,
                    address=actor.address[:64] if actor.address else None,
                )
            )

    async def page(
        self, where: AuditFilter, *, before: int | None = None, limit: int = 50
    ) -> list[AuditView]:
        """Newest first, ``limit`` rows older than the row ``before`` (keyset pages)."""
        query = select(AuditEntry).where(*where.conditions())
        if before is not None:
            query = query.where(AuditEntry.id < before)
        async with self._sessions() as session:
            rows = await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit))
            return [_view(r) for r in rows]

    async def iter_entries(
        self, where: AuditFilter, *, batch: int = 1000
    ) -> AsyncGenerator[AuditView, None]:
        """Every matching row, newest first, read in keyset pages (exports of any size)."""
        before: int | None = None
        while True:
            page = await self.page(where, before=before, limit=batch)
            for view in page:
                yield view
            if len(page) < batch:
                return
            before = page[-1].id

    async def purge(self, older_than: dt.datetime) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(AuditEntry).where(AuditEntry.created_at < older_than)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
