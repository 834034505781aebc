"""Signing in to the staff console, and the sessions that follow.

- The answer is the same for an unknown user name and a wrong password, and both take the
  same time (an unknown name is checked against a dummy argon2 hash).
- ``BOT_ADMIN_LOCKOUT_FAILURES`` (5) failures in a row lock the *name* for
  ``BOT_ADMIN_LOCKOUT_MINUTES`` (15), whether or not an account has it: a lockout tells
  nothing about which names exist. A locked name is refused without checking the password.
- One address that failed ``BOT_ADMIN_ADDRESS_FAILURES`` (10) times within the lockout
  window must wait before each further attempt: 2 s, then 4, 8 … up to 60 s (429 with the
  wait). Colleagues behind one office address are slowed, never locked out.
- A session id is 256 random bits (``secrets.token_urlsafe(32)``) given to the browser only;
  the database keeps its SHA-256. It ends after ``BOT_ADMIN_IDLE_MINUTES`` (30) without a
  request, ``BOT_ADMIN_ABSOLUTE_HOURS`` (12) after sign-in, at sign-out (which ends every
  session of the account), at a password change, or when the account is disabled.
- Each session has its own CSRF token (another 256 random bits), compared in constant time.
- Every sign-in, failure, refusal and sign-out goes to the audit log.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import secrets
from dataclasses import dataclass

from bot.accounts import hash_password, hasher, name_key, normal_username, verify_password
from bot.settings import AdminSettings
from storage.accounts import AccountRepository, AccountView, SessionView
from storage.audit import CONSOLE, Actor, AuditLog
from storage.models import utcnow

WRONG = "Tên đăng nhập hoặc mật khẩu không đúng."
LOCKED = (
    "Đăng nhập sai quá nhiều lần nên tên đăng nhập này đang tạm khóa. Hãy thử lại sau "
    "{minutes} phút, hoặc nhờ quản trị viên đặt lại mật khẩu."
)
SLOWED = (
    "Có quá nhiều lần đăng nhập sai từ địa chỉ mạng này. Vui lòng đợi {seconds} giây rồi thử lại."
)
DISABLED = "Tài khoản này đã bị vô hiệu hóa. Hãy liên hệ quản trị viên."
MAX_SLOWDOWN_SECONDS = 60


class SignInRefused(Exception):
    """The sign-in did not happen; ``message`` is for the person, ``retry_after`` seconds
    when waiting helps."""

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Opened:
    """A new session: ``token`` goes into the cookie and nowhere else."""

    token: str
    account: AccountView
    csrf_token: str


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    return hasher().hash(secrets.token_urlsafe(16))


def address_key(address: str | None) -> str:
    return f"addr:{(address or 'unknown')[:190]}"


class SignIn:
    def __init__(
        self, repository: AccountRepository, audit: AuditLog, settings: AdminSettings
    ) -> None:
        self.repository = repository
        self.audit = audit
        self.settings = settings
        self.idle = dt.timedelta(minutes=settings.idle_minutes)
        self.absolute = dt.timedelta(hours=settings.absolute_hours)
        self.window = dt.timedelta(minutes=settings.lockout_minutes)
        # last_seen_at is written at most this often: idle expiry is that much coarser.
        self.touch_every = min(dt.timedelta(minutes=1), self.idle / 4)

    async def sign_in(self, username: str, password: str, *, address: str | None) -> Opened:
        now = utcnow()
        name = normal_username(username)[:64]
        who = Actor(name or "(trống)", CONSOLE, address=address)
        wait = await self._address_wait(address, now)
        if wait:
            await self.audit.record(who, "signin.slowed", detail=f"đợi {wait} giây")
            raise SignInRefused(SLOWED.format(seconds=wait), retry_after=wait)
        lock = await self.repository.throttle(name_key(name))
        if lock and lock.locked_until and lock.locked_until > now:
            await self.audit.record(who, "signin.locked")
            raise SignInRefused(LOCKED.format(minutes=_minutes(lock.locked_until - now)))

        found = await self.repository.credentials(name) if name else None
        verified = await verify_password(found[1] if found else _dummy_hash(), password)
        if found is None or not verified:
            counted = await self.repository.count_failure(
                name_key(name),
                now,
                window=self.window,
                lock_after=self.settings.lockout_failures,
                lock_for=self.window,
            )
            await self.repository.count_failure(address_key(address), now, window=self.window)
            failed = Actor(who.name, CONSOLE, found[0].id if found else None, address)
            if counted.locked_until:
                await self.audit.record(failed, "signin.failed", detail="tạm khóa tên đăng nhập")
                raise SignInRefused(LOCKED.format(minutes=_minutes(counted.locked_until - now)))
            await self.audit.record(failed, "signin.failed")
            raise SignInRefused(WRONG)

        account, password_hash = found
        me = Actor(account.username, CONSOLE, account.id, address)
        if not account.active:
            await self.audit.record(me, "signin.disabled")
            raise SignInRefused(DISABLED)
        changes: dict[str, object] = {"last_signin_at": now}
        if hasher().check_needs_rehash(password_hash):
            changes["password_hash"] = await hash_password(password)
        await self.repository.update(account.id, **changes)
        await self.repository.clear_throttle(name_key(name))
        opened = await self.open(account, address=address)
        await self.audit.record(me, "signin")
        return opened

    async def open(self, account: AccountView, *, address: str | None) -> Opened:
        """A fresh session for ``account`` (at sign-in, and after changing one's password)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        await self.repository.open_session(
            id_hash=digest(token), account_id=account.id, csrf_token=csrf, address=address
        )
        return Opened(token, account, csrf)

    async def _address_wait(self, address: str | None, now: dt.datetime) -> int:
        """Seconds this address must still wait before its next attempt (0: none)."""
        seen = await self.repository.throttle(address_key(address))
        if seen is None or seen.first_failure_at < now - self.window:
            return 0
        beyond = seen.failures - self.settings.address_failures
        if beyond < 0:
            return 0
        delay = min(2 ** (beyond + 1), MAX_SLOWDOWN_SECONDS)
        ready = seen.last_failure_at + dt.timedelta(seconds=delay)
        return math.ceil((ready - now).total_seconds()) if ready > now else 0

    async def resume(self, token: str) -> SessionView | None:
        """The live session this cookie holds, or None (unknown, expired or the account
        disabled; an expired one is deleted)."""
        if not token or len(token) > 100:
            return None
        id_hash = digest(token)
        session = await self.repository.session(id_hash)
        if session is None:
            return None
        now = utcnow()
        if (
            not session.account.active
            or session.last_seen_at < now - self.idle
            or session.created_at < now - self.absolute
        ):
            await self.repository.end_session(id_hash)
            return None
        if now - session.last_seen_at >= self.touch_every:
            await self.repository.touch_session(id_hash, now)
        return session

    async def sign_out(self, session: SessionView, *, address: str | None) -> int:
        """Ends every session of the account (all its browsers)."""
        ended = await self.repository.end_sessions(session.account.id)
        actor = Actor(session.account.username, CONSOLE, session.account.id, address)
        await self.audit.record(actor, "signout", detail=f"kết thúc {ended} phiên")
        return ended


def _minutes(left: dt.timedelta) -> int:
    return max(1, math.ceil(left.total_seconds() / 60))
