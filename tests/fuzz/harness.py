"""Running drawn conversations against a running bot, and checking every input.

Hypothesis and the bot's event loop: ``@given`` runs a synchronous test function, while the
bot (``start_bot``, the stand-ins, aiohttp) lives on the test's event loop. ``fuzz`` runs
the hypothesis test in a worker thread (``asyncio.to_thread``); each example hands its
conversation to the loop with ``run_coroutine_threadsafe`` and waits for it. The loop is
free meanwhile, so the bot, the stand-ins and the checks run on it exactly as in the other
end-to-end tests, over real HTTP; hypothesis keeps all it is good at (fixed seeds,
shrinking a failure to a small conversation). The long run (``bench/fuzz.py``) uses the same
two functions, with a loop of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.i18n import LANGUAGES
from tests.fuzz.checks import (
    WRITES_NOTHING,
    LogWatch,
    Tally,
    apologies,
    row_changes,
    row_counts,
    untranslated,
)
from tests.fuzz.strategies import Action, Conversation
from tests.phrases import HELP, MUNICIPALITY, tr

DEFAULT_LANGUAGE = "lv"  # the demo municipality's
# Configuration per entry point. Pacing is not what is fuzzed: at Telegram's and Meta's
# one message a second per chat, every answer of two messages would wait on the clock.
# Every web-chat conversation comes from 127.0.0.1, past the limit of new residents.
SETTINGS = {
    "telegram": "[delivery]\ntelegram_per_second = 1000\ntelegram_per_chat_per_second = 30\n",
    "messenger": "[messenger]\nper_second = 300\nper_chat_per_second = 10\n",
    "webchat": "[webchat]\nnew_residents_per_address_per_hour = 100000\n",
}


@dataclass
class Answer:
    """How the bot took one input: its kind (``checks.WELL_FORMED``…), the HTTP status (or
    what a socket did), what the resident was shown, and what the target found wrong."""

    kind: str
    status: str
    shown: list[str] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)  # the texts the input carried
    problems: list[str] = field(default_factory=list)
    # Tables whose count this input may change for a known reason the target names.
    excused: frozenset[str] = frozenset()


class Target(Protocol):
    name: str

    async def begin(self, conversation: Conversation) -> None:
        """A fresh resident for this conversation."""

    async def send(self, action: Action) -> Answer:
        """Send one action and wait until the bot has done all it will do with it."""

    async def chosen_language(self) -> str | None:
        """The resident's language in the database ("" not chosen, None: no resident)."""

    async def end(self) -> None: ...

    async def close(self) -> None: ...


T = TypeVar("T", bound=Target)
NormalAnswer = Callable[[T], Awaitable[str]]  # what a newcomer's /help is answered, as text


def expected_language(chosen: str | None, locale: str | None) -> str:
    """As README says: the resident's choice, else what their app says, else the
    municipality's language."""
    if chosen in LANGUAGES:
        return str(chosen)
    platform = (locale or "").split("-")[0].lower()
    return platform if platform in LANGUAGES else DEFAULT_LANGUAGE


def describe(action: object, limit: int = 400) -> str:
    text = repr(action)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


async def play(
    target: Target, conversation: Conversation, watch: LogWatch, tally: Tally, *, strict: bool
) -> None:
    """One conversation, every input checked; a failure raises (``strict``) or is tallied."""
    tally.conversations += 1
    start = watch.mark()
    await target.begin(conversation)
    failures: list[str] = []
    try:
        for index, action in enumerate(conversation.actions):
            before = await row_counts()
            language_before = expected_language(await target.chosen_language(), conversation.locale)
            mark = watch.mark()
            answer = await target.send(action)
            language_after = expected_language(await target.chosen_language(), conversation.locale)
            problems = list(answer.problems)
            if answer.status.startswith("5"):
                problems.append(f"HTTP {answer.status}")
            if answer.kind in WRITES_NOTHING:
                changes = row_changes(before, await row_counts())
                changes = {t: n for t, n in changes.items() if t not in answer.excused}
                if changes:
                    problems.append(f"rows written: {changes}")
            languages = {language_before, language_after}
            if "en" not in languages:
                for language in languages:
                    problems += untranslated(language, answer.shown, answer.sent)
            problems += apologies(answer.shown)
            problems += watch.since(mark)
            tally.record(answer.kind, answer.status, len(answer.shown))
            if problems:
                failures.append(
                    f"{target.name} input {index} ({answer.kind}) {describe(action)}: {problems}"
                )
                if strict:
                    break
    finally:
        await target.end()
    if not failures:
        left = watch.since(start, collect=strict)  # e.g. a task's exception, found by the gc
        if left:
            failures.append(f"{target.name} after the conversation: {left}")
    if failures and strict:
        raise AssertionError("\n".join(failures))
    tally.failures.extend(failures)


def fuzz_settings(examples: int, *, seed: int | None = None) -> settings:
    """Fixed inputs for the suite (derandomized) or a seeded run for the bench."""
    return settings(
        max_examples=examples,
        derandomize=seed is None,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def explore(
    loop: asyncio.AbstractEventLoop,
    strategy: st.SearchStrategy[Conversation],
    play_one: Callable[[Conversation], Coroutine[Any, Any, None]],
    chosen: settings,
    seed: int | None = None,
) -> None:
    """In a worker thread: hypothesis draws, the bot's loop plays each conversation."""

    @chosen
    @given(strategy)
    def conversation_is_handled(conversation: Conversation) -> None:
        asyncio.run_coroutine_threadsafe(play_one(conversation), loop).result()

    if seed is not None:
        from hypothesis import seed as with_seed

        with_seed(seed)(conversation_is_handled)()
    else:
        conversation_is_handled()


async def fuzz(
    strategy: st.SearchStrategy[Conversation],
    play_one: Callable[[Conversation], Coroutine[Any, Any, None]],
    examples: int,
    *,
    seed: int | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(
        explore, loop, strategy, play_one, fuzz_settings(examples, seed=seed), seed
    )


async def healthy(base: str, target: T, normal_answer: NormalAnswer[T]) -> list[str]:
    """What is wrong with the bot after the fuzzing: the health check must answer 200 and
    a newcomer's /help get the help, as ever."""
    problems = []
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            if response.status != 200:
                problems.append(f"/healthz answered {response.status}")
    said = await normal_answer(target)
    if not said.startswith(tr("lv", HELP, municipality=MUNICIPALITY)):
        problems.append(f"/help was answered {said[:100]!r}")
    return problems


async def suite_run(
    target: T,
    strategy: st.SearchStrategy[Conversation],
    base: str,
    normal_answer: NormalAnswer[T],
    conversations: int,
) -> Tally:
    """The test suite's fixed-seed run of one entry point: every input checked as it is
    played (strict), then the bot healthy and no error logged since the start. Closes the
    target; prints the tally."""
    tally = Tally(target.name)
    try:
        with LogWatch() as watch:
            await fuzz(
                strategy,
                lambda conversation: play(target, conversation, watch, tally, strict=True),
                conversations,
            )
            assert await healthy(base, target, normal_answer) == []
            assert watch.since(0, collect=True) == []
    finally:
        await target.close()
    print("\n".join(tally.lines()))
    assert tally.inputs >= conversations * 2
    assert {"well-formed", "malformed"} <= set(tally.kinds)
    return tally
