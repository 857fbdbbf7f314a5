"""The core of quick polls: one ballot per resident however many taps, opening, reminders
and closing once each, the audience, and a tally counted by the database with its
breakdowns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import polls, residents
from storage.models import Ballot, Delivery, Poll, PollReminder, Resident
from storage.polls import PollDraft, PollError
from storage.sessions import open_session

pytestmark = pytest.mark.usefixtures("database")

NOW = datetime.now(UTC)


async def resident(
    user_id: str, neighbourhood: str | None = "centrs", channel: str = "telegram"
) -> Resident:
    async with open_session(channel, user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        person = session.resident
    if neighbourhood:
        await residents.set_neighbourhood(person, neighbourhood)
    return person


def draft(**more: object) -> PollDraft:
    values: dict[str, object] = {
        "question": {"lv": "Kur likt soliņus?", "en": "Where should the benches go?"},
        "options": [{"lv": "Parkā", "en": "In the park"}, {"lv": "Pie skolas"}, {"lv": "Krastā"}],
        "opens_at": NOW - timedelta(minutes=1),
        "closes_at": NOW + timedelta(days=2),
    }
    values.update(more)
    return PollDraft(**values)  # type: ignore[arg-type]


async def open_poll(**more: object) -> Poll:
    poll = await polls.create(draft(**more), author="cli")
    opened = await polls.open_due(NOW)
    assert [p.id for p in opened] == [poll.id]
    return opened[0]


def test_a_draft_is_checked_in_plain_words() -> None:
    assert polls.check(draft()) is None
    assert (
        polls.check(draft(question={"en": "Only English"})) == "the question in Latvian is missing"
    )
    assert "2 to 10 options" in (polls.check(draft(options=[{"lv": "Jā"}])) or "")
    assert "2 to 10 options" in (
        polls.check(draft(options=[{"lv": str(n)} for n in range(11)])) or ""
    )
    assert polls.check(draft(options=[{"lv": "Jā"}, {"lv": "jā"}])) == (
        "two options have the same Latvian label"
    )
    assert polls.check(draft(closes_at=NOW - timedelta(minutes=2))) == (
        "the closing time is not after the opening time"
    )
    assert polls.check(draft(remind_before=(0,))) == "a reminder is not before the closing"


async def test_a_thousand_taps_at_once_record_exactly_one_ballot() -> None:
    poll = await open_poll()
    voter = await resident("1")
    await asyncio.gather(*(polls.tap(poll, voter, "telegram", n % 3) for n in range(1000)))
    assert await Ballot.filter(poll_id=poll.id).count() == 1
    state = await polls.ballot_of(poll.id, voter.id)
    assert state.answered and len(polls.positions(state.choices)) == 1


async def test_a_single_choice_tap_is_the_answer_and_another_tap_changes_it() -> None:
    poll = await open_poll()
    voter = await resident("1")
    assert (await polls.tap(poll, voter, "telegram", 0)).choices == 0b001
    assert (await polls.tap(poll, voter, "telegram", 2)).choices == 0b100
    tally = await polls.tally(poll)
    assert tally.ballots == 1 and tally.counts == [0, 0, 1]


async def test_multiple_choice_taps_toggle_and_only_done_makes_them_count() -> None:
    poll = await open_poll(multiple=True)
    voter = await resident("1")
    await polls.tap(poll, voter, "telegram", 0)
    await polls.tap(poll, voter, "telegram", 1)
    state = await polls.tap(poll, voter, "telegram", 0)
    assert (state.choices, state.draft) == (0, 0b010)
    assert (await polls.tally(poll)).ballots == 0
    assert (await polls.done(poll, voter, "telegram")).choices == 0b010
    await polls.tap(poll, voter, "telegram", 2)
    assert (await polls.tally(poll)).counts == [0, 1, 0]  # the new tick waits for Done
    assert (await polls.done(poll, voter, "telegram")).choices == 0b110


async def test_done_with_nothing_ticked_is_refused() -> None:
    poll = await open_poll(multiple=True)
    voter = await resident("1")
    with pytest.raises(PollError) as refused:
        await polls.done(poll, voter, "telegram")
    assert refused.value.reason == "empty"


async def test_a_tap_on_a_closed_poll_or_an_option_it_has_not_records_nothing() -> None:
    poll = await open_poll()
    voter = await resident("1")
    with pytest.raises(PollError) as unknown:
        await polls.tap(poll, voter, "telegram", 7)
    assert unknown.value.reason == "option"
    await polls.close(poll.id, "cli")
    with pytest.raises(PollError) as closed:
        await polls.tap(poll, voter, "telegram", 0)
    assert closed.value.reason == "closed"
    assert await Ballot.filter(poll_id=poll.id).count() == 0


async def test_opening_invites_exactly_the_audience_once_on_the_allowed_channels() -> None:
    centre, village = await resident("1", "centrs"), await resident("2", "lauki")
    web = await resident("a" * 32, "centrs", channel="webchat")
    poll = await polls.create(
        draft(
            audience={"kind": "neighbourhood", "keys": ["centrs"]},
            channels=("telegram", "messenger"),
        ),
        author="cli",
    )
    await asyncio.gather(polls.open_due(NOW), polls.open_due(NOW))
    invited = await Delivery.filter(source_kind=polls.INVITE, source_id=poll.id).values_list(
        "resident_id", flat=True
    )
    assert invited == [centre.id]
    assert (await Poll.get(id=poll.id)).audience_size == 1
    fresh = await Poll.get(id=poll.id)
    assert await polls.refusal(fresh, village, "telegram") == "audience"
    assert await polls.refusal(fresh, web, "webchat") == "channel"
    assert await polls.refusal(fresh, centre, "telegram") is None


async def test_a_scheduled_poll_opens_only_when_its_time_comes() -> None:
    now = datetime.now(UTC)  # not the module's NOW: the suite may run past its hour
    poll = await polls.create(draft(opens_at=now + timedelta(hours=1)), author="cli")
    assert await polls.open_due(NOW) == []
    assert await polls.refusal(poll, await resident("1"), "telegram") == "not_open"
    assert [p.id for p in await polls.open_due(NOW, now=now + timedelta(hours=1))] == [poll.id]


async def test_a_reminder_goes_once_and_only_to_those_who_have_not_answered() -> None:
    poll = await open_poll(remind_before=(3600,))
    answered, silent = await resident("1"), await resident("2")
    await polls.tap(poll, answered, "telegram", 1)
    due = poll.closes_at - timedelta(seconds=3600)
    assert await polls.remind_due(NOW, now=due - timedelta(minutes=1)) == 0
    counts = await asyncio.gather(polls.remind_due(NOW, now=due), polls.remind_due(NOW, now=due))
    assert sorted(counts) == [0, 1]
    reminded = await Delivery.filter(source_kind=polls.REMINDER).values_list(
        "resident_id", flat=True
    )
    assert reminded == [silent.id]


async def test_closing_happens_once_and_tells_the_staff_and_the_voters_if_so_set() -> None:
    poll = await open_poll(tell_voters=True)
    voter, silent = await resident("1"), await resident("2")
    await polls.tap(poll, voter, "telegram", 0)
    later = poll.closes_at + timedelta(seconds=1)
    closed = await asyncio.gather(polls.close_due(later), polls.close_due(later))
    assert sorted(len(c) for c in closed) == [0, 1]
    told = await Delivery.filter(source_kind=polls.RESULTS_PUSH).values_list(
        "resident_id", flat=True
    )
    assert told == [voter.id]
    assert silent.id not in told


async def test_extending_moves_the_closing_and_the_reminders_not_sent() -> None:
    poll = await open_poll(remind_before=(86400,))
    until = poll.closes_at + timedelta(days=3)
    await polls.extend(poll.id, until, "cli")
    (reminder,) = await PollReminder.filter(poll_id=poll.id)
    assert reminder.due_at == until - timedelta(days=1)
    with pytest.raises(PollError) as past:
        await polls.extend(poll.id, NOW - timedelta(hours=1), "cli")
    assert past.value.reason == "time"


async def test_only_a_poll_not_yet_open_can_be_cancelled() -> None:
    later = await polls.create(draft(opens_at=NOW + timedelta(hours=1)), author="cli")
    assert (await polls.cancel(later.id, "cli")).state == "cancelled"
    running = await open_poll()
    with pytest.raises(PollError) as refused:
        await polls.cancel(running.id, "cli")
    assert refused.value.reason == "open"


async def test_the_breakdown_sums_small_neighbourhoods_as_other() -> None:
    poll = await open_poll()
    for n in range(5):
        await polls.tap(poll, await resident(f"c{n}", "centrs"), "telegram", 0)
    for n in range(4):
        await polls.tap(poll, await resident(f"j{n}", "jaunciems"), "telegram", 1)
    await polls.tap(poll, await resident("x", None), "telegram", 2)
    tally = await polls.tally(poll)
    assert tally.ballots == 10 and tally.counts == [5, 4, 1]
    assert tally.by_neighbourhood == {"centrs": (5, [5, 0, 0]), polls.OTHER: (5, [0, 4, 1])}
    assert tally.by_channel == {"telegram": (10, [5, 4, 1])}


async def test_a_ballot_keeps_the_neighbourhood_it_was_cast_in() -> None:
    poll = await open_poll()
    mover = await resident("1", "centrs")
    await polls.tap(poll, mover, "telegram", 0)
    await residents.set_neighbourhood(mover, "lauki")
    assert (await Ballot.get(poll_id=poll.id)).neighbourhood == "centrs"


async def test_the_resident_sees_open_polls_for_them_and_past_answers() -> None:
    voter = await resident("1", "centrs")
    theirs = await open_poll()
    await polls.create(draft(audience={"kind": "neighbourhood", "keys": ["lauki"]}), author="cli")
    await polls.open_due(NOW)
    await polls.tap(theirs, voter, "telegram", 1)
    seen = await polls.polls_for(voter, "telegram")
    assert [(p.id, s.choices) for p, s in seen.open] == [(theirs.id, 0b010)]
    await polls.close(theirs.id, "cli")
    seen = await polls.polls_for(voter, "telegram")
    assert seen.open == [] and [p.id for p, _ in seen.answered] == [theirs.id]


async def test_a_forgotten_resident_s_answer_stays_counted_without_them() -> None:
    poll = await open_poll()
    voter = await resident("1")
    await polls.tap(poll, voter, "telegram", 0)
    assert (await residents.personal_data(voter)).polls_answered == 1
    await residents.forget(voter)
    assert (await Ballot.get(poll_id=poll.id)).resident_id is None  # type: ignore[attr-defined]
    assert (await polls.tally(poll)).counts == [1, 0, 0]


async def test_residents_see_a_big_poll_s_counts_at_most_a_few_seconds_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(polls, "SNAPSHOT_FROM", 2)  # "big" from two ballots on
    poll = await open_poll()
    for n in range(2):
        await polls.tap(poll, await resident(f"s{n}"), "telegram", 0)
    now = datetime.now(UTC)
    assert (await polls.results_now(await Poll.get(id=poll.id), now)).counts == [2, 0, 0]
    await polls.tap(poll, await resident("late"), "telegram", 1)
    soon = await polls.results_now(await Poll.get(id=poll.id), now + timedelta(seconds=1))
    assert soon.counts == [2, 0, 0]  # the snapshot of a second ago
    later = await polls.results_now(await Poll.get(id=poll.id), now + timedelta(seconds=6))
    assert later.counts == [2, 1, 0]
    await polls.close(poll.id, "cli")
    closed = await polls.results_now(await Poll.get(id=poll.id), now + timedelta(seconds=7))
    assert closed.counts == [2, 1, 0] and closed.by_channel  # exact, with the breakdowns


async def test_a_small_poll_is_counted_afresh_for_every_resident() -> None:
    poll = await open_poll()
    await polls.tap(poll, await resident("1"), "telegram", 0)
    now = datetime.now(UTC)
    assert (await polls.results_now(await Poll.get(id=poll.id), now)).counts == [1, 0, 0]
    await polls.tap(poll, await resident("2"), "telegram", 2)
    assert (await polls.results_now(await Poll.get(id=poll.id), now)).counts == [1, 0, 1]
