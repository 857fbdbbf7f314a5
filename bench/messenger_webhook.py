"""How fast Messenger's webhook answers Meta, and how fast the answers follow, under load.

The whole bot (``bot.app.Runtime`` as ``iesaiste run`` starts it) with the Messenger
channel pointed at the strict Send API stand-in, which runs in this process; Meta's side
POSTs signed deliveries of one text each from ``--residents`` residents over
``--connections`` concurrent connections (Meta itself uses many). Printed per database:
the time to the 200 (p50, p95, p99, max: what Meta's 20-second timeout applies to),
deliveries acknowledged per second, and when the last answer reached the stand-in.

    .venv/bin/python bench/messenger_webhook.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/messenger_webhook.py --backend sqlite --deliveries 500

The stand-in and Meta's side share the bot's process and event loop, so the figures are
a floor for the bot alone on this machine, not its ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_db import scratch_postgres
from bench.standin_process import free_port
from bot.app import Runtime
from bot.core.config import load
from storage import db
from tests.standins import messenger_webhook as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.graph_core import APP_SECRET

VERIFY_TOKEN = "bench-verify-token"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(url: str, deliveries: int, residents: int, connections: int) -> dict[str, float]:
    graph = await GraphStandIn().start()
    port = free_port()
    env = {
        "IESAISTE_DATABASE_URL": url,
        "IESAISTE_HTTP_PORT": str(port),
        "IESAISTE_LOG_LEVEL": "WARNING",
        "IESAISTE_MESSENGER_PAGE_TOKEN": graph.token,
        "IESAISTE_MESSENGER_APP_SECRET": APP_SECRET,
        "IESAISTE_MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "IESAISTE_MESSENGER_API_URL": graph.url,
    }
    if not db.is_sqlite(url):
        await db.migrate(url)
    runtime = Runtime(load(None, env))
    await runtime.start()
    psids = [f"{9_100_000_000 + n}" for n in range(residents)]
    for psid in psids:
        graph.opened(psid)
    webhook = f"http://127.0.0.1:{port}/webhooks/messenger"
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for n in range(deliveries):
        queue.put_nowait(meta.encode(meta.delivery(meta.text(psids[n % residents], f"Sveiki {n}"))))
    try:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def poster() -> None:
                while not queue.empty():
                    raw = queue.get_nowait()
                    headers = {
                        "Content-Type": "application/json",
                        "X-Hub-Signature-256": meta.sign(raw),
                    }
                    started = time.perf_counter()
                    async with session.post(webhook, data=raw, headers=headers) as response:
                        await response.read()
                        assert response.status == 200, response.status
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(connections)))
            acknowledged = time.perf_counter() - began
            # Every delivery answered: the onboarding question, once per text.
            while len(graph.sent) < deliveries:
                if time.perf_counter() - began > 300:
                    raise SystemExit(f"only {len(graph.sent)} of {deliveries} answers in 300 s")
                await asyncio.sleep(0.05)
            answered = time.perf_counter() - began
    finally:
        await runtime.stop()
        await graph.stop()
    return {
        "p50": quantile(latencies, 0.50),
        "p95": quantile(latencies, 0.95),
        "p99": quantile(latencies, 0.99),
        "max": max(latencies),
        "mean": statistics.fmean(latencies),
        "per_second": deliveries / acknowledged,
        "answered": answered,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    options = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MPLCONFIGDIR", tempfile.gettempdir())
    if options.backend == "both":
        # One process a database: Tortoise keeps the SQL it built for the first dialect.
        for backend in ("sqlite", "postgres"):
            argv = [
                f"--deliveries={options.deliveries}",
                f"--residents={options.residents}",
                f"--connections={options.connections}",
            ]
            process = await asyncio.create_subprocess_exec(
                sys.executable, __file__, *argv, "--backend", backend
            )
            if await process.wait() != 0:
                raise SystemExit(f"the {backend} run failed")
        return
    for backend in (options.backend,):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                figures = await run(
                    f"sqlite://{folder}/bench.sqlite3",
                    options.deliveries,
                    options.residents,
                    options.connections,
                )
        else:
            async with scratch_postgres() as (url, _):
                figures = await run(url, options.deliveries, options.residents, options.connections)
        print(
            f"{backend}: {options.deliveries} deliveries over {options.connections} connections, "
            f"200 after p50 {figures['p50'] * 1000:.0f} ms, p95 {figures['p95'] * 1000:.0f} ms, "
            f"p99 {figures['p99'] * 1000:.0f} ms, max {figures['max'] * 1000:.0f} ms; "
            f"{figures['per_second']:.0f} acknowledged/s; every answer sent after "
            f"{figures['answered']:.1f} s"
        )


if __name__ == "__main__":
    asyncio.run(main())
