"""What keeps the web chat from filling the database: newcomers per address, and forgetting
residents who never finished onboarding.

A web-chat resident costs a client nothing but a fresh cookie, so new residents are counted
per client address and hour, in the database (every worker keeps to one limit). The address
arrives here already as a keyed hash: it is never stored in clear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.expressions import Q

from storage import sessions
from storage.models import NewcomerCount, Resident

log = logging.getLogger(__name__)

HOUR = 3600
CHANNEL = "webchat"
BATCH = 500


def _hour(now: datetime | None) -> int:
    return int((now or datetime.now(UTC)).timestamp()) // HOUR


def _end_of(hour: int) -> datetime:
    return datetime.fromtimestamp((hour + 1) * HOUR, UTC)


async def admit_newcomer(address: str, limit: int, now: datetime | None = None) -> datetime | None:
    """Count one new resident from ``address`` this hour: None when within ``limit``, else
    when the hour ends (the time to try again). One atomic statement, so workers racing
    for the last place admit exactly ``limit``. A limit of 0 admits everyone, uncounted.
    """
    if limit == 0:
        return None
    hour = _hour(now)
    client = connections.get("default")
    marks = "$1, $2" if client.capabilities.dialect == "postgres" else "?, ?"
    rows = await client.execute_query_dict(
        'INSERT INTO "newcomer_count" ("address", "hour", "count") '
        f"VALUES ({marks}, 1) "
        'ON CONFLICT ("address", "hour") DO UPDATE '
        'SET "count" = "newcomer_count"."count" + 1 RETURNING "count"',
        [address, hour],
    )
    return None if int(rows[0]["count"]) <= limit else _end_of(hour)


async def newcomers_refused_until(
    address: str, limit: int, now: datetime | None = None
) -> datetime | None:
    """When ``address`` may start a new resident again if its limit is used up, else None.
    Counts nothing: for telling a client at once, before it writes."""
    if limit == 0:
        return None
    hour = _hour(now)
    row = await NewcomerCount.get_or_none(address=address, hour=hour)
    return _end_of(hour) if row is not None and row.count >= limit else None


async def prune_newcomer_counts(now: datetime | None = None) -> int:
    """Forget the counts of hours gone by; returns how many rows went."""
    return await NewcomerCount.filter(hour__lt=_hour(now)).delete()


async def forget_unfinished(after: timedelta, now: datetime | None = None) -> int:
    """Delete web-chat residents who never finished onboarding and have not written for
    ``after``; returns how many. Onboarding is where a resident accepts the privacy notice,
    so nobody who agreed to be kept is touched."""
    cutoff = (now or datetime.now(UTC)) - after
    idle = Q(last_seen_at__lt=cutoff) | Q(last_seen_at__isnull=True, created_at__lt=cutoff)
    removed = 0
    while True:  # in batches: a flood may have left many, and a statement takes few ids
        ids = await (
            Resident.filter(idle, onboarded_at__isnull=True, identities__channel=CHANNEL)
            .distinct()
            .limit(BATCH)
            .values_list("id", flat=True)
        )
        if not ids:
            break
        # The conditions again in the DELETE: a resident who wrote meanwhile is kept.
        await Resident.filter(idle, id__in=list(ids), onboarded_at__isnull=True).delete()
        # Counted by what is gone: SQLite's count includes the rows the cascade took.
        removed += len(ids) - await Resident.filter(id__in=list(ids)).count()
        if len(ids) < BATCH:
            break
    if removed:
        log.info("forgot %d web-chat residents who never finished onboarding", removed)
    return removed


@dataclass(frozen=True, slots=True)
class Newcomers:
    """What the web chat asks about the people behind its cookies, with its limit bound in."""

    per_address_per_hour: int

    async def language(self, user_id: str) -> str | None:
        return await sessions.known_language(CHANNEL, user_id)

    async def refused_until(self, address: str) -> datetime | None:
        return await newcomers_refused_until(address, self.per_address_per_hour)

    async def admit(self, address: str) -> datetime | None:
        return await admit_newcomer(address, self.per_address_per_hour)
