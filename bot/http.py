"""The aiohttp application: health check, webhooks and the web chat."""

from __future__ import annotations

import re

from aiohttp import web

from storage import media
from storage.db import ping

MEDIA_KEY = re.compile(r"[0-9a-f]{64}")


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers; 503 tells a load balancer to look elsewhere."""
    if await ping():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "database unavailable"}, status=503)


async def media_file(request: web.Request) -> web.Response:
    """An image we keep; its key is its content's hash, so it never changes."""
    key = request.match_info["key"]
    found = await media.image(key) if MEDIA_KEY.fullmatch(key) else None
    if found is None:
        raise web.HTTPNotFound()
    data, content_type = found
    return web.Response(
        body=data,
        content_type=content_type,
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


def build_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/media/{key}", media_file)
    return app
