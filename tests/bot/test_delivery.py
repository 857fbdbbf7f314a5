"""The delivery worker drains the outbox and reports every row's fate."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.channels.base import PushRefused, RateLimited, RecipientBlocked
from bot.delivery import DeliveryWorker
from bot.messages import Reply
from bot.pacing import Pacer
from storage import deliveries
from storage.models import Delivery
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
    assert w.pacers["telegram"]._paused_until > 0
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
    assert row.state == "failed" and "ConnectionError: reset" in row.error


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
