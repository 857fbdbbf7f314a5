"""Clock-driven work through APScheduler, with the database as the source of truth.

Nothing is kept in the scheduler itself: each firing asks the database what
is due and claims it row by row (a released announcement is released once,
whatever the number of workers), so a restart loses nothing and rebuilds
nothing by hand.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core import metrics
from bot.core.config import Config
from bot.core.quiet_hours import next_allowed
from storage import deliveries, events, feedback, inbound, photos, polls, review, webchat_guard
from storage.errors import unavailable

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


POLLS_EVERY_SECONDS = 5


async def run_polls(config: Config, now: datetime | None = None) -> tuple[int, int, int]:
    """Every few seconds: open the polls whose time has come (their invitations wait for
    the end of quiet hours in the outbox), send the reminders due (to those who have not
    answered), close the polls due (the results go to staff and, if so set, the voters).
    Each is claimed in the database, so it happens once on any number of workers and
    after a restart. Returns how many polls opened, reminders were queued, polls closed."""
    moment = now or datetime.now(UTC)
    quiet = config.delivery
    allowed = next_allowed(moment, config.municipality.zone, quiet.quiet_start, quiet.quiet_end)
    opened = await polls.open_due(allowed, moment)
    for poll in opened:
        log.info("poll %d opened for %d residents", poll.id, poll.audience_size)
    reminded = await polls.remind_due(allowed, moment)
    if reminded:
        log.info("%d poll reminders queued", reminded)
    closed = await polls.close_due(moment)
    for poll in closed:
        log.info("poll %d closed", poll.id)
    return len(opened), reminded, len(closed)


async def tidy_webchat(config: Config) -> int:
    """Daily: forget web-chat residents who never finished onboarding, and the newcomer
    counts of hours gone by. Returns how many residents were forgotten."""
    await webchat_guard.prune_newcomer_counts()
    return await webchat_guard.forget_unfinished(
        timedelta(days=config.webchat.forget_unfinished_after_days)
    )


async def ask_if_fixed(config: Config, now: datetime | None = None) -> int:
    """Every minute: ask "Is it fixed?" about proposals implemented long enough ago
    (``proposals.ask_fixed_after``); each is claimed, so it is asked once on any number
    of workers. Quiet hours hold the pushes in the outbox. Returns how many were asked."""
    asked = await feedback.due_fixed_questions(now or datetime.now(UTC))
    if asked:
        log.info('"is it fixed?" asked about %d proposals', asked)
    return asked


# --- proposals: the staff's notices (the review part) ------------------------------------
NEW_PROPOSALS_EVERY_SECONDS = 60
DUE_REMINDERS_EVERY_MINUTES = 60


def _staff_of(config: Config) -> dict[str, tuple[tuple[str, str], ...]]:
    return {d.id: d.staff for d in config.proposals.departments}


async def notify_new_proposals(config: Config, now: datetime | None = None) -> int:
    """Every minute: one push per department staff account listing what came in."""
    return await review.notify_new(_staff_of(config), now or datetime.now(UTC))


async def remind_promised_dates(config: Config, now: datetime | None = None) -> int:
    """Hourly: the day before a promised date and once it has passed, by the
    municipality's calendar, each reminder once."""
    moment = now or datetime.now(UTC)
    today = moment.astimezone(config.municipality.zone).date()
    return await review.remind_due(_staff_of(config), today)


async def prune_photos(config: Config) -> int:
    """Daily: delete photo files no proposal came to use (abandoned drafts)."""
    removed = await photos.prune_orphans(
        config.proposals.photo_dir, ORPHAN_PHOTOS_AFTER.total_seconds()
    )
    if removed:
        log.info("%d photo(s) no proposal used were deleted", removed)
    return removed


Job = Callable[..., Awaitable[object]]


def _finished_or_stopped(job: Job) -> Job:
    """``job``, ending quietly when the bot stops under it or the database is away.

    APScheduler cancels a running job when it shuts down and logs that as an error with
    a traceback; a job cut short here loses nothing (each claims its rows in a
    transaction, rolled back, and the next start does the work), so one line says so.
    """

    @functools.wraps(job)
    async def run(*args: object) -> object:
        try:
            return await job(*args)
        except asyncio.CancelledError:
            log.info(
                "scheduler: %s stopped with the bot; it runs again at the next start", job.__name__
            )
            return None
        except Exception as error:
            if not unavailable(error):
                raise
            metrics.DATABASE_ERRORS.labels("scheduler").inc()
            # Nothing was done (each job's work is one transaction, or one per item): the
            # next run, seconds or minutes later, does it once the database is back.
            log.warning(
                "scheduler: %s waits for the database (%s); it runs again at its next time",
                job.__name__,
                type(error).__name__,
            )
            return None

    return run


def add_job(
    scheduler: AsyncIOScheduler,
    job: Job,
    trigger: str,
    *,
    id: str,
    args: Sequence[object] = (),
    at_start: bool = False,
    **when: Any,
) -> None:
    """Schedule ``job`` (one run at a time, missed runs folded into one); ``at_start`` also
    runs it at once, for what came due while the bot was down."""
    if at_start:
        when["next_run_time"] = datetime.now(UTC)
    scheduler.add_job(
        _finished_or_stopped(job),
        trigger,
        args=list(args),
        id=id,
        max_instances=1,
        coalesce=True,
        **when,
    )


@dataclass(slots=True)
class RunningJobs:
    """How many jobs are running now, from the scheduler's own events, so a stop can let
    them finish before it shuts the scheduler down (which would cancel them)."""

    count: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def watch(self, scheduler: AsyncIOScheduler) -> None:
        self.idle.set()
        scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._ended, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _submitted(self, event: object) -> None:
        self.count += 1
        self.idle.clear()

    def _ended(self, event: object) -> None:
        metrics.job_ended(getattr(event, "job_id", ""), getattr(event, "exception", None))
        self.count = max(0, self.count - 1)
        if not self.count:
            self.idle.set()

    async def stop(self, scheduler: AsyncIOScheduler, patience: float = 10.0) -> None:
        """No new runs; the running ones get ``patience`` seconds; then shut down."""
        scheduler.pause()
        try:
            await asyncio.wait_for(self.idle.wait(), patience)
        except TimeoutError:
            log.warning("scheduler: %d job(s) still running at the stop are cut short", self.count)
        scheduler.shutdown(wait=False)


def build_scheduler(config: Config) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=config.municipality.zone)
    with_config = [config]
    add_job(
        scheduler,
        release_due,
        "interval",
        id="release-due-announcements",
        args=with_config,
        seconds=RELEASE_EVERY_SECONDS,
        at_start=True,
    )
    add_job(
        scheduler,
        run_polls,
        "interval",
        id="open-remind-close-polls",
        args=with_config,
        seconds=POLLS_EVERY_SECONDS,
        at_start=True,
    )
    add_job(scheduler, events.prune, "cron", id="prune-event-ids", hour=4)
    add_job(scheduler, inbound.prune, "cron", id="prune-inbound-events", hour=4, minute=10)
    add_job(scheduler, tidy_webchat, "cron", id="tidy-webchat", args=with_config, hour=4, minute=20)
    add_job(scheduler, ask_if_fixed, "interval", id="ask-if-fixed", args=with_config, minutes=1)
    # Proposals (review): new-proposal batches and promised-date reminders.
    add_job(
        scheduler,
        notify_new_proposals,
        "interval",
        id="proposals-new-notices",
        args=with_config,
        seconds=NEW_PROPOSALS_EVERY_SECONDS,
    )
    add_job(
        scheduler,
        remind_promised_dates,
        "interval",
        id="proposals-due-reminders",
        args=with_config,
        minutes=DUE_REMINDERS_EVERY_MINUTES,
        at_start=True,
    )
    # Files of photos no proposal uses.
    add_job(
        scheduler,
        prune_photos,
        "cron",
        id="prune-orphan-photos",
        args=with_config,
        hour=4,
        minute=40,
    )
    return scheduler
