"""The durable outbox: every push is a row here before it is sent.

Rows are claimed in batches so that two workers never send the same row:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer, and one
dispatcher runs on it. A crash loses nothing: a row left "sending" past its
lease is queued again by ``requeue_abandoned``, and a worker that restarts
under the same id takes its own rows back at once (``requeue_mine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import Subquery
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from storage.models import Announcement, ChannelIdentity, Delivery, Resident

STATES = ("queued", "sending", "sent", "failed", "blocked", "waiting")
BATCH = 1000


def _now() -> datetime:
    return datetime.now(UTC)


def _db_time(moment: datetime) -> Any:
    """A datetime as Tortoise stores it, for hand-written SQL."""
    return Delivery._meta.fields_map["not_before"].to_db_value(moment, Delivery)


CLAIMED_COLUMNS = (
    "id",
    "resident_id",
    "channel",
    "external_id",
    "text",
    "image",
    "urgent",
    "attempts",
)


RETURNING = ", ".join(f'"{column}"' for column in CLAIMED_COLUMNS)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker now owns until it reports back."""

    id: int
    resident_id: int
    channel: str
    external_id: str
    text: str
    image: str
    urgent: bool
    attempts: int


async def recipients(audience: dict[str, Any]) -> list[tuple[int, str, str, str]]:
    """(resident id, language, channel, external id) of everyone the audience names.

    Only onboarded residents who have not muted announcements, on a reachable
    account; a neighbourhood or topic audience with no keys names nobody.
    """
    # One joined query: an audience of 100,000 must not become 100,000 parameters.
    query = ChannelIdentity.filter(
        unreachable_since__isnull=True,
        resident__onboarded_at__not_isnull=True,
        resident__announcements_muted=False,
    )
    kind, keys = audience.get("kind", "all"), list(audience.get("keys", []))
    if kind == "neighbourhood":
        query = query.filter(resident__neighbourhood__key__in=keys)
    elif kind == "topic":
        query = query.filter(resident__subscriptions__topic__key__in=keys)
    elif kind != "all":
        raise ValueError(f"unknown audience kind {kind!r}")
    rows = await query.distinct().values_list(
        "resident_id", "resident__language", "channel", "external_id"
    )
    return [(rid, language or "lv", channel, ext) for rid, language, channel, ext in rows]


async def release(announcement: Announcement, not_before: datetime) -> int:
    """Write one delivery row per recipient, in the announcement's transaction.

    Idempotent: a second release of the same announcement writes nothing.
    """
    async with in_transaction():
        fresh = await Announcement.select_for_update().get(id=announcement.id)
        if fresh.state != "scheduled":
            return fresh.recipients
        targets = await recipients(fresh.audience)
        texts = fresh.texts
        rows = [
            Delivery(
                announcement_id=fresh.id,
                resident_id=resident_id,
                channel=channel,
                external_id=external_id,
                text=texts.get(language) or texts.get("lv", ""),
                image=fresh.image,
                urgent=fresh.urgent,
                not_before=not_before,
            )
            for resident_id, language, channel, external_id in targets
        ]
        await Delivery.bulk_create(rows, batch_size=BATCH)
        fresh.state, fresh.recipients, fresh.released_at = "released", len(rows), _now()
        await fresh.save(update_fields=["state", "recipients", "released_at"])
        announcement.state, announcement.recipients = fresh.state, fresh.recipients
        return len(rows)


async def claim(
    worker: str, channel: str, limit: int, now: datetime | None = None
) -> list[Claimed]:
    """Take up to ``limit`` due rows of a channel for this worker, urgent first."""
    client = connections.get("default")
    moment = _db_time(now or _now())
    if client.capabilities.dialect == "postgres":
        marks, params = ("$1", "$2", "$3", "$2", "$4"), [worker, moment, channel, limit]
        lock = " FOR UPDATE SKIP LOCKED"
    else:
        marks, params = ("?",) * 5, [worker, moment, channel, moment, limit]
        lock = ""  # SQLite has one writer; one dispatcher runs on it
    sql = (
        f'UPDATE "delivery" SET "state" = \'sending\', "claimed_by" = {marks[0]}, '
        f'"claimed_at" = {marks[1]}, "attempts" = "attempts" + 1 '
        f'WHERE "id" IN (SELECT "id" FROM "delivery" WHERE "state" = \'queued\' '
        f'AND "channel" = {marks[2]} AND "not_before" <= {marks[3]} '
        f'ORDER BY "urgent" DESC, "id" LIMIT {marks[4]}{lock}) '
        f"RETURNING {RETURNING}"
    )
    rows = await client.execute_query_dict(sql, params)
    # SQLite hands booleans back as 0 and 1.
    claimed = [Claimed(**{**row, "urgent": bool(row["urgent"])}) for row in rows]
    return sorted(claimed, key=lambda row: row.id)


async def mark_sent(ids: Sequence[int]) -> None:
    if ids:
        await Delivery.filter(id__in=list(ids)).update(state="sent", sent_at=_now(), error="")


async def retry_later(delivery_id: int, at: datetime, error: str) -> None:
    """Back to the queue, due again at ``at`` (a 429's retry_after, a backoff)."""
    await Delivery.filter(id=delivery_id).update(state="queued", not_before=at, error=error[:256])


async def mark_failed(delivery_id: int, error: str) -> None:
    await Delivery.filter(id=delivery_id).update(state="failed", error=error[:256])


async def mark_waiting(delivery: Claimed, reason: str) -> None:
    """A channel refused the push by policy; it waits for the resident to write."""
    async with in_transaction():
        await Delivery.filter(id=delivery.id).update(state="waiting", error=reason[:256])
        await Resident.filter(id=delivery.resident_id).update(pushes_held=True)


async def resident_returned(resident: Resident, channel: str, external_id: str) -> int:
    """The resident wrote on this account: it is reachable again, and what waited
    for it is due now (the catch-up). The caller's session saves the flag."""
    await ChannelIdentity.filter(channel=channel, external_id=external_id).update(
        unreachable_since=None
    )
    released = await Delivery.filter(
        channel=channel, external_id=external_id, state="waiting"
    ).update(state="queued", not_before=_now(), error="")
    resident.pushes_held = False
    return released


async def mark_blocked(channel: str, external_id: str, reason: str) -> int:
    """The resident blocked the bot: mark the account and stop every push to it."""
    async with in_transaction():
        await ChannelIdentity.filter(
            channel=channel, external_id=external_id, unreachable_since__isnull=True
        ).update(unreachable_since=_now())
        owners = ChannelIdentity.filter(channel=channel, external_id=external_id)
        await Resident.filter(id__in=Subquery(owners.values("resident_id"))).update(
            pushes_held=True
        )
        return await Delivery.filter(
            channel=channel, external_id=external_id, state__in=["queued", "sending", "waiting"]
        ).update(state="blocked", error=reason[:256])


async def requeue_abandoned(lease: timedelta, now: datetime | None = None) -> int:
    """Queue again what a worker claimed and has not reported on for ``lease``:
    that worker died and did not come back."""
    cutoff = (now or _now()) - lease
    return await Delivery.filter(state="sending", claimed_at__lt=cutoff).update(
        state="queued", claimed_by=""
    )


async def requeue_mine(worker: str) -> int:
    """A worker starting again takes back at once what it had claimed before it stopped."""
    return await Delivery.filter(state="sending", claimed_by=worker).update(
        state="queued", claimed_by=""
    )


async def counts(announcement_id: int) -> dict[str, int]:
    """How many deliveries of an announcement are in each state."""
    rows = (
        await Delivery.filter(announcement_id=announcement_id)
        .annotate(n=Count("id"))
        .group_by("state")
        .values_list("state", "n")
    )
    result = dict.fromkeys(STATES, 0)
    for state, n in rows:
        result[str(state)] = int(n)
    return result


async def due_announcements(now: datetime | None = None) -> list[Announcement]:
    return await Announcement.filter(state="scheduled", send_at__lte=now or _now()).order_by("id")


async def create_announcement(
    *,
    author: str,
    texts: dict[str, str],
    audience: dict[str, Any],
    send_at: datetime,
    urgent: bool = False,
    image: str = "",
) -> Announcement:
    return await Announcement.create(
        author=author, texts=texts, audience=audience, send_at=send_at, urgent=urgent, image=image
    )
