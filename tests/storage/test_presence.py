"""Which worker holds which resident's chat, the web chat's claim that reads it, the bulk
move to "waiting" of what no worker can deliver, and the one-digest catch-up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.channel import ClaimPolicy
from bot.core.messages import Button, RenderRequest, Reply
from dialogs.pushes import Pushes, fit_digest
from storage import deliveries, presence
from storage.models import Delivery, Presence, Resident
from storage.sessions import open_session
from tests.phrases import tr

NOW = datetime.now(UTC)
HERE = ClaimPolicy.PRESENT_HERE
NOTE = "note"


async def webchat_resident(user_id: str, language: str = "en") -> int:
    async with open_session("webchat", user_id, "") as session:
        session.resident.language = language
        session.resident.onboarded_at = NOW
        await session.resident.save()
        return session.resident.id


def note(key: str, text: str, **options: object) -> deliveries.Push:
    """A push with fixed words (a staff note): a stored reply."""
    return deliveries.Push(NOTE, 1, key, "reply", {"text": text}, **options)  # type: ignore[arg-type]


async def queued_to(*user_ids: str, key: str = "note:1", text: str = "Hello") -> dict[str, int]:
    """One push to each web-chat resident; returns their resident ids."""
    ids = {user_id: await webchat_resident(user_id) for user_id in user_ids}
    await deliveries.queue(note(key, text), [(rid, "webchat", uid) for uid, rid in ids.items()])
    return ids


async def claimed_by(worker: str) -> list[str]:
    rows = await deliveries.claim(worker, "webchat", 10, policy=HERE)
    return sorted(row.external_id for row in rows)


async def test_a_worker_claims_the_web_chat_rows_only_of_residents_present_on_it(
    database: str,
) -> None:
    await queued_to("a", "b", "c", "d")
    await presence.arrive("w1", "webchat", "a")
    await presence.arrive("w2", "webchat", "b")
    await presence.arrive("w1", "webchat", "d")
    # d's presence is old: its worker stopped refreshing (it died).
    await Presence.filter(external_id="d").update(seen_at=NOW - presence.FRESH_FOR - timedelta(1))
    assert await claimed_by("w1") == ["a"]
    assert await claimed_by("w2") == ["b"]
    assert await claimed_by("w3") == []
    left = dict(await Delivery.filter(state="queued").values_list("external_id", "claimed_by"))
    assert left == {"c": "", "d": ""}
    # Without a policy (Telegram's ANYONE) any worker takes any row.
    assert len(await deliveries.claim("w3", "webchat", 10)) == 2


async def test_rows_present_nowhere_wait_in_bulk_and_their_residents_are_flagged(
    database: str,
) -> None:
    ids = await queued_to("a", "b", "c", "d", "e")
    await presence.arrive("w1", "webchat", "a")
    await presence.arrive("w2", "webchat", "b")
    later = deliveries.Push(NOTE, 2, "note:later", "reply", {"text": "Later"})
    # From the clock now, not the module's NOW: the suite may run past its hour.
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)
    await deliveries.queue(later, [(ids["e"], "webchat", "e")], in_an_hour)

    assert await deliveries.hold_denied("webchat", ClaimPolicy.ANYONE) == 0
    assert await deliveries.hold_denied("webchat", HERE, limit=2) == 3, "in statements of 2"
    rows = await Delivery.all().order_by("id").values_list("external_id", "dedupe_key", "state")
    assert rows == [
        ("a", "note:1", "queued"),  # present here: this worker's
        ("b", "note:1", "queued"),  # present on another worker: stays queued for it
        ("c", "note:1", "waiting"),
        ("d", "note:1", "waiting"),
        ("e", "note:1", "waiting"),
        ("e", "note:later", "queued"),  # not due yet: moved when it is, if still nobody
    ]
    errors = set(await Delivery.filter(state="waiting").values_list("error", flat=True))
    assert errors == {"the resident has no chat open"}
    held = dict(await Resident.all().values_list("id", "pushes_held"))
    assert {uid for uid, rid in ids.items() if held[rid]} == {"c", "d", "e"}
    assert await deliveries.hold_denied("webchat", HERE) == 0


async def test_refresh_keeps_a_workers_rows_fresh_and_a_start_clears_them(database: str) -> None:
    await presence.arrive("w1", "webchat", "a")
    await presence.arrive("w1", "webchat", "b")
    await presence.arrive("w2", "webchat", "a")
    await presence.arrive("w1", "webchat", "a")  # a second arrival is one row
    old = NOW - timedelta(minutes=5)
    await Presence.all().update(seen_at=old)
    assert await presence.refresh("w1") == {("webchat", "a"), ("webchat", "b")}
    seen = dict(await Presence.filter(external_id="a").values_list("worker", "seen_at"))
    assert seen["w1"] > old and seen["w2"] == old
    # What the worker holds is the truth: a lost departure (b) or arrival (c) is repaired.
    assert await presence.keep_alive("w1", "webchat", frozenset({"a", "c"})) == 2
    assert sorted(await Presence.filter(worker="w1").values_list("external_id", flat=True)) == [
        "a",
        "c",
    ]
    await presence.leave("w1", "webchat", "c")
    assert await presence.clear("w1") == 1
    assert await Presence.all().values_list("worker", flat=True) == ["w2"]


async def held(*texts: str, user_id: str = "r") -> int:
    """A web-chat resident with one held note per text; returns their resident id."""
    rid = await webchat_resident(user_id)
    for index, text in enumerate(texts):
        await deliveries.queue(note(f"note:{index}", text), [(rid, "webchat", user_id)])
    await deliveries.hold_denied("webchat", HERE)
    return rid


async def returned(rid: int, user_id: str = "r") -> int:
    resident = await Resident.get(id=rid)
    released = await deliveries.resident_returned(resident, "webchat", user_id)
    await resident.save()
    return released


async def test_several_held_pushes_come_back_as_one_digest(database: str) -> None:
    rid = await held("One", "Two", "Three")
    assert await returned(rid) == 3
    items = await Delivery.filter(source_kind=NOTE).order_by("id").values_list("id", "state")
    assert [state for _, state in items] == ["digested"] * 3
    digest = await Delivery.get(source_kind=deliveries.DIGEST)
    assert (digest.state, digest.template, digest.source_id) == ("queued", "digest", rid)
    assert json.loads(digest.params) == {"items": [item for item, _ in items]}
    assert (digest.priority, digest.quiet_exempt) == (deliveries.PERSONAL, True)
    assert not (await Resident.get(id=rid)).pushes_held

    # Nobody present yet (the claim is the web chat's): the worker that holds the tab takes it.
    await presence.arrive("w1", "webchat", "r")
    (claimed,) = await deliveries.claim("w1", "webchat", 10, policy=HERE)
    assert claimed.id == digest.id
    await deliveries.mark_digest_sent(claimed, "m-1", "shown")
    states = await Delivery.filter(source_kind=NOTE).values_list("state", "message_id")
    assert states == [("sent", "m-1")] * 3
    assert (await Delivery.get(id=digest.id)).state == "sent"


async def test_one_held_push_comes_back_as_it_is_and_an_edit_is_never_folded(
    database: str,
) -> None:
    rid = await held("Only one")
    report = deliveries.Push("report", 9, "report:9", "reply", {"text": "Report"})
    await deliveries.queue_edit(report, (rid, "webchat", "r"), "m-9")
    await deliveries.hold_denied("webchat", HERE)
    assert await Delivery.filter(state="waiting").count() == 2
    assert await returned(rid) == 2
    rows = await Delivery.all().order_by("id").values_list("dedupe_key", "operation", "state")
    assert rows == [("note:0", "send", "queued"), ("report:9", "edit", "queued")]


async def test_a_digest_the_resident_left_before_it_went_never_was(database: str) -> None:
    rid = await held("One", "Two")
    await returned(rid)
    await presence.arrive("w1", "webchat", "r")
    (claimed,) = await deliveries.claim("w1", "webchat", 10, policy=HERE)
    await deliveries.mark_digest_refused(claimed, "the resident has no chat open")
    assert await Delivery.filter(source_kind=deliveries.DIGEST).count() == 0
    assert await Delivery.all().values_list("state", flat=True) == ["waiting", "waiting"]
    assert (await Resident.get(id=rid)).pushes_held
    # Back again: one digest again, of the same two.
    assert await returned(rid) == 2
    assert await Delivery.filter(state="digested").count() == 2


async def test_a_digest_that_fails_for_good_fails_its_items_and_blocked_blocks_them(
    database: str,
) -> None:
    rid = await held("One", "Two")
    await returned(rid)
    (claimed,) = await deliveries.claim("w1", "webchat", 10)
    await deliveries.mark_digest_failed(claimed, "ConnectionError")
    assert set(await Delivery.all().values_list("state", flat=True)) == {"failed"}

    other = await held("Three", "Four", user_id="s")
    await returned(other, "s")
    await deliveries.mark_blocked("webchat", "s", "gone")
    states = await Delivery.filter(external_id="s").values_list("state", flat=True)
    assert states == ["blocked"] * 3


async def test_an_announcement_in_a_digest_counts_as_going_out_until_the_digest_went(
    database: str,
) -> None:
    rid = await webchat_resident("r")
    for text in ("Ūdens", "Ceļi"):
        announcement = await deliveries.create_announcement(
            author="cli", texts={"lv": text}, audience={"kind": "all"}, send_at=NOW
        )
        await deliveries.release(announcement, NOW)
    await deliveries.hold_denied("webchat", HERE)
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, announcement.id)
    assert (counts["waiting"], counts["sending"], counts["sent"]) == (1, 0, 0)
    await returned(rid)
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, announcement.id)
    assert (counts["waiting"], counts["sending"], counts["sent"]) == (0, 1, 0)
    assert "digested" not in counts
    (claimed,) = await deliveries.claim("w1", "webchat", 10)
    await deliveries.mark_digest_sent(claimed, "m-1", "")
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, announcement.id)
    assert (counts["waiting"], counts["sending"], counts["sent"]) == (0, 0, 1)


async def test_the_digest_folds_the_text_items_and_sends_those_with_buttons_alone(
    database: str,
) -> None:
    rid = await webchat_resident("r", language="ru")
    vote = Reply("Vote?", [[Button("Yes", "poll:1:opt:1")]])
    pushes = [note("note:0", "One"), deliveries.Push("poll", 1, "poll:1", "reply", vote.to_json())]
    pushes.append(note("note:2", "Two"))
    for push in pushes:
        await deliveries.queue(push, [(rid, "webchat", "r")])
    await deliveries.hold_denied("webchat", HERE)
    await returned(rid)
    digest = await Delivery.get(source_kind=deliveries.DIGEST)
    request = RenderRequest("digest", json.loads(digest.params), "ru", "webchat")
    reply = await Pushes(ZoneInfo("UTC"))(request)
    assert reply == Reply(f"{tr('ru', 'While you were away:')}\n\nOne\n\nTwo")
    rows = (
        await Delivery.filter(source_kind__not="digest")
        .order_by("id")
        .values_list("dedupe_key", "state")
    )
    assert rows == [("note:0", "digested"), ("poll:1", "queued"), ("note:2", "digested")]


def test_a_digest_too_long_for_the_channel_cuts_each_item_to_a_share() -> None:
    items = ["a" * 300, "b" * 50, "c" * 300]
    assert fit_digest("Head:", items, 1000) == "\n\n".join(["Head:", *items])
    cut = fit_digest("Head:", items, 400)
    assert cut == "\n\n".join(["Head:", "a" * 128 + "…", "b" * 50, "c" * 128 + "…"])
    assert len(cut) <= 400
