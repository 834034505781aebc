"""Console accounts, their signed-in sessions and the failed sign-in counters.

The rules (password policy, roles, lockout and expiry times) live in ``bot.accounts`` and
``bot.signin``; this module only reads and writes the rows they decide on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Account, ConsoleSession, SigninThrottle, aware, utcnow

UPDATABLE = frozenset(
    {
        "full_name",
        "roles",
        "password_hash",
        "must_change_password",
        "password_changed_at",
        "disabled_at",
        "last_signin_at",
    }
)


class AccountExists(Exception):
    """An account with that user name exists already."""


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    username: str
    full_name: str
    roles: tuple[str, ...]
    must_change_password: bool
    password_changed_at: dt.datetime
    disabled_at: dt.datetime | None
    last_signin_at: dt.datetime | None
    created_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class SessionView:
    id_hash: str
    account: AccountView
    csrf_token: str
    address: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ThrottleView:
    key: str
    failures: int
    first_failure_at: dt.datetime
    last_failure_at: dt.datetime
    locked_until: dt.datetime | None


def _utc(value: dt.datetime) -> dt.datetime:
    return aware(value) or value


def _account(row: Account) -> AccountView:
    return AccountView(
        id=row.id,
        username=row.username,
        full_name=row.full_name,
        roles=tuple(row.roles or ()),
        must_change_password=row.must_change_password,
        password_changed_at=_utc(row.password_changed_at),
        disabled_at=aware(row.disabled_at),
        last_signin_at=aware(row.last_signin_at),
        created_at=_utc(row.created_at),
    )


def _throttle(row: SigninThrottle) -> ThrottleView:
    return ThrottleView(
        row.key,
        row.failures,
        _utc(row.first_failure_at),
        _utc(row.last_failure_at),
        aware(row.locked_until),
    )


class AccountRepository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # accounts

    async def create(
        self,
        *,
        username: str,
        full_name: str,
        roles: list[str],
        password_hash: str,
        must_change_password: bool,
    ) -> AccountView:
        now = utcnow()
        try:
            async with self._sessions.begin() as session:
                row = Account(
                    username=username,
                    full_name=full_name,
                    roles=roles,
                    password_hash=password_hash,
                    must_change_password=must_change_password,
                    password_changed_at=now,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                await session.flush()
                return _account(row)
        except IntegrityError:
            raise AccountExists(username) from None

    async def get(self, username: str) -> AccountView | None:
        found = await self.credentials(username)
        return found[0] if found else None

    async def get_by_id(self, account_id: int) -> AccountView | None:
        async with self._sessions() as session:
            row = await session.get(Account, account_id)
            return _account(row) if row else None

    async def credentials(self, username: str) -> tuple[AccountView, str] | None:
        """The account and its password hash (for signing in and changing passwords)."""
        async with self._sessions() as session:
            row = await session.scalar(select(Account).where(Account.username == username))
            return (_account(row), row.password_hash) if row else None

    async def all(self) -> list[AccountView]:
        async with self._sessions() as session:
            rows = await session.scalars(select(Account).order_by(Account.username))
            return [_account(r) for r in rows]

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Account)) or 0)

    async def update(self, account_id: int, **values: Any) -> AccountView:
        unknown = set(values) - UPDATABLE
        if unknown:
            raise ValueError(f"unknown account fields: {sorted(unknown)}")
        async with self._sessions.begin() as session:
            await session.execute(
                update(Account)
                .where(Account.id == account_id)
                .values(updated_at=utcnow(), **values)
            )
            row = await session.get(Account, account_id)
            if row is None:
                raise LookupError(account_id)
            await session.refresh(row)
            return _account(row)

    # sessions

    async def open_session(
        self, *, id_hash: str, account_id: int, csrf_token: str, address: str | None
    ) -> None:
        now = utcnow()
        async with self._sessions.begin() as session:
            session.add(
                ConsoleSession(
                    id_hash=id_hash,
                    account_id=account_id,
                    csrf_token=csrf_token,
                    address=address[:64] if address else None,
                    created_at=now,
                    last_seen_at=now,
                )
            )

    async def session(self, id_hash: str) -> SessionView | None:
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(ConsoleSession, Account)
                    .join(Account, Account.id == ConsoleSession.account_id)
                    .where(ConsoleSession.id_hash == id_hash)
                )
            ).first()
            if found is None:
                return None
            row, account = found
            return SessionView(
                row.id_hash,
                _account(account),
                row.csrf_token,
                row.address,
                _utc(row.created_at),
                _utc(row.last_seen_at),
            )

    async def touch_session(self, id_hash: str, at: dt.datetime) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id_hash == id_hash)
                .values(last_seen_at=at)
            )

    async def end_session(self, id_hash: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == id_hash))

    async def end_sessions(self, account_id: int) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ConsoleSession).where(ConsoleSession.account_id == account_id)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def purge_sessions(self, *, idle_before: dt.datetime, opened_before: dt.datetime) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ConsoleSession).where(
                    or_(
                        ConsoleSession.last_seen_at < idle_before,
                        ConsoleSession.created_at < opened_before,
                    )
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # failed sign-ins

    async def throttle(self, key: str) -> ThrottleView | None:
        async with self._sessions() as session:
            row = await session.get(SigninThrottle, key)
            return _throttle(row) if row else None

    async def count_failure(
        self,
        key: str,
        at: dt.datetime,
        *,
        window: dt.timedelta,
        lock_after: int | None = None,
        lock_for: dt.timedelta | None = None,
    ) -> ThrottleView:
        """One more failed sign-in under ``key``. Failures older than ``window`` are
        forgotten; the ``lock_after``-th in a row sets ``locked_until`` and starts the
        count again (so the next lock takes as many failures)."""
        async with self._sessions.begin() as session:
            dialect = (await session.connection()).dialect.name
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            await session.execute(
                insert(SigninThrottle)
                .values(key=key, failures=0, first_failure_at=at, last_failure_at=at)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = await session.get(SigninThrottle, key, with_for_update=True)
            assert row is not None
            if _utc(row.first_failure_at) < at - window or row.failures == 0:
                row.failures, row.first_failure_at = 0, at
            row.failures += 1
            row.last_failure_at = at
            if lock_after is not None and lock_for is not None and row.failures >= lock_after:
                row.locked_until = at + lock_for
                row.failures = 0
            await session.flush()
            return _throttle(row)

    async def clear_throttle(self, key: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(SigninThrottle).where(SigninThrottle.key == key))

    async def purge_throttle(self, older_than: dt.datetime) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(SigninThrottle).where(
                    SigninThrottle.last_failure_at < older_than,
                    or_(
                        SigninThrottle.locked_until.is_(None),
                        SigninThrottle.locked_until < older_than,
                    ),
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
