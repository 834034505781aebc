"""HTTP routes of the web server: health, the web chat page and its JSON API."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from bot.channels import webchat
from bot.web.keys import SERVICES

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response({"status": "ok", "entries": len(services.kb.entries)})


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def chat(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, "Nội dung quá lớn (tối đa 64 KiB).")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "Nội dung quá lớn (tối đa 64 KiB).")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _error(400, "Nội dung không phải JSON hợp lệ.")
    try:
        inbound = webchat.parse(body)
    except webchat.InvalidRequest as exc:
        return _error(422, str(exc))
    replies = await request.app[SERVICES].dispatcher.dispatch(inbound)
    return web.json_response(webchat.render(replies))


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_post("/api/chat", chat)
    app.router.add_static("/static", STATIC, append_version=False)
