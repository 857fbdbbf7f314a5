"""Pacing pushes to a platform's limits: so many a second overall, and per chat.

Each send reserves the next free slot before it waits, so concurrent senders
in one event loop never share a slot, and a 429's ``retry_after`` pauses the
whole channel until the second it names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

PRUNE_EVERY = 1000  # reservations between clean-ups of the per-chat table


@dataclass(slots=True)
class Pacer:
    per_second: float
    per_chat_per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _next: float = 0.0
    _paused_until: float = 0.0
    _chats: dict[str, float] = field(default_factory=dict)
    _reserved: int = 0

    def reserve(self, chat: str) -> float:
        """Book the earliest moment a message to ``chat`` may go; returns it."""
        now = self.clock()
        slot = max(now, self._next, self._paused_until, self._chats.get(chat, 0.0))
        self._next = slot + 1.0 / self.per_second
        self._chats[chat] = slot + 1.0 / self.per_chat_per_second
        self._reserved += 1
        if self._reserved % PRUNE_EVERY == 0:
            # A chat whose next slot has passed needs no entry: keeps memory
            # flat over a 100,000-recipient announcement.
            self._chats = {c: t for c, t in self._chats.items() if t > now}
        return slot

    async def wait(self, chat: str) -> None:
        """Wait for this chat's turn."""
        delay = self.reserve(chat) - self.clock()
        if delay > 0:
            await self.sleep(delay)

    def pause(self, seconds: float) -> None:
        """The platform said "retry after": nothing goes out before then."""
        until = self.clock() + seconds
        self._paused_until = max(self._paused_until, until)
        self._next = max(self._next, until)
