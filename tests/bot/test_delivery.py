"""The delivery worker drains the outbox and reports every row's fate."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.core.channel import PushRefused, RateLimited, RecipientBlocked
from bot.core.messages import Reply
from bot.delivery import DeliveryWorker
from bot.pacing import Pacer
from storage import deliveries
from storage.models import Delivery
from tests.bot.channels.telegram_helpers import eventually
from tests.storage.test_deliveries import announce, resident

UTC_ZONE = ZoneInfo("UTC")


class Platform:
    """A recording sender that fails as told, per recipient."""

    def __init__(self, faults: dict[str, list[Exception]] | None = None) -> None:
        self.faults = faults or {}
        self.sent: list[tuple[str, str]] = []

    async def send(self, recipient: str, reply: Reply) -> None:
        pending = self.faults.get(recipient)
        if pending:
            raise pending.pop(0)
        self.sent.append((recipient, reply.text))


def worker(platform: Platform, **options: object) -> DeliveryWorker:
    """A worker with no quiet hours (unless a test sets them) and a generous pacer."""
    settings: dict[str, object] = {"quiet_start": time(0, 0), "quiet_end": time(0, 0), **options}
    return DeliveryWorker(
        senders={"telegram": platform.send},
        pacers={"telegram": Pacer(10_000, 10_000)},
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


async def test_quiet_hours_hold_an_ordinary_push_but_not_an_urgent_one(database: str) -> None:
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

    async def send(self, recipient: str, reply: Reply) -> None:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            if recipient in self.hang:
                await self.go.wait()
            await asyncio.sleep(0)
            await super().send(recipient, reply)
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
