"""Answers take precedence over pushes within one rate: an answer goes at once and its slot
moves the pushes back; a 429 on an answer holds the pushes; one chat gets a short burst."""

from __future__ import annotations

import pytest

from bot.pacing import ANSWER_BURST, AnswerPacer, LocalBudget, Pacer, SharedBudget
from tests.bot.test_pacing import FakeClock


def answers(clock: FakeClock, budget: LocalBudget | SharedBudget, rate: float = 10) -> AnswerPacer:
    return AnswerPacer(rate, 1.0, budget, clock=clock)


async def test_an_answer_goes_at_once_and_the_pushes_move_back_by_its_slot() -> None:
    clock = FakeClock()
    budget = LocalBudget(clock)
    pushes = Pacer(10, 1, budget=budget, clock=clock, sleep=clock.sleep, block_seconds=1.0)
    booked = [await pushes.reserve(f"resident-{n}") for n in range(10)]  # the next second
    assert booked[-1] == pytest.approx(100.9)

    # Pushes are booked a second ahead, and the answer does not wait behind them.
    pace = answers(clock, budget)
    assert await pace.take("anna") == 0.0
    await pace.booked()
    # The next push starts one slot (1/10 s) later than it would have.
    assert await pushes.reserve("resident-10") == pytest.approx(101.1)


async def test_a_chat_gets_a_short_burst_of_answers_then_one_a_second() -> None:
    clock = FakeClock()
    pace = answers(clock, LocalBudget(clock))
    waits = [await pace.take("anna") for _ in range(ANSWER_BURST + 2)]
    assert waits == pytest.approx([0.0] * ANSWER_BURST + [1.0, 2.0])
    assert await pace.take("janis") == 0.0, "another chat has a pace of its own"
    clock.now += 60  # a minute later the burst is there again
    assert [await pace.take("anna") for _ in range(ANSWER_BURST)] == [0.0] * ANSWER_BURST


async def test_answers_book_the_shared_budget_and_a_429_on_one_holds_every_worker(
    database: str,
) -> None:
    # Two workers: one answers, the other sends pushes.
    answering, pushing = SharedBudget("telegram"), SharedBudget("telegram")
    pace = AnswerPacer(2, 1.0, answering)
    # Four answers (to four residents) of half a second each: none waits for its slot.
    assert [await pace.take(f"resident-{n}") for n in range(4)] == [0.0] * 4
    await pace.booked()
    assert 1.8 < await pushing.reserve(0.1) < 2.1, "the pushes start after the answers' slots"

    await pace.pause(30)
    assert await pushing.reserve(0.1) > 29, "a 429 on an answer holds the pushes too"
