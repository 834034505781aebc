"""Reading a request body with a hard cap, shared by the webhook endpoints."""

from __future__ import annotations

from aiohttp import web

_CHUNK = 64 * 1024


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The raw body, or None as soon as it is known to exceed ``limit``.

    The rest is not read: aiohttp drains or drops the connection after the 413 response,
    so an oversized body costs at most ``limit`` bytes of memory."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)
