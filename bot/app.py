"""Assembly: one lifespan that starts the parts and stops them in reverse.

Start: database (migrated first on the SQLite default) → catalog and staff
from the configuration → dispatcher → channels → HTTP server (and /metrics, on a
port of its own if one is set) → Telegram → Messenger (its events left
unhandled before a stop first) → the scheduler (releases, polls, staff progress
reports) and the delivery worker, which is handed the words of every push
(``dialogs.pushes``) as a render function.
Stop (SIGTERM, SIGINT): the scheduler stops and the delivery worker reports
the sends on the wire and hands the rest of its claim back → Telegram stops
taking updates and finishes those in flight → Messenger finishes its events in
hand → web chat sockets close → HTTP server → database.

None of it stops for a database outage: each part says so in a line and goes on
when the database is back (README, "When the database goes away").
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.channels import webchat
from bot.channels.messenger import MessengerChannel
from bot.channels.telegram import TelegramChannel, Unsent
from bot.channels.webchat import WebChat
from bot.core import logs, metrics
from bot.core.channel import Channel
from bot.core.config import Config
from bot.core.logs import who
from bot.core.messages import CommandList, CommandMenu, Reply
from bot.delivery import DeliveryWorker
from bot.http import HttpRunner, add_health_check, build_app
from bot.metrics_server import MetricsServer, count_webhook_answers
from bot.open311 import add_routes as add_open311_routes
from bot.pacing import AnswerPacer, Pacer, SharedBudget
from bot.photo_routes import Identify, PhotoRoutes, local_images
from bot.progress import REFRESH_EVERY, refresh_reports
from bot.scheduler import RunningJobs, add_job, build_scheduler
from dialogs.pushes import Pushes
from handlers.commands import MENU_COMMANDS
from handlers.dispatcher import Dispatcher
from handlers.staff import STAFF_MENU_ROLES, staff_commands
from storage import catalog, db, deliveries, events, inbound, presence, settings, staff
from storage.catalog import Entry
from storage.presence import Here
from storage.webchat_guard import Newcomers

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Something an operator must fix before the bot can start; the message says what."""


def unsent_answers(channel: str) -> Unsent:
    """What becomes of answers a channel could not deliver within the wait it allows:
    they go on through the outbox as personal pushes, ahead of any broadcast."""

    async def hand_over(recipient: str, replies: list[Reply]) -> None:
        queued = await deliveries.queue_answer(channel, recipient, replies)
        log.warning(
            "%s: %d message(s) of an answer to %s go on through the outbox",
            channel,
            queued,
            who(channel, recipient),
        )

    return hand_over


@dataclass(slots=True)
class Runtime:
    config: Config
    dispatcher: Dispatcher = field(init=False)
    webchat: WebChat | None = None
    telegram: TelegramChannel | None = None
    messenger: MessengerChannel | None = None
    http: web.Application = field(init=False)
    scheduler: AsyncIOScheduler | None = None
    _jobs: RunningJobs = field(default_factory=RunningJobs)
    _runner: web.AppRunner | None = None
    _stopped: bool = False
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _delivering: asyncio.Task[None] | None = None
    _metrics: MetricsServer | None = None

    async def start(self) -> None:
        config = self.config
        if db.is_sqlite(config.database_url):
            await db.migrate(config.database_url)
        elif await db.pending_migrations(config.database_url):
            raise StartupError(
                "the database schema is older than this version: run `iesaiste migrate` first"
            )
        await db.open_database(config.database_url)
        # Kept in the database, so every worker tags a resident alike in its logs.
        logs.use_tag_key(await settings.secret("log_tag_key"))
        m = config.municipality
        await catalog.sync(
            [Entry(n.id, n.names) for n in m.neighbourhoods],
            [Entry(t.id, t.names) for t in m.topics],
        )
        await staff.sync_from_config((g.channel, g.user_id, g.role) for g in config.staff)
        await events.prune()  # the scheduler repeats it daily
        self.dispatcher = Dispatcher(config)
        # The web chat's photo upload is the one body larger than a megabyte.
        self.http = build_app(config.http_timeouts, {webchat.PHOTO_PATH: webchat.PHOTO_MAX_BYTES})
        add_open311_routes(self.http, config)  # open data: GET /open311/v2/…
        self.http.on_response_prepare.append(count_webhook_answers)  # for /metrics
        # What this worker held before it stopped (or crashed) is gone with its sockets.
        await presence.clear(self.worker_id)
        if config.webchat.enabled:
            secret = config.webchat.cookie_secret or await settings.secret("webchat_cookie")
            self.webchat = WebChat(
                self.dispatcher.feed,
                config.municipality.name,
                config.municipality.default_language,
                secret,
                secure_cookie=config.webchat.secure_cookie
                or config.http_public_url.startswith("https://"),
                trusted_proxies=config.http_trusted_proxies,
                newcomers=Newcomers(config.webchat.new_residents_per_address_per_hour),
                presence=Here(self.worker_id, "webchat"),
                # Beside the photos, so every worker sees an upload whichever took it.
                uploads=Path(config.proposals.photo_dir) / "uploads",
            )
            self.webchat.add_routes(self.http)
            self.dispatcher.capabilities[self.webchat.name] = self.webchat.capabilities
            self.dispatcher.files[self.webchat.name] = self.webchat
        if config.telegram.token:
            self.telegram = TelegramChannel(
                config.telegram,
                self.dispatcher.feed,
                CommandMenu(MENU_COMMANDS),
                config.municipality.default_language,
                # Answers go ahead of pushes, within the token's one budget.
                rate=AnswerPacer(
                    config.delivery.telegram_per_second,
                    config.delivery.telegram_per_chat_per_second,
                    SharedBudget("telegram"),
                ),
                answer_wait=config.delivery.answer_wait_seconds,
                on_unsent=unsent_answers("telegram"),
                local_images=local_images(config.proposals),
            )
            self.dispatcher.files["telegram"] = self.telegram
            self.dispatcher.capabilities[self.telegram.name] = self.telegram.capabilities
            self.telegram.add_routes(self.http)
        if config.messenger.enabled:
            self._add_messenger()
        # Proposal photos, to whoever may see them: a web-chat resident known by its cookie.
        identify: dict[str, Identify] = {}
        if self.webchat is not None:
            identify[self.webchat.name] = self.webchat.account_of
        PhotoRoutes(config.proposals, identify).add_routes(self.http)
        self._runner = HttpRunner(self.http, config.http_timeouts)
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
        await self._start_metrics()
        if self.webchat is not None:
            log.info(
                "web chat: open http://%s:%s/ in a browser", config.http_host, config.http_port
            )
        if self.telegram is not None:
            await self.telegram.start()
            await self.telegram.publish_staff_commands(await self._staff_menus())
        else:
            log.info("no Telegram token configured: serving the web chat only")
        if self.messenger is not None:
            await self.messenger.start()
        self._start_delivery()
        self._start_reports()
        self._start_presence()

    async def _start_metrics(self) -> None:
        """/metrics on a port of its own when ``metrics.port`` is set; nothing listens
        otherwise."""
        config = self.config
        if not config.metrics_port:
            return
        self._metrics = MetricsServer(list(self.dispatcher.capabilities))
        try:
            await self._metrics.start(config.metrics_host, config.metrics_port)
        except OSError as error:
            raise StartupError(
                f"metrics.port = {config.metrics_port}: cannot listen on "
                f"{config.metrics_host}:{config.metrics_port} ({error.strerror})"
            ) from None
        log.info("metrics on http://%s:%s/metrics", config.metrics_host, config.metrics_port)

    def _add_messenger(self) -> None:
        """The Facebook page: its webhook on our server, its events kept in the database
        before Meta hears 200 (``storage.inbound``), its health in /healthz."""
        config = self.config
        self.messenger = MessengerChannel(
            config.messenger,
            self.dispatcher.feed,
            _Inbox("messenger", self.worker_id),
            public_url=config.http_public_url,
            local_images=local_images(config.proposals),
            on_unsent=unsent_answers("messenger"),
            max_attempts=inbound.MAX_ATTEMPTS,
            default_language=config.municipality.default_language,
        )
        self.messenger.add_routes(self.http)
        self.dispatcher.files[self.messenger.name] = self.messenger
        self.dispatcher.capabilities[self.messenger.name] = self.messenger.capabilities
        add_health_check(self.http, "messenger", self.messenger.health)

    async def _staff_menus(self) -> list[tuple[str, str, CommandList]]:
        """Each Telegram staff account's own commands: by its role, and the review queue's
        for a department's staff."""
        departments = {
            user_id
            for department in self.config.proposals.departments
            for channel, user_id in department.staff
            if channel == "telegram"
        }
        roles = dict(await staff.roles_on("telegram", STAFF_MENU_ROLES))
        menus = []
        for user_id, language in await staff.languages_of("telegram", {*roles, *departments}):
            own = staff_commands(roles.get(user_id), in_a_department=user_id in departments)
            if own:
                menus.append((user_id, language, own))
        return menus

    @property
    def worker_id(self) -> str:
        """Stable across restarts (host, http.host, http.port): a worker that comes back
        knows its own claims and presence rows. The last 64 characters (the columns'
        width) keep the port, which tells apart the workers of one host."""
        config = self.config
        return f"{socket.gethostname()}/{config.http_host}:{config.http_port}"[-64:]

    def _start_delivery(self) -> None:
        """The scheduler releases what is due; the worker renders and sends it."""
        config = self.config
        channels: dict[str, Channel] = {}
        pacers: dict[str, Pacer] = {}
        if self.telegram is not None:
            channels["telegram"] = self.telegram
            # Telegram's limit is per bot token: every worker books from one budget.
            pacers["telegram"] = Pacer(
                config.delivery.telegram_per_second,
                config.delivery.telegram_per_chat_per_second,
                budget=SharedBudget("telegram"),
            )
        if self.messenger is not None:
            channels["messenger"] = self.messenger
            limits = self.messenger.limits
            pacers["messenger"] = Pacer(
                limits.messages_per_second, limits.messages_per_second_per_chat
            )
        if self.webchat is not None:
            channels["webchat"] = self.webchat
            limits = self.webchat.limits
            pacers["webchat"] = Pacer(
                limits.messages_per_second, limits.messages_per_second_per_chat
            )
        self.scheduler = build_scheduler(config)
        self._jobs.watch(self.scheduler)
        self.scheduler.start()
        worker = DeliveryWorker(
            channels,
            # The words of every push, from the dialogs: the worker does not import them.
            Pushes(
                config.municipality.zone,
                config.municipality.default_language,
                {name: channel.limits.text_length for name, channel in channels.items()},
                config,
                {name: channel.limits.button_label_length for name, channel in channels.items()},
            ),
            pacers,
            zone=config.municipality.zone,
            worker_id=self.worker_id,
            lease=timedelta(seconds=config.delivery.lease_seconds),
            quiet_start=config.delivery.quiet_start,
            quiet_end=config.delivery.quiet_end,
        )
        self._delivering = asyncio.create_task(worker.run(self._stopping), name="delivery")

    def _start_reports(self) -> None:
        """Staff progress reports, edited in place (through the outbox) while announcements
        go out."""
        assert self.scheduler is not None
        add_job(
            self.scheduler,
            refresh_reports,
            "interval",
            id="refresh-progress-reports",
            seconds=REFRESH_EVERY.total_seconds(),
        )

    def _start_presence(self) -> None:
        """Keep this worker's web-chat presence fresh: rows not refreshed for a few
        periods count as gone (their worker died), and their residents' pushes wait."""
        webchat = self.webchat
        if webchat is None:
            return
        assert self.scheduler is not None
        worker = self.worker_id

        async def keep_alive() -> None:
            await presence.keep_alive(worker, webchat.name, webchat.present())

        add_job(
            self.scheduler,
            keep_alive,
            "interval",
            id="refresh-webchat-presence",
            seconds=presence.REFRESH_EVERY.total_seconds(),
        )

    async def stop(self) -> None:
        """Stop in reverse order; safe to call twice (a test and its fixture may both)."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            await self._jobs.stop(self.scheduler)  # what runs now finishes first
        if self._delivering is not None:
            await self._delivering  # sends on the wire are reported, the rest handed back
        if self.telegram is not None:
            await self.telegram.stop()
        if self.messenger is not None:
            await self.messenger.stop()
        if self.webchat is not None:
            await self.webchat.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._metrics is not None:
            await self._metrics.stop()
        if self.webchat is not None:
            try:  # its sockets are closed: nobody is present here any more
                await presence.clear(self.worker_id)
            except Exception as error:  # the rows go stale and count as gone anyway
                metrics.DATABASE_ERRORS.labels("presence").inc()
                log.warning("web chat: presence not cleared (%s)", type(error).__name__)
        await db.close_database()


@dataclass(frozen=True, slots=True)
class _Inbox:
    """``storage.inbound`` for one channel on this worker, as the channel sees it."""

    channel: str
    worker: str

    async def accept(self, events: Sequence[tuple[str, str]]) -> list[tuple[int, str]]:
        return await inbound.accept(self.channel, self.worker, events)

    async def handled(self, event_id: int) -> None:
        await inbound.handled(event_id)

    async def unhandled(self, *, own: bool) -> list[tuple[int, str, int]]:
        return await inbound.unhandled(self.channel, self.worker, own=own)


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
