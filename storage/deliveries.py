"""The durable outbox: every push is a row here before it is sent.

Rows are claimed in batches so that two workers never send the same row:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer, and one
dispatcher runs on it. A crash loses nothing: a row left "sending" past its
lease is queued again by ``requeue_abandoned``, and a worker that restarts
under the same id takes its own rows back at once (``requeue_mine``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import F, Subquery
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from storage import media
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


def _dialect() -> str:
    return str(connections.get("default").capabilities.dialect)


class _Params:
    """Placeholders for hand-written SQL: ``$1::type`` on PostgreSQL, ``?1`` on SQLite.

    PostgreSQL needs the casts where a parameter's type cannot be inferred (a
    SELECT list feeding an INSERT).
    """

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgres"
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str = "") -> str:
        self.values.append(value)
        # Numbered on both, so the SQL may name them in any order.
        if not self.postgres:
            return f"?{len(self.values)}"
        return f"${len(self.values)}::{cast}" if cast else f"${len(self.values)}"

    def many(self, values: Sequence[Any]) -> str:
        return ", ".join(self(value) for value in values)


def _audience_filter(audience: dict[str, Any], param: _Params) -> str:
    """The SQL condition on ``r`` (resident) for an audience, as ``recipients`` reads it."""
    kind, keys = audience.get("kind", "all"), list(audience.get("keys", []))
    if kind == "all":
        return ""
    if kind not in ("neighbourhood", "topic"):
        raise ValueError(f"unknown audience kind {kind!r}")
    if not keys:
        return " AND FALSE"
    if kind == "neighbourhood":
        return (
            ' AND r."neighbourhood_id" IN (SELECT n."id" FROM "neighbourhood" n '
            f'WHERE n."key" IN ({param.many(keys)}))'
        )
    # EXISTS, not a join: a resident following two of the topics gets one row.
    return (
        ' AND EXISTS (SELECT 1 FROM "subscription" s JOIN "topic" t ON t."id" = s."topic_id" '
        f'WHERE s."resident_id" = r."id" AND t."key" IN ({param.many(keys)}))'
    )


def _recipients_from(audience: dict[str, Any], param: _Params) -> str:
    """FROM … WHERE of the accounts an audience names (``ci``, with ``r`` their resident)."""
    return (
        'FROM "channel_identity" ci JOIN "resident" r ON r."id" = ci."resident_id" '
        'WHERE ci."unreachable_since" IS NULL AND r."onboarded_at" IS NOT NULL '
        f'AND r."announcements_muted" = {param(False, "boolean")}'
        f"{_audience_filter(audience, param)}"
    )


async def count_recipients(audience: dict[str, Any]) -> int:
    """How many accounts ``release`` would write a row for now, counted in the database."""
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    sql = (
        'SELECT COUNT(*) AS "n" FROM (SELECT DISTINCT ci."resident_id", ci."channel" '
        f"{_recipients_from(audience, param)}) AS audience"
    )
    rows = await client.execute_query_dict(sql, param.values)
    return int(rows[0]["n"])


async def release(announcement: Announcement, not_before: datetime) -> int:
    """Write one delivery row per recipient, in the announcement's transaction.

    One INSERT … SELECT, so no recipient passes through Python: memory stays
    flat whatever the audience. Same recipients as ``recipients``. Idempotent:
    the announcement's row is locked, and a second release writes nothing.
    ``announcement`` becomes "released" only if this call released it.
    """
    async with in_transaction() as client:
        fresh = await Announcement.select_for_update().using_db(client).get(id=announcement.id)
        if fresh.state != "scheduled":
            return fresh.recipients
        param = _Params(client.capabilities.dialect)
        texts = {language: text for language, text in fresh.texts.items() if text}
        fallback = param(texts.get("lv", ""), "text")
        # The resident's language when the announcement has a text in it, else Latvian.
        whens = "".join(
            f"WHEN {param(language, 'text')} THEN {param(text, 'text')} "
            for language, text in texts.items()
            if language != "lv"
        )
        text = f'CASE r."language" {whens}ELSE {fallback} END' if whens else fallback
        image = param(fresh.image, "text")
        if fresh.image_channel:
            # A platform's own file id means nothing elsewhere: there the copy we
            # keep is shown, or, if we have none, the text goes alone.
            on = param(fresh.image_channel, "text")
            kept = param(media.url(fresh.image_media) if fresh.image_media else "", "text")
            image = f'CASE WHEN ci."channel" = {on} THEN {image} ELSE {kept} END'
        sql = (
            'INSERT INTO "delivery" ("announcement_id", "resident_id", "channel", "external_id", '
            '"text", "image", "urgent", "state", "not_before", "attempts", "claimed_by", '
            '"error") '
            f'SELECT DISTINCT {param(fresh.id, "int")}, ci."resident_id", ci."channel", '
            f'ci."external_id", {text}, {image}, '
            f"{param(fresh.urgent, 'boolean')}, 'queued', "
            f"{param(_db_time(not_before), 'timestamptz')}, 0, '', '' "
            f"{_recipients_from(fresh.audience, param)}"
        )
        await client.execute_query(sql, param.values)
        # The INSERT's own row count is not reliable through Tortoise on asyncpg.
        count = await Delivery.filter(announcement_id=fresh.id).using_db(client).count()
        fresh.state, fresh.recipients, fresh.released_at = "released", count, _now()
        await fresh.save(update_fields=["state", "recipients", "released_at"], using_db=client)
        announcement.state, announcement.recipients = fresh.state, fresh.recipients
        return count


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
    """Report sends done: one hand-written UPDATE, as cheap as the send allows."""
    if not ids:
        return
    client = connections.get("default")
    moment = _db_time(_now())
    if client.capabilities.dialect == "postgres":
        sql = (
            'UPDATE "delivery" SET "state" = \'sent\', "sent_at" = $1, "error" = \'\' '
            'WHERE "id" = ANY($2::bigint[])'
        )
        await client.execute_query(sql, [moment, list(ids)])
    else:
        marks = ", ".join("?" * len(ids))
        sql = (
            'UPDATE "delivery" SET "state" = \'sent\', "sent_at" = ?, "error" = \'\' '
            f'WHERE "id" IN ({marks})'
        )
        await client.execute_query(sql, [moment, *ids])


async def give_back(ids: Sequence[int]) -> int:
    """A stopping worker returns rows it claimed and never started: queued again,
    the claim's attempt not counted."""
    if not ids:
        return 0
    return await Delivery.filter(id__in=list(ids), state="sending").update(
        state="queued", claimed_by="", attempts=F("attempts") - 1
    )


# --- the send budget: one rate per bot token, whatever the number of workers -------
# The database's clock, in seconds since the epoch, so workers on several hosts agree.
_DB_NOW = {
    "postgres": "extract(epoch from clock_timestamp())::float8",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_GREATEST = {"postgres": "GREATEST", "sqlite": "MAX"}


def _budget_sql(template: str, channel: str, seconds: float) -> tuple[str, list[Any]]:
    """Fill NOW, GREATEST, :channel and :seconds in for the database in use."""
    dialect = _dialect()
    sql = template.replace("NOW", _DB_NOW[dialect]).replace("GREATEST", _GREATEST[dialect])
    if dialect == "postgres":
        sql = sql.replace(":channel", "$1").replace(":seconds", "$2::float8")
        return sql, [channel, seconds]
    names = re.findall(r":(channel|seconds)", sql)
    params = [channel if name == "channel" else seconds for name in names]
    return re.sub(r":(channel|seconds)", "?", sql), params


async def reserve_sends(channel: str, span: float) -> float:
    """Book the channel's next ``span`` seconds of sending for this worker.

    Returns how many seconds from now the booked span starts (0 or more). One
    atomic statement: two workers never get overlapping spans, so together
    they keep to the channel's rate.
    """
    sql, params = _budget_sql(
        'INSERT INTO "send_budget" ("channel", "next_free") VALUES (:channel, NOW + :seconds) '
        'ON CONFLICT ("channel") DO UPDATE SET '
        '"next_free" = GREATEST("send_budget"."next_free", NOW) + :seconds '
        'RETURNING "next_free" - :seconds - NOW AS "wait"',
        channel,
        span,
    )
    rows = await connections.get("default").execute_query_dict(sql, params)
    return max(0.0, float(rows[0]["wait"]))


async def hold_sends(channel: str, seconds: float) -> None:
    """The platform said "retry after": no worker books a span before then."""
    sql, params = _budget_sql(
        'INSERT INTO "send_budget" ("channel", "next_free") VALUES (:channel, NOW + :seconds) '
        'ON CONFLICT ("channel") DO UPDATE SET '
        '"next_free" = GREATEST("send_budget"."next_free", NOW + :seconds)',
        channel,
        seconds,
    )
    await connections.get("default").execute_query(sql, params)


# A worker's report on a row it claimed changes it only while it is still
# "sending": a row staff stopped (cancelled) or found blocked meanwhile stays so.


async def retry_later(delivery_id: int, at: datetime, error: str) -> None:
    """Back to the queue, due again at ``at`` (a 429's retry_after, a backoff)."""
    await Delivery.filter(id=delivery_id, state="sending").update(
        state="queued", not_before=at, error=error[:256]
    )


async def mark_failed(delivery_id: int, error: str) -> None:
    await Delivery.filter(id=delivery_id, state="sending").update(state="failed", error=error[:256])


async def mark_waiting(delivery: Claimed, reason: str) -> None:
    """A channel refused the push by policy; it waits for the resident to write."""
    async with in_transaction():
        held = await Delivery.filter(id=delivery.id, state="sending").update(
            state="waiting", error=reason[:256]
        )
        if held:
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
