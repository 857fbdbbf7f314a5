"""The dispatcher that drains the outbox: claim, pace, send, report.

Every push goes through here (announcements now; poll invitations, reminders
and status updates later). A worker claims a batch of due rows for one
channel, sends them paced to the channel's limits with several in flight,
and reports each back: sent, blocked (the resident blocked the bot), back to
the queue (a 429 or a passing network fault, with backoff) or failed (after
``max_attempts``). A row a channel refuses by policy waits for the resident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.channels.base import PushRefused, RateLimited, RecipientBlocked
from bot.messages import Reply
from bot.pacing import Pacer
from bot.quiet_hours import DEFAULT_END, DEFAULT_START, next_allowed
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
    in_flight: int = 50
    max_attempts: int = 5
    lease: timedelta = timedelta(minutes=5)
    idle_seconds: float = 1.0
    quiet_start: time = DEFAULT_START
    quiet_end: time = DEFAULT_END

    async def run(self, stopping: asyncio.Event) -> None:
        """Drain until asked to stop; a batch in hand is finished first."""
        requeued = await deliveries.requeue_mine(self.worker_id)
        if requeued:
            log.warning(
                "delivery: %d pushes a stopped worker had claimed are queued again", requeued
            )
        while not stopping.is_set():
            try:
                abandoned = await deliveries.requeue_abandoned(self.lease)
                if abandoned:
                    log.warning(
                        "delivery: %d pushes of a worker gone for good are queued again", abandoned
                    )
                busy = await self.drain_once()
            except Exception:  # the database went away: say so, wait, try again
                log.exception("delivery: a round failed")
                busy = 0
            if not busy:
                try:
                    await asyncio.wait_for(stopping.wait(), self.idle_seconds)
                except TimeoutError:
                    pass

    async def drain_once(self) -> int:
        """One batch per channel; returns how many rows were handled."""
        handled = 0
        for channel in self.senders:
            claimed = await deliveries.claim(self.worker_id, channel, self.batch)
            if not claimed:
                continue
            handled += len(claimed)
            gate = asyncio.Semaphore(self.in_flight)
            await asyncio.gather(*(self._deliver(row, gate) for row in claimed))
        return handled

    async def _deliver(self, row: Claimed, gate: asyncio.Semaphore) -> None:
        async with gate:
            await self._deliver_one(row)

    async def _deliver_one(self, row: Claimed) -> None:
        now = datetime.now(UTC)
        if not row.urgent:
            allowed = next_allowed(now, self.zone, self.quiet_start, self.quiet_end)
            if allowed > now:
                await deliveries.retry_later(row.id, allowed, "quiet hours")
                return
        pacer = self.pacers[row.channel]
        await pacer.wait(row.external_id)
        try:
            await self.senders[row.channel](row.external_id, Reply(row.text, image=row.image))
        except RecipientBlocked as error:
            await deliveries.mark_blocked(row.channel, row.external_id, str(error))
        except RateLimited as error:
            pacer.pause(error.retry_after)
            at = now + timedelta(seconds=error.retry_after)
            await deliveries.retry_later(
                row.id, at, f"rate limited: retry after {error.retry_after}s"
            )
        except PushRefused as error:
            await deliveries.mark_waiting(row, str(error))
        except Exception as error:  # a network fault or a 5xx: try again later, then give up
            reason = f"{type(error).__name__}: {error}"
            if row.attempts >= self.max_attempts:
                log.warning("delivery %d failed for good: %s", row.id, reason)
                await deliveries.mark_failed(row.id, reason)
            else:
                await deliveries.retry_later(row.id, now + backoff(row.attempts), reason)
        else:
            # Reported at once: a crash can repeat only the sends in flight.
            await deliveries.mark_sent([row.id])
