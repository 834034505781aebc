"""Where the console lives and what a request carries: the prefix, the signed-in session,
and the application's services and settings (of the application it is mounted in)."""

from __future__ import annotations

from aiohttp import web

from bot.services import Services
from bot.settings import Settings
from bot.web.keys import SERVICES, SETTINGS
from storage.accounts import SessionView

PREFIX = "/admin"
SESSION = web.RequestKey("console_session", SessionView)


def services(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def settings(request: web.Request) -> Settings:
    return request.config_dict[SETTINGS]


def session(request: web.Request) -> SessionView:
    return request[SESSION]
