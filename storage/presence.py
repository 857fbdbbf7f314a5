"""Which worker holds which resident's open chat: the web chat's claim reads it.

Only the worker that holds a resident's socket can deliver to it, so the
web chat's claim takes only the rows of residents present on the claiming
worker (``deliveries.claim`` with ``ClaimPolicy.PRESENT_HERE``). Chosen over
LISTEN/NOTIFY because it works the same on SQLite, needs no second delivery
path, and keeps the outbox the one source of truth.

A row is written when a resident's first tab opens on a worker and removed
when their last one closes. The worker refreshes all its rows in one UPDATE
every ``REFRESH_EVERY``, and deletes them when it starts (what a crash
left). A row not refreshed for ``FRESH_FOR`` counts as gone: its worker died.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections

from storage.models import Presence

REFRESH_EVERY = timedelta(seconds=5)
# Three refreshes missed: the worker is gone (a busy event loop may be late by one).
FRESH_FOR = 3 * REFRESH_EVERY


def _now() -> datetime:
    return datetime.now(UTC)


def fresh_since(now: datetime | None = None) -> datetime:
    """The oldest ``seen_at`` that still counts as present."""
    return (now or _now()) - FRESH_FOR


async def arrive(worker: str, channel: str, external_id: str) -> None:
    """The resident opened a chat on this worker (its first tab here)."""
    client = connections.get("default")
    marks = "$1, $2, $3, $4" if client.capabilities.dialect == "postgres" else "?, ?, ?, ?"
    seen = Presence._meta.fields_map["seen_at"].to_db_value(_now(), Presence)
    await client.execute_query(
        'INSERT INTO "presence" ("worker", "channel", "external_id", "seen_at") '
        f"VALUES ({marks}) "
        'ON CONFLICT ("worker", "channel", "external_id") DO UPDATE '
        'SET "seen_at" = excluded."seen_at"',
        [worker, channel, external_id, seen],
    )


async def leave(worker: str, channel: str, external_id: str) -> None:
    """The resident's last tab on this worker closed."""
    await Presence.filter(worker=worker, channel=channel, external_id=external_id).delete()


async def refresh(worker: str, now: datetime | None = None) -> set[tuple[str, str]]:
    """This worker is alive: all its rows are fresh again, in one UPDATE. Returns the
    (channel, external id) of the rows it has."""
    client = connections.get("default")
    marks = ("$1", "$2") if client.capabilities.dialect == "postgres" else ("?", "?")
    seen = Presence._meta.fields_map["seen_at"].to_db_value(now or _now(), Presence)
    rows = await client.execute_query_dict(
        f'UPDATE "presence" SET "seen_at" = {marks[0]} WHERE "worker" = {marks[1]} '
        'RETURNING "channel", "external_id"',
        [seen, worker],
    )
    return {(str(row["channel"]), str(row["external_id"])) for row in rows}


async def keep_alive(worker: str, channel: str, present: frozenset[str]) -> int:
    """The refresh: this worker's rows fresh again in one UPDATE, and, only when they are
    not whom the worker holds (an arrival or a departure whose write failed or crossed
    another), rewritten to match. Returns how many residents are present."""
    rows = {external for kind, external in await refresh(worker) if kind == channel}
    if rows != present:
        await Presence.filter(
            worker=worker, channel=channel, external_id__in=list(rows - present)
        ).delete()
        for external_id in sorted(present - rows):
            await arrive(worker, channel, external_id)
    return len(present)


async def clear(worker: str) -> int:
    """A worker starting: the rows it left when it stopped (or crashed) are gone."""
    return await Presence.filter(worker=worker).delete()


@dataclass(frozen=True, slots=True)
class Here:
    """What the web chat tells about its sockets, with the worker and channel bound in
    (the runtime hands it over: a channel reaches no storage of its own)."""

    worker: str
    channel: str

    async def arrive(self, user_id: str) -> None:
        await arrive(self.worker, self.channel, user_id)

    async def leave(self, user_id: str) -> None:
        await leave(self.worker, self.channel, user_id)
