"""Messenger's 24-hour window in the claim: a push goes only to a resident who wrote within
it, a staff member's own words within the HUMAN_AGENT week when the page may use it, and
the rest waits for the resident (and comes back as the catch-up when they write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.channel import ClaimPolicy
from storage import deliveries, proposals, residents, review
from storage.models import ChannelIdentity, Delivery, Resident
from storage.sessions import open_session

# The window is measured from the moment of the claim, so the residents' times are set
# from the clock then, never from the module's import (the suite may run it much later).
NOW = datetime.now(UTC)
DAY = ClaimPolicy.within(24)
DAY_AND_HUMAN_WEEK = ClaimPolicy.within(24, 24 * 7)


async def resident_who_wrote(psid: str, ago: timedelta | None) -> int:
    async with open_session("messenger", psid, "") as session:
        session.resident.onboarded_at = NOW
        await session.resident.save()
        rid = session.resident.id
    if ago is not None:
        await residents.note_inbound("messenger", psid, datetime.now(UTC) - ago)
    return rid


async def queue(psid: str, rid: int, template: str = "reply", key: str = "note:1") -> None:
    push = deliveries.Push("note", 1, key, template, {"text": "Hello"})
    await deliveries.queue(push, [(rid, "messenger", psid)])


async def claimed(policy: ClaimPolicy) -> list[str]:
    rows = await deliveries.claim("w1", "messenger", 10, policy=policy)
    return sorted(f"{row.external_id}:{row.template}" for row in rows)


async def test_only_residents_who_wrote_within_the_window_are_claimed(database: str) -> None:
    for psid, ago in {
        "recent": timedelta(hours=1),
        "nearly": timedelta(hours=23, minutes=50),
        "edge": timedelta(hours=23, minutes=59),  # inside, but the send would land outside
        "old": timedelta(hours=25),
        "never": None,
    }.items():
        await queue(psid, await resident_who_wrote(psid, ago))
    assert await claimed(DAY) == ["nearly:reply", "recent:reply"]


async def test_what_the_window_denies_waits_in_bulk_and_the_residents_are_flagged(
    database: str,
) -> None:
    old = await resident_who_wrote("old", timedelta(days=2))
    recent = await resident_who_wrote("recent", timedelta(minutes=5))
    await queue("old", old)
    await queue("recent", recent)
    assert await deliveries.hold_denied("messenger", DAY) == 1
    states = dict(await Delivery.all().values_list("external_id", "state"))
    assert states == {"old": "waiting", "recent": "queued"}
    error = await Delivery.get(external_id="old").values_list("error", flat=True)
    assert "waiting for the resident" in str(error)
    flagged = dict(await Resident.all().values_list("id", "pushes_held"))
    assert flagged == {old: True, recent: False}


async def test_staff_words_may_go_within_the_week_only_when_the_page_has_human_agent(
    database: str,
) -> None:
    three_days = await resident_who_wrote("three-days", timedelta(days=3))
    eight_days = await resident_who_wrote("eight-days", timedelta(days=8))
    for psid, rid in (("three-days", three_days), ("eight-days", eight_days)):
        await queue(psid, rid, review.ANSWER_PUSH, key="answer:1")
        await queue(psid, rid, "announcement", key="announcement:1")
    assert await claimed(DAY) == []
    assert await claimed(DAY_AND_HUMAN_WEEK) == [f"three-days:{review.ANSWER_PUSH}"]


def test_the_templates_counted_as_staff_words_are_the_answer_and_the_status() -> None:
    assert set(deliveries.HUMAN_TEMPLATES) == {review.ANSWER_PUSH, proposals.STATUS_PUSH}


async def test_the_last_message_time_only_moves_forward(database: str) -> None:
    now = datetime.now(UTC)
    await resident_who_wrote("r", None)
    await residents.note_inbound("messenger", "r", now - timedelta(hours=1))
    # A delivery Meta retried late carries an older stamp: the window stays as it was.
    await residents.note_inbound("messenger", "r", now - timedelta(hours=5))
    stamp = await ChannelIdentity.get(external_id="r").values_list("last_inbound_at", flat=True)
    assert isinstance(stamp, datetime)
    assert abs(stamp - (now - timedelta(hours=1))) < timedelta(seconds=1)
    await residents.note_inbound("messenger", "r", now)
    stamp = await ChannelIdentity.get(external_id="r").values_list("last_inbound_at", flat=True)
    assert isinstance(stamp, datetime)
    assert abs(stamp - now) < timedelta(seconds=1)


async def test_staff_see_how_many_of_the_waiting_wait_for_messenger(database: str) -> None:
    announcement = await deliveries.create_announcement(
        author="cli", texts={"lv": "Sveiki"}, audience={"kind": "all"}, send_at=NOW
    )
    for psid in ("old-1", "old-2"):
        await resident_who_wrote(psid, timedelta(days=2))
    await deliveries.release(announcement, NOW)
    await deliveries.hold_denied("messenger", DAY)
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, announcement.id)
    assert (counts["waiting"], counts["waiting:messenger"]) == (2, 2)
