"""Processed event ids: kept long enough to recognise any redelivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.models import ProcessedEvent

# Telegram keeps an undelivered update for 24 hours; a week is ample.
KEEP = timedelta(days=7)
# Channels whose event ids the client makes up (the web chat's page): unique only per
# resident, so one resident's id cannot shadow another's. Telegram's update ids are the
# platform's own, unique per channel.
PER_RESIDENT = frozenset({"webchat"})


def scope(channel: str, resident_id: int) -> int:
    """What a channel's event ids are unique within: the resident (their row id), or 0."""
    return resident_id if channel in PER_RESIDENT else 0


async def prune(now: datetime | None = None) -> int:
    """Forget event ids older than KEEP; returns how many were removed."""
    cutoff = (now or datetime.now(UTC)) - KEEP
    return await ProcessedEvent.filter(processed_at__lt=cutoff).delete()
