"""Clock-driven work through APScheduler, with the database as the source of truth.

Nothing is kept in the scheduler itself: each firing asks the database what
is due and claims it row by row (a released announcement is released once,
whatever the number of workers), so a restart loses nothing and rebuilds
nothing by hand.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.config import Config
from bot.core.quiet_hours import next_allowed
from storage import deliveries, events, photos, webchat_guard

log = logging.getLogger(__name__)

RELEASE_EVERY_SECONDS = 5
# A photo kept for a draft that was never submitted: long enough for a draft to be
# finished another day, not so long that abandoned photos pile up.
ORPHAN_PHOTOS_AFTER = timedelta(days=7)


async def release_due(config: Config) -> int:
    """Turn every announcement whose time has come into delivery rows."""
    now = datetime.now(UTC)
    released = 0
    quiet = config.delivery
    for announcement in await deliveries.due_announcements(now):
        not_before = (
            now
            if announcement.urgent
            else next_allowed(now, config.municipality.zone, quiet.quiet_start, quiet.quiet_end)
        )
        count = await deliveries.release(announcement, not_before)
        if announcement.state != "released":
            continue  # another worker released it first: it logs it
        log.info("announcement %d released to %d recipients", announcement.id, count)
        released += 1
    return released


async def tidy_webchat(config: Config) -> int:
    """Daily: forget web-chat residents who never finished onboarding, and the newcomer
    counts of hours gone by. Returns how many residents were forgotten."""
    await webchat_guard.prune_newcomer_counts()
    return await webchat_guard.forget_unfinished(
        timedelta(days=config.webchat.forget_unfinished_after_days)
    )


async def prune_photos(config: Config) -> int:
    """Daily: delete photo files no proposal came to use (abandoned drafts)."""
    removed = await photos.prune_orphans(
        config.proposals.photo_dir, ORPHAN_PHOTOS_AFTER.total_seconds()
    )
    if removed:
        log.info("%d photo(s) no proposal used were deleted", removed)
    return removed


def build_scheduler(config: Config) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=config.municipality.zone)
    scheduler.add_job(
        release_due,
        "interval",
        seconds=RELEASE_EVERY_SECONDS,
        args=[config],
        id="release-due-announcements",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        events.prune, "cron", hour=4, id="prune-event-ids", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        tidy_webchat,
        "cron",
        hour=4,
        minute=20,
        args=[config],
        id="tidy-webchat",
        max_instances=1,
        coalesce=True,
    )
    # PHOTOS (issue 13): files of photos no proposal uses.
    scheduler.add_job(
        prune_photos,
        "cron",
        hour=4,
        minute=40,
        args=[config],
        id="prune-orphan-photos",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
