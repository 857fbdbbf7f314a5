"""The dispatcher that drains the outbox: claim, pace, send, report.

Every push goes through here (announcements now; poll invitations, reminders
and status updates later). Per channel, a worker claims batches of due rows
and feeds them one by one to the pacer, claiming the next batch while the
current one is still going out, so the rate never waits on the database. At
most ``in_flight`` sends are on the wire at once, and each is reported back as
soon as it is answered: sent, blocked (the resident blocked the bot), back to
the queue (a 429 or a passing network fault, with backoff) or failed (after
``max_attempts``). A row a channel refuses by policy waits for the resident.
A worker asked to stop gives back the rows it has claimed and not started.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time as time_module
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.channel import PushRefused, RateLimited, RecipientBlocked
from bot.core.logs import about
from bot.core.messages import Reply
from bot.core.quiet_hours import DEFAULT_END, DEFAULT_START, next_allowed
from bot.pacing import Pacer
from storage import deliveries
from storage.deliveries import Claimed

log = logging.getLogger(__name__)

Send = Callable[[str, Reply], Awaitable[object]]


def backoff(attempts: int) -> timedelta:
    """2, 4, 8, 16… seconds, at most five minutes, before trying a failed send again."""
    return timedelta(seconds=min(300, 2**attempts))


@dataclass(slots=True)
class DeliveryWorker:
    senders: Mapping[str, Send]  # channel name → its send(recipient, reply)
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
    _lease_checked: float = field(default=-math.inf, init=False)  # time.monotonic()

    async def run(self, stopping: asyncio.Event) -> None:
        """Drain until asked to stop; rows claimed and not yet started are given back."""
        requeued = await deliveries.requeue_mine(self.worker_id)
        if requeued:
            log.warning(
                "delivery: %d pushes a stopped worker had claimed are queued again", requeued
            )
        while not stopping.is_set():
            try:
                await self._requeue_abandoned()
                busy = await self.drain_once(stopping)
            except Exception:  # the database went away: say so, wait, try again
                log.exception("delivery: a round failed")
                busy = 0
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
            *(self._drain(channel, gate, stopping) for channel in self.senders),
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
        is being sent, so the pacer never waits on the database."""
        pacer = self.pacers[channel]
        size = max(1, min(self.batch, int(pacer.per_second * self.batch_seconds)))
        stop = stopping or asyncio.Event()
        sending: set[asyncio.Task[None]] = set()
        waiting: deque[Claimed] = deque()  # claimed, not started
        upcoming: asyncio.Task[list[Claimed]] | None = None
        handled = 0
        try:
            waiting.extend(await self._claim(channel, size))
            while waiting and not stop.is_set():
                handled += len(waiting)
                full, half = len(waiting) == size, len(waiting) // 2
                hold_until = self._quiet_until()
                while waiting and not stop.is_set():
                    if upcoming is None and full and len(waiting) <= half:
                        upcoming = asyncio.create_task(self._claim(channel, size))
                    row = waiting.popleft()
                    if hold_until is not None and not row.urgent:
                        await deliveries.retry_later(row.id, hold_until, "quiet hours")
                        continue
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
                    task = asyncio.create_task(self._deliver_one(row, pacer))
                    sending.add(task)
                    task.add_done_callback(sending.discard)
                    task.add_done_callback(lambda _: gate.release())
                if upcoming is not None:
                    claimed, upcoming = await upcoming, None
                    waiting.extend(claimed)
        finally:
            try:
                if upcoming is not None:
                    # A claim under way when something failed: its rows go back too.
                    with suppress(Exception):
                        waiting.extend(await upcoming)
                # Each send reports its own fate: none outlives this round, so the
                # next round's places are the only ones.
                if sending:
                    await asyncio.gather(*sending)
            finally:
                if waiting:
                    await deliveries.give_back([row.id for row in waiting])
        return handled - len(waiting)

    async def _claim(self, channel: str, size: int) -> list[Claimed]:
        # Checked here too: a long broadcast is one round, and a dead worker's
        # rows must not wait for its end.
        await self._requeue_abandoned()
        return await deliveries.claim(self.worker_id, channel, size)

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

    async def _deliver_one(self, row: Claimed, pacer: Pacer) -> None:
        """Send one row and report its fate; never raises (it runs as a task of its own)."""
        # Whatever is logged meanwhile (a failure's text too) names the recipient by its tag.
        with about(row.channel, row.external_id):
            await self._send_and_report(row, pacer)

    async def _send_and_report(self, row: Claimed, pacer: Pacer) -> None:
        now = datetime.now(UTC)
        try:
            await self.senders[row.channel](row.external_id, Reply(row.text, image=row.image))
        except RecipientBlocked as error:
            await self._report(
                row, deliveries.mark_blocked(row.channel, row.external_id, str(error))
            )
        except RateLimited as error:
            await self._report(row, pacer.pause(error.retry_after))
            at = now + timedelta(seconds=error.retry_after)
            await self._report(
                row,
                deliveries.retry_later(
                    row.id, at, f"rate limited: retry after {error.retry_after}s"
                ),
            )
        except PushRefused as error:
            await self._report(row, deliveries.mark_waiting(row, str(error)))
        except Exception as error:  # a network fault or a 5xx: try again later, then give up
            reason = f"{type(error).__name__}: {error}"
            if row.attempts >= self.max_attempts:
                log.warning("delivery %d failed for good: %s", row.id, reason)
                await self._report(row, deliveries.mark_failed(row.id, reason))
            else:
                await self._report(
                    row, deliveries.retry_later(row.id, now + backoff(row.attempts), reason)
                )
        else:
            # Reported at once: a crash can repeat only the sends in flight.
            await self._report(row, deliveries.mark_sent([row.id]))

    async def _report(self, row: Claimed, report: Awaitable[object]) -> None:
        try:
            await report
        except Exception:  # the row stays "sending": its worker's restart or lease requeues it
            log.exception("delivery %d: could not report back", row.id)
