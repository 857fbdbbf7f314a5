"""What a resident chose, what we hold about them, and forgetting them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient

from storage.models import (
    Ballot,
    ChannelIdentity,
    Neighbourhood,
    Proposal,
    ProposalComment,
    ProposalFollow,
    ProposalSupport,
    Resident,
    Subscription,
    Topic,
)

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


async def set_language(resident: Resident, language: str) -> None:
    resident.language = language
    await resident.save(update_fields=["language"])


async def set_neighbourhood(resident: Resident, key: str | None) -> bool:
    """Point the resident at a neighbourhood by its key; False if no such active one."""
    if key is None:
        resident.neighbourhood = None  # type: ignore[assignment]
    else:
        row = await Neighbourhood.get_or_none(key=key, active=True)
        if row is None:
            return False
        resident.neighbourhood = row
    await resident.save(update_fields=["neighbourhood_id"])
    return True


async def neighbourhood_key(resident: Resident) -> str | None:
    if resident.neighbourhood_id is None:  # type: ignore[attr-defined]
        return None
    row = await Neighbourhood.get_or_none(id=resident.neighbourhood_id)  # type: ignore[attr-defined]
    return row.key if row else None


async def topic_keys(resident: Resident) -> list[str]:
    rows = await Subscription.filter(resident=resident).prefetch_related("topic")
    return sorted(row.topic.key for row in rows)


async def set_topics(resident: Resident, keys: Iterable[str]) -> None:
    """Replace the resident's topics with the given active ones; unknown keys are ignored."""
    wanted = {topic.id: topic for topic in await Topic.filter(key__in=list(keys), active=True)}
    current = {row.topic_id: row for row in await Subscription.filter(resident=resident)}  # type: ignore[attr-defined]
    stale = [row.id for topic_id, row in current.items() if topic_id not in wanted]
    if stale:
        await Subscription.filter(id__in=stale).delete()
    for topic_id, topic in wanted.items():
        if topic_id not in current:
            await Subscription.create(resident=resident, topic=topic)


async def accept_privacy(resident: Resident) -> None:
    resident.privacy_accepted_at = _now()
    await resident.save(update_fields=["privacy_accepted_at"])


async def mute_announcements(resident: Resident, muted: bool) -> bool:
    """Stop or resume announcements; True if that changed anything."""
    if resident.announcements_muted == muted:
        return False
    resident.announcements_muted = muted
    await resident.save(update_fields=["announcements_muted"])
    return True


async def mark_onboarded(resident: Resident) -> None:
    resident.onboarded_at = _now()
    await resident.save(update_fields=["onboarded_at"])


async def note_inbound(channel: str, external_id: str, sent_at: datetime) -> None:
    """The resident wrote at ``sent_at`` (the platform's stamp) on this account: the
    window for pushes counts from it. Never moved back by an older event arriving late."""
    stamp = ChannelIdentity._meta.fields_map["last_inbound_at"].to_db_value(
        sent_at, ChannelIdentity
    )
    client = connections.get("default")
    a, b, c = (
        ("$1", "$2", "$3") if client.capabilities.dialect == "postgres" else ("?1", "?2", "?3")
    )
    await client.execute_query(
        f'UPDATE "channel_identity" SET "last_inbound_at" = {c} WHERE "channel" = {a} '
        f'AND "external_id" = {b} AND ("last_inbound_at" IS NULL OR "last_inbound_at" < {c})',
        [channel, external_id, stamp],
    )


def count_message(resident: Resident, *, limit: int, window_seconds: int) -> str:
    """Count one message in the resident's throttle window.

    Returns "ok", "warn" (the first message over the limit: answer politely
    once) or "drop" (keep quiet until the window ends). The caller's session
    saves the row.
    """
    now = _now()
    start = resident.throttle_window_start
    if start is None or now - start >= timedelta(seconds=window_seconds):
        resident.throttle_window_start, resident.throttle_count = now, 0
        resident.throttle_warned = False
    resident.throttle_count += 1
    if resident.throttle_count <= limit:
        return "ok"
    if resident.throttle_warned:
        return "drop"
    resident.throttle_warned = True
    return "warn"


@dataclass(frozen=True, slots=True)
class AccountRecord:
    channel: str
    external_id: str
    since: datetime
    unreachable_since: datetime | None


@dataclass(frozen=True, slots=True)
class PersonalData:
    """Everything the municipality holds about a resident, for /mydata."""

    language: str
    neighbourhood: str | None
    topics: list[str]
    accounts: list[AccountRecord]
    created_at: datetime
    privacy_accepted_at: datetime | None
    last_seen_at: datetime | None
    # Contributions: kept, detached from the resident, when they are forgotten.
    proposals: int = 0
    following: int = 0  # followed proposals of others
    supported: int = 0
    comments: int = 0
    polls_answered: int = 0  # ballots that count: they stay counted, detached


async def personal_data(resident: Resident) -> PersonalData:
    accounts = [
        AccountRecord(row.channel, row.external_id, row.created_at, row.unreachable_since)
        for row in await ChannelIdentity.filter(resident=resident).order_by("id")
    ]
    return PersonalData(
        language=resident.language,
        neighbourhood=await neighbourhood_key(resident),
        topics=await topic_keys(resident),
        accounts=accounts,
        created_at=resident.created_at,
        privacy_accepted_at=resident.privacy_accepted_at,
        last_seen_at=resident.last_seen_at,
        proposals=await Proposal.filter(author_id=resident.id).count(),
        # (Not an exclude: a detached proposal's NULL author would drop out of it.)
        following=await ProposalFollow.filter(resident_id=resident.id).count()
        - await ProposalFollow.filter(
            resident_id=resident.id, proposal__author_id=resident.id
        ).count(),
        supported=await ProposalSupport.filter(resident_id=resident.id).count(),
        comments=await ProposalComment.filter(resident_id=resident.id).count(),
        polls_answered=await Ballot.filter(resident_id=resident.id, choices__not=0).count(),
    )


async def forget(resident: Resident) -> None:
    """Delete the resident's identity and contact data.

    Identities, subscriptions, dialog state and pending pushes cascade with
    the row. Public contributions (proposals, ballots, later) are detached,
    not deleted: their foreign keys are SET NULL. Inside a transaction (an
    update's session) the disk can be scrubbed only once it commits, so
    whoever commits calls ``scrub_deleted``; outside one it is done here.
    """
    await resident.delete()
    if not isinstance(connections.get("default"), TransactionalDBClient):
        await scrub_deleted()


async def scrub_deleted() -> None:
    """After a committed deletion: leave no copy of the deleted rows on disk.

    SQLite overwrites deleted rows with zeros (``secure_delete``, set where the
    database is opened), but the write-ahead log still holds the pages as they
    were until a checkpoint: copy it into the file now and truncate it.
    PostgreSQL offers no such guarantee (old row versions stay until VACUUM).
    """
    client = connections.get("default")
    if client.capabilities.dialect != "sqlite":
        return
    (result,) = await client.execute_query_dict("PRAGMA wal_checkpoint(TRUNCATE)")
    if result["busy"]:
        # Another process (an `iesaiste` command) was reading: the next checkpoint will do.
        log.warning("a reader held the write-ahead log: a deletion stays in it for now")
