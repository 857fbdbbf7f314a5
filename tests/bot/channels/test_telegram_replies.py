"""Answers to residents on Telegram are paced, take precedence over pushes, and are never lost.

The whole bot runs against the Bot API stand-in over real HTTP (``start_bot``), with its
flood control and fault injection: a 429 on an answer is waited out and the answer arrives
once, in order; a wait longer than allowed, or a fault that does not pass, hands what is
left to the runtime's ``on_unsent`` (today: one warning line); a resident tapping through
onboarding during a broadcast gets every answer at once, while the broadcast keeps to the
bot token's rate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Runtime
from bot.channels.telegram import ANSWER_ATTEMPTS, WEBHOOK_ANSWER_WAIT, WEBHOOK_PATH
from bot.core.logs import who
from bot.core.messages import Reply
from bot.pacing import ANSWER_BURST
from storage import deliveries
from storage.models import ChannelIdentity, Delivery, Resident
from tests.bot.channels.telegram_helpers import (
    WEBHOOK_SECRET,
    Chat,
    eventually,
    joined,
    labels,
    telegram_env,
)
from tests.conftest import RuntimeFactory, free_port
from tests.phrases import ALL_SET, HELP, LANGUAGE_QUESTION, MAIN_MENU, MUNICIPALITY, tr
from tests.standins.telegram_api import BotApiStandIn

pytestmark = pytest.mark.storage

ANNA = 1001  # her Telegram app is in English
HELP_TEXT = HELP.format(municipality=MUNICIPALITY)
LANGUAGE_PAYLOADS = ["onb:language:lv", "onb:language:en", "onb:language:ru"]


def language_question(language: str) -> str:
    return tr(language, LANGUAGE_QUESTION, municipality=MUNICIPALITY)


def write_config(tmp_path: Path, **delivery: object) -> str:
    """The example configuration (the demo municipality) with these ``[delivery]`` settings
    and no quiet hours, so the test passes at any hour."""
    text = Path("config.example.toml").read_text(encoding="utf-8")
    settings = {"quiet_start": '"00:00"', "quiet_end": '"00:00"', **delivery}
    for key, value in settings.items():
        text, found = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.M)
        assert found, f"no {key} in config.example.toml"
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna", language_code="en")
        yield stand_in


Handed = list[tuple[str, list[Reply]]]


def record_handed_over(runtime: Runtime) -> Handed:
    """What the channel hands to the runtime's ``on_unsent``, which still does its part."""
    channel = runtime.telegram
    assert channel is not None and channel.on_unsent is not None
    wired = channel.on_unsent
    handed: Handed = []

    async def recording(recipient: str, replies: list[Reply]) -> None:
        await wired(recipient, replies)
        handed.append((recipient, replies))  # once the runtime has done its part

    channel.on_unsent = recording
    return handed


def sent_to(api: BotApiStandIn, chat: int) -> list[dict[str, object]]:
    return [r for r in api.requests_of("sendMessage") if r.get("chat_id") == str(chat)]


async def walk_to_topics(chat: Chat) -> None:
    (question,) = await chat.send("/start")
    (question,) = await chat.press(question, "English")
    await chat.press(question, "Centre")


# --- a 429 on an answer -------------------------------------------------------------
async def test_an_answer_told_to_retry_after_reaches_the_resident_once_and_in_order(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    await start_bot(**telegram_env(api))
    anna = Chat(api, ANNA)
    await walk_to_topics(anna)
    before = len(api.delivered(ANNA))
    # One message every two seconds in her chat, no burst: the help goes, the question
    # right after it is told to retry after 2 s.
    api.limit_rate(None, per_chat_per_second=0.5)

    help_, again = await anna.send("/help", replies=2)

    assert help_.text == HELP_TEXT and again.text.startswith("Which topics interest you?")
    assert [m.message_id for m in api.delivered(ANNA)[before:]] == [
        help_.message_id,
        again.message_id,
    ], "each once, the help first"
    assert [(r.scope, r.retry_after) for r in api.rate_limited] == [("chat", 2)]
    assert api.ignored_retry_after == [], "the bot waited as told"
    times = api.send_times(ANNA)[before:]
    assert times[1] - times[0] >= 2.0 - 0.05


async def test_an_answer_that_must_wait_longer_than_allowed_is_handed_on_at_once(
    api: BotApiStandIn, start_bot: RuntimeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = await start_bot(write_config(tmp_path, answer_wait_seconds=5), **telegram_env(api))
    handed = record_handed_over(runtime)
    anna = Chat(api, ANNA)
    (first,) = await anna.send("/start")
    api.fail_next("sendMessage", 429, retry_after=8, chat_id=ANNA)
    caplog.set_level(logging.WARNING, logger="bot.app")
    started = time.monotonic()

    api.send_text(ANNA, "/help")
    await eventually(lambda: handed, timeout=10, what="the answer handed on")

    assert time.monotonic() - started < 5, "8 s asked, 5 allowed: no waiting at all"
    ((recipient, (reply,)),) = handed
    assert recipient == str(ANNA)
    assert reply.text == joined(HELP_TEXT, language_question("en"))
    assert [b.payload for b in reply.all_buttons()] == LANGUAGE_PAYLOADS
    assert [r.getMessage() for r in caplog.records if r.name == "bot.app"] == [
        f"telegram: 1 message(s) of an answer to {who('telegram', str(ANNA))} "
        "go on through the outbox"
    ]
    assert api.messages(ANNA) == [first], "nothing else reached her yet"
    assert len(sent_to(api, ANNA)) == 2, "the refused message was not tried again"

    # The outbox sends it once Telegram's wait is over: once, with its buttons.
    (row,) = await Delivery.filter(source_kind="answer")
    assert (row.priority, row.quiet_exempt) == (deliveries.PERSONAL, True)
    messages = await api.wait_for_messages(ANNA, 2, timeout=20)
    assert time.monotonic() - started >= 8 - 0.5, "not before the retry_after"
    assert messages[0] == first and len(messages) == 2, "the answer, once"
    assert messages[1].body == reply.text
    assert messages[1].callback_data() == LANGUAGE_PAYLOADS
    assert api.ignored_retry_after == [], "nothing was sent before Telegram allowed it"


async def test_a_network_fault_on_an_answer_is_tried_again_then_handed_on(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    runtime = await start_bot(**telegram_env(api))
    handed = record_handed_over(runtime)
    anna = Chat(api, ANNA)
    await anna.send("/start")

    api.fail_next("sendMessage", 502, chat_id=ANNA)  # Telegram's passing trouble
    (help_,) = await anna.send("/help")
    assert help_.text == joined(HELP_TEXT, language_question("en"))
    assert handed == []

    api.fail_next("sendMessage", 500, chat_id=ANNA, times=ANSWER_ATTEMPTS)  # it does not pass
    calls = len(sent_to(api, ANNA))
    api.send_text(ANNA, "/help")
    await eventually(lambda: handed, timeout=10, what="the answer handed on")
    ((recipient, (reply,)),) = handed
    assert (recipient, reply.text) == (str(ANNA), help_.text)
    assert len(sent_to(api, ANNA)) == calls + ANSWER_ATTEMPTS
    assert len(api.delivered(ANNA)) == 2, "the first help and the first question only"


async def test_in_webhook_mode_an_answer_waits_only_a_few_seconds_for_telegram(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    """Telegram waits for the webhook's answer, and the update is answered once handled:
    so the answer waits at most WEBHOOK_ANSWER_WAIT, whatever the configuration allows."""
    port = free_port()
    runtime = await start_bot(
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IESAISTE_HTTP_PORT=str(port),
        )
    )
    handed = record_handed_over(runtime)
    anna = Chat(api, ANNA)
    await anna.send("/start")
    wait = int(WEBHOOK_ANSWER_WAIT) + 3  # allowed when polling (60 s), not here
    api.fail_next("sendMessage", 429, retry_after=wait, chat_id=ANNA)

    api.send_text(ANNA, "/help")
    await eventually(lambda: handed, timeout=10, what="the answer handed on")
    await api.wait_until(lambda: len(api.webhook_deliveries) == 2)
    assert api.webhook_statuses == [200, 200], "answered in time, never redelivered"
    assert len(api.delivered(ANNA)) == 1

    api.fail_next("sendMessage", 429, retry_after=2, chat_id=ANNA)  # within the few seconds
    (help_,) = await anna.send("/help")
    assert help_.text == joined(HELP_TEXT, language_question("en"))
    assert len(handed) == 1


async def test_a_bot_stopping_hands_on_at_once_an_answer_that_waits_for_telegram(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    runtime = await start_bot(**telegram_env(api))
    handed = record_handed_over(runtime)
    anna = Chat(api, ANNA)
    await anna.send("/start")
    api.fail_next("sendMessage", 429, retry_after=50, chat_id=ANNA)  # within the 60 s
    api.send_text(ANNA, "/help")
    await api.wait_until(lambda: api.rate_limited, what="the answer told to wait")

    started = time.monotonic()
    await runtime.stop()

    assert time.monotonic() - started < 10, "the stop did not sit out the 50 s"
    ((recipient, (reply,)),) = handed
    assert (recipient, reply.text) == (str(ANNA), joined(HELP_TEXT, language_question("en")))
    assert len(api.delivered(ANNA)) == 1


# --- answers during a broadcast -----------------------------------------------------
RATE = 30  # the bot token's rate: the stand-in's flood control and the bot's pacing
PUSHES = 300
FIRST_CHAT = 500_000_001
ANNOUNCEMENT = "Rīt no 9:00 līdz 15:00 Brīvības ielā nebūs ūdens."


async def onboarded_residents(count: int) -> list[int]:
    """``count`` residents on Telegram as onboarding leaves them, bulk-inserted."""
    now = datetime.now(UTC)
    await Resident.bulk_create([Resident(language="lv", onboarded_at=now) for _ in range(count)])
    ids = await Resident.filter(onboarded_at=now).order_by("id").values_list("id", flat=True)
    chats = [FIRST_CHAT + index for index in range(count)]
    await ChannelIdentity.bulk_create(
        [
            ChannelIdentity(resident_id=resident, channel="telegram", external_id=str(chat))
            for resident, chat in zip(ids, chats, strict=True)
        ]
    )
    return chats


async def announce(config: str, database_url: str) -> str:
    """``iesaiste announce`` from the command line, to everyone."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        config,
        "announce",
        "--text",
        ANNOUNCEMENT,
        env={**os.environ, "IESAISTE_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    return out.decode().strip()


async def test_answers_go_at_once_during_a_broadcast_which_keeps_to_the_rate(
    api: BotApiStandIn, start_bot: RuntimeFactory, tmp_path: Path, database_url: str
) -> None:
    config = write_config(tmp_path, telegram_per_second=RATE)
    await start_bot(config, **telegram_env(api))
    chats = await onboarded_residents(PUSHES)
    api.add_users(chats)
    # Telegram's flood control: the token's rate; per chat one a second after a short
    # burst, as long as the bot allows itself (so a test of it would fail here).
    api.limit_rate(RATE, per_chat_per_second=1, chat_burst=ANSWER_BURST)
    assert await announce(config, database_url) == f"announcement 1 queued for {PUSHES} recipients"
    await api.wait_until(lambda: api.sent_count >= RATE, timeout=15, what="the broadcast going")

    # Anna onboards meanwhile, every answer timed; one of them is told to retry after 2 s.
    anna = Chat(api, ANNA)
    took: list[float] = []

    async def timed(step):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        (answer,) = await step
        took.append(time.monotonic() - started)
        return answer

    question = await timed(anna.send("/start"))
    question = await timed(anna.press(question, "English"))
    api.fail_next("sendMessage", 429, retry_after=2, chat_id=ANNA)
    question = await timed(anna.press(question, "Centre"))
    told = api.rate_limited[-1].time
    for topic in labels(question)[:2]:
        started = time.monotonic()
        await anna.press_to_edit(question, topic)
        took.append(time.monotonic() - started)
    question = await timed(anna.press(question, "Done"))
    menu = await timed(anna.press(question, "I agree"))
    assert menu.text == joined(ALL_SET, MAIN_MENU)
    assert api.sent_count < PUSHES, "she was done before the broadcast"

    await api.wait_until(
        lambda: sum(1 for chat in chats if api.send_times(chat)) == PUSHES,
        timeout=60,
        what="every push sent",
    )
    # Every answer at once (the broadcast has seconds to go); the one told to wait, then.
    assert max(took[:2] + took[3:]) < 2.0, took
    assert 2.0 <= took[2] < 4.0, took
    # No 429 but the one injected, and nobody called before the retry_after told.
    assert [r.scope for r in api.rate_limited] == ["injected"]
    assert api.ignored_retry_after == []
    # The 429 on her answer held the pushes too, for as long as it said.
    pushes = sorted(t for chat in chats for t in api.send_times(chat))
    assert not [t for t in pushes if told + 0.5 < t < told + 1.8], "pushes went on meanwhile"
    # The broadcast kept to the rate: at most RATE pushes in any second from its first
    # (one more where a second's edge splits the slots); answers and pushes together were
    # never refused by flood control (above).
    per_second = Counter(int(t - pushes[0]) for t in pushes)
    assert max(per_second.values()) <= RATE + 1, per_second
    assert Counter(api.delivery_counts()[chat] for chat in chats) == Counter({1: PUSHES})
