"""The console's aiohttp sub-application, and where it is served: under ``/admin`` of
``bot serve``, or on a listener of its own (``BOT_ADMIN_PORT``, with ``BOT_ADMIN_HOST``)
that the public server does not expose."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot.console import accounts, audit, auth, guard, home, inbox, item, stats
from bot.console.render import FILTERS
from bot.settings import Settings
from bot.web.keys import SERVICES, SETTINGS
from bot.web.routes import MAX_BODY

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PREFIX = "/admin"


def create_console(settings: Settings) -> web.Application:
    """The console as an application to mount at ``PREFIX``; it reads the services and
    settings of the application it is mounted in (``request.config_dict``)."""
    console = web.Application(middlewares=[guard.protect])
    aiohttp_jinja2.setup(
        console,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        # On for every template, whatever aiohttp-jinja2's default: citizens' words are
        # always text. Nothing in the templates marks them safe.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        filters=FILTERS,
        default_helpers=False,
    )
    for module in (auth, home, inbox, item, stats, accounts, audit):
        module.setup(console)
    console.router.add_static("/static", HERE / "static", append_version=False)
    return console


def setup(app: web.Application, settings: Settings) -> None:
    """Mount the console (unless ``BOT_ADMIN_ENABLED=false``)."""
    config = settings.admin
    if not config.enabled:
        return
    console = create_console(settings)
    if config.port is None:
        app.add_subapp(PREFIX, console)
        return
    app.cleanup_ctx.append(_own_listener(console, settings))


def _own_listener(
    console: web.Application, settings: Settings
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def listen(app: web.Application) -> AsyncIterator[None]:
        root = web.Application(client_max_size=MAX_BODY)
        root[SETTINGS] = settings
        root[SERVICES] = app[SERVICES]  # opened by the main app's earlier cleanup context
        root.add_subapp(PREFIX, console)
        runner = web.AppRunner(root, access_log=None)
        await runner.setup()
        host = settings.admin.host or settings.server.host
        await web.TCPSite(runner, host, settings.admin.port).start()
        log.info("staff console on its own listener: %s, under %s/", runner.addresses, PREFIX)
        try:
            yield
        finally:
            await runner.cleanup()

    return listen
