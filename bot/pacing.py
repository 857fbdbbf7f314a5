"""Pacing pushes to a platform's limits: so many a second overall, and per chat.

The overall rate is a budget of send times. Telegram's limit is per bot token,
not per process, so for Telegram the budget lives in the database
(``SharedBudget``) and every worker books short blocks of it; a channel
served by one process alone (the web chat's sockets) keeps it in memory
(``LocalBudget``). Within its block a worker hands out one slot per send, so
concurrent senders never share a slot; a 429's ``retry_after`` moves the
budget on, for every worker. Per-chat pacing stays in the process: one chat's
pushes come from one announcement row at a time.

Answers to a resident take precedence (``AnswerPacer``): they go at once and
book their slots at the end of the budget, so the pushes of every worker move
back by as much and the token's rate holds overall.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

from bot.core import metrics
from storage import deliveries

log = logging.getLogger(__name__)

PRUNE_EVERY = 1000  # reservations between clean-ups of the per-chat table
BLOCK_SECONDS = 0.1  # how much of the rate a worker books at once
# Telegram: "avoid sending more than one message per second" in a chat, "we may
# allow short bursts that go over this limit". Ten answer messages in a row go at
# once (an answer is at most a few, a resident typing fast sends several), the
# rest a second apart: the pace keeps a resident who floods the bot from a 429,
# which would hold every push of the token, and never slows ordinary use.
ANSWER_BURST = 10


class Budget(Protocol):
    """Where a channel's send times come from."""

    async def reserve(self, span: float) -> float:
        """Book ``span`` seconds of sending; returns in how many seconds they start."""

    async def hold(self, seconds: float) -> None:
        """Nothing may be booked to start within the next ``seconds``."""


@dataclass(slots=True)
class LocalBudget:
    """The budget of a channel only this process sends on."""

    clock: Callable[[], float] = time.monotonic
    _next: float = 0.0

    async def reserve(self, span: float) -> float:
        now = self.clock()
        start = max(now, self._next)
        self._next = start + span
        return start - now

    async def hold(self, seconds: float) -> None:
        self._next = max(self._next, self.clock() + seconds)


@dataclass(slots=True)
class SharedBudget:
    """The budget of a bot token, shared through the database by every worker."""

    channel: str

    async def reserve(self, span: float) -> float:
        return await deliveries.reserve_sends(self.channel, span)

    async def hold(self, seconds: float) -> None:
        await deliveries.hold_sends(self.channel, seconds)


@dataclass(slots=True)
class Pacer:
    per_second: float
    per_chat_per_second: float
    # Default: a budget in memory on the pacer's clock.
    budget: Budget | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    block_seconds: float = BLOCK_SECONDS
    # The block in hand: slot i starts at _start + i / per_second, for i < _count.
    _start: float = 0.0
    _index: int = 0
    _count: int = 0
    _used: int = 0  # slots of the block in hand handed out (not skipped)
    _chats: dict[str, float] = field(default_factory=dict)
    _reserved: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = LocalBudget(self.clock)

    async def reserve(self, chat: str) -> float:
        """Book the earliest moment a message to ``chat`` may go; returns it (on ``clock``)."""
        interval = 1.0 / self.per_second
        async with self._lock:
            now = self.clock()
            # Slots long past are dropped, not used: a process that stalled
            # must not make up for it with a burst.
            stale = math.ceil((now - self.block_seconds - self._start) / interval)
            went_by = stale > self._index and self._index < self._count
            self._index = max(self._index, stale)
            if self._index >= self._count:
                assert self.budget is not None
                self._count = self._next_block(went_by)
                wait = await self.budget.reserve(self._count * interval)
                self._start, self._index, self._used = self.clock() + wait, 0, 0
            slot = self._start + self._index * interval
            self._index += 1
            self._used += 1
        # A chat's own pace may put its message after the slot; the slot is
        # then spent unused, which keeps the overall rate safe.
        slot = max(slot, self._chats.get(chat, 0.0))
        self._chats[chat] = slot + 1.0 / self.per_chat_per_second
        self._reserved += 1
        if self._reserved % PRUNE_EVERY == 0:
            # A chat whose next slot has passed needs no entry: keeps memory
            # flat over a 100,000-recipient announcement.
            self._chats = {c: t for c, t in self._chats.items() if t > now}
        return slot

    def _next_block(self, went_by: bool) -> int:
        """Slots to book next: a block's worth of the rate, or, when the last block went by
        mostly unused (this worker sends slower than the rate: a loaded machine, a slow
        platform), twice what it used. A budget shared by several workers is then not
        booked away by one that cannot use it, while the others wait behind its
        bookings; a worker that keeps up grows back to a full block."""
        full = max(1, round(self.per_second * self.block_seconds))
        if went_by:
            return max(1, min(full, 2 * self._used))
        return min(full, max(1, 2 * self._count)) if self._count else full

    async def wait(self, chat: str, interrupt: asyncio.Event | None = None) -> bool:
        """Wait for this chat's turn; False if ``interrupt`` was set first.

        Only a wait of a second or more (a ``retry_after``) is interrupted: a
        stopping worker need not sit it out.
        """
        delay = await self.reserve(chat) - self.clock()
        if delay <= 0:
            return True
        if interrupt is None or delay < 1.0:
            await self.sleep(delay)
            return True
        with suppress(TimeoutError):
            await asyncio.wait_for(interrupt.wait(), delay)
        return not interrupt.is_set()

    async def pause(self, seconds: float) -> None:
        """The platform said "retry after": nothing goes out before then, from any worker."""
        self._index = self._count  # the rest of the block in hand is given up
        assert self.budget is not None
        await self.budget.hold(seconds)


@dataclass(slots=True)
class AnswerPacer:
    """Answers to residents: sent at once, ahead of every push, within the same rate.

    Each message of an answer books its slot at the end of the shared budget and
    does not wait for it: the pushes booked after it, by any worker, start that
    much later, so answers and pushes together keep to the token's rate. The
    booking runs beside the answer, one statement for all the answers that came
    meanwhile, so an answer never waits for the database. A 429 on an answer
    holds the pushes too, as one on a push does. Per chat, ``burst`` messages may
    go at once, then one every ``1 / per_chat_per_second`` (the token bucket
    Telegram's per-chat limit behaves as).
    """

    per_second: float
    per_chat_per_second: float
    budget: Budget
    burst: int = ANSWER_BURST
    clock: Callable[[], float] = time.monotonic
    # Per chat, when its bucket is empty again (a GCRA's "theoretical arrival time").
    _chats: dict[str, float] = field(default_factory=dict)
    _taken: int = 0
    _owed: float = 0.0  # seconds of the rate taken by answers, not yet booked
    _booking: asyncio.Task[None] | None = None

    async def take(self, chat: str) -> float:
        """Book one message of an answer to ``chat`` now; returns how many seconds the
        chat's own pace asks it to wait (0 but for a resident tapping very fast)."""
        now = self.clock()
        interval = 1.0 / self.per_chat_per_second
        full_at = self._chats.get(chat, now)
        start = max(now, full_at - (self.burst - 1) * interval)
        self._chats[chat] = max(full_at, start) + interval
        self._taken += 1
        if self._taken % PRUNE_EVERY == 0:
            self._chats = {c: t for c, t in self._chats.items() if t > now}
        self._owed += 1.0 / self.per_second
        if self._booking is None or self._booking.done():
            self._booking = asyncio.create_task(self._book(), name="answer-slots")
        return start - now

    async def booked(self) -> None:
        """Wait until the slots answers took are booked (a test, a clean stop)."""
        if self._booking is not None:
            await self._booking

    async def _book(self) -> None:
        while self._owed > 0:
            span, self._owed = self._owed, 0.0
            try:
                # The wait it returns is the pushes': an answer does not queue behind them.
                await self.budget.reserve(span)
            except Exception as error:  # the database is away: the answers went all the same
                metrics.DATABASE_ERRORS.labels("pacing").inc()
                log.warning("pacing: answers' slots were not booked (%s)", type(error).__name__)

    async def pause(self, seconds: float) -> None:
        """Telegram said "retry after" to an answer: no push goes out before then either."""
        try:
            await self.budget.hold(seconds)
        except Exception as error:
            metrics.DATABASE_ERRORS.labels("pacing").inc()
            log.warning("pacing: the pushes were not held (%s)", type(error).__name__)
