"""New web-chat residents per address, forgetting the unfinished, and event ids per
resident, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage import residents, webchat_guard
from storage.errors import DuplicateEvent
from storage.models import (
    ChannelIdentity,
    DialogState,
    NewcomerCount,
    ProcessedEvent,
    Resident,
)
from storage.sessions import known_language, open_session
from storage.webchat_guard import (
    admit_newcomer,
    forget_unfinished,
    newcomers_refused_until,
    prune_newcomer_counts,
)

pytestmark = pytest.mark.storage

# 10:20 UTC: the hour ends at 11:00.
NOW = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
END_OF_HOUR = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


async def test_an_address_starts_as_many_residents_as_its_limit_in_an_hour(database: str) -> None:
    assert await admit_newcomer("a" * 32, 2, NOW) is None
    assert await newcomers_refused_until("a" * 32, 2, NOW) is None
    assert await admit_newcomer("a" * 32, 2, NOW + timedelta(minutes=5)) is None
    # Used up: told when the hour ends, whether it asks or tries.
    assert await newcomers_refused_until("a" * 32, 2, NOW) == END_OF_HOUR
    assert await admit_newcomer("a" * 32, 2, NOW) == END_OF_HOUR
    assert await newcomers_refused_until("a" * 32, 2, NOW) == END_OF_HOUR
    # Another address is counted apart, and the next hour starts afresh.
    assert await admit_newcomer("b" * 32, 2, NOW) is None
    assert await admit_newcomer("a" * 32, 2, END_OF_HOUR) is None
    assert await newcomers_refused_until("a" * 32, 2, END_OF_HOUR) is None


async def test_workers_racing_for_the_last_places_admit_exactly_the_limit(database: str) -> None:
    verdicts = await asyncio.gather(*(admit_newcomer("c" * 32, 5, NOW) for _ in range(20)))
    assert verdicts.count(None) == 5
    assert verdicts.count(END_OF_HOUR) == 15


async def test_a_limit_of_nought_admits_everyone_and_counts_nothing(database: str) -> None:
    for _ in range(3):
        assert await admit_newcomer("d" * 32, 0, NOW) is None
    assert await newcomers_refused_until("d" * 32, 0, NOW) is None
    assert await NewcomerCount.all().count() == 0


async def test_counts_of_hours_gone_by_are_pruned(database: str) -> None:
    await admit_newcomer("e" * 32, 5, NOW - timedelta(hours=2))
    await admit_newcomer("e" * 32, 5, NOW - timedelta(hours=1))
    await admit_newcomer("e" * 32, 5, NOW)
    assert await prune_newcomer_counts(NOW) == 2
    [kept] = await NewcomerCount.all()
    assert (kept.hour, kept.count) == (int(NOW.timestamp()) // 3600, 1)


async def _resident(channel: str, user_id: str, *, seen_days_ago: int, onboarded: bool) -> int:
    async with open_session(channel, user_id, "") as session:
        if onboarded:
            await residents.mark_onboarded(session.resident)
        resident_id = session.resident.id
    seen = datetime.now(UTC) - timedelta(days=seen_days_ago)
    await Resident.filter(id=resident_id).update(last_seen_at=seen, created_at=seen)
    return resident_id


async def test_web_chat_residents_who_never_finished_onboarding_are_forgotten(
    database: str,
) -> None:
    stale = await _resident("webchat", "stale", seen_days_ago=31, onboarded=False)
    recent = await _resident("webchat", "recent", seen_days_ago=29, onboarded=False)
    onboarded = await _resident("webchat", "onboarded", seen_days_ago=400, onboarded=True)
    telegram = await _resident("telegram", "42", seen_days_ago=400, onboarded=False)

    assert await forget_unfinished(timedelta(days=30)) == 1
    assert sorted(await Resident.all().values_list("id", flat=True)) == sorted(
        [recent, onboarded, telegram]
    )
    assert not await ChannelIdentity.filter(resident_id=stale).exists()
    assert not await DialogState.filter(resident_id=stale).exists()
    assert await forget_unfinished(timedelta(days=30)) == 0


async def test_many_unfinished_residents_are_forgotten_in_batches(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webchat_guard, "BATCH", 3)
    for index in range(7):
        await _resident("webchat", f"flood-{index}", seen_days_ago=40, onboarded=False)
    assert await forget_unfinished(timedelta(days=30)) == 7
    assert await Resident.all().count() == 0


async def test_the_language_look_up_creates_nobody(database: str) -> None:
    assert await known_language("webchat", "nobody") is None
    assert await Resident.all().count() == 0
    async with open_session("webchat", "anna", "") as session:
        await residents.set_language(session.resident, "en")
    assert await known_language("webchat", "anna") == "en"
    assert await known_language("telegram", "anna") is None


async def test_web_chat_event_ids_are_per_resident_and_telegrams_per_channel(
    database: str,
) -> None:
    async with open_session("webchat", "anna", "frame-1"):
        pass
    async with open_session("webchat", "juris", "frame-1"):
        pass
    with pytest.raises(DuplicateEvent):
        async with open_session("webchat", "anna", "frame-1"):
            pass
    async with open_session("telegram", "1", "update-5"):
        pass
    with pytest.raises(DuplicateEvent):
        async with open_session("telegram", "2", "update-5"):
            pass
    # The duplicate rolled back the resident it would have made.
    assert not await ChannelIdentity.filter(channel="telegram", external_id="2").exists()
    rows = await ProcessedEvent.all().order_by("id").values_list("channel", "event_id")
    assert rows == [("webchat", "frame-1"), ("webchat", "frame-1"), ("telegram", "update-5")]
