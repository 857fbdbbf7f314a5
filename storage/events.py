"""Processed event ids: kept long enough to recognise any redelivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.models import ProcessedEvent

# Telegram keeps an undelivered update for 24 hours; a week is ample.
KEEP = timedelta(days=7)


async def prune(now: datetime | None = None) -> int:
    """Forget event ids older than KEEP; returns how many were removed."""
    cutoff = (now or datetime.now(UTC)) - KEEP
    return await ProcessedEvent.filter(processed_at__lt=cutoff).delete()
