"""The delivery worker drains the outbox, renders each push as it sends it, and reports
every row's fate."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.channels.telegram import TelegramChannel
from bot.core.channel import PushRefused, RateLimited, RecipientBlocked
from bot.core.config import Config, TelegramConfig
from bot.core.messages import Button, CommandMenu, Reply
from bot.delivery import DeliveryWorker, digest
from bot.pacing import Pacer
from dialogs.pushes import Pushes
from handlers.dispatcher import Dispatcher
from storage import deliveries, residents
from storage.models import Announcement, Delivery
from storage.sessions import open_session
from tests.bot.channels.telegram_helpers import eventually
from tests.standins.telegram_api import BotApiStandIn
from tests.storage.test_deliveries import announce, resident

UTC_ZONE = ZoneInfo("UTC")


class Platform:
    """A recording channel that fails as told, per recipient; message ids count up."""

    name = "telegram"

    def __init__(self, faults: dict[str, list[Exception]] | None = None) -> None:
        self.faults = faults or {}
        self.sent: list[tuple[str, str]] = []
        self.replies: list[tuple[str, Reply]] = []  # what was sent, whole
        self.edits: list[tuple[str, str, str]] = []  # recipient, message id, text
        self.editable = True

    async def send(self, recipient: str, reply: Reply) -> str:
        pending = self.faults.get(recipient)
        if pending:
            raise pending.pop(0)
        self.sent.append((recipient, reply.text))
        self.replies.append((recipient, reply))
        return str(100 + len(self.replies))

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        pending = self.faults.get(recipient)
        if pending:
            raise pending.pop(0)
        self.edits.append((recipient, message_id, reply.text))
        return self.editable


@dataclass(slots=True)
class CountingPacer(Pacer):
    """A pacer that remembers whose turns it gave."""

    turns: list[str] = field(default_factory=list)

    async def wait(self, chat: str, interrupt: asyncio.Event | None = None) -> bool:
        self.turns.append(chat)
        return await Pacer.wait(self, chat, interrupt)


def worker(platform: Platform, **options: object) -> DeliveryWorker:
    """A worker with no quiet hours (unless a test sets them) and a generous pacer."""
    settings: dict[str, object] = {"quiet_start": time(0, 0), "quiet_end": time(0, 0), **options}
    return DeliveryWorker(
        channels={"telegram": platform},  # type: ignore[dict-item]
        render=Pushes(UTC_ZONE),
        pacers={"telegram": CountingPacer(10_000, 10_000)},
        zone=UTC_ZONE,
        worker_id="test",
        **settings,  # type: ignore[arg-type]
    )


async def released(*user_ids: str, urgent: bool = False) -> int:
    for user_id in user_ids:
        await resident(user_id)
    announcement = await announce({"kind": "all"}, lv="Ūdens atslēgšana rīt")
    if urgent:
        announcement.urgent = True
        await announcement.save()
    await deliveries.release(announcement, datetime.now(UTC))
    return announcement.id


async def states() -> dict[str, str]:
    return dict(await Delivery.all().values_list("external_id", "state"))


async def test_every_recipient_gets_the_announcement_once(database: str) -> None:
    await released("1", "2", "3")
    platform = Platform()
    assert await worker(platform).drain_once() == 3
    assert await worker(platform).drain_once() == 0
    assert sorted(platform.sent) == [(n, "Ūdens atslēgšana rīt") for n in ("1", "2", "3")]
    assert set((await states()).values()) == {"sent"}


async def test_a_resident_who_blocked_the_bot_is_marked_and_not_retried(database: str) -> None:
    await released("1", "2")
    platform = Platform({"2": [RecipientBlocked("Forbidden: bot was blocked by the user")]})
    await worker(platform).drain_once()
    assert await states() == {"1": "sent", "2": "blocked"}


async def test_a_429_pauses_the_channel_and_the_row_is_sent_after_retry_after(
    database: str,
) -> None:
    await released("1")
    platform = Platform({"1": [RateLimited(2)]})
    w = worker(platform)
    await w.drain_once()
    row = await Delivery.get(external_id="1")
    assert row.state == "queued" and row.not_before > datetime.now(UTC) + timedelta(seconds=1)
    pacer = w.pacers["telegram"]
    assert await pacer.reserve("2") - pacer.clock() > 1, "the channel waits out retry_after"
    await Delivery.filter(id=row.id).update(not_before=datetime.now(UTC))
    await w.drain_once()
    assert await states() == {"1": "sent"}


async def test_a_failing_send_is_retried_with_backoff_then_recorded_as_failed(
    database: str,
) -> None:
    await released("1")
    platform = Platform({"1": [ConnectionError("reset")] * 3})
    w = worker(platform, max_attempts=3)
    for attempt in range(1, 4):
        await w.drain_once()
        row = await Delivery.get(external_id="1")
        assert row.attempts == attempt
        await Delivery.filter(id=row.id).update(not_before=datetime.now(UTC))
    row = await Delivery.get(external_id="1")
    assert (row.state, row.attempts, row.error) == ("failed", 3, "ConnectionError: reset")
    assert platform.sent == []


async def test_a_push_the_channel_refuses_by_policy_waits(database: str) -> None:
    await released("1")
    await worker(Platform({"1": [PushRefused("outside the 24-hour window")]})).drain_once()
    row = await Delivery.get(external_id="1")
    assert (row.state, row.error) == ("waiting", "outside the 24-hour window")


async def test_quiet_hours_hold_an_ordinary_announcement_but_not_an_urgent_one(
    database: str,
) -> None:
    now = datetime.now(UTC)
    night = {
        "quiet_start": (now - timedelta(hours=1)).time(),
        "quiet_end": (now + timedelta(hours=1)).time(),
    }
    await released("1")
    platform = Platform()
    await worker(platform, **night).drain_once()
    row = await Delivery.get(external_id="1")
    assert row.state == "queued" and row.not_before > now and platform.sent == []

    await Delivery.all().delete()
    await released("2", urgent=True)
    await worker(platform, **night).drain_once()
    assert sorted(platform.sent) == [("1", "Ūdens atslēgšana rīt"), ("2", "Ūdens atslēgšana rīt")]


class Gated(Platform):
    """A platform whose sends to some recipients hang until the test lets them go,
    and that counts how many sends it has at once."""

    def __init__(self, hang: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.hang, self.go = hang, asyncio.Event()
        self.at_once = self.most_at_once = 0

    async def send(self, recipient: str, reply: Reply) -> str:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            if recipient in self.hang:
                await self.go.wait()
            await asyncio.sleep(0)
            return await super().send(recipient, reply)
        finally:
            self.at_once -= 1


class Watched(Pacer):
    """A pacer that tells when a send has booked its turn, and so waits for it."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reserved = asyncio.Event()

    async def reserve(self, chat: str) -> float:
        slot = await super().reserve(chat)
        self.reserved.set()
        return slot


async def sent_count(count: int) -> bool:
    return await Delivery.filter(state="sent").count() >= count


def claimed_count(count: int) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return await Delivery.filter(state="sending").count() == count

    return condition


async def test_a_slow_send_does_not_hold_up_the_next_batch(database: str) -> None:
    """Claims are pipelined: while one row of a batch is still on the wire, the next
    batches are claimed and sent."""
    await released(*(str(n) for n in range(1, 13)))
    platform = Gated(hang={"1"})
    draining = asyncio.create_task(worker(platform, batch=4).drain_once())
    await eventually(lambda: sent_count(11), what="every row but the slow one sent")
    assert await Delivery.filter(state="sending").values_list("external_id", flat=True) == ["1"]
    platform.go.set()
    assert await draining == 12
    assert len(platform.sent) == 12 and set((await states()).values()) == {"sent"}


async def test_never_more_sends_at_once_than_in_flight(database: str) -> None:
    """What bounds the duplicates after a kill -9: sent but not yet reported."""
    await released(*(str(n) for n in range(1, 31)))
    platform = Gated(hang={str(n) for n in range(1, 31)})
    draining = asyncio.create_task(worker(platform, in_flight=4, batch=7).drain_once())
    await eventually(lambda: platform.at_once == 4, what="four sends at once")
    await asyncio.sleep(0.1)  # the worker's chance to start a fifth, if it would
    platform.go.set()
    assert await draining == 30
    assert platform.most_at_once == 4
    assert sorted(recipient for recipient, _ in platform.sent) == sorted(
        str(n) for n in range(1, 31)
    )


async def test_a_stopping_worker_gives_back_what_it_has_not_started(database: str) -> None:
    await released("1", "2", "3", "4", "5")
    stopping = asyncio.Event()
    platform = Gated(hang={"1"})
    w = worker(platform, in_flight=1)
    draining = asyncio.create_task(w.drain_once(stopping))
    await eventually(lambda: platform.at_once == 1, what="the first send on the wire")
    stopping.set()  # while "1" is on the wire
    platform.go.set()
    assert await draining == 1
    rows = {r.external_id: r for r in await Delivery.all()}
    assert rows["1"].state == "sent"
    assert {(r.state, r.attempts, r.claimed_by) for n, r in rows.items() if n != "1"} == {
        ("queued", 0, "")
    }, "queued again as if never claimed"


async def test_a_stopping_worker_does_not_sit_out_a_retry_after(database: str) -> None:
    """Telegram may say "retry after 30"; SIGTERM must not wait for it."""
    await released("1", "2")
    stopping = asyncio.Event()
    platform = Platform()
    pacer = Watched(10_000, 10_000)
    w = dataclasses.replace(worker(platform), pacers={"telegram": pacer})
    await pacer.pause(600)
    draining = asyncio.create_task(w.drain_once(stopping))
    await eventually(claimed_count(2), what="both rows claimed")
    await asyncio.wait_for(pacer.reserved.wait(), 10)  # the worker now waits for its turn
    stopping.set()
    assert await asyncio.wait_for(draining, 30) == 0
    assert platform.sent == []
    assert set((await states()).values()) == {"queued"}, "both given back"


async def test_a_long_round_still_takes_over_the_rows_of_a_worker_gone_for_good(
    database: str,
) -> None:
    """A broadcast is one round of the pipeline; a dead worker's rows must not wait for its end."""
    await released(*(str(n) for n in range(1, 9)))
    dead = await deliveries.claim("dead:8080", "telegram", 2)
    await Delivery.filter(id__in=[row.id for row in dead]).update(
        claimed_at=datetime.now(UTC) - timedelta(minutes=10)
    )
    platform = Platform()
    w = worker(platform, batch=2, idle_seconds=0, lease=timedelta(minutes=5))
    assert await w.drain_once() == 8
    assert set((await states()).values()) == {"sent"}
    assert sorted(recipient for recipient, _ in platform.sent) == sorted(
        str(n) for n in range(1, 9)
    )


# --- any push: rendered at send time, with buttons, kept by its message id, edited ----------


def personal(
    key: str = "proposal:7:status:accepted", reply: Reply | None = None, **fields: object
) -> deliveries.Push:
    """A personal push with fixed words, as a proposal's status change will queue one."""
    words = reply or Reply("Your proposal #7 was accepted.")
    settings: dict[str, object] = {
        "source_kind": "proposal_status",
        "source_id": 7,
        "dedupe_key": key,
        "template": "reply",
        "params": words.to_json(),
        **fields,
    }
    return deliveries.Push(**settings)  # type: ignore[arg-type]


async def test_a_resident_who_changes_language_after_the_release_gets_the_new_one(
    database: str,
) -> None:
    for user_id, language in (("1", "lv"), ("2", "lv"), ("3", "en")):
        await resident(user_id, language=language)
    announcement = await announce({"kind": "all"}, lv="Sveiki", en="Hello", ru="Привет")
    await deliveries.release(announcement, datetime.now(UTC))
    async with open_session("telegram", "2", "") as session:
        await residents.set_language(session.resident, "ru")
    async with open_session("telegram", "3", "") as session:
        await residents.set_language(session.resident, "")  # none chosen: Latvian
    platform = Platform()
    assert await worker(platform).drain_once() == 3
    assert sorted(platform.sent) == [("1", "Sveiki"), ("2", "Привет"), ("3", "Sveiki")]


async def test_buttons_travel_with_the_push_and_the_row_keeps_the_message_id(
    database: str,
) -> None:
    rid = await resident("1")
    question = Reply("Is the street lit now?", [[Button("Yes", "poll:3:opt:1")]])
    await deliveries.queue(personal("poll:3:invitation", question), [(rid, "telegram", "1")])
    platform = Platform()
    assert await worker(platform).drain_once() == 1
    ((recipient, sent),) = platform.replies
    assert (recipient, sent.text, sent.buttons) == ("1", question.text, question.buttons)
    row = await Delivery.get()
    assert (row.state, row.message_id, row.operation) == ("sent", "101", "send")
    assert row.shown == digest(question)


async def test_an_edit_edits_that_message_through_the_pacer_and_skips_an_unchanged_one(
    database: str,
) -> None:
    rid = await resident("1")
    push = personal("poll:3:invitation", Reply("Votes: 1"))
    await deliveries.queue(push, [(rid, "telegram", "1")])
    platform = Platform()
    w = worker(platform)
    await w.drain_once()
    (message_id,) = await Delivery.all().values_list("message_id", flat=True)

    changed = personal("poll:3:invitation", Reply("Votes: 2"))
    assert await deliveries.queue_edit(changed, (rid, "telegram", "1"), message_id)
    assert await w.drain_once() == 1
    assert platform.edits == [("1", message_id, "Votes: 2")]
    assert w.pacers["telegram"].turns == ["1", "1"], "the edit waited its turn like a send"  # type: ignore[attr-defined]

    assert await deliveries.queue_edit(changed, (rid, "telegram", "1"), message_id)
    assert await w.drain_once() == 1
    assert len(platform.edits) == 1, "the same words again: no call"
    assert len(w.pacers["telegram"].turns) == 2, "and no turn of the rate spent"  # type: ignore[attr-defined]
    row = await Delivery.get()
    assert (row.state, row.message_id, len(platform.sent)) == ("sent", message_id, 1)


async def test_an_edit_the_platform_refuses_is_sent_anew_or_dropped_as_the_row_says(
    database: str,
) -> None:
    rid = await resident("1")
    to = (rid, "telegram", "1")
    await deliveries.queue_edit(personal("poll:3:invitation", Reply("Votes: 3")), to, "55")
    await deliveries.queue_edit(
        personal("announcement:1:report", Reply("Sent: 3"), if_edit_refused="drop"), to, "56"
    )
    platform = Platform()
    platform.editable = False
    w = worker(platform)
    await w.drain_once()  # both edits refused; the poll is queued again as a new message
    await w.drain_once()
    assert [message for _, message, _ in platform.edits] == ["55", "56"]
    assert platform.sent == [("1", "Votes: 3")]
    rows = dict(await Delivery.all().values_list("dedupe_key", "state"))
    assert rows == {"poll:3:invitation": "sent", "announcement:1:report": "failed"}


async def test_a_push_whose_source_is_gone_is_cancelled_not_sent(database: str) -> None:
    await resident("1")
    announcement = await announce({"kind": "all"})
    await deliveries.release(announcement, datetime.now(UTC))
    await Announcement.filter(id=announcement.id).update(state="cancelled")
    platform = Platform()
    await worker(platform).drain_once()
    assert platform.sent == []
    assert await Delivery.get().values_list("state", "error") == ("cancelled", "its source is gone")


async def test_a_personal_push_goes_before_the_broadcast_rows_already_claimed(
    database: str,
) -> None:
    """A batch holds seconds of the rate; a push to one resident queued meanwhile must not
    wait for its end: the worker looks for personal pushes between sends."""
    await released(*(str(n) for n in range(1, 31)))
    rid = await resident("999")

    class Busy(Platform):
        async def send(self, recipient: str, reply: Reply) -> str:
            if len(self.sent) == 2:  # the third send: a status change happens now
                await deliveries.queue(personal(), [(rid, "telegram", "999")])
            return await super().send(recipient, reply)

    platform = Busy()
    assert await worker(platform, batch=30, in_flight=1, priority_every=0).drain_once() == 31
    order = [recipient for recipient, _ in platform.sent]
    # Third on the wire when it was queued; the fourth had taken its place in the line.
    assert order.index("999") == 4, order
    assert sorted(order) == sorted([*(str(n) for n in range(1, 31)), "999"])


async def test_a_personal_push_in_the_next_batch_goes_before_the_rest_of_this_one(
    database: str,
) -> None:
    """Claims are pipelined: the next batch, claimed while half of this one is still to
    go, brings the personal push first; it must not wait behind that half."""
    await released(*(str(n) for n in range(1, 31)))
    rid = await resident("999")

    class Busy(Platform):
        async def send(self, recipient: str, reply: Reply) -> str:
            if len(self.sent) == 1:
                await deliveries.queue(personal(), [(rid, "telegram", "999")])
            await asyncio.sleep(0.1)  # time enough for the next claim to come back
            return await super().send(recipient, reply)

    platform = Busy()
    # No separate look for personal pushes: only the pipelined claim can find it.
    w = worker(platform, batch=10, in_flight=1, priority_every=3600)
    assert await w.drain_once() == 31
    order = [recipient for recipient, _ in platform.sent]
    # The next batch is claimed when 5 of this one are left; the first of them had taken
    # its place in the line by the time the claim came back. At 10 if it waited.
    assert order.index("999") == 6, order
    assert sorted(order) == sorted([*(str(n) for n in range(1, 31)), "999"])


async def test_quiet_hours_hold_a_personal_push_unless_it_is_exempt(database: str) -> None:
    """Priority is not urgency: a push to one resident still waits for the morning,
    unless it is exempt (a staff report, an urgent note)."""
    now = datetime.now(UTC)
    night = {
        "quiet_start": (now - timedelta(hours=1)).time(),
        "quiet_end": (now + timedelta(hours=1)).time(),
    }
    rid = await resident("1")
    to = [(rid, "telegram", "1")]
    await deliveries.queue(personal("proposal:7:status:accepted"), to)
    await deliveries.queue(personal("announcement:1:report", quiet_exempt=True), to)
    platform = Platform()
    assert await worker(platform, **night).drain_once() == 2
    assert len(platform.sent) == 1
    rows = {row.dedupe_key: row for row in await Delivery.all()}
    assert rows["announcement:1:report"].state == "sent"
    held = rows["proposal:7:status:accepted"]
    assert (held.state, held.priority, held.error) == ("queued", deliveries.PERSONAL, "quiet hours")
    assert held.not_before > now


async def test_through_telegram_a_push_is_sent_then_edited_in_place(database: str) -> None:
    """The whole path against the Bot API stand-in: sendMessage with the buttons, the
    row keeps Telegram's message_id, and the edit is an editMessageText of that message."""
    rid = await resident("2001")
    async with BotApiStandIn() as api:
        api.add_user(2001)
        channel = TelegramChannel(
            TelegramConfig(token=api.token, api_url=api.url, mode="webhook"),
            Dispatcher(Config()).feed,
            CommandMenu(),
            "lv",
        )
        await channel.start()
        try:
            w = DeliveryWorker(
                {"telegram": channel},
                Pushes(UTC_ZONE),
                {"telegram": CountingPacer(30, 1)},
                zone=UTC_ZONE,
                worker_id="test",
                quiet_start=time(0, 0),
                quiet_end=time(0, 0),
            )
            first = Reply("Votes: 0", [[Button("Vote", "poll:3:opt:1")]])
            await deliveries.queue(
                personal("poll:3:invitation", first), [(rid, "telegram", "2001")]
            )
            await w.drain_once()
            (message,) = api.delivered(2001)
            row = await Delivery.get()
            assert (row.state, row.message_id) == ("sent", str(message.message_id))
            assert message.callback_data() == ["poll:3:opt:1"]

            later = Reply("Votes: 1", [[Button("Vote", "poll:3:opt:1")]])
            push = personal("poll:3:invitation", later)
            assert await deliveries.queue_edit(push, (rid, "telegram", "2001"), row.message_id)
            await w.drain_once()
        finally:
            await channel.stop()
        (edited,) = api.messages(2001)
        assert (edited.message_id, edited.text) == (message.message_id, "Votes: 1")
        assert [r.method for r in api.requests if "Message" in r.method] == [
            "sendMessage",
            "editMessageText",
        ]
        assert w.pacers["telegram"].turns == ["2001", "2001"]  # type: ignore[attr-defined]
        assert api.errors == []
