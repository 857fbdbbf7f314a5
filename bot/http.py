"""The aiohttp application: health check, webhooks and the web chat."""

from __future__ import annotations

from aiohttp import web

from storage.db import ping


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers; 503 tells a load balancer to look elsewhere."""
    if await ping():
        return web.json_response({"status": "ok"})
    return web.json_response({"status": "database unavailable"}, status=503)


def build_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_get("/healthz", healthz)
    return app
