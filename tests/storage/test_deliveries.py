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


async def test_release_writes_one_row_per_recipient_naming_the_announcement(
    database: str,
) -> None:
    """No words in the rows: each is rendered when sent (tests/dialogs/test_pushes.py)."""
    await resident("1", language="lv")
    await resident("2", language="en")
    await resident("3", language="ru")
    await resident("4", onboarded=False)
    announcement = await announce({"kind": "all"}, lv="Sveiki", en="Hello")
    assert await deliveries.release(announcement, NOW) == 3
    rows = await Delivery.all().values_list(
        "external_id", "source_kind", "source_id", "dedupe_key", "template", "params"
    )
    key, params = f"announcement:{announcement.id}", f'{{"announcement":{announcement.id}}}'
    assert sorted(rows) == [
        (n, "announcement", announcement.id, key, "announcement", params) for n in "123"
    ]
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


async def test_claims_are_due_rows_highest_priority_first_and_each_row_once(
    database: str,
) -> None:
    for n in range(1, 6):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    await Delivery.filter(external_id="5").update(priority=deliveries.PERSONAL)
    await Delivery.filter(external_id="4").update(not_before=NOW + timedelta(hours=1))
    first = await deliveries.claim("worker-a", "telegram", 2, now=NOW)
    second = await deliveries.claim("worker-b", "telegram", 10, now=NOW)
    assert [c.external_id for c in first] == ["5", "1"], "the personal 5 first, before 2"
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
    await deliveries.mark_sent(one.id, "101")
    await deliveries.retry_later(two.id, NOW + timedelta(seconds=3), "429: retry after 3")
    await deliveries.mark_failed(three.id, "500 five times")
    await deliveries.mark_blocked("telegram", four.external_id, "403")
    counts = await deliveries.counts("announcement", announcement.id)
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


async def test_release_writes_the_announcements_priority_and_quiet_hours_exemption(
    database: str,
) -> None:
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
    assert set(rows) == {"1", "2", "3"}, "the muted resident gets none"
    assert {
        (r.state, r.operation, r.priority, r.quiet_exempt, r.attempts, r.source_id)
        for r in rows.values()
    } == {("queued", "send", deliveries.BROADCAST, True, 0, announcement.id)}
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


async def test_a_row_reported_sent_keeps_the_platforms_message_id(database: str) -> None:
    for n in range(1, 3):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    one, two = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_sent(one.id, "4711", "0123abcd")
    sent = await Delivery.get(id=one.id)
    assert (sent.state, sent.message_id, sent.shown, sent.error) == ("sent", "4711", "0123abcd", "")
    assert sent.sent_at is not None
    assert await Delivery.get(id=two.id).values_list("state", flat=True) == "sending"


async def test_rows_given_back_are_queued_as_if_never_claimed(database: str) -> None:
    for n in range(1, 4):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    one, two, three = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_sent(one.id)
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
            'AND "channel" = $1 AND "not_before" <= $2 ORDER BY "priority" DESC, "id" LIMIT 200',
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


def note(key: str = "proposal:12:status:accepted", **fields: object) -> deliveries.Push:
    """A personal push with fixed words, as a status change will queue one."""
    settings: dict[str, object] = {
        "source_kind": "proposal_status",
        "source_id": 12,
        "dedupe_key": key,
        "template": "reply",
        "params": {"text": "Your proposal was accepted."},
        **fields,
    }
    return deliveries.Push(**settings)  # type: ignore[arg-type]


async def test_the_same_push_queued_twice_is_one_row(database: str) -> None:
    one = await resident("1")
    two = await resident("2")
    recipients = [(one, "telegram", "1"), (two, "telegram", "2")]
    assert await deliveries.queue(note(), recipients[:1]) == 1
    assert await deliveries.queue(note(), recipients) == 1, "only the one not queued yet"
    assert await deliveries.queue(note(), recipients) == 0
    assert await deliveries.queue(note("proposal:12:status:rejected"), recipients[:1]) == 1
    rows = await Delivery.all().order_by("id").values_list("external_id", "dedupe_key")
    assert rows == [
        ("1", "proposal:12:status:accepted"),
        ("2", "proposal:12:status:accepted"),
        ("1", "proposal:12:status:rejected"),
    ]
    (row,) = await Delivery.filter(external_id="2")
    assert (row.source_kind, row.source_id, row.template, row.priority, row.quiet_exempt) == (
        "proposal_status",
        12,
        "reply",
        deliveries.PERSONAL,
        False,
    )
    assert row.params == '{"text":"Your proposal was accepted."}'


async def test_an_announcement_released_twice_by_two_callers_is_one_row_each(
    database: str,
) -> None:
    """Even past the announcement's own lock (a stale copy released again), the dedupe
    key keeps a second row out."""
    await resident("1")
    announcement = await announce({"kind": "all"})
    assert await deliveries.release(announcement, NOW) == 1
    await Announcement.filter(id=announcement.id).update(state="scheduled")
    assert await deliveries.release(announcement, NOW) == 1
    assert await Delivery.all().count() == 1


async def test_the_claim_gives_the_residents_language_of_now(database: str) -> None:
    """Rendered at send time: a resident who switched to Russian after the release gets
    Russian."""
    rid = await resident("1", language="lv")
    await resident("2", language="")
    await deliveries.release(await announce({"kind": "all"}), NOW)
    await Resident.filter(id=rid).update(language="ru")
    claimed = await deliveries.claim("w", "telegram", 10, now=NOW)
    assert {(c.external_id, c.language) for c in claimed} == {("1", "ru"), ("2", "")}


async def test_a_claim_of_personal_pushes_leaves_the_broadcast_alone(database: str) -> None:
    for n in range(1, 4):
        await resident(str(n))
    await deliveries.release(await announce({"kind": "all"}), NOW)
    rid = (await Resident.all().order_by("id").first()).id  # type: ignore[union-attr]
    await deliveries.queue(note(), [(rid, "telegram", "1")], NOW)
    ahead = await deliveries.claim("w", "telegram", 10, now=NOW, min_priority=deliveries.PERSONAL)
    assert [(c.template, c.priority) for c in ahead] == [("reply", deliveries.PERSONAL)]
    assert await deliveries.claim("w", "telegram", 10, now=NOW, min_priority=10) == []
    rest = await deliveries.claim("w", "telegram", 10, now=NOW)
    assert [c.template for c in rest] == ["announcement"] * 3


async def test_an_edit_is_queued_once_and_again_after_it_was_sent(database: str) -> None:
    """The staff report's row: one per dedupe key, queued again on each later change."""
    rid = await resident("9")
    report = note(
        "announcement:5:report",
        source_kind="announcement_report",
        template="announcement_report",
        params={"announcement": 5},
        if_edit_refused="drop",
    )
    to = (rid, "telegram", "9")
    assert await deliveries.queue_edit(report, to, "77", NOW) is True
    assert await deliveries.queue_edit(report, to, "77", NOW) is False, "queued already"
    (row,) = await deliveries.claim("w", "telegram", 10, now=NOW)
    assert (row.operation, row.message_id, row.if_edit_refused) == ("edit", "77", "drop")
    await deliveries.mark_sent(row.id, "77", "digest-1")
    assert await deliveries.queue_edit(report, to, "77", NOW) is True, (
        "sent: a later change queues it"
    )
    (again,) = await deliveries.claim("w", "telegram", 10, now=NOW)
    assert (again.id, again.operation, again.shown, again.attempts) == (
        row.id,
        "edit",
        "digest-1",
        1,
    )

    # A change while it is on the wire: it goes once more as soon as it is reported sent.
    assert await deliveries.queue_edit(report, to, "77", NOW) is True
    assert await Delivery.get(id=row.id).values_list("state", "stale") == ("sending", True)
    await deliveries.mark_sent(again.id, "77", "digest-2")
    stored = await Delivery.get(id=row.id)
    assert (stored.state, stored.stale, stored.operation, stored.shown) == (
        "queued",
        False,
        "edit",
        "digest-2",
    )

    # The platform will not edit it any more: a report's edit is given up, for good.
    (last,) = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_edit_refused(last.id, resend=False)
    assert await Delivery.get(id=row.id).values_list("state", "message_id") == ("failed", "")
    assert await deliveries.queue_edit(report, to, "77", NOW) is False
    assert await Delivery.all().count() == 1


async def test_an_edit_the_platform_refuses_goes_as_a_new_message_when_it_may(
    database: str,
) -> None:
    rid = await resident("9")
    poll = note("poll:3:invitation", source_kind="poll_invitation", template="poll")
    await deliveries.queue_edit(poll, (rid, "telegram", "9"), "41", NOW)
    (row,) = await deliveries.claim("w", "telegram", 10, now=NOW)
    await deliveries.mark_edit_refused(row.id, resend=True)
    (anew,) = await deliveries.claim("w", "telegram", 10)
    assert (anew.id, anew.operation, anew.message_id) == (row.id, "send", "")
    await deliveries.mark_sent(anew.id, "42", "d")
    assert await deliveries.queue_edit(poll, (rid, "telegram", "9"), "41", NOW) is True
    (edit,) = await deliveries.claim("w", "telegram", 10)
    assert (edit.operation, edit.message_id) == ("edit", "42"), "the message sent anew"
