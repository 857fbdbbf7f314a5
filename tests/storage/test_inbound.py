"""Inbound events kept before Meta gets its 200: stored once however often delivered,
handled rows keep no text, and a dead worker's events are taken back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from storage import inbound
from storage.models import InboundEvent

CHANNEL = "messenger"


async def test_a_redelivered_event_is_not_stored_twice(database: str) -> None:
    first = await inbound.accept(CHANNEL, "w1", [("k1", '{"a": 1}'), ("k2", '{"b": 2}')])
    assert [body for _, body in first] == ['{"a": 1}', '{"b": 2}']
    again = await inbound.accept(CHANNEL, "w1", [("k2", '{"b": 2}'), ("k3", '{"c": 3}')])
    assert [body for _, body in again] == ['{"c": 3}']
    assert await InboundEvent.all().count() == 3


async def test_concurrent_deliveries_of_one_event_store_it_once(database: str) -> None:
    results = await asyncio.gather(
        *(inbound.accept(CHANNEL, f"w{i}", [("same", "{}")]) for i in range(8))
    )
    assert sum(len(result) for result in results) == 1


async def test_a_handled_event_keeps_its_key_and_loses_its_body(database: str) -> None:
    [(event_id, _)] = await inbound.accept(CHANNEL, "w1", [("k", '{"text": "my address"}')])
    await inbound.handled(event_id)
    row = await InboundEvent.get(id=event_id)
    assert row.body == "" and row.handled_at is not None
    assert await inbound.accept(CHANNEL, "w1", [("k", '{"text": "my address"}')]) == []


async def test_a_restarted_worker_takes_back_its_own_and_a_dead_workers_old_events(
    database: str,
) -> None:
    await inbound.accept(CHANNEL, "w1", [("mine", "{}")])
    await inbound.accept(CHANNEL, "w2", [("theirs-fresh", "{}"), ("theirs-old", "{}")])
    await InboundEvent.filter(key="theirs-old").update(
        claimed_at=datetime.now(UTC) - inbound.LEASE - timedelta(seconds=1)
    )
    # While running, a worker's own events are in its hands: a sweep takes only the old.
    swept = await inbound.unhandled(CHANNEL, "w1", own=False)
    assert [await key_of(event_id) for event_id, _, _ in swept] == ["theirs-old"]
    await inbound.handled(swept[0][0])
    taken = await inbound.unhandled(CHANNEL, "w1", own=True)
    assert [await key_of(event_id) for event_id, _, _ in taken] == ["mine"]
    assert [attempts for _, _, attempts in taken] == [2]  # received, then taken back
    assert await inbound.unhandled(CHANNEL, "w3", own=True) == []


async def test_handled_keys_are_forgotten_after_a_week(database: str) -> None:
    [(old, _)] = await inbound.accept(CHANNEL, "w1", [("old", "{}")])
    [(new, _)] = await inbound.accept(CHANNEL, "w1", [("new", "{}")])
    await inbound.handled(old)
    await inbound.handled(new)
    await InboundEvent.filter(id=old).update(
        handled_at=datetime.now(UTC) - inbound.KEEP - timedelta(hours=1)
    )
    assert await inbound.prune() == 1
    assert await InboundEvent.all().values_list("key", flat=True) == ["new"]


async def key_of(event_id: int) -> str:
    return str(await InboundEvent.get(id=event_id).values_list("key", flat=True))
