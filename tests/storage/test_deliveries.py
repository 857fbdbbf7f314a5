"""The outbox: releasing an announcement into rows, claiming them, reporting back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from storage import deliveries, residents
from storage.models import Announcement, ChannelIdentity, Delivery
from storage.sessions import open_session

NOW = datetime.now(UTC)


async def resident(
    user_id: str,
    *,
    language: str = "lv",
    hood: str | None = "centrs",
    topics: tuple[str, ...] = (),
    onboarded: bool = True,
) -> int:
    async with open_session("telegram", user_id, "") as session:
        await residents.set_language(session.resident, language)
        await residents.set_neighbourhood(session.resident, hood)
        await residents.set_topics(session.resident, topics)
        if onboarded:
            await residents.mark_onboarded(session.resident)
        return session.resident.id


async def announce(audience: dict[str, object], **texts: str) -> Announcement:
    return await deliveries.create_announcement(
        author="cli", texts=texts or {"lv": "Sveiki", "en": "Hello"}, audience=audience, send_at=NOW
    )


async def test_release_writes_one_row_per_recipient_in_their_language(database: str) -> None:
    await resident("1", language="lv")
    await resident("2", language="en")
    await resident("3", language="ru")
    await resident("4", onboarded=False)
    announcement = await announce({"kind": "all"}, lv="Sveiki", en="Hello")
    assert await deliveries.release(announcement, NOW) == 3
    texts = dict(await Delivery.all().values_list("external_id", "text"))
    assert texts == {"1": "Sveiki", "2": "Hello", "3": "Sveiki"}, "Russian falls back to Latvian"
    assert await deliveries.release(announcement, NOW) == 3
    assert await Delivery.all().count() == 3, "a second release writes nothing"


async def test_an_audience_of_neighbourhoods_or_topics_names_only_those(database: str) -> None:
    await resident("1", hood="centrs", topics=("transport",))
    await resident("2", hood="parupe", topics=("transport", "culture"))
    await resident("3", hood="lauki", topics=())
    hoods = await announce({"kind": "neighbourhood", "keys": ["centrs", "lauki"]})
    assert await deliveries.release(hoods, NOW) == 2
    topics = await announce({"kind": "topic", "keys": ["transport", "culture"]})
    assert await deliveries.release(topics, NOW) == 2, "a resident with two topics gets it once"


async def test_an_account_that_blocked_the_bot_is_left_out(database: str) -> None:
    await resident("1")
    await resident("2")
    await deliveries.mark_blocked("telegram", "2", "Forbidden: bot was blocked by the user")
    assert await deliveries.release(await announce({"kind": "all"}), NOW) == 1


async def test_claims_are_due_rows_urgent_first_and_each_row_once(database: str) -> None:
    for n in range(1, 6):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    await Delivery.filter(external_id="5").update(urgent=True)
    await Delivery.filter(external_id="4").update(not_before=NOW + timedelta(hours=1))
    first = await deliveries.claim("worker-a", "telegram", 2, now=NOW)
    second = await deliveries.claim("worker-b", "telegram", 10, now=NOW)
    assert {c.external_id for c in first} == {"5", "1"}
    assert {c.external_id for c in second} == {"2", "3"}
    assert await deliveries.claim("worker-a", "telegram", 10, now=NOW) == []
    later = await deliveries.claim("worker-a", "telegram", 10, now=NOW + timedelta(hours=2))
    assert [c.external_id for c in later] == ["4"]
    assert all(c.attempts == 1 for c in first + second + later)


async def test_two_workers_claiming_at_once_never_share_a_row(database: str) -> None:
    for n in range(1, 41):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)

    async def worker(name: str) -> list[int]:
        taken: list[int] = []
        while batch := await deliveries.claim(name, "telegram", 3, now=NOW):
            taken += [c.id for c in batch]
        return taken

    a, b = await asyncio.gather(worker("a"), worker("b"))
    assert not set(a) & set(b)
    assert len(a) + len(b) == 40


async def test_reports_move_rows_to_their_final_state(database: str) -> None:
    for n in range(1, 5):
        await resident(str(n))
    announcement = await announce({"kind": "all"})
    await deliveries.release(announcement, NOW)
    one, two, three, four = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_sent([one.id])
    await deliveries.retry_later(two.id, NOW + timedelta(seconds=3), "429: retry after 3")
    await deliveries.mark_failed(three.id, "500 five times")
    await deliveries.mark_blocked("telegram", four.external_id, "403")
    counts = await deliveries.counts(announcement.id)
    assert counts == {"queued": 1, "sending": 0, "sent": 1, "failed": 1, "blocked": 1, "waiting": 0}
    identity = await ChannelIdentity.get(external_id=four.external_id)
    assert identity.unreachable_since is not None
    assert await deliveries.claim("w", "telegram", 10, now=NOW) == [], "not before retry_after"
    retried = await deliveries.claim("w", "telegram", 10, now=NOW + timedelta(seconds=3))
    assert [(c.id, c.attempts) for c in retried] == [(two.id, 2)]


async def test_rows_a_dead_worker_left_sending_are_queued_again(database: str) -> None:
    await resident("1")
    await deliveries.release(await announce({"kind": "all"}), NOW)
    (claimed,) = await deliveries.claim("dead", "telegram", 10, now=NOW)
    assert await deliveries.requeue_abandoned(timedelta(minutes=1), now=NOW) == 0
    assert (
        await deliveries.requeue_abandoned(timedelta(minutes=1), now=NOW + timedelta(minutes=2))
        == 1
    )
    (again,) = await deliveries.claim("alive", "telegram", 10, now=NOW + timedelta(minutes=2))
    assert again.id == claimed.id


async def test_a_forgotten_resident_takes_their_pending_pushes_along(database: str) -> None:
    rid = await resident("1")
    await deliveries.release(await announce({"kind": "all"}), NOW)
    async with open_session("telegram", "1", "") as session:
        assert session.resident.id == rid
        await residents.forget(session.resident)
        session.deleted = True
    assert await Delivery.all().count() == 0


async def test_a_worker_that_restarts_takes_its_own_rows_back_at_once(database: str) -> None:
    await resident("1")
    await resident("2")
    await deliveries.release(await announce({"kind": "all"}), NOW)
    await deliveries.claim("host:8080", "telegram", 1, now=NOW)
    await deliveries.claim("host:8081", "telegram", 1, now=NOW)
    assert await deliveries.requeue_mine("host:8080") == 1
    assert await Delivery.filter(state="sending").values_list("claimed_by", flat=True) == [
        "host:8081"
    ]
