"""Accounts, for admins: the list, a new account (with a temporary password its owner must
change), roles and name, disable and enable, a password reset. The rules are
``bot.accounts.Accounts``, the same that ``bot users`` applies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.accounts import MIN_PASSWORD, ROLES, AccountError, name_key
from bot.console import guard, keys
from bot.console.guard import field
from bot.console.render import render
from storage.accounts import AccountView
from storage.models import utcnow


async def _locks(request: web.Request, accounts: list[AccountView]) -> dict[str, Any]:
    """User name → the time its sign-in lock ends, for the names locked now."""
    repository = keys.services(request).storage.accounts
    now, locked = utcnow(), {}
    for account in accounts:
        throttle = await repository.throttle(name_key(account.username))
        if throttle and throttle.locked_until and throttle.locked_until > now:
            locked[account.username] = throttle.locked_until
    return locked


async def listing(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    everyone = await guard.accounts(request).all()
    return render(
        request, "accounts.html", {"accounts": everyone, "locked": await _locks(request, everyone)}
    )


def _new_form(
    request: web.Request, *, error: str | None = None, typed: dict[str, Any] | None = None
) -> web.Response:
    return render(
        request,
        "account_new.html",
        {
            "error": error,
            "typed": typed or {"roles": []},
            "roles": ROLES,
            "min_length": MIN_PASSWORD,
        },
        status=422 if error else 200,
    )


async def new_page(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    return _new_form(request)


async def create(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    form = await request.post()
    username, full_name = field(form, "username", 64), field(form, "full_name", 100)
    roles = [r for r in form.getall("roles", []) if isinstance(r, str)]
    typed = {"username": username, "full_name": full_name, "roles": roles}
    password = field(form, "password", 1000)
    if password != field(form, "confirm", 1000):
        return _new_form(request, error="Hai lần nhập mật khẩu không khớp.", typed=typed)
    try:
        account = await guard.accounts(request).add(
            username,
            roles=roles,
            password=password,
            full_name=full_name,
            must_change_password=True,
            actor=guard.actor(request),
        )
    except AccountError as exc:
        return _new_form(request, error=str(exc), typed=typed)
    return guard.see_other(f"{keys.PREFIX}/accounts/{account.username}?ok=created")


async def _detail(
    request: web.Request, account: AccountView, *, error: str | None = None
) -> web.Response:
    return render(
        request,
        "account.html",
        {
            "account": account,
            "roles": ROLES,
            "locked": (await _locks(request, [account])).get(account.username),
            "error": error,
            "min_length": MIN_PASSWORD,
        },
        status=422 if error else 200,
    )


async def _account(request: web.Request) -> AccountView:
    try:
        return await guard.accounts(request).get(request.match_info["username"][:64])
    except AccountError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None


async def detail(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    return await _detail(request, await _account(request))


async def save(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    account = await _account(request)
    form = await request.post()
    roles = [r for r in form.getall("roles", []) if isinstance(r, str)]
    desk, who = guard.accounts(request), guard.actor(request)
    try:
        if sorted(roles) != sorted(account.roles):
            await desk.set_roles(account.username, roles, actor=who)
        full_name = field(form, "full_name", 100)
        if full_name.strip() and full_name.strip() != account.full_name:
            await desk.set_full_name(account.username, full_name, actor=who)
    except AccountError as exc:
        return await _detail(request, account, error=str(exc))
    return guard.see_other(f"{keys.PREFIX}/accounts/{account.username}?ok=saved")


async def disable(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    account = await _account(request)
    try:
        await guard.accounts(request).disable(account.username, actor=guard.actor(request))
    except AccountError as exc:
        return await _detail(request, account, error=str(exc))
    return guard.see_other(f"{keys.PREFIX}/accounts/{account.username}?ok=disabled")


async def enable(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    account = await _account(request)
    await guard.accounts(request).enable(account.username, actor=guard.actor(request))
    return guard.see_other(f"{keys.PREFIX}/accounts/{account.username}?ok=enabled")


async def reset(request: web.Request) -> web.Response:
    await guard.require(request, "accounts")
    account = await _account(request)
    form = await request.post()
    password = field(form, "password", 1000)
    if password != field(form, "confirm", 1000):
        return await _detail(request, account, error="Hai lần nhập mật khẩu không khớp.")
    try:
        await guard.accounts(request).reset_password(
            account.username, password, actor=guard.actor(request)
        )
    except AccountError as exc:
        return await _detail(request, account, error=str(exc))
    return guard.see_other(f"{keys.PREFIX}/accounts/{account.username}?ok=reset")


def setup(console: web.Application) -> None:
    console.router.add_get("/accounts", listing)
    console.router.add_get("/accounts/new", new_page)
    console.router.add_post("/accounts/new", create)
    console.router.add_get("/accounts/{username}", detail)
    console.router.add_post("/accounts/{username}", save)
    console.router.add_post("/accounts/{username}/disable", disable)
    console.router.add_post("/accounts/{username}/enable", enable)
    console.router.add_post("/accounts/{username}/password", reset)
