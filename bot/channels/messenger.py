"""Facebook Messenger: the webhook in our app, and the Send API through the sender.

Only translation happens here and in the modules beside it: a delivery becomes
``Incoming``s (``messenger_events``), a ``Reply`` becomes Send API calls
(``messenger_send``). What makes Messenger different is that Meta does not
deliver again what it got a 200 for: every event is written to the inbox (the
database, handed in by the runtime) before the 200 goes out, and handled right
after it. A worker that dies in between takes its events back when it starts
again; a sweep takes those of a worker gone for good. A redelivered event is
not stored twice, and the session's event record keeps it from acting twice.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from bot.channels.messenger_events import NAME, events_of, signature_ok, to_incoming
from bot.channels.messenger_graph import GraphClient
from bot.channels.messenger_send import LocalImages, MessengerSender, Unsent
from bot.core import metrics
from bot.core.channel import ClaimPolicy, Once
from bot.core.config import MessengerConfig
from bot.core.i18n import translator
from bot.core.logs import about, who
from bot.core.messages import DATABASE_AWAY, Capabilities, ChannelLimits, Feed, Reply

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/messenger"
SIGNATURE_HEADER = "X-Hub-Signature-256"
# Real deliveries reach about 300 KB (mostly \u escapes); Courier caps them at 1 MiB too.
WEBHOOK_MAX_BYTES = 1024 * 1024
WINDOW_HOURS = 24  # Meta's window for messages after the resident's last one
HUMAN_AGENT_HOURS = 7 * 24  # a person's own answer with the HUMAN_AGENT tag
SWEEP_SECONDS = 60.0  # how often a worker looks for the events of a worker gone for good
STOP_SECONDS = 10.0  # a stop waits this long for the events in hand
# An event the database could not take now is fed again after these pauses (the last
# repeated): a short outage costs its resident a minute, not the sweep's lease.
RETRY_PAUSES = (2.0, 5.0, 10.0, 30.0)
FETCH_SECONDS = 30.0


def limits(config: MessengerConfig) -> ChannelLimits:
    return ChannelLimits(
        text_length=2000,
        buttons_per_message=13,
        button_label_length=20,
        payload_bytes=1000,
        can_edit=False,
        messages_per_second=config.per_second,
        messages_per_second_per_chat=config.per_chat_per_second,
    )


class Inbox(Protocol):
    """Where events wait between the webhook and their handling (``storage.inbound``,
    bound by the runtime to this channel and this worker)."""

    async def accept(self, events: Sequence[tuple[str, str]]) -> list[tuple[int, str]]:
        """Store them; the new ones (id, body). Raises when they could not be stored."""

    async def handled(self, event_id: int) -> None: ...

    async def unhandled(self, *, own: bool) -> list[tuple[int, str, int]]:
        """(id, body, attempts) to handle now: this worker's own left before it stopped
        (``own``), and those of a worker gone for good."""


@dataclass(slots=True)
class MessengerChannel:
    config: MessengerConfig
    feed: Feed
    inbox: Inbox
    public_url: str = ""
    local_images: LocalImages | None = None
    on_unsent: Unsent | None = None
    # An event whose handling failed this often (it may kill its worker) is given up.
    max_attempts: int = 5
    # The language of an apology when the database cannot tell the resident's.
    default_language: str = "lv"
    name: str = NAME
    limits: ChannelLimits = field(init=False)
    capabilities: Capabilities = field(init=False)
    claim_policy: ClaimPolicy = field(init=False)
    sender: MessengerSender | None = field(default=None, init=False)
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _sweeper: asyncio.Task[None] | None = field(default=None, init=False)
    _stopping: bool = field(default=False, init=False)
    _apologised: Once = field(default_factory=Once, init=False)

    def __post_init__(self) -> None:
        self.limits = limits(self.config)
        # Photos come as URLs that expire: the dialogs keep our copy.
        self.capabilities = Capabilities.of(
            self.limits,
            takes_photos=True,
            resends_photo_ids=False,
            push_window=timedelta(hours=WINDOW_HOURS),
        )
        human = HUMAN_AGENT_HOURS if self.config.human_agent else 0
        self.claim_policy = ClaimPolicy.within(WINDOW_HOURS, human)

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        """Open the Graph API session, then handle what this worker left unhandled."""
        self._session = aiohttp.ClientSession()
        client = GraphClient(
            self._session, self.config.api_url, self.config.api_version, self.config.page_token
        )
        self.sender = MessengerSender(
            client,
            public_url=self.public_url,
            human_agent=self.config.human_agent,
            local_images=self.local_images,
            on_unsent=self.on_unsent,
        )
        left = await self.inbox.unhandled(own=True)
        if left:
            log.info("messenger: %d event(s) received before a stop are handled now", len(left))
        self._handle_all(left)
        self._sweeper = asyncio.create_task(self._sweep(), name="messenger-sweep")
        log.info("messenger: webhook waiting at %s", WEBHOOK_PATH)

    async def stop(self) -> None:
        """Take no more deliveries, finish the events in hand (a while), close the session."""
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=STOP_SECONDS)
            for task in pending:  # left unhandled in the inbox: taken back on restart
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def health(self) -> str | None:
        return self.sender.failing if self.sender is not None else None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(WEBHOOK_PATH, self.verify)
        app.router.add_post(WEBHOOK_PATH, self.receive)

    # --- the webhook --------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription check: the bare challenge for the right verify token."""
        query = request.query
        token = query.get("hub.verify_token", "")
        if query.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self.config.verify_token.encode()
        ):
            challenge = query.get("hub.challenge", "")
            return web.Response(text=challenge, content_type="text/plain")
        log.warning("messenger webhook: a verification with the wrong token was refused")
        return web.Response(status=403)

    async def receive(self, request: web.Request) -> web.Response:
        """Store, answer, then handle: an event answered 200 is in the inbox already."""
        if self._stopping or self.sender is None:  # Meta delivers it again in a moment
            return web.Response(status=503, text="not taking deliveries now")
        if (request.content_length or 0) > WEBHOOK_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(WEBHOOK_MAX_BYTES, request.content_length or 0)
        raw = await request.read()
        if len(raw) > WEBHOOK_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(WEBHOOK_MAX_BYTES, len(raw))
        if not signature_ok(raw, request.headers.get(SIGNATURE_HEADER), self.config.app_secret):
            log.warning("messenger webhook: a delivery with a wrong signature was refused")
            return web.Response(status=403)
        try:
            body: Any = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        events = events_of(body)
        if events is None:
            log.warning("messenger webhook: a signed body that is not a delivery was refused")
            return web.Response(status=400, text="not a Messenger webhook delivery")
        try:
            fresh = await self.inbox.accept(
                [
                    (event.key, json.dumps({"key": event.key, "item": event.item}))
                    for event in events
                ]
            )
        except Exception as error:  # the database is away: Meta must deliver it again
            metrics.DATABASE_ERRORS.labels("messenger_inbox").inc()
            log.error(
                "messenger webhook: events not stored (%s); Meta will deliver them again",
                type(error).__name__,
            )
            await self._apologise([event.sender for event in events])
            return web.Response(status=503, text="try again")
        self._handle_all([(event_id, body_, 1) for event_id, body_ in fresh])
        return web.Response(text="EVENT_RECEIVED")

    async def _apologise(self, senders: list[str]) -> None:
        """Tell who wrote that their message will be answered later (once a minute at
        most, however often Meta delivers it again meanwhile), in the municipality's
        language: without the database nobody's own is known."""
        if self.sender is None:
            return
        text = translator(self.default_language).gettext(DATABASE_AWAY)
        for psid in dict.fromkeys(senders):
            if not psid or not self._apologised.due(psid):
                continue
            with about(NAME, psid):
                try:
                    await self.sender.answer(psid, [Reply(text)])
                except Exception as error:  # Meta unreachable too: the redelivery is enough
                    log.warning("messenger: no apology sent (%s)", type(error).__name__)

    def _handle_all(self, events: list[tuple[int, str, int]]) -> None:
        """One task an event, created in order with no await between them: each feed()
        queues for its resident's lock in arrival order."""
        for event_id, body, attempts in events:
            task = asyncio.create_task(self._handle(event_id, body, attempts))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, event_id: int, body: str, attempts: int) -> None:
        try:
            stored = json.loads(body)
            incoming = to_incoming(stored["item"], str(stored["key"]))
        except (ValueError, KeyError, TypeError):  # not what receive() stored: nothing to do
            incoming = None
        if incoming is None or attempts > self.max_attempts:
            if incoming is not None:
                log.error("messenger: event %d given up after %d attempts", event_id, attempts - 1)
            await self._done(event_id)
            return
        pauses = iter(RETRY_PAUSES)
        with about(NAME, incoming.user_id):
            while True:
                try:
                    outcome = await self.feed(incoming)
                    if self.sender is not None and outcome.replies:
                        await self.sender.answer(incoming.user_id, outcome.replies)
                except Exception:
                    # Left unhandled: the sweep takes it again after the lease.
                    log.exception(
                        "messenger: event %d of %s failed", event_id, who(NAME, incoming.user_id)
                    )
                    return
                if not outcome.retry:
                    break
                # The database is away: the event stays in hand (and stored) and is fed
                # again after a pause, its attempts not counted; a stop leaves it to
                # the restart.
                if self._stopping:
                    return
                await asyncio.sleep(next(pauses, RETRY_PAUSES[-1]))
        await self._done(event_id)

    async def _done(self, event_id: int) -> None:
        try:
            await self.inbox.handled(event_id)
        except Exception as error:  # handled again later: the session's record stops a repeat
            metrics.DATABASE_ERRORS.labels("messenger_inbox").inc()
            log.warning("messenger: event %d not marked handled (%s)", event_id, error)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                self._handle_all(await self.inbox.unhandled(own=False))
            except Exception as error:
                metrics.DATABASE_ERRORS.labels("messenger_inbox").inc()
                log.warning("messenger: no sweep for left events (%s)", type(error).__name__)

    # --- sending --------------------------------------------------------------
    async def send(self, recipient: str, reply: Reply) -> str:
        assert self.sender is not None, "start() first"
        return await self.sender.push(recipient, reply)

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        """Messenger cannot change a sent message: the delivery sends anew where it may."""
        return False

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        """A photo a resident sent: its URL, read up to ``max_bytes``."""
        if self._session is None or not file_id.startswith(("https://", "http://")):
            return None
        try:
            async with self._session.get(
                file_id, timeout=aiohttp.ClientTimeout(total=FETCH_SECONDS)
            ) as response:
                if response.status != 200:
                    log.info("messenger: a photo was not fetched (HTTP %d)", response.status)
                    return None
                if (response.content_length or 0) > max_bytes:
                    return None
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data.extend(chunk)
                    if len(data) > max_bytes:  # a length it did not declare: stop reading
                        return None
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info("messenger: a photo was not fetched (%s)", type(error).__name__)
            return None
        return bytes(data)
