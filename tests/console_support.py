"""What the console tests share: accounts made through the use case, and a cookie-keeping
HTTP client that signs in and posts forms with their CSRF token, as a browser does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse, ClientSession, CookieJar
from aiohttp.test_utils import TestServer

from bot.accounts import Accounts
from bot.services import Services
from storage.accounts import AccountView
from storage.audit import CLI, Actor

PASSWORD = "mật khẩu thử nghiệm 2026"
CSRF = re.compile(r'name="csrf" value="([^"]*)"')
SETUP = Actor("test-setup", CLI)


async def add_account(
    services: Services,
    username: str,
    *roles: str,
    password: str = PASSWORD,
    full_name: str | None = None,
    must_change_password: bool = False,
) -> AccountView:
    return await Accounts(services.storage.accounts, services.storage.audit).add(
        username,
        roles=roles,
        password=password,
        actor=SETUP,
        full_name=full_name,
        must_change_password=must_change_password,
    )


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: Mapping[str, str]

    @property
    def csrf(self) -> str:
        match = CSRF.search(self.text)
        assert match is not None, "no form with a CSRF token on this page"
        return match.group(1)


class ConsoleClient:
    """One browser: its own cookies, following redirects like a browser unless told not to."""

    def __init__(self, server: TestServer, session: ClientSession) -> None:
        self.server = server
        self.session = session

    async def _page(self, response: ClientResponse) -> Page:
        return Page(response.status, str(response.url), await response.text(), response.headers)

    async def get(self, path: str, **options: Any) -> Page:
        async with self.session.get(self.server.make_url(path), **options) as response:
            return await self._page(response)

    async def post(
        self,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        csrf: str | None = "auto",
        **options: Any,
    ) -> Page:
        """POST a form; ``csrf="auto"`` takes the token from the console home page (the
        session's token), None sends none."""
        form = dict(data or {})
        if csrf == "auto":
            csrf = (await self.get("/admin/password")).csrf
        if csrf is not None:
            form["csrf"] = csrf
        async with self.session.post(self.server.make_url(path), data=form, **options) as response:
            return await self._page(response)

    async def sign_in(self, username: str, password: str = PASSWORD) -> Page:
        login = await self.get("/admin/login")
        return await self.post(
            "/admin/login", {"username": username, "password": password}, csrf=login.csrf
        )

    def cookie(self, name: str) -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


@asynccontextmanager
async def browser(server: TestServer) -> AsyncIterator[ConsoleClient]:
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
        yield ConsoleClient(server, session)
