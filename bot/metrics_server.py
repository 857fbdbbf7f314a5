"""GET /metrics in Prometheus' text format, on a port of its own (``[metrics]``).

Never on the public server: the figures tell an outsider how busy the bot is
and when it fails. Each scrape first reads the outbox gauges with one query
bounded by ``OUTBOX_SECONDS``, so a scrape during a database outage still
answers at once, with every in-process figure, the outbox gauges absent and
``iesaiste_outbox_scrape_failures_total`` one higher.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client.exposition import choose_encoder

from bot.core import metrics
from storage import deliveries

log = logging.getLogger(__name__)

# Well within Prometheus' default scrape timeout (10 s); the query takes milliseconds.
OUTBOX_SECONDS = 1.0
WEBHOOKS = "/webhooks/"


class MetricsServer:
    """The runtime's registry and the small aiohttp server that shows it."""

    def __init__(self, channels: Sequence[str]) -> None:
        self.outbox = metrics.Outbox(tuple(channels))
        self.registry = metrics.registry(self.outbox)
        app = web.Application()
        app.router.add_get("/metrics", self.scrape)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host``:``port``; OSError if it cannot."""
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def scrape(self, request: web.Request) -> web.Response:
        await self._read_outbox()
        # The client's own negotiation: Prometheus' text format, or OpenMetrics if asked.
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(self.registry), headers={"Content-Type": content_type})

    async def _read_outbox(self) -> None:
        try:
            async with asyncio.timeout(OUTBOX_SECONDS):
                found = await deliveries.queued_by_channel()
        except Exception as error:  # the database is away or slow: the gauges are left out
            metrics.OUTBOX_SCRAPE_FAILURES.inc()
            log.warning("metrics: the outbox was not read (%s)", type(error).__name__)
            self.outbox.found = None
            return
        self.outbox.found, self.outbox.at = found, datetime.now(UTC)


async def count_webhook_answers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` of the public server: the status of each answer to a
    platform's webhook (``/webhooks/<channel>``). The channel is read from the route
    the request matched, not from the path asked for, so a scanner's made-up path
    adds no label."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    if path.startswith(WEBHOOKS):
        channel = path.removeprefix(WEBHOOKS)
        metrics.WEBHOOK_RESPONSES.labels(channel, str(response.status)).inc()
