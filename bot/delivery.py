"""The dispatcher that drains the outbox: claim, render, pace, send, report.

Every push goes through here (announcements, staff notes and progress
reports now; poll invitations, reminders and status updates later). Per
channel, a worker claims batches of due rows, highest priority first, and
feeds them one by one to the pacer, claiming the next batch while the
current one is still going out, so the rate never waits on the database.
A broadcast's batch holds seconds of the rate, so at least once a second the
worker also claims the personal pushes queued since and puts them first.

Each row is rendered just before it goes, in its resident's language then,
by the ``Render`` that ``bot.app`` hands over (the words live in dialogs,
which the runtime does not import); a batch renders each distinct push
once. A row sends a new message (the channel's message id is kept) or edits
one sent earlier; an edit that would show what the message shows already is
skipped without a call. At most ``in_flight`` sends are on the wire at once,
and each is reported back as soon as it is answered: sent, blocked (the
resident blocked the bot), back to the queue (a 429 or a passing network
fault, with backoff) or failed (after ``max_attempts``). A row a channel
refuses by policy waits for the resident; a row whose source is gone is
cancelled. A worker asked to stop gives back the rows it has claimed and not
started.

A channel's claim policy (``ClaimPolicy``) is applied in the claim: the web
chat's rows are claimed only by the worker holding the resident's socket,
and each round first moves the rows no worker can deliver to "waiting" in
bulk. A digest (the catch-up of several held pushes) reports for its items
too: they are sent, waiting again or failed with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time as time_module
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core import metrics
from bot.core.channel import (
    Channel,
    ChannelDown,
    ClaimPolicy,
    PushRefused,
    RateLimited,
    RecipientBlocked,
)
from bot.core.logs import about
from bot.core.messages import REPLY_TEMPLATE, Render, RenderRequest, Reply
from bot.core.quiet_hours import DEFAULT_END, DEFAULT_START, next_allowed
from bot.pacing import Pacer
from storage import deliveries
from storage.deliveries import Claimed
from storage.errors import unavailable

log = logging.getLogger(__name__)
# While the database is away, a push's fate is written again after these pauses.
REPORT_PAUSES = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A push's words as they will go, and a digest of them (kept with the row)."""

    reply: Reply
    digest: str


def digest(reply: Reply) -> str:
    """What a message shows, in 16 hex digits: an edit to the same is skipped."""
    buttons = [[(button.label, button.payload) for button in row] for row in reply.buttons]
    shown = repr((reply.text, reply.image, buttons)).encode()
    return hashlib.blake2b(shown, digest_size=8).hexdigest()


# What one batch has rendered: (template, params as stored, language, channel) → words.
RenderCache = dict[tuple[str, str, str, str], Rendered | None]


def backoff(attempts: int) -> timedelta:
    """2, 4, 8, 16… seconds, at most five minutes, before trying a failed send again."""
    return timedelta(seconds=min(300, 2**attempts))


@dataclass(slots=True)
class DeliveryWorker:
    channels: Mapping[str, Channel]  # channel name → the channel that sends and edits
    render: Render  # a push's words at send time (dialogs.pushes, handed over by bot.app)
    pacers: Mapping[str, Pacer]
    zone: ZoneInfo
    # Stable across restarts of the same worker (host and port), so a worker
    # that comes back takes its unreported rows back at once.
    worker_id: str
    batch: int = 200
    # Sends on the wire at once, over all channels: after a kill -9, at most
    # these can go out twice (sent, but not yet reported).
    in_flight: int = 50
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=5)
    idle_seconds: float = 1.0
    quiet_start: time = DEFAULT_START
    quiet_end: time = DEFAULT_END
    # A claim holds at most this many seconds of a channel's rate, so rows
    # never wait in a worker's hands anywhere near their lease.
    batch_seconds: float = 10.0
    # How often a round looks for personal pushes queued behind the batch in hand.
    priority_every: float = 1.0
    _lease_checked: float = field(default=-math.inf, init=False)  # time.monotonic()

    async def run(self, stopping: asyncio.Event) -> None:
        """Drain until asked to stop; rows claimed and not yet started are given back."""
        requeued = await deliveries.requeue_mine(self.worker_id)
        if requeued:
            log.warning(
                "delivery: %d pushes a stopped worker had claimed are queued again", requeued
            )
        away = False  # the database was unavailable in the last round
        while not stopping.is_set():
            try:
                await self._requeue_abandoned()
                busy = await self.drain_once(stopping)
            except Exception as error:  # the database went away: say so once, wait, try again
                metrics.DATABASE_ERRORS.labels("delivery").inc()
                if not unavailable(error):
                    log.exception("delivery: a round failed")
                elif not away:
                    log.warning(
                        "delivery: the database is unavailable (%s); pushes wait for it",
                        type(error).__name__,
                    )
                away, busy = unavailable(error), 0
            else:
                if away:
                    log.info("delivery: the database is back; pushes go on")
                away = False
            if not busy:
                try:
                    await asyncio.wait_for(stopping.wait(), self.idle_seconds)
                except TimeoutError:
                    pass

    async def drain_once(self, stopping: asyncio.Event | None = None) -> int:
        """Send what is due on every channel, the channels side by side, until
        none is left; returns how many rows were handled."""
        gate = asyncio.Semaphore(self.in_flight)
        results = await asyncio.gather(
            *(self._drain(channel, gate, stopping) for channel in self.channels),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(result for result in results if isinstance(result, int))

    async def _drain(
        self, channel: str, gate: asyncio.Semaphore, stopping: asyncio.Event | None
    ) -> int:
        """One channel as a pipeline: the next batch is claimed while the current one
        is being sent, so the pacer never waits on the database. Rows go highest
        priority first, also across batches: a personal push in the next batch, or
        picked up on its own, goes before what is left of this one."""
        pacer = self.pacers[channel]
        policy = self._policy(channel)
        size = max(1, min(self.batch, int(pacer.per_second * self.batch_seconds)))
        stop = stopping or asyncio.Event()
        sending: set[asyncio.Task[None]] = set()
        waiting: deque[Claimed] = deque()  # claimed, not started; highest priority first
        upcoming: asyncio.Task[list[Claimed]] | None = None
        cache: RenderCache = {}  # cleared at each claim: a batch renders its pushes once
        handled = 0

        def take(claimed: list[Claimed]) -> None:
            nonlocal handled
            if claimed:
                merged = sorted([*waiting, *claimed], key=lambda row: (-row.priority, row.id))
                waiting.clear()
                waiting.extend(merged)
                handled += len(claimed)
                cache.clear()

        try:
            held = await deliveries.hold_denied(channel, policy)
            if held:
                log.info("delivery: %d %s pushes wait for their residents", held, channel)
            claimed = await self._claim(channel, size)
            take(claimed)
            more = len(claimed) == size  # a full batch: there may be more to claim
            hold_until = self._quiet_until()
            next_look = time_module.monotonic() + self.priority_every
            while not stop.is_set():
                if upcoming is not None and (upcoming.done() or not waiting):
                    claimed, upcoming = await upcoming, None
                    take(claimed)
                    more = len(claimed) == size
                    hold_until = self._quiet_until()
                if not waiting:
                    break
                if upcoming is None and more and len(waiting) <= size // 2:
                    upcoming = asyncio.create_task(self._claim(channel, size))
                if time_module.monotonic() >= next_look:
                    # A personal push queued during a long broadcast goes next, not
                    # after the seconds of rate this batch still holds.
                    next_look = time_module.monotonic() + self.priority_every
                    take(
                        await deliveries.claim(
                            self.worker_id,
                            channel,
                            size,
                            min_priority=deliveries.PERSONAL,
                            policy=policy,
                        )
                    )
                row = waiting.popleft()
                if hold_until is not None and not row.quiet_exempt:
                    await deliveries.retry_later(row.id, hold_until, "quiet hours")
                    metrics.PUSHES.labels(channel, "quiet_hours").inc()
                    continue
                rendered = await self._prepare(row, cache)
                if rendered is None:
                    continue  # reported already: cancelled, unchanged, or failed
                # The place is taken before the turn: a row waiting for its turn
                # holds one, so at most in_flight rows are between here and reported.
                await gate.acquire()
                try:
                    ready = not stop.is_set() and await pacer.wait(row.external_id, stop)
                except BaseException:
                    gate.release()
                    waiting.appendleft(row)
                    raise
                if not ready:
                    gate.release()
                    waiting.appendleft(row)
                    break
                task = asyncio.create_task(self._deliver_one(row, rendered, pacer))
                sending.add(task)
                task.add_done_callback(sending.discard)
                task.add_done_callback(lambda _: gate.release())
        finally:
            try:
                if upcoming is not None:
                    # A claim under way when something failed: its rows go back too.
                    with suppress(Exception):
                        late = await upcoming
                        handled += len(late)
                        waiting.extend(late)
                # Each send reports its own fate: none outlives this round, so the
                # next round's places are the only ones.
                if sending:
                    await asyncio.gather(*sending)
            finally:
                if waiting:
                    await deliveries.give_back([row.id for row in waiting])
        return handled - len(waiting)

    async def _prepare(self, row: Claimed, cache: RenderCache) -> Rendered | None:
        """The row's words, or None when nothing is to be sent (and that is reported):
        its source is gone, the edit would change nothing, or the render failed."""
        try:
            rendered = await self._render(row, cache)
        except Exception as error:  # a template unknown to this version, the database away
            await self._failed(row, f"render: {type(error).__name__}: {error}")
            return None
        if rendered is None:
            await self._report(row, lambda: deliveries.mark_cancelled(row.id, "its source is gone"))
            metrics.PUSHES.labels(row.channel, "cancelled").inc()
        elif row.operation == "edit" and row.message_id and rendered.digest == row.shown:
            await self._report(row, lambda: deliveries.mark_sent(row.id, row.message_id, row.shown))
            metrics.PUSHES.labels(row.channel, "unchanged").inc()
            return None
        return rendered

    async def _render(self, row: Claimed, cache: RenderCache) -> Rendered | None:
        key = (row.template, row.params, row.language, row.channel)
        if key in cache:
            return cache[key]
        params = json.loads(row.params)
        if row.template == REPLY_TEMPLATE:
            reply: Reply | None = Reply.from_json(params)
        else:
            reply = await self.render(
                RenderRequest(row.template, params, row.language, row.channel)
            )
        rendered = None if reply is None else Rendered(reply, digest(reply))
        cache[key] = rendered
        return rendered

    async def _claim(self, channel: str, size: int) -> list[Claimed]:
        # Checked here too: a long broadcast is one round, and a dead worker's
        # rows must not wait for its end.
        await self._requeue_abandoned()
        return await deliveries.claim(self.worker_id, channel, size, policy=self._policy(channel))

    def _policy(self, channel: str) -> ClaimPolicy:
        """Whose rows of ``channel`` this worker may claim; a channel naming none: anyone's."""
        policy = getattr(self.channels[channel], "claim_policy", ClaimPolicy.ANYONE)
        return policy if isinstance(policy, ClaimPolicy) else ClaimPolicy.ANYONE

    async def _requeue_abandoned(self) -> None:
        """Queue again the rows of a worker gone for good; at most once a round's pause."""
        now = time_module.monotonic()
        if now - self._lease_checked < self.idle_seconds:
            return
        self._lease_checked = now
        abandoned = await deliveries.requeue_abandoned(self.lease)
        if abandoned:
            log.warning("delivery: %d pushes of a worker gone for good are queued again", abandoned)

    def _quiet_until(self) -> datetime | None:
        """When quiet hours end if they hold now, else None."""
        now = datetime.now(UTC)
        allowed = next_allowed(now, self.zone, self.quiet_start, self.quiet_end)
        return allowed if allowed > now else None

    async def _deliver_one(self, row: Claimed, rendered: Rendered, pacer: Pacer) -> None:
        """Send (or edit) one row and report its fate; never raises (it runs as a task of
        its own)."""
        # Whatever is logged meanwhile (a failure's text too) names the recipient by its tag.
        with about(row.channel, row.external_id):
            await self._send_and_report(row, rendered, pacer)

    async def _send_and_report(self, row: Claimed, rendered: Rendered, pacer: Pacer) -> None:
        channel = self.channels[row.channel]
        now = datetime.now(UTC)
        try:
            if row.operation == "edit" and row.message_id:
                if not await channel.edit(row.external_id, row.message_id, rendered.reply):
                    resend = row.if_edit_refused == "send"
                    await self._report(row, lambda: deliveries.mark_edit_refused(row.id, resend))
                    metrics.PUSHES.labels(row.channel, "edit_refused").inc()
                    return
                message_id = row.message_id
            else:
                message_id = await channel.send(row.external_id, rendered.reply)
        except RecipientBlocked as error:
            metrics.PUSHES.labels(row.channel, "unreachable").inc()
            why = str(error)
            await self._report(
                row, lambda: deliveries.mark_blocked(row.channel, row.external_id, why)
            )
        except RateLimited as error:
            metrics.PUSHES.labels(row.channel, "rate_limited").inc()
            metrics.rate_limited(row.channel, "push", error.retry_after)
            await pacer.pause(error.retry_after)
            at = now + timedelta(seconds=error.retry_after)
            why = f"rate limited: retry after {error.retry_after}s"
            await self._report(row, lambda: deliveries.retry_later(row.id, at, why))
        except ChannelDown as error:
            # Nobody can be reached on it (its token was refused): the row goes back,
            # its attempt not counted, and the channel rests instead of a retry storm.
            metrics.PUSHES.labels(row.channel, "postponed").inc()
            await pacer.pause(error.retry_after)
            at = now + timedelta(seconds=error.retry_after)
            why = error.reason
            await self._report(row, lambda: deliveries.postpone(row.id, at, why))
        except PushRefused as error:
            metrics.PUSHES.labels(row.channel, "waiting").inc()
            why = str(error)
            if row.template == deliveries.DIGEST:
                await self._report(row, lambda: deliveries.mark_digest_refused(row, why))
            else:
                await self._report(row, lambda: deliveries.mark_waiting(row, why))
        except Exception as error:  # a network fault or a 5xx: try again later, then give up
            await self._failed(row, f"{type(error).__name__}: {error}")
        else:
            metrics.PUSHES.labels(row.channel, "sent").inc()
            # Reported at once: a crash can repeat only the sends in flight.
            if row.template == deliveries.DIGEST:
                await self._report(
                    row, lambda: deliveries.mark_digest_sent(row, message_id, rendered.digest)
                )
            else:
                await self._report(
                    row, lambda: deliveries.mark_sent(row.id, message_id, rendered.digest)
                )

    async def _failed(self, row: Claimed, reason: str) -> None:
        """Try again after a growing pause; after ``max_attempts``, give up."""
        if row.attempts >= self.max_attempts:
            metrics.PUSHES.labels(row.channel, "failed").inc()
            log.warning("delivery %d failed for good: %s", row.id, reason)
            if row.template == deliveries.DIGEST:
                await self._report(row, lambda: deliveries.mark_digest_failed(row, reason))
            else:
                await self._report(row, lambda: deliveries.mark_failed(row.id, reason))
        else:
            metrics.PUSHES.labels(row.channel, "retried").inc()
            at = datetime.now(UTC) + backoff(row.attempts)
            await self._report(row, lambda: deliveries.retry_later(row.id, at, reason))

    async def _report(self, row: Claimed, report: Callable[[], Awaitable[object]]) -> None:
        """Write a row's fate. While the database is away it is tried again for most of
        the lease: a push that went out is then recorded once the database is back,
        not sent a second time when its lease runs out."""
        waited = 0.0
        give_up = max(REPORT_PAUSES[0], self.lease.total_seconds() - 60.0)
        pauses = iter(REPORT_PAUSES)
        while True:
            try:
                await report()
                return
            except Exception as error:
                metrics.DATABASE_ERRORS.labels("delivery_report").inc()
                if not unavailable(error):
                    # The row stays "sending": its worker's restart or the lease requeues it.
                    log.exception("delivery %d: could not report back", row.id)
                    return
                if waited >= give_up:
                    log.warning(
                        "delivery %d: not recorded, the database is still unavailable (%s); "
                        "its lease will queue it again",
                        row.id,
                        type(error).__name__,
                    )
                    return
            pause = next(pauses, REPORT_PAUSES[-1])
            await asyncio.sleep(pause)
            waited += pause
