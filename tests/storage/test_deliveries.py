"""The outbox: releasing an announcement into rows, claiming them, reporting back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from storage import announcements, deliveries, media, residents
from storage.models import Announcement, ChannelIdentity, Delivery, Resident
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
    assert [c.external_id for c in first] == ["1", "5"], "the urgent 5 is taken before 2"
    assert [c.external_id for c in second] == ["2", "3"]
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
    assert sorted(a + b) == sorted(await Delivery.all().values_list("id", flat=True))
    assert len(a + b) == 40, "every row once, none twice"


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


async def test_release_copies_the_announcement_and_falls_back_to_latvian(database: str) -> None:
    await resident("1", language="en")
    await resident("2", language="ru")
    await resident("3", language="")  # no language chosen yet: Latvian
    muted = await resident("4")
    await Resident.filter(id=muted).update(announcements_muted=True)
    announcement = await deliveries.create_announcement(
        author="cli",
        texts={"lv": "Sveiki", "en": "Hello", "ru": ""},
        audience={"kind": "all"},
        send_at=NOW,
        urgent=True,
        image="https://example.lv/a.jpg",
    )
    later = NOW + timedelta(hours=2)
    assert await deliveries.release(announcement, later) == 3
    assert announcement.state == "released" and announcement.recipients == 3
    rows = {row.external_id: row for row in await Delivery.all()}
    assert {n: row.text for n, row in rows.items()} == {"1": "Hello", "2": "Sveiki", "3": "Sveiki"}
    assert {(r.state, r.urgent, r.image, r.attempts, r.announcement_id) for r in rows.values()} == {
        ("queued", True, "https://example.lv/a.jpg", 0, announcement.id)
    }
    assert {row.not_before for row in rows.values()} == {later}
    stored = await Announcement.get(id=announcement.id)
    assert (stored.state, stored.recipients) == ("released", 3)
    assert stored.released_at is not None


async def test_a_second_release_leaves_the_announcement_given_untouched(database: str) -> None:
    """What tells the scheduler that another worker released it."""
    await resident("1")
    announcement = await announce({"kind": "all"})
    same_row = await Announcement.get(id=announcement.id)
    assert await deliveries.release(announcement, NOW) == 1
    assert await deliveries.release(same_row, NOW) == 1
    assert same_row.state == "scheduled"


async def test_an_audience_naming_nothing_or_unknown_keys_gets_no_rows(database: str) -> None:
    await resident("1", hood="centrs", topics=("transport",))
    assert await deliveries.release(await announce({"kind": "topic", "keys": []}), NOW) == 0
    assert (
        await deliveries.release(await announce({"kind": "neighbourhood", "keys": ["x"]}), NOW) == 0
    )
    assert await Delivery.all().count() == 0


async def test_rows_reported_sent_together_are_all_sent(database: str) -> None:
    for n in range(1, 5):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    one, two, three, four = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_sent([one.id, three.id, four.id])
    sent = await Delivery.filter(state="sent").values_list("external_id", "sent_at", "error")
    assert sorted(n for n, _, _ in sent) == ["1", "3", "4"]
    assert all(at is not None and error == "" for _, at, error in sent)
    assert await Delivery.get(id=two.id).values_list("state", flat=True) == "sending"


async def test_rows_given_back_are_queued_as_if_never_claimed(database: str) -> None:
    for n in range(1, 4):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    one, two, three = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_sent([one.id])
    assert await deliveries.give_back([one.id, two.id, three.id]) == 2, "a sent row stays sent"
    again = await deliveries.claim("v", "telegram", 10, now=NOW)
    assert [(c.id, c.attempts) for c in again] == [(two.id, 1), (three.id, 1)]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_claim_reads_the_queue_through_its_partial_index(database: str) -> None:
    """Without it, each claim sorts the whole queue (27 ms at 100,000 rows)."""
    client = connections.get("default")
    async with in_transaction() as connection:
        await connection.execute_script("SET LOCAL enable_seqscan = off")
        plan = await connection.execute_query_dict(
            'EXPLAIN SELECT "id" FROM "delivery" WHERE "state" = \'queued\' '
            'AND "channel" = $1 AND "not_before" <= $2 ORDER BY "urgent" DESC, "id" LIMIT 200',
            ["telegram", NOW],
        )
    text = "\n".join(str(row["QUERY PLAN"]) for row in plan)
    assert "delivery_claim_idx" in text and "Sort" not in text, text
    assert client.capabilities.dialect == "postgres"


@pytest.mark.parametrize(
    ("audience", "named"),
    [
        ({"kind": "all"}, ["1", "2", "3", "6"]),
        ({"kind": "neighbourhood", "keys": ["centrs", "parupe"]}, ["1", "2"]),
        ({"kind": "topic", "keys": ["transport", "culture"]}, ["1", "2", "3"]),
    ],
)
async def test_release_writes_a_row_for_exactly_the_recipients(
    database: str, audience: dict[str, object], named: list[str]
) -> None:
    """The hand-written INSERT … SELECT names whom ``recipients`` names, no more, no less."""
    await resident("1", hood="centrs", topics=("transport",))
    await resident("2", hood="parupe", topics=("transport", "culture"))
    await resident("3", hood="lauki", topics=("culture",), language="ru")
    await resident("4", hood="centrs", topics=("culture",), onboarded=False)
    await resident("5", hood="parupe", topics=("transport",))
    await resident("6", hood=None, topics=())
    await deliveries.mark_blocked("telegram", "5", "Forbidden: bot was blocked by the user")
    # Not 4 (never onboarded) nor 5 (blocked the bot); 6 has neither neighbourhood nor topic.
    expected = sorted(named)
    named_now = sorted(ext for _, _, _, ext in await deliveries.recipients(audience))
    assert named_now == expected
    assert await deliveries.count_recipients(audience) == len(expected), "the preview's figure"
    assert await deliveries.release(await announce(audience), NOW) == len(expected)
    rows = await Delivery.all().values_list("channel", "external_id")
    assert sorted(rows) == [("telegram", ext) for ext in expected]


@pytest.mark.parametrize("kept", [True, False])
async def test_a_platforms_own_image_goes_only_to_that_platform(database: str, kept: bool) -> None:
    """A Telegram file id means nothing to the web chat: there the copy we keep is shown,
    or, without one, the text goes alone."""
    await resident("1")
    async with open_session("webchat", "browser-1", "") as session:
        await residents.mark_onboarded(session.resident)
    announcement = await deliveries.create_announcement(
        author="telegram:9",
        texts={"lv": "Sveiki"},
        audience={"kind": "all"},
        send_at=NOW,
        image="AgACAgIAAxkBAAI-file-id",
    )
    announcement.image_channel = "telegram"
    key = await media.save_image(JPEG) if kept else None
    announcement.image_media = key or ""
    await announcement.save()
    assert await deliveries.release(announcement, NOW) == 2
    images = dict(await Delivery.all().values_list("channel", "image"))
    web = f"/media/{key}" if kept else ""
    assert images == {"telegram": "AgACAgIAAxkBAAI-file-id", "webchat": web}


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00a photo of the street\xff\xd9"


async def test_only_real_images_are_kept_and_each_once(database: str) -> None:
    key = await media.save_image(JPEG)
    assert key is not None and await media.save_image(JPEG) == key
    assert await media.image(key) == (JPEG, "image/jpeg")
    assert await media.save_image(b"<svg onload=alert(1)>") is None, "only what we can sniff"
    assert await media.save_image(b"\xff\xd8\xff" + bytes(media.MAX_BYTES)) is None
    assert await media.image("0" * 64) is None


async def test_a_row_staff_stopped_while_it_was_on_the_wire_is_not_queued_again(
    database: str,
) -> None:
    await resident("1")
    await resident("2")
    announcement = await announce({"kind": "all"})
    await deliveries.release(announcement, NOW)
    first, second = await deliveries.claim("w", "telegram", 10)
    outcome, _ = await announcements.cancel(announcement.id, "telegram:9")
    assert outcome == "done"
    await deliveries.retry_later(first.id, NOW, "rate limited: retry after 3s")
    await deliveries.mark_failed(second.id, "HTTP 502")
    assert set(await Delivery.all().values_list("state", flat=True)) == {"cancelled"}
    assert await deliveries.claim("w", "telegram", 10) == []
