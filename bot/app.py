"""The composition root: ``create_app(settings)`` wires everything into one aiohttp app.

Each resource opens and closes in a cleanup context; nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from bot.channels import telegram, zalo
from bot.console.app import setup as mount_console
from bot.services import open_services
from bot.settings import Settings
from bot.web import routes
from bot.web.keys import SERVICES, SETTINGS

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 24 * 3600

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: _Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"
    )
    return response


@web.middleware
async def json_errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """API clients get JSON for every failure; an unexpected one is logged, not leaked."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/"):
            raise
        return web.json_response({"error": exc.reason}, status=exc.status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if not request.path.startswith("/api/"):
            raise
        return web.json_response(
            {"error": "Xin lỗi, hệ thống đang gặp sự cố. Bạn vui lòng thử lại sau."}, status=500
        )


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_services(app[SETTINGS]) as services:
        app[SERVICES] = services
        log.info(
            "content pack %s: %d entries, %d topics",
            services.kb.directory,
            len(services.kb.entries),
            len(services.kb.topics),
        )
        yield


async def _retention_ctx(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            try:
                await app[SERVICES].purge_expired()
            except Exception:
                log.exception("retention purge failed; will retry")
            await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

    task = asyncio.create_task(loop(), name="retention-purge")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _push_ctx(app: web.Application) -> AsyncIterator[None]:
    """What the bot sends without being asked, over the channels that are configured:
    campaigns (the scheduler, with one leader among the workers, and the senders, in every
    worker) unless BOT_BROADCAST_ENABLED=false, and staff answers to citizens' feedback."""
    settings = app[SETTINGS]
    from bot.channels.couriers import open_couriers
    from bot.notices import AnswerNotifier
    from bot.services import broadcast_engine
    from broadcasts.scheduler import CampaignScheduler

    services = app[SERVICES]
    async with open_couriers(settings, services) as couriers, AnswerNotifier(services, couriers):
        if not settings.broadcast.enabled:
            yield
            return
        engine = broadcast_engine(services, couriers)
        scheduler = CampaignScheduler(engine.campaigns, settings.database.url, settings.broadcast)
        await scheduler.start()
        try:
            async with engine:
                yield
        finally:
            await scheduler.stop()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        client_max_size=routes.MAX_BODY, middlewares=[security_headers, json_errors]
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_services_ctx)
    app.cleanup_ctx.append(_retention_ctx)
    routes.setup(app)
    # Channel adapters add their webhook routes and lifecycles only when configured.
    telegram.setup(app, settings)
    zalo.setup(app, settings)
    app.cleanup_ctx.append(_push_ctx)
    # After the services' context: a console on its own listener uses them.
    mount_console(app, settings)
    return app
