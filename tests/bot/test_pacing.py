"""The pacer keeps to a rate overall and per chat, and obeys retry_after."""

from __future__ import annotations

from bot.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(clock: FakeClock, overall: float = 30, per_chat: float = 1) -> Pacer:
    return Pacer(overall, per_chat, clock=clock, sleep=clock.sleep)


def test_different_chats_are_spaced_by_the_overall_rate() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=30)
    slots = [p.reserve(str(chat)) for chat in range(31)]
    assert slots[0] == 100.0
    assert abs(slots[30] - 101.0) < 1e-9, "the 31st message goes one second after the first"


def test_one_chat_gets_at_most_one_message_a_second() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=30, per_chat=1)
    assert [p.reserve("anna") for _ in range(3)] == [100.0, 101.0, 102.0]


def test_retry_after_holds_everything_until_the_second_it_names() -> None:
    clock = FakeClock()
    p = pacer(clock)
    p.reserve("a")
    p.pause(7)
    assert p.reserve("b") == 107.0


async def test_waiting_sleeps_until_the_reserved_slot() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=10)
    for chat in "abc":
        await p.wait(chat)
    assert [round(s, 9) for s in clock.sleeps] == [0.1, 0.1]
    assert abs(clock.now - 100.2) < 1e-9


def test_the_per_chat_table_does_not_grow_without_bound() -> None:
    clock = FakeClock()
    p = pacer(clock, overall=1_000_000, per_chat=1)
    for chat in range(5000):
        p.reserve(str(chat))
        clock.now += 0.01
    assert len(p._chats) < 1200
