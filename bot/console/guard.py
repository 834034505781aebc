"""What every console request goes through (``protect``), in this order:

1. security headers on every response, error pages included: a strict CSP (no inline script
   or style), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: same-origin``,
   ``Cache-Control: no-store``;
2. the session: no live session sends a page request to the sign-in page (with the way
   back), and says so when the session has expired;
3. a password someone else chose must be changed before anything else;
4. every state-changing request (anything but GET and HEAD) carries the session's CSRF token
   in the form field ``csrf``, compared in constant time; without it: 403 and nothing
   changes. The sign-in form, before any session, carries a token that must match a
   cookie of its own (double submit).

Handlers then ask ``require(request, permission)``; a refusal is a 403 page and an audit row.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.accounts import Accounts, can
from bot.console.keys import PREFIX, SESSION, services, session, settings
from bot.console.render import render
from bot.feedback_desk import FeedbackDesk
from bot.settings import Settings
from bot.signin import SignIn
from storage.accounts import SessionView
from storage.audit import CONSOLE, Actor

log = logging.getLogger(__name__)

LOGIN = f"{PREFIX}/login"
LOGOUT = f"{PREFIX}/logout"
PASSWORD = f"{PREFIX}/password"
STATIC = f"{PREFIX}/static/"
SESSION_COOKIE = "cchc_console"
SIGNIN_COOKIE = "cchc_signin"
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ERROR_TITLES = {
    400: "Yêu cầu không hợp lệ",
    403: "Không được phép",
    404: "Không tìm thấy trang",
    405: "Không hỗ trợ thao tác này",
    413: "Nội dung quá lớn",
    500: "Hệ thống gặp sự cố",
}
CSRF_REFUSED = (
    "Biểu mẫu thiếu mã bảo vệ hoặc mã đã hết hạn, nên thao tác không được thực hiện. "
    "Hãy tải lại trang rồi thử lại."
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- what handlers use ----------------------------------------------------------------------


def client_address(request: web.Request) -> str | None:
    if settings(request).admin.trust_forwarded_for:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops and hops[-1]:
            return hops[-1][:64]
    return request.remote


def actor(request: web.Request) -> Actor:
    """The signed-in account, acting through the console from this address."""
    account = session(request).account
    return Actor(account.username, CONSOLE, account.id, client_address(request))


def signin(request: web.Request) -> SignIn:
    storage = services(request).storage
    return SignIn(storage.accounts, storage.audit, settings(request).admin)


def accounts(request: web.Request) -> Accounts:
    storage = services(request).storage
    return Accounts(storage.accounts, storage.audit)


def feedback_desk(request: web.Request) -> FeedbackDesk:
    storage = services(request).storage
    return FeedbackDesk(storage.feedback, storage.audit)


async def require(request: web.Request, permission: str) -> SessionView:
    """The session, if its account may ``permission``; else a 403 page (audited)."""
    current = session(request)
    if not can(current.account.roles, permission):
        await services(request).storage.audit.record(
            actor(request), "access.denied", f"{request.method} {request.path}"[:120], permission
        )
        raise web.HTTPForbidden(text="Tài khoản của bạn không có quyền thực hiện việc này.")
    return current


def secure_cookies(config: Settings) -> bool:
    """``Secure`` unless the console listens on loopback (plain http on this machine)."""
    if config.admin.cookie_secure is not None:
        return config.admin.cookie_secure
    host = config.admin.host if config.admin.port is not None else config.server.host
    host = host or config.server.host
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def _set_cookie(
    request: web.Request, response: web.StreamResponse, name: str, value: str, samesite: str
) -> None:
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite=samesite,
        secure=secure_cookies(settings(request)),
    )


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    # Lax: a link from elsewhere (an e-mail) opens the console signed in; posts from
    # elsewhere carry no cookie.
    _set_cookie(request, response, SESSION_COOKIE, token, "Lax")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=PREFIX)


def signin_token(request: web.Request) -> tuple[str, bool]:
    """The sign-in form's token: the one its cookie holds, or a new one (True: the
    response must set it with ``set_signin_cookie``)."""
    token = request.cookies.get(SIGNIN_COOKIE, "")
    if 32 <= len(token) <= 100:
        return token, False
    return secrets.token_urlsafe(32), True


def set_signin_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    _set_cookie(request, response, SIGNIN_COOKIE, token, "Strict")


def field(form: Mapping[str, object], name: str, limit: int = 300) -> str:
    """A text field of a posted form ("" when absent), at most ``limit`` characters."""
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def see_other(location: str) -> web.Response:
    """Where the browser goes next (POST → redirect → GET: a reload never posts again)."""
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console page of this site, never elsewhere."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        parsed = urllib.parse.urlsplit(value)
        if not parsed.scheme and not parsed.netloc and "\\" not in value:
            return value
    return PREFIX + "/"


# --- the middleware -------------------------------------------------------------------------


@web.middleware
async def protect(request: web.Request, handler: _Handler) -> web.StreamResponse:
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        response = await _error_response(request, exc)
    except Exception:
        log.exception("console error on %s %s", request.method, request.path)
        response = await _error_response(request, web.HTTPInternalServerError())
    if not response.prepared:  # a streamed download set them before it started
        response.headers.update(HEADERS)
    return response


async def _guarded(request: web.Request, handler: _Handler) -> web.StreamResponse:
    if request.path.startswith(STATIC):
        return await handler(request)
    if request.path == LOGIN and request.method not in SAFE_METHODS:
        # The sign-in form carries its own token, whoever is signed in on this browser.
        await _check_token(request, request.cookies.get(SIGNIN_COOKIE), None)
        return await handler(request)
    token = request.cookies.get(SESSION_COOKIE)
    current = await signin(request).resume(token) if token else None
    if current is None:
        if request.path == LOGIN:
            return await handler(request)
        query = {"expired": "1"} if token else {}
        if request.method in SAFE_METHODS and request.path not in (PREFIX, PREFIX + "/"):
            query["next"] = request.path_qs
        response = see_other(LOGIN + ("?" + urllib.parse.urlencode(query) if query else ""))
        if token:
            clear_session_cookie(response)
        return response
    request[SESSION] = current
    if request.path == LOGIN and request.method in SAFE_METHODS:
        return see_other(PREFIX + "/")
    if current.account.must_change_password and request.path not in (PASSWORD, LOGOUT):
        return see_other(PASSWORD)
    if request.method not in SAFE_METHODS:
        await _check_token(request, current.csrf_token, current)
    return await handler(request)


async def _check_token(
    request: web.Request, expected: str | None, current: SessionView | None
) -> None:
    form = await request.post()
    given = form.get("csrf")
    if (
        expected
        and isinstance(given, str)
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        return
    who = (
        Actor(current.account.username, CONSOLE, current.account.id, client_address(request))
        if current
        else Actor("(chưa đăng nhập)", CONSOLE, address=client_address(request))
    )
    await services(request).storage.audit.record(
        who, "csrf.refused", f"{request.method} {request.path}"[:120]
    )
    raise web.HTTPForbidden(text=CSRF_REFUSED)


async def _error_response(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:  # a redirect raised by a handler
        return web.Response(status=exc.status, headers={"Location": exc.headers["Location"]})
    message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
    return render(
        request,
        "error.html",
        {
            "title": ERROR_TITLES.get(exc.status, "Có lỗi xảy ra"),
            "message": message,
            "status": exc.status,
        },
        status=exc.status,
    )
