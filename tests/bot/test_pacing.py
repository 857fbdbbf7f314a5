"""The pacer keeps to a rate overall and per chat, and obeys retry_after; with a budget
shared through the database, several workers together keep to one rate."""

from __future__ import annotations

import asyncio
from itertools import count, pairwise

import pytest

from bot.pacing import LocalBudget, Pacer, SharedBudget
from storage import deliveries


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(clock: FakeClock, overall: float = 30, per_chat: float = 1, **options: object) -> Pacer:
    return Pacer(overall, per_chat, clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]


async def test_different_chats_are_spaced_by_the_overall_rate() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=30)
    slots = [await p.reserve(str(chat)) for chat in range(31)]
    assert slots[0] == 100.0
    assert abs(slots[30] - 101.0) < 1e-9, "the 31st message goes one second after the first"


async def test_one_chat_gets_at_most_one_message_a_second() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=30, per_chat=1)
    assert [await p.reserve("anna") for _ in range(3)] == [100.0, 101.0, 102.0]


async def test_retry_after_holds_everything_until_the_second_it_names() -> None:
    clock = FakeClock()
    p = pacer(clock)
    await p.reserve("a")
    await p.pause(7)
    assert await p.reserve("b") == 107.0


async def test_waiting_sleeps_until_the_reserved_slot() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=10)
    for chat in "abc":
        await p.wait(chat)
    assert [round(s, 9) for s in clock.sleeps] == [0.1, 0.1]
    assert abs(clock.now - 100.2) < 1e-9


async def test_the_per_chat_table_does_not_grow_without_bound() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=1_000_000, per_chat=1)
    for chat in range(5000):
        await p.reserve(str(chat))
        clock.now += 0.01
    assert len(p._chats) < 1200


async def test_a_process_that_stalled_does_not_make_up_for_it_with_a_burst() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=100, block_seconds=1.0)  # blocks of 100 slots
    await p.reserve("a")
    clock.now += 5  # the process was stopped: the rest of its block went by unused
    slots = [await p.reserve(str(chat)) for chat in range(10)]
    # A fresh block from now on, 0.01 s apart: none of the slots that went by unused.
    assert slots == pytest.approx([105.0 + n / 100 for n in range(10)], abs=1e-9)


async def test_two_pacers_on_one_budget_together_keep_to_its_rate() -> None:
    clock = FakeClock()
    budget = LocalBudget(clock)
    one, two = (pacer(clock, overall=50, budget=budget) for _ in range(2))
    slots = []
    for n in range(100):
        slots.append(await (one if n % 3 else two).reserve(str(n)))
    slots.sort()
    assert all(b - a >= 0.02 - 1e-9 for a, b in pairwise(slots))
    assert slots[-1] - slots[0] >= 99 * 0.02 - 1e-9


async def test_workers_sharing_the_database_budget_never_book_the_same_time(
    database: str,
) -> None:
    """Spans booked at once, as two workers would, follow one another without overlap."""
    spans = await asyncio.gather(*(deliveries.reserve_sends("telegram", 1.0) for _ in range(6)))
    starts = sorted(spans)
    assert starts[0] < 0.5, "the first span starts now"
    assert all(b - a > 0.9 for a, b in pairwise(starts))
    assert await deliveries.reserve_sends("webchat", 1.0) < 0.5, "each channel has its own"


async def test_a_retry_after_in_one_worker_holds_every_worker(database: str) -> None:
    one, two = SharedBudget("telegram"), SharedBudget("telegram")
    await one.hold(30)
    assert await two.reserve(0.1) > 29
    await one.hold(1)  # a shorter hold never shortens a longer one
    assert await two.reserve(0.1) > 29


async def test_a_worker_slower_than_the_rate_leaves_the_rest_of_it_to_the_others() -> None:
    """A loaded worker that sends one push every 0.25 s must not book whole blocks of the
    shared budget it cannot use: the other worker, waiting behind its bookings, would get
    only part of the rate (a broadcast stalled so under load, bench/load.py)."""
    clock = FakeClock()
    budget = LocalBudget(clock)
    slow, fast = (pacer(clock, overall=1000, block_seconds=0.1, budget=budget) for _ in range(2))
    fast_slots: list[float] = []
    chats = (f"fast-{n}" for n in count())  # each push to another chat
    for step in range(40):  # 10 seconds
        await slow.reserve(f"slow-{step}")
        deadline = clock.now + 0.25
        while (slot := await fast.reserve(next(chats))) < deadline:
            fast_slots.append(slot)
        clock.now = deadline
    assert len(fast_slots) >= 0.95 * 1000 * 10, len(fast_slots)
