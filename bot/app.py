"""Assembly: one lifespan that starts the parts and stops them in reverse.

Start: database (migrated first on the SQLite default) → catalog and staff
from the configuration → dispatcher → channels → HTTP server → Telegram.
Stop (SIGTERM, SIGINT): Telegram stops taking updates and finishes those in
flight → web chat sockets close → HTTP server → database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field

from aiohttp import web

from bot.channels.telegram import TelegramChannel
from bot.channels.webchat import WebChat
from bot.config import Config
from bot.http import build_app
from handlers.dispatcher import Dispatcher
from storage import catalog, db, events, settings, staff
from storage.catalog import Entry

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Something an operator must fix before the bot can start; the message says what."""


@dataclass(slots=True)
class Runtime:
    config: Config
    dispatcher: Dispatcher = field(init=False)
    webchat: WebChat | None = None
    telegram: TelegramChannel | None = None
    http: web.Application = field(init=False)
    _runner: web.AppRunner | None = None
    _stopped: bool = False

    async def start(self) -> None:
        config = self.config
        if db.is_sqlite(config.database_url):
            await db.migrate(config.database_url)
        elif await db.pending_migrations(config.database_url):
            raise StartupError(
                "the database schema is older than this version: run `iesaiste migrate` first"
            )
        await db.open_database(config.database_url)
        m = config.municipality
        await catalog.sync(
            [Entry(n.id, n.names) for n in m.neighbourhoods],
            [Entry(t.id, t.names) for t in m.topics],
        )
        await staff.sync_from_config((g.channel, g.user_id, g.role) for g in config.staff)
        # The scheduler of the delivery engine will run this daily; until
        # then each start keeps the table small.
        await events.prune()
        self.dispatcher = Dispatcher(config)
        self.http = build_app()
        if config.webchat.enabled:
            secret = config.webchat.cookie_secret or await settings.secret("webchat_cookie")
            self.webchat = WebChat(self.dispatcher, secret)
            self.webchat.add_routes(self.http)
        if config.telegram.token:
            self.telegram = TelegramChannel(config.telegram, self.dispatcher)
            self.telegram.add_routes(self.http)
        self._runner = web.AppRunner(self.http, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.http_host, config.http_port)
        try:
            await site.start()
        except OSError as error:
            raise StartupError(
                f"http.port = {config.http_port}: cannot listen on "
                f"{config.http_host}:{config.http_port} ({error.strerror})"
            ) from None
        log.info("listening on http://%s:%s/", config.http_host, config.http_port)
        if self.webchat is not None:
            log.info(
                "web chat: open http://%s:%s/ in a browser", config.http_host, config.http_port
            )
        if self.telegram is not None:
            await self.telegram.start()
        else:
            log.info("no Telegram token configured: serving the web chat only")

    async def stop(self) -> None:
        """Stop in reverse order; safe to call twice (a test and its fixture may both)."""
        if self._stopped:
            return
        self._stopped = True
        if self.telegram is not None:
            await self.telegram.stop()
        if self.webchat is not None:
            await self.webchat.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await db.close_database()


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then finish in-flight work and exit."""
    runtime = Runtime(config)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await runtime.start()
        await stopping.wait()
        log.info("stopping: finishing the work in flight")
    finally:
        await runtime.stop()
    log.info("stopped")
