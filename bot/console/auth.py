"""Signing in and out, and changing one's own password (the rules: ``bot.signin`` and
``bot.accounts``)."""

from __future__ import annotations

from aiohttp import web

from bot.accounts import MIN_PASSWORD, AccountError
from bot.console import guard, keys
from bot.console.guard import field
from bot.console.render import render
from bot.signin import SignInRefused, digest


async def login_page(request: web.Request) -> web.Response:
    return await _login_form(request)


async def _login_form(
    request: web.Request,
    *,
    error: str | None = None,
    username: str = "",
    status: int = 200,
    retry_after: int | None = None,
) -> web.Response:
    no_accounts = await keys.services(request).storage.accounts.count() == 0
    token, fresh = guard.signin_token(request)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "username": username,
            "expired": request.query.get("expired") == "1",
            "signed_out": request.query.get("bye") == "1",
            "next": guard.safe_next(request.query.get("next")),
            "no_accounts": no_accounts,
            "signin_token": token,
        },
        status=status,
    )
    if fresh:
        guard.set_signin_cookie(request, response, token)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    username = field(form, "username", 100)
    password = field(form, "password", 1000)
    try:
        opened = await guard.signin(request).sign_in(
            username, password, address=guard.client_address(request)
        )
    except SignInRefused as exc:
        return await _login_form(
            request,
            error=exc.message,
            username=username,
            status=429 if exc.retry_after else 401,
            retry_after=exc.retry_after,
        )
    previous = request.cookies.get(guard.SESSION_COOKIE)
    if previous:  # someone else was signed in on this browser: their session ends here
        await keys.services(request).storage.accounts.end_session(digest(previous))
    target = guard.PASSWORD if opened.account.must_change_password else field(form, "next")
    response = guard.see_other(guard.safe_next(target))
    guard.set_session_cookie(request, response, opened.token)
    return response


async def logout(request: web.Request) -> web.Response:
    await guard.signin(request).sign_out(
        keys.session(request), address=guard.client_address(request)
    )
    response = guard.see_other(guard.LOGIN + "?bye=1")
    guard.clear_session_cookie(response)
    return response


async def password_page(request: web.Request) -> web.Response:
    return _password_form(request)


def _password_form(
    request: web.Request, *, error: str | None = None, status: int = 200
) -> web.Response:
    return render(
        request,
        "password.html",
        {
            "error": error,
            "forced": keys.session(request).account.must_change_password,
            "min_length": MIN_PASSWORD,
        },
        status=status,
    )


async def change_password(request: web.Request) -> web.Response:
    form = await request.post()
    new = field(form, "new", 1000)
    if new != field(form, "confirm", 1000):
        return _password_form(request, error="Hai lần nhập mật khẩu mới không khớp.", status=422)
    account = keys.session(request).account
    try:
        changed = await guard.accounts(request).change_password(
            account, current=field(form, "current", 1000), new=new, actor=guard.actor(request)
        )
    except AccountError as exc:
        return _password_form(request, error=str(exc), status=422)
    # Every session of the account has ended; this browser carries on in a new one.
    opened = await guard.signin(request).open(changed, address=guard.client_address(request))
    response = guard.see_other(keys.PREFIX + "/?ok=password")
    guard.set_session_cookie(request, response, opened.token)
    return response


def setup(console: web.Application) -> None:
    console.router.add_get("/login", login_page)
    console.router.add_post("/login", login)
    console.router.add_post("/logout", logout)
    console.router.add_get("/password", password_page)
    console.router.add_post("/password", change_password)
