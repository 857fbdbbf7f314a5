"""The staff's /polls: the list with states, results with the chart, close now (confirmed),
move the closing (typed), cancel one not yet open; residents cannot reach it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.config import Config, LimitsConfig
from handlers.dispatcher import Dispatcher
from storage import polls, staff
from storage.models import Poll
from tests.chat import Chat


async def staff_chat(config: Config) -> Chat:
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    fast = replace(config, limits=LimitsConfig(throttle_messages=10_000))
    return Chat(Dispatcher(fast), user_id="staff-1", locale="en")


async def a_poll(opens_in: timedelta = timedelta(0)) -> Poll:
    now = datetime.now(UTC)
    draft = polls.PollDraft(
        question={"lv": "Kur stādīt kokus?"},
        options=[{"lv": "Parkā"}, {"lv": "Pie skolas"}],
        opens_at=now + opens_in,
        closes_at=now + opens_in + timedelta(days=3),
    )
    poll = await polls.create(draft, author="webchat:staff-1")
    await polls.open_due(now, now)
    return await Poll.get(id=poll.id)


async def test_staff_see_results_and_close_a_poll(config: Config) -> None:
    poll = await a_poll()
    chat = await staff_chat(config)
    await chat.command("polls")
    assert f"#{poll.id} · open" in chat.texts()[0]
    assert chat.labels()[0] == [f"Results #{poll.id}", f"Close #{poll.id}", f"Closing #{poll.id}"]
    await chat.press(f"Results #{poll.id}")
    assert "Parkā — " in chat.texts()[0] and chat.last[0].image.startswith("/media/")
    await chat.press(f"Close #{poll.id}")
    assert chat.labels() == [["Yes, close it", "No, keep it open"]]
    assert (await Poll.get(id=poll.id)).state == "open"
    await chat.press("Yes, close it")
    assert chat.texts() == [f"Poll #{poll.id} is closed. Its staff get the results."]
    assert (await Poll.get(id=poll.id)).state == "closed"
    await chat.press_payload(f"pst:close:{poll.id}:yes")  # an old button: a plain answer
    assert chat.texts() == ["That poll is closed already."]


async def test_staff_move_the_closing_and_cancel_a_scheduled_poll(config: Config) -> None:
    poll = await a_poll(opens_in=timedelta(days=1))
    chat = await staff_chat(config)
    await chat.command("polls")
    await chat.press(f"Closing #{poll.id}")
    zone = config.municipality.zone
    day = (datetime.now(UTC) + timedelta(days=5)).astimezone(zone)
    await chat.text(f"{day:%d.%m.%Y} 12:00")
    moved = await Poll.get(id=poll.id)
    assert moved.closes_at == day.replace(hour=12, minute=0, second=0, microsecond=0)
    assert chat.texts()[0].startswith(f"Poll #{poll.id} now closes at")
    await chat.command("polls")
    await chat.press(f"Cancel #{poll.id}")
    await chat.press("Yes, cancel it")
    assert chat.texts() == [f"Poll #{poll.id} is cancelled."]
    assert (await Poll.get(id=poll.id)).state == "cancelled"


async def test_a_resident_cannot_close_or_see_staff_results(config: Config) -> None:
    poll = await a_poll()
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await chat.press_payload(f"pst:close:{poll.id}:yes")
    await chat.press_payload(f"pst:res:{poll.id}")
    assert not any("Parkā — " in text for text in chat.texts())
    assert (await Poll.get(id=poll.id)).state == "open"
