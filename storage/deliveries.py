"""The durable outbox: every push is a row here before it is sent.

A row names its source (what caused it) and a dedupe key unique per
resident and channel, so whatever calls ``queue`` twice, the push is queued
once. It stores no words: a template key and JSON parameters, which the
delivery worker renders at send time in the resident's language then
(``Claimed.language``). It sends a new message, or edits one sent earlier
(``queue_edit``), through the same paced queue.

Rows are claimed in batches, highest priority first, so that two workers
never send the same row: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
has one writer, and one dispatcher runs on it. A crash loses nothing: a row
left "sending" past its lease is queued again by ``requeue_abandoned``, and
a worker that restarts under the same id takes its own rows back at once
(``requeue_mine``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tortoise import connections
from tortoise.expressions import F, Subquery
from tortoise.functions import Count, Min
from tortoise.transactions import in_transaction

from bot.core.channel import ClaimPolicy
from bot.core.messages import REPLY_TEMPLATE, Reply
from bot.core.metrics import Queued
from storage import presence
from storage.models import Announcement, ChannelIdentity, Delivery, Resident

STATES = ("queued", "sending", "sent", "failed", "blocked", "waiting")
BATCH = 1000
# Rows a round moves to "waiting" in one statement at most (their residents are flagged
# by id, and a statement takes only so many parameters).
HOLD_BATCH = 5000

# Priorities: higher goes first. A push to one resident (a status change, a staff note, a
# staff report) must not wait behind a city-wide broadcast.
BROADCAST = 0
PERSONAL = 10

# The source and template of an announcement's own rows, written in SQL by ``release``.
ANNOUNCEMENT = "announcement"
# The source and template of a catch-up: several held pushes as one message. Its items
# are "digested" while it goes, and count as sent once it is.
DIGEST = "digest"

EditRefused = Literal["send", "drop"]


def _now() -> datetime:
    return datetime.now(UTC)


def _db_time(moment: datetime) -> Any:
    """A datetime as Tortoise stores it, for hand-written SQL."""
    return Delivery._meta.fields_map["not_before"].to_db_value(moment, Delivery)


def params_json(params: dict[str, Any]) -> str:
    """Parameters as stored: one spelling for one value, so equal pushes render once."""
    return json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Push:
    """What to deliver, whoever it goes to: its source, its dedupe key, its template.

    ``priority`` orders the queue; ``quiet_exempt`` lets it go during quiet
    hours (an urgent announcement, a staff report). ``if_edit_refused`` says
    what happens when the platform will not edit the message: "send" it anew,
    or "drop" the edit (a staff report that is gone).
    """

    source_kind: str  # "announcement", "announcement_report", "proposal_status", …
    source_id: int
    dedupe_key: str  # unique per resident and channel: "proposal:12:status:accepted"
    template: str
    params: dict[str, Any] = field(default_factory=dict)
    priority: int = PERSONAL
    quiet_exempt: bool = False
    if_edit_refused: EditRefused = "send"


CLAIMED_COLUMNS = (
    "id",
    "resident_id",
    "channel",
    "external_id",
    "template",
    "params",
    "operation",
    "message_id",
    "shown",
    "if_edit_refused",
    "priority",
    "quiet_exempt",
    "attempts",
)


# The resident's language as it is now, read in the claim itself: a push is rendered in it.
RETURNING = ", ".join(f'"{column}"' for column in CLAIMED_COLUMNS) + (
    ', (SELECT r."language" FROM "resident" r WHERE r."id" = "delivery"."resident_id") '
    'AS "language"'
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery a worker now owns until it reports back."""

    id: int
    resident_id: int
    channel: str
    external_id: str
    template: str
    params: str  # JSON text, as stored: the worker decodes it once per distinct push
    operation: str  # "send" or "edit"
    message_id: str  # the message to edit, for an edit
    shown: str  # the digest of what that message shows
    if_edit_refused: str
    priority: int
    quiet_exempt: bool
    attempts: int
    language: str  # the resident's chosen language now; "" when none


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


def _recipients_from(
    audience: dict[str, Any],
    param: _Params,
    channels: Sequence[str] = (),
    unanswered: int | None = None,
) -> str:
    """FROM … WHERE of the accounts an audience names (``ci``, with ``r`` their resident):
    only on ``channels`` when given, and, with ``unanswered`` (a poll's id), only residents
    whose answer to that poll does not count yet."""
    only = f' AND ci."channel" IN ({param.many(channels)})' if channels else ""
    if unanswered is not None:
        only += (
            ' AND NOT EXISTS (SELECT 1 FROM "ballot" b WHERE b."resident_id" = r."id" '
            f'AND b."poll_id" = {param(unanswered, "int")} AND b."choices" <> 0)'
        )
    return (
        'FROM "channel_identity" ci JOIN "resident" r ON r."id" = ci."resident_id" '
        'WHERE ci."unreachable_since" IS NULL AND r."onboarded_at" IS NOT NULL '
        f'AND r."announcements_muted" = {param(False, "boolean")}'
        f"{_audience_filter(audience, param)}{only}"
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


async def count_audience(audience: dict[str, Any], channels: Sequence[str] = ()) -> int:
    """How many residents (not accounts) an audience names now, on ``channels`` if given."""
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    sql = (
        'SELECT COUNT(DISTINCT ci."resident_id") AS "n" '
        f"{_recipients_from(audience, param, channels)}"
    )
    rows = await client.execute_query_dict(sql, param.values)
    return int(rows[0]["n"])


# The columns every hand-written INSERT fills, in this order (see ``_row_values``).
INSERT_COLUMNS = (
    "source_kind",
    "source_id",
    "dedupe_key",
    "resident_id",
    "channel",
    "external_id",
    "template",
    "params",
    "operation",
    "message_id",
    "priority",
    "quiet_exempt",
    "if_edit_refused",
    "state",
    "not_before",
    "attempts",
    "claimed_by",
    "error",
    "shown",
    "stale",
)
INSERT_INTO = (
    'INSERT INTO "delivery" (' + ", ".join(f'"{column}"' for column in INSERT_COLUMNS) + ") "
)
ON_CONFLICT = 'ON CONFLICT ("resident_id", "channel", "dedupe_key")'


def _push_values(
    push: Push, not_before: datetime, param: _Params
) -> tuple[str, str, str, str, str, str, str, str, str]:
    """Placeholders for what a push's rows share, numbered once and used by every row."""
    return (
        param(push.source_kind, "text"),
        param(push.source_id, "bigint"),
        param(push.dedupe_key, "text"),
        param(push.template, "text"),
        param(params_json(push.params), "text"),
        param(push.priority, "smallint"),
        param(push.quiet_exempt, "boolean"),
        param(push.if_edit_refused, "text"),
        param(_db_time(not_before), "timestamptz"),
    )


def _row_values(
    shared: tuple[str, ...],
    resident: str,
    channel: str,
    external: str,
    operation: str,
    message: str,
) -> str:
    kind, source, key, template, params, priority, exempt, refused, not_before = shared
    return (
        f"({kind}, {source}, {key}, {resident}, {channel}, {external}, {template}, {params}, "
        f"{operation}, {message}, {priority}, {exempt}, {refused}, 'queued', {not_before}, 0, "
        "'', '', '', FALSE)"
    )


Recipient = tuple[int, str, str]  # resident id, channel, external id


async def accounts_of(resident_ids: Iterable[int]) -> list[Recipient]:
    """Every reachable account of these residents: where a push to them goes."""
    rows = await ChannelIdentity.filter(
        resident_id__in=list(resident_ids), unreachable_since__isnull=True
    ).values_list("resident_id", "channel", "external_id")
    return [(int(r), str(c), str(e)) for r, c, e in rows]


async def staff_accounts(accounts: Iterable[tuple[str, str]]) -> list[Recipient]:
    """The reachable ones among staff accounts (channel, platform id) that have written to
    the bot: where a note to staff goes."""
    wanted = set(accounts)
    if not wanted:
        return []
    rows = await ChannelIdentity.filter(
        channel__in={channel for channel, _ in wanted},
        external_id__in={external_id for _, external_id in wanted},
        unreachable_since__isnull=True,
    ).values_list("resident_id", "channel", "external_id")
    return [(int(r), str(c), str(e)) for r, c, e in rows if (c, e) in wanted]


async def queue(
    push: Push, recipients: Iterable[Recipient], not_before: datetime | None = None
) -> int:
    """Queue a push to each recipient; returns how many rows were written.

    A recipient who already has a row with this dedupe key gets none: the same
    push is never queued twice, whatever calls this twice. Runs in the caller's
    transaction, if any, so a push is queued with the change that caused it.
    """
    client = connections.get("default")
    written = 0
    rows = list(recipients)
    for start in range(0, len(rows), BATCH):
        param = _Params(client.capabilities.dialect)
        shared = _push_values(push, not_before or _now(), param)
        send, none = param("send", "text"), param("", "text")
        values = ", ".join(
            _row_values(
                shared, param(rid, "int"), param(channel, "text"), param(ext, "text"), send, none
            )
            for rid, channel, ext in rows[start : start + BATCH]
        )
        sql = f'{INSERT_INTO}VALUES {values} {ON_CONFLICT} DO NOTHING RETURNING "id"'
        written += len(await client.execute_query_dict(sql, param.values))
    return written


async def queue_answer(channel: str, external_id: str, replies: Sequence[Reply]) -> int:
    """An answer the channel could not deliver in time goes on through the outbox.

    Each message is a personal push with its own words (buttons kept), in order,
    exempt from quiet hours (the resident is waiting for it), so it reaches the
    resident ahead of any broadcast even if this worker stops. Returns how many
    were queued: none if the resident was forgotten meanwhile.
    """
    identity = await ChannelIdentity.get_or_none(channel=channel, external_id=external_id)
    if identity is None:
        return 0
    answer = uuid.uuid4().hex[:16]
    recipient = [(identity.resident_id, channel, external_id)]  # type: ignore[attr-defined]
    queued = 0
    for index, reply in enumerate(replies):
        push = Push(
            source_kind="answer",
            source_id=0,
            dedupe_key=f"answer:{answer}:{index}",
            template=REPLY_TEMPLATE,
            params=reply.to_json(),
            priority=PERSONAL,
            quiet_exempt=True,
        )
        queued += await queue(push, recipient)
    return queued


async def queue_edit(
    push: Push, recipient: Recipient, message_id: str, not_before: datetime | None = None
) -> bool:
    """Make a message sent earlier show the push's current content: queue an edit of it.

    One row per dedupe key, reused: the first call writes an "edit" of
    ``message_id``; once that row is sent (or failed), a later call queues it
    again. While it is queued nothing is needed (it is rendered when sent);
    while it is being sent it is marked stale, and queued again as soon as it
    is reported sent. Returns whether anything was queued or marked. A row
    whose edit was dropped (``if_edit_refused="drop"``), or that is blocked or
    cancelled, is left alone. The message edited is the row's own once it has
    one (a message sent anew replaces the one given here).
    """
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    shared = _push_values(push, not_before or _now(), param)
    resident, channel, external = recipient
    operation = "edit" if message_id else "send"
    values = _row_values(
        shared,
        param(resident, "int"),
        param(channel, "text"),
        param(external, "text"),
        param(operation, "text"),
        param(message_id, "text"),
    )
    busy = '"delivery"."state" = \'sending\''
    sql = (
        f"{INSERT_INTO}VALUES {values} {ON_CONFLICT} DO UPDATE SET "
        '"template" = excluded."template", "params" = excluded."params", '
        '"priority" = excluded."priority", "quiet_exempt" = excluded."quiet_exempt", '
        '"if_edit_refused" = excluded."if_edit_refused", '
        f'"stale" = {busy}, '
        f"\"state\" = CASE WHEN {busy} THEN 'sending' ELSE 'queued' END, "
        f'"operation" = CASE WHEN {busy} THEN "delivery"."operation" ELSE \'edit\' END, '
        f'"attempts" = CASE WHEN {busy} THEN "delivery"."attempts" ELSE 0 END, '
        f'"not_before" = CASE WHEN {busy} THEN "delivery"."not_before" '
        'ELSE excluded."not_before" END, '
        f'"claimed_by" = CASE WHEN {busy} THEN "delivery"."claimed_by" ELSE \'\' END, '
        f'"error" = CASE WHEN {busy} THEN "delivery"."error" ELSE \'\' END '
        f"WHERE {busy} OR (\"delivery\".\"state\" IN ('sent', 'failed') "
        'AND "delivery"."message_id" <> \'\') '
        'RETURNING "id"'
    )
    return bool(await client.execute_query_dict(sql, param.values))


async def release(announcement: Announcement, not_before: datetime) -> int:
    """Write one delivery row per recipient, in the announcement's transaction.

    One INSERT … SELECT, so no recipient passes through Python: memory stays
    flat whatever the audience. Same recipients as ``recipients``. The rows
    hold no text: each is rendered when sent, in its resident's language then.
    Idempotent: the announcement's row is locked, a second release writes
    nothing, and the dedupe key would keep out a second row anyway.
    ``announcement`` becomes "released" only if this call released it.
    """
    async with in_transaction() as client:
        fresh = await Announcement.select_for_update().using_db(client).get(id=announcement.id)
        if fresh.state != "scheduled":
            return fresh.recipients
        push = Push(
            ANNOUNCEMENT,
            fresh.id,
            f"{ANNOUNCEMENT}:{fresh.id}",
            ANNOUNCEMENT,
            {"announcement": fresh.id},
            priority=BROADCAST,
            quiet_exempt=fresh.urgent,
        )
        audience = fresh.audience
        await _insert_select(push, not_before, lambda param: _recipients_from(audience, param))
        count = (
            await Delivery.filter(source_kind=ANNOUNCEMENT, source_id=fresh.id)
            .using_db(client)
            .count()
        )
        fresh.state, fresh.recipients, fresh.released_at = "released", count, _now()
        await fresh.save(update_fields=["state", "recipients", "released_at"], using_db=client)
        announcement.state, announcement.recipients = fresh.state, fresh.recipients
        return count


async def _insert_select(
    push: Push, not_before: datetime, rows_from: Callable[[_Params], str]
) -> int:
    """One INSERT … SELECT of a push's rows: ``rows_from(param)`` is the FROM … WHERE naming
    the accounts (``ci``). Returns how many rows this call wrote."""
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    kind, source, key, template, params, priority, exempt, refused, at = _push_values(
        push, not_before, param
    )
    sql = (
        f'{INSERT_INTO}SELECT DISTINCT {kind}, {source}, {key}, ci."resident_id", '
        f"ci.\"channel\", ci.\"external_id\", {template}, {params}, 'send', '', "
        f"{priority}, {exempt}, {refused}, 'queued', {at}, 0, '', '', '', FALSE "
        f"{rows_from(param)} {ON_CONFLICT} DO NOTHING"
    )
    mine = Delivery.filter(source_kind=push.source_kind, source_id=push.source_id)
    before = await mine.count()
    await client.execute_query(sql, param.values)
    # The INSERT's own row count is not reliable through Tortoise on asyncpg.
    return await mine.count() - before


async def queue_audience(
    push: Push,
    audience: dict[str, Any],
    not_before: datetime,
    *,
    channels: Sequence[str] = (),
    unanswered: int | None = None,
) -> int:
    """Queue a push to every account an audience names (as ``release`` does, in one
    INSERT … SELECT, in the caller's transaction); ``channels`` and ``unanswered`` narrow
    it as in ``_recipients_from``. Returns how many rows this call wrote."""
    return await _insert_select(
        push,
        not_before,
        lambda param: _recipients_from(audience, param, channels, unanswered),
    )


async def residents_of(source_kind: str, source_id: int) -> int:
    """How many residents a source's pushes were queued to (a poll's invitation)."""
    rows = await Delivery.filter(source_kind=source_kind, source_id=source_id).values_list(
        "resident_id", flat=True
    )
    return len(set(rows))


async def queue_voters(push: Push, poll_id: int) -> int:
    """Queue a push to every reachable account of the residents whose answer to a poll
    counts (its results at closing), in one INSERT … SELECT."""

    def voters(param: _Params) -> str:
        return (
            'FROM "ballot" b JOIN "channel_identity" ci ON ci."resident_id" = b."resident_id" '
            f'WHERE b."poll_id" = {param(poll_id, "int")} AND b."choices" <> 0 '
            'AND ci."unreachable_since" IS NULL'
        )

    return await _insert_select(push, _now(), voters)


async def claim(
    worker: str,
    channel: str,
    limit: int,
    now: datetime | None = None,
    *,
    min_priority: int | None = None,
    policy: ClaimPolicy = ClaimPolicy.ANYONE,
) -> list[Claimed]:
    """Take up to ``limit`` due rows of a channel for this worker, highest priority first
    (then oldest); with ``min_priority``, only rows of that priority or more; only those
    the channel's ``policy`` lets this worker deliver (``allowed_here``)."""
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    at = now or _now()
    worker_mark, moment = param(worker, "text"), param(_db_time(at), "timestamptz")
    channel_mark, limit_mark = param(channel, "text"), param(limit, "int")
    # An index range over the claim's partial index: cheap to ask often.
    floor = "" if min_priority is None else f' AND "priority" >= {param(min_priority, "int")}'
    allowed = allowed_here(policy, worker_mark, at, param)
    lock = " FOR UPDATE SKIP LOCKED" if param.postgres else ""  # SQLite has one writer
    sql = (
        f'UPDATE "delivery" SET "state" = \'sending\', "claimed_by" = {worker_mark}, '
        f'"claimed_at" = {moment}, "attempts" = "attempts" + 1 '
        f'WHERE "id" IN (SELECT "id" FROM "delivery" WHERE "state" = \'queued\' '
        f'AND "channel" = {channel_mark} AND "not_before" <= {moment}{floor}{allowed} '
        f'ORDER BY "priority" DESC, "id" LIMIT {limit_mark}{lock}) '
        f"RETURNING {RETURNING}"
    )
    rows = await client.execute_query_dict(sql, param.values)
    claimed = [
        # SQLite hands booleans back as 0 and 1.
        Claimed(
            **{**row, "quiet_exempt": bool(row["quiet_exempt"]), "language": row["language"] or ""}
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda row: (-row.priority, row.id))


# --- channel policy in the claim -------------------------------------------------------
# Each policy is two SQL conditions on a "delivery" row: may this worker deliver it now,
# and may no worker deliver it now. Messenger's ``within(hours)`` reads the identity's
# last inbound message; neither the claim nor the worker knows the policies.

# Templates whose words a staff member wrote to the resident (a private answer, a status
# with its explanation): ``ClaimPolicy.human_hours`` lets them go later than the rest.
# storage.review.ANSWER_PUSH and storage.proposals.STATUS_PUSH (a test keeps them equal).
HUMAN_TEMPLATES = ("proposal_answer", "proposal_status")
# Claimed this much before the window closes at the latest: the send takes a moment,
# and the platform's clock is not ours.
WINDOW_MARGIN = timedelta(minutes=2)


def _present(param: _Params, at: datetime) -> str:
    """A fresh presence of the row's resident on its channel (on any worker, so far)."""
    return (
        'SELECT 1 FROM "presence" p WHERE p."channel" = "delivery"."channel" '
        'AND p."external_id" = "delivery"."external_id" '
        f'AND p."seen_at" >= {param(_db_time(presence.fresh_since(at)), "timestamptz")}'
    )


def _in_window(policy: ClaimPolicy, param: _Params, at: datetime) -> str:
    """The row's resident wrote on its account recently enough for the row to go now:
    within ``hours``, or ``human_hours`` for a staff member's own words."""
    since = param(_db_time(at - timedelta(hours=policy.hours) + WINDOW_MARGIN), "timestamptz")
    recent = f'i."last_inbound_at" >= {since}'
    if policy.human_hours > policy.hours:
        human = param(
            _db_time(at - timedelta(hours=policy.human_hours) + WINDOW_MARGIN), "timestamptz"
        )
        templates = param.many(HUMAN_TEMPLATES)
        recent = (
            f'({recent} OR (i."last_inbound_at" >= {human} '
            f'AND "delivery"."template" IN ({templates})))'
        )
    return (
        'SELECT 1 FROM "channel_identity" i WHERE i."channel" = "delivery"."channel" '
        f'AND i."external_id" = "delivery"."external_id" AND {recent}'
    )


def allowed_here(policy: ClaimPolicy, worker_mark: str, at: datetime, param: _Params) -> str:
    """`` AND …``: the policy lets the worker (its placeholder) deliver the row now."""
    if policy.kind == "anyone":
        return ""
    if policy.kind == "present_here":
        return f' AND EXISTS ({_present(param, at)} AND p."worker" = {worker_mark})'
    return f" AND EXISTS ({_in_window(policy, param, at)})"


def denied_everywhere(policy: ClaimPolicy, at: datetime, param: _Params) -> str | None:
    """`` AND …``: no worker may deliver the row now; None when a policy never denies."""
    if policy.kind == "anyone":
        return None
    if policy.kind == "present_here":
        return f" AND NOT EXISTS ({_present(param, at)})"
    return f" AND NOT EXISTS ({_in_window(policy, param, at)})"


HELD_BECAUSE = {
    "present_here": "the resident has no chat open",
    "within": "waiting for the resident: outside the channel's window for pushes",
}


async def hold_denied(
    channel: str, policy: ClaimPolicy, now: datetime | None = None, limit: int = HOLD_BATCH
) -> int:
    """Move the due rows no worker may deliver now to "waiting", in bulk, and flag their
    residents (``pushes_held``) so that their next message brings them (the catch-up).

    One UPDATE for the rows, and one for their residents, per ``limit`` rows: not
    claimed and given back one by one. A row of a resident present on another worker
    stays queued for that worker. Returns how many rows were moved.
    """
    at = now or _now()
    if denied_everywhere(policy, at, _Params(_dialect())) is None:
        return 0  # no database trip for a channel whose rows anyone may deliver
    moved = 0
    while True:
        async with in_transaction() as client:
            param = _Params(client.capabilities.dialect)
            denied = denied_everywhere(policy, at, param) or ""
            reason = param(HELD_BECAUSE[policy.kind], "text")
            moment, channel_mark = param(_db_time(at), "timestamptz"), param(channel, "text")
            lock = " FOR UPDATE SKIP LOCKED" if param.postgres else ""
            sql = (
                f'UPDATE "delivery" SET "state" = \'waiting\', "error" = {reason} '
                f'WHERE "id" IN (SELECT "id" FROM "delivery" WHERE "state" = \'queued\' '
                f'AND "channel" = {channel_mark} AND "not_before" <= {moment}{denied} '
                f'LIMIT {param(limit, "int")}{lock}) RETURNING "resident_id"'
            )
            rows = await client.execute_query_dict(sql, param.values)
            residents = sorted({int(row["resident_id"]) for row in rows})
            if residents:
                await (
                    Resident.filter(id__in=residents, pushes_held=False)
                    .using_db(client)
                    .update(pushes_held=True)
                )
        moved += len(rows)
        if len(rows) < limit:
            return moved


async def mark_sent(delivery_id: int, message_id: str = "", shown: str = "") -> None:
    """Report a send (or an edit) done: the platform's message id and a digest of what it
    shows are kept. A row marked stale meanwhile (``queue_edit``) is queued again, as an
    edit of that message. One hand-written UPDATE, as cheap as the send allows."""
    client = connections.get("default")
    param = _Params(client.capabilities.dialect)
    moment, row = param(_db_time(_now()), "timestamptz"), param(delivery_id, "bigint")
    message, digest = param(message_id, "text"), param(shown, "text")
    sql = (
        'UPDATE "delivery" SET '
        "\"state\" = CASE WHEN \"stale\" THEN 'queued' ELSE 'sent' END, "
        f"\"operation\" = CASE WHEN \"stale\" AND {message} <> '' THEN 'edit' "
        'ELSE "operation" END, '
        '"attempts" = CASE WHEN "stale" THEN 0 ELSE "attempts" END, '
        f'"message_id" = CASE WHEN {message} = \'\' THEN "message_id" ELSE {message} END, '
        f'"stale" = FALSE, "sent_at" = {moment}, "error" = \'\', "shown" = {digest} '
        f'WHERE "id" = {row}'
    )
    await client.execute_query(sql, param.values)


async def mark_edit_refused(delivery_id: int, resend: bool) -> None:
    """The platform will not edit the message (too old, gone): queue the push again as a
    new message, or, for a push that only makes sense as an edit, give it up."""
    waiting = Delivery.filter(id=delivery_id, state="sending")
    if resend:
        await waiting.update(
            state="queued",
            operation="send",
            message_id="",
            shown="",
            claimed_by="",
            not_before=_now(),
            error="the platform would not edit the message: sent anew",
        )
    else:
        await waiting.update(
            state="failed", message_id="", error="the platform will not edit the message"
        )


async def mark_cancelled(delivery_id: int, reason: str) -> None:
    """Its source is gone (a cancelled announcement): nothing to send."""
    await Delivery.filter(id=delivery_id, state="sending").update(
        state="cancelled", error=reason[:256]
    )


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


async def postpone(delivery_id: int, at: datetime, error: str) -> None:
    """Back to the queue until ``at``, the attempt not counted: the channel could not try
    (it is down for everyone), which says nothing about this row."""
    await Delivery.filter(id=delivery_id, state="sending").update(
        state="queued", not_before=at, error=error[:256], attempts=F("attempts") - 1
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
    """The resident wrote (or opened the chat) on this account: it is reachable again,
    and what waited for it is due now, as one catch-up. Returns how many rows came back.

    One held message goes as it is; several go as one digest ("While you were away:"
    and the items, rendered when it is sent: ``dialogs.pushes``), and the held rows are
    "digested" until it is sent, when they count as sent. An edit (a staff report) is
    never folded: it changes its own message. The caller's session saves the flag.
    """
    await ChannelIdentity.filter(channel=channel, external_id=external_id).update(
        unreachable_since=None
    )
    resident.pushes_held = False
    waiting = Delivery.filter(channel=channel, external_id=external_id, state="waiting")
    held = await waiting.order_by("id").values_list("id", "operation")
    sends = [row_id for row_id, operation in held if operation == "send"]
    folded: list[int] = []
    if len(sends) > 1:
        push = Push(
            DIGEST,
            resident.id,
            f"{DIGEST}:{sends[-1]}",  # a held row is in one digest at most
            DIGEST,
            {"items": sends},
            priority=PERSONAL,
            # It answers the resident's own message: quiet hours keep us from waking
            # people, and this one is awake.
            quiet_exempt=True,
        )
        if await queue(push, [(resident.id, channel, external_id)]):
            folded = sends
            await Delivery.filter(id__in=folded, state="waiting").update(
                state="digested", error="", claimed_by=""
            )
    released = await waiting.filter(id__not_in=folded or [0]).update(
        state="queued", not_before=_now(), error=""
    )
    return released + len(folded)


async def digest_items(ids: Sequence[int]) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, template, parameters) of a digest's items still waiting for it, oldest first."""
    rows = await (
        Delivery.filter(id__in=list(ids), state="digested")
        .order_by("id")
        .values_list("id", "template", "params")
    )
    return [(int(row_id), str(template), json.loads(params)) for row_id, template, params in rows]


async def unfold(alone: Sequence[int], gone: Sequence[int]) -> None:
    """Items a digest cannot carry: ``alone`` (buttons that must stay actionable, an
    image) go as their own messages after it; ``gone`` (their source is) are cancelled."""
    if alone:
        await Delivery.filter(id__in=list(alone), state="digested").update(
            state="queued", not_before=_now()
        )
    if gone:
        await Delivery.filter(id__in=list(gone), state="digested").update(
            state="cancelled", error="its source is gone"
        )


def _items(row: Claimed) -> list[int]:
    return [int(item) for item in json.loads(row.params).get("items", [])]


async def mark_digest_sent(row: Claimed, message_id: str, shown: str) -> None:
    """The digest went: so did every item it carried."""
    async with in_transaction():
        await mark_sent(row.id, message_id, shown)
        await Delivery.filter(id__in=_items(row), state="digested").update(
            state="sent", sent_at=_now(), message_id=message_id, error=""
        )


async def mark_digest_refused(row: Claimed, reason: str) -> None:
    """The resident left before the digest went: it never was, its items wait again (and
    come back in the next one)."""
    async with in_transaction():
        if await Delivery.filter(id=row.id, state="sending").delete():
            await Delivery.filter(id__in=_items(row), state="digested").update(
                state="waiting", error=reason[:256]
            )
            await Resident.filter(id=row.resident_id).update(pushes_held=True)


async def mark_digest_failed(row: Claimed, error: str) -> None:
    """The digest failed for good: so did its items."""
    async with in_transaction():
        await mark_failed(row.id, error)
        await Delivery.filter(id__in=_items(row), state="digested").update(
            state="failed", error=error[:256]
        )


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
            channel=channel,
            external_id=external_id,
            state__in=["queued", "sending", "waiting", "digested"],
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


async def counts(source_kind: str, source_id: int) -> dict[str, int]:
    """How many deliveries of a source (an announcement) are in each state, and the
    waiting ones also per channel ("waiting:messenger"). A row going out in a digest
    counts as being sent (it is, in another row), so a report stays "going out" until
    the digest has gone, and then counts it sent."""
    rows = (
        await Delivery.filter(source_kind=source_kind, source_id=source_id)
        .annotate(n=Count("id"))
        .group_by("state", "channel")
        .values_list("state", "channel", "n")
    )
    result = dict.fromkeys(STATES, 0)
    for state, channel, n in rows:
        key = "sending" if state == "digested" else str(state)
        result[key] = result.get(key, 0) + int(n)
        if state == "waiting":
            # Staff see apart those waiting for Messenger's window to open again.
            result[f"waiting:{channel}"] = int(n)
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


async def queued_by_channel() -> list[Queued]:
    """Per channel, the rows queued and when the earliest of them became due, for the
    outbox gauges of /metrics: one aggregate on the (state, channel, not_before) index,
    read at scrape time rather than counted at every push."""
    found = (
        await Delivery.filter(state="queued")
        .annotate(rows=Count("id"), earliest=Min("not_before"))
        .group_by("channel")
        .values_list("channel", "rows", "earliest")
    )
    return [Queued(str(channel), int(rows), earliest) for channel, rows, earliest in found]
