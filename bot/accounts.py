"""Console accounts: roles, what each role may do, the password policy, and the account
actions (``bot users`` and the console's account pages both call ``Accounts``).

Roles (a person may hold several):

- ``admin``: manages accounts and reads the audit log;
- ``communicator``: writes campaigns; ``approver``: approves them (the communicators'
  pages come with the campaign console);
- ``staff``: handles citizens' feedback: reads, assigns, answers, resolves, rejects, sees
  phone numbers (logged), exports;
- ``viewer``: reads dashboards and lists only.

Everyone signed in reads the satisfaction statistics. Passwords: at least 12 characters, not
containing the user name, hashed with argon2id (argon2-cffi's defaults). There is no default
account: the first admin is created on the server with ``bot users add``. An account is never
deleted (histories name it), only disabled; the last active admin can neither be disabled
nor lose the role. Every change is written to the audit log; a password change, a reset or
disabling ends all of that account's sessions.
"""

from __future__ import annotations

import asyncio
import functools
import re
import unicodedata
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storage.accounts import AccountExists, AccountRepository, AccountView
from storage.audit import Actor, AuditLog
from storage.models import utcnow

ADMIN = "admin"
COMMUNICATOR = "communicator"
APPROVER = "approver"
STAFF = "staff"
VIEWER = "viewer"
ROLE_LABELS = {
    ADMIN: "Quản trị tài khoản",
    COMMUNICATOR: "Soạn tin",
    APPROVER: "Duyệt tin",
    STAFF: "Xử lý góp ý, phản ánh",
    VIEWER: "Chỉ xem",
}
ROLES = tuple(ROLE_LABELS)

# What each permission needs: any one of these roles.
PERMISSIONS: dict[str, frozenset[str]] = {
    "accounts": frozenset({ADMIN}),
    "audit": frozenset({ADMIN}),
    "feedback.read": frozenset({STAFF, VIEWER}),
    "feedback.act": frozenset({STAFF}),
    "feedback.contact": frozenset({STAFF}),
    "feedback.export": frozenset({STAFF}),
    "stats": frozenset(ROLES),
}

MIN_PASSWORD = 12
MAX_PASSWORD = 256
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,63}")


class AccountError(Exception):
    """An account action that cannot be done; the message is Vietnamese, for the operator."""


def can(roles: Iterable[str], permission: str) -> bool:
    return not PERMISSIONS[permission].isdisjoint(roles)


def normal_username(value: str) -> str:
    """User names are case-insensitive: stored and compared in lower case."""
    return unicodedata.normalize("NFC", value).strip().lower()


def check_username(value: str) -> str:
    username = normal_username(value)
    if not USERNAME.fullmatch(username):
        raise AccountError(
            "Tên đăng nhập gồm 3–64 ký tự: chữ cái không dấu, chữ số, dấu chấm, gạch dưới "
            "hoặc gạch ngang, bắt đầu bằng chữ cái hoặc chữ số (ví dụ: nguyen.van.an)."
        )
    return username


def check_roles(values: Iterable[str]) -> list[str]:
    roles = list(dict.fromkeys(v.strip().lower() for v in values if v.strip()))
    unknown = [r for r in roles if r not in ROLE_LABELS]
    if unknown:
        raise AccountError(
            f"Vai trò không hợp lệ: {', '.join(unknown)}. Các vai trò: {', '.join(ROLES)}."
        )
    if not roles:
        raise AccountError("Tài khoản cần ít nhất một vai trò.")
    return roles


def _nfc(password: str) -> str:
    """The same Vietnamese password typed on keyboards that send composed (NFC) or
    decomposed (NFD) letters is the same password."""
    return unicodedata.normalize("NFC", password)


def check_password(username: str, password: str) -> None:
    password = _nfc(password)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự.")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"Mật khẩu dài quá {MAX_PASSWORD} ký tự.")
    if normal_username(username) in password.casefold():
        raise AccountError("Mật khẩu không được chứa tên đăng nhập.")


@functools.cache
def hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's current defaults (RFC 9106's second recommendation)."""
    return PasswordHasher()


async def hash_password(password: str) -> str:
    # About 0.1 s of CPU and 64 MiB: off the event loop, so the bot keeps answering.
    return await asyncio.to_thread(hasher().hash, _nfc(password))


async def verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return hasher().verify(password_hash, _nfc(password))
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


class Accounts:
    def __init__(self, repository: AccountRepository, audit: AuditLog) -> None:
        self.repository = repository
        self.audit = audit

    async def get(self, username: str) -> AccountView:
        account = await self.repository.get(normal_username(username))
        if account is None:
            raise AccountError(f"Không có tài khoản {normal_username(username)}.")
        return account

    async def all(self) -> list[AccountView]:
        return await self.repository.all()

    async def add(
        self,
        username: str,
        *,
        roles: Iterable[str],
        password: str,
        actor: Actor,
        full_name: str | None = None,
        must_change_password: bool = False,
    ) -> AccountView:
        name = check_username(username)
        chosen = check_roles(roles)
        check_password(name, password)
        display = " ".join((full_name or "").split())[:100] or name
        try:
            account = await self.repository.create(
                username=name,
                full_name=display,
                roles=chosen,
                password_hash=await hash_password(password),
                must_change_password=must_change_password,
            )
        except AccountExists:
            raise AccountError(f"Đã có tài khoản {name}.") from None
        await self.audit.record(actor, "account.create", name, "vai trò: " + ", ".join(chosen))
        return account

    async def set_roles(self, username: str, roles: Iterable[str], *, actor: Actor) -> AccountView:
        account = await self.get(username)
        chosen = check_roles(roles)
        if ADMIN in account.roles and ADMIN not in chosen:
            await self._keep_an_admin(account)
        updated = await self.repository.update(account.id, roles=chosen)
        await self.audit.record(
            actor,
            "account.roles",
            account.username,
            f"{', '.join(account.roles)} → {', '.join(chosen)}",
        )
        return updated

    async def set_full_name(self, username: str, full_name: str, *, actor: Actor) -> AccountView:
        account = await self.get(username)
        display = " ".join(full_name.split())[:100] or account.username
        updated = await self.repository.update(account.id, full_name=display)
        await self.audit.record(actor, "account.name", account.username, display)
        return updated

    async def disable(self, username: str, *, actor: Actor) -> AccountView:
        account = await self.get(username)
        if actor.account_id == account.id:
            raise AccountError("Bạn không thể tự vô hiệu hóa tài khoản của mình.")
        if not account.active:
            return account
        if ADMIN in account.roles:
            await self._keep_an_admin(account)
        updated = await self.repository.update(account.id, disabled_at=utcnow())
        ended = await self.repository.end_sessions(account.id)
        await self.audit.record(
            actor, "account.disable", account.username, f"kết thúc {ended} phiên"
        )
        return updated

    async def enable(self, username: str, *, actor: Actor) -> AccountView:
        account = await self.get(username)
        updated = await self.repository.update(account.id, disabled_at=None)
        await self.repository.clear_throttle(name_key(account.username))
        if not account.active:
            await self.audit.record(actor, "account.enable", account.username)
        return updated

    async def reset_password(self, username: str, password: str, *, actor: Actor) -> AccountView:
        """A password someone else chose: the owner must change it at their next sign-in.
        Ends the account's sessions and lifts a lockout."""
        account = await self.get(username)
        check_password(account.username, password)
        updated = await self.repository.update(
            account.id,
            password_hash=await hash_password(password),
            must_change_password=True,
            password_changed_at=utcnow(),
        )
        ended = await self.repository.end_sessions(account.id)
        await self.repository.clear_throttle(name_key(account.username))
        await self.audit.record(
            actor, "account.reset_password", account.username, f"kết thúc {ended} phiên"
        )
        return updated

    async def change_password(
        self, account: AccountView, *, current: str, new: str, actor: Actor
    ) -> AccountView:
        """The owner's own change: needs the current password; ends all their sessions."""
        found = await self.repository.credentials(account.username)
        if found is None or not await verify_password(found[1], current):
            await self.audit.record(actor, "password.change_failed", account.username)
            raise AccountError("Mật khẩu hiện tại không đúng.")
        check_password(account.username, new)
        if await verify_password(found[1], new):
            raise AccountError("Mật khẩu mới phải khác mật khẩu hiện tại.")
        updated = await self.repository.update(
            account.id,
            password_hash=await hash_password(new),
            must_change_password=False,
            password_changed_at=utcnow(),
        )
        await self.repository.end_sessions(account.id)
        await self.audit.record(actor, "password.change", account.username)
        return updated

    async def _keep_an_admin(self, account: AccountView) -> None:
        others = [
            a
            for a in await self.repository.all()
            if a.id != account.id and a.active and ADMIN in a.roles
        ]
        if not others:
            raise AccountError(
                f"{account.username} là quản trị viên cuối cùng còn hoạt động; hãy cấp vai trò "
                "quản trị cho một tài khoản khác trước."
            )


def name_key(username: str) -> str:
    """The sign-in throttle's key of a user name (see ``bot.signin``)."""
    return f"name:{normal_username(username)[:190]}"
