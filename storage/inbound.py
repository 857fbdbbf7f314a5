"""Inbound events kept before they are acknowledged (Messenger's webhook).

Meta does not deliver again what it got a 200 for, so the webhook writes each
event here first and answers after the commit; the worker handles them right
after and marks them handled. A worker that died in between takes its own
unhandled rows back when it starts again (``unhandled`` with its id), and any
worker takes those of a worker gone for longer than the lease. A redelivered
event (same key) is not stored twice: ``accept`` returns only the new ones.

Once handled a row keeps its key and loses its body, so no message text stays
here; ``prune`` forgets the keys after a week, as ``storage.events`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.transactions import in_transaction

from storage.models import InboundEvent

KEEP = timedelta(days=7)  # Meta retries a failed delivery for up to 36 hours
LEASE = timedelta(minutes=5)  # an event claimed this long ago and not handled: its worker died
MAX_ATTEMPTS = 5  # an event that failed this often is given up (logged by the channel)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> object:
    return InboundEvent._meta.fields_map["received_at"].to_db_value(moment, InboundEvent)


async def accept(
    channel: str, worker: str, events: Sequence[tuple[str, str]]
) -> list[tuple[int, str]]:
    """Store ``(key, body)`` events, claimed by ``worker``, in one transaction; returns
    ``(id, body)`` of those not seen before, in the order given. Raises when the
    database does: the webhook must then not answer 200."""
    if not events:
        return []
    fresh: list[tuple[int, str]] = []
    now = _stamp(_now())
    async with in_transaction() as client:
        postgres = client.capabilities.dialect == "postgres"
        marks = "$1, $2, $3, $4, $5, $6, 1" if postgres else "?, ?, ?, ?, ?, ?, 1"
        for key, body in events:
            rows = await client.execute_query_dict(
                'INSERT INTO "inbound_event" ("channel", "key", "body", "received_at", '
                '"claimed_by", "claimed_at", "attempts") '
                f'VALUES ({marks}) ON CONFLICT ("channel", "key") DO NOTHING RETURNING "id"',
                [channel, key[:64], body, now, worker, now],
            )
            if rows:
                fresh.append((int(rows[0]["id"]), body))
    return fresh


async def handled(event_id: int) -> None:
    """The event has had its effect: only its key stays, to recognise a redelivery."""
    await InboundEvent.filter(id=event_id).update(body="", handled_at=_now())


async def unhandled(
    channel: str, worker: str, *, own: bool, lease: timedelta = LEASE, limit: int = 500
) -> list[tuple[int, str, int]]:
    """Claim for ``worker`` the channel's events left unhandled by a worker gone for
    longer than ``lease``, and with ``own`` (only when it starts: later its own rows
    are in its hands) those it claimed itself before a restart; ``(id, body,
    attempts)`` oldest first. Each claim counts an attempt, so an event that kills its
    worker every time is given up after ``MAX_ATTEMPTS``."""
    now = _now()
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        a, b, c, d, e = "$1", "$2", "$3", "$4", "$5"
        lock = " FOR UPDATE SKIP LOCKED"
    else:
        a, b, c, d, e = "?1", "?2", "?3", "?4", "?5"
        lock = ""
    mine = f'"claimed_by" = {b} OR ' if own else ""
    rows = await client.execute_query_dict(
        f'UPDATE "inbound_event" SET "claimed_by" = {b}, "claimed_at" = {c}, '
        '"attempts" = "attempts" + 1 WHERE "id" IN (SELECT "id" FROM "inbound_event" '
        f'WHERE "channel" = {a} AND "handled_at" IS NULL AND ({mine}"claimed_at" < {d}) '
        f'ORDER BY "id" LIMIT {e}{lock}) RETURNING "id", "body", "attempts"',
        [channel, worker, _stamp(now), _stamp(now - lease), limit],
    )
    found = [(int(row["id"]), str(row["body"]), int(row["attempts"])) for row in rows]
    return sorted(found)


async def prune(now: datetime | None = None) -> int:
    """Forget handled events older than KEEP; returns how many were removed."""
    cutoff = (now or _now()) - KEEP
    return await InboundEvent.filter(handled_at__lt=cutoff).delete()
