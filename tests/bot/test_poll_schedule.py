"""The scheduler's poll job, the clock driven by hand: a poll opens, reminds and closes at
its moments in the municipality's zone (daylight saving included), once with two workers
and after a restart, and quiet hours hold the invitations and reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.config import Config
from bot.scheduler import build_scheduler, run_polls
from storage import polls
from storage.models import Delivery, Poll
from storage.polls import PollDraft
from tests.storage.test_polls import resident as onboarded

RIGA = ZoneInfo("Europe/Riga")


def draft(opens: datetime, closes: datetime, **more: object) -> PollDraft:
    values: dict[str, object] = {
        "question": {"lv": "Vai atbalstāt jaunu veloceliņu?"},
        "options": [{"lv": "Jā"}, {"lv": "Nē"}],
        "opens_at": opens,
        "closes_at": closes,
    }
    values.update(more)
    return PollDraft(**values)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    """A local time in Riga as an instant."""
    return datetime.fromisoformat(text).replace(tzinfo=RIGA).astimezone(UTC)


async def test_the_poll_job_runs_every_few_seconds_and_at_start(config: Config) -> None:
    job = build_scheduler(config).get_job("open-remind-close-polls")
    assert job is not None and job.trigger.interval == timedelta(seconds=5)
    assert job.next_run_time is not None  # at start: what came due while the bot was down


async def test_a_poll_closes_at_its_local_time_across_the_daylight_saving_switch(
    config: Config,
) -> None:
    # Riga moves to summer time at 03:00 on 28 March 2027: 10:00 that day is 07:00 UTC.
    opens, closes = at("2027-03-27T10:00"), at("2027-03-28T10:00")
    assert closes == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    poll = await polls.create(draft(opens, closes), author="cli")
    await run_polls(config, now=opens)
    assert (await Poll.get(id=poll.id)).state == "open"
    assert await run_polls(config, now=closes - timedelta(seconds=1)) == (0, 0, 0)
    assert await run_polls(config, now=closes) == (0, 0, 1)
    assert (await Poll.get(id=poll.id)).state == "closed"


async def test_two_workers_open_remind_and_close_once(config: Config) -> None:
    await onboarded("1")
    now = datetime.now(UTC)
    poll = await polls.create(
        draft(now - timedelta(seconds=1), now + timedelta(hours=2), remind_before=(3600,)),
        author="cli",
    )
    first = await asyncio.gather(run_polls(config, now=now), run_polls(config, now=now))
    assert sorted(opened for opened, _, _ in first) == [0, 1]
    due = now + timedelta(hours=1)
    second = await asyncio.gather(run_polls(config, now=due), run_polls(config, now=due))
    assert sorted(reminded for _, reminded, _ in second) == [0, 1]
    end = now + timedelta(hours=2)
    third = await asyncio.gather(run_polls(config, now=end), run_polls(config, now=end))
    assert sorted(closed for _, _, closed in third) == [0, 1]
    kinds = await Delivery.filter(source_id=poll.id).values_list("source_kind", flat=True)
    assert sorted(kinds) == [polls.INVITE, polls.REMINDER]


async def test_quiet_hours_hold_a_reminder_due_at_night_until_the_morning(
    config: Config,
) -> None:
    resident = await onboarded("1")
    opens, closes = at("2027-06-01T10:00"), at("2027-06-03T10:00")
    await polls.create(draft(opens, closes, remind_before=(35 * 3600,)), author="cli")
    await run_polls(config, now=opens)
    reminder_at = at("2027-06-01T23:00")
    await run_polls(config, now=reminder_at)
    row = await Delivery.get(source_kind=polls.REMINDER, resident_id=resident.id)
    assert row.not_before == at("2027-06-02T09:00")
    assert config.delivery.quiet_start == time(21, 0)
    invite = await Delivery.get(source_kind=polls.INVITE, resident_id=resident.id)
    assert invite.not_before == opens  # 10:00 is outside quiet hours


async def test_a_reminder_held_by_quiet_hours_is_dropped_once_the_resident_answers(
    config: Config,
) -> None:
    resident = await onboarded("1")
    opens, closes = at("2027-06-01T10:00"), at("2027-06-03T10:00")
    poll = await polls.create(draft(opens, closes, remind_before=(35 * 3600,)), author="cli")
    await run_polls(config, now=opens)
    await run_polls(config, now=at("2027-06-01T23:00"))
    fresh = await Poll.get(id=poll.id)
    await polls.tap(fresh, resident, "telegram", 0)
    row = await Delivery.get(source_kind=polls.REMINDER, resident_id=resident.id)
    assert row.state == "cancelled"
