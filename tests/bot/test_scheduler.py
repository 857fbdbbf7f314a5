"""The scheduler releases what is due once, and says so once, whatever the number of workers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import time

import pytest

from bot.core.config import Config
from bot.scheduler import release_due
from storage.models import Announcement, Delivery
from tests.storage.test_deliveries import announce, resident


async def test_two_workers_release_an_announcement_once_and_only_one_logs_it(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    for user_id in ("1", "2"):
        await resident(user_id)
    announcement = await announce({"kind": "all"})
    no_quiet_hours = Config(
        municipality=config.municipality,
        database_url=config.database_url,
        delivery=replace(config.delivery, quiet_start=time(0, 0), quiet_end=time(0, 0)),
    )
    with caplog.at_level(logging.INFO, logger="bot.scheduler"):
        released = await asyncio.gather(release_due(no_quiet_hours), release_due(no_quiet_hours))
        assert sorted(released) == [0, 1]
        assert await release_due(no_quiet_hours) == 0
    assert await Delivery.all().count() == 2
    assert (await Announcement.get(id=announcement.id)).state == "released"
    logged = [r.getMessage() for r in caplog.records if "released" in r.getMessage()]
    assert logged == [f"announcement {announcement.id} released to 2 recipients"]


async def test_a_stop_lets_the_running_job_finish_before_the_scheduler_shuts_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.scheduler import RunningJobs, add_job

    started, finished = asyncio.Event(), []

    async def slow() -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(True)

    scheduler = AsyncIOScheduler()
    jobs = RunningJobs()
    jobs.watch(scheduler)
    add_job(scheduler, slow, "interval", id="slow", seconds=60, at_start=True)
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.INFO, logger="bot.scheduler"):
        await jobs.stop(scheduler)
        await asyncio.sleep(0.05)  # the shutdown runs on the scheduler's loop, soon after
    assert finished == [True]
    assert not scheduler.running
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_job_still_running_after_the_patience_is_cut_short_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bot.scheduler import RunningJobs, add_job

    started = asyncio.Event()

    async def endless() -> None:
        started.set()
        await asyncio.sleep(3600)

    scheduler = AsyncIOScheduler()
    jobs = RunningJobs()
    jobs.watch(scheduler)
    add_job(scheduler, endless, "interval", id="endless", seconds=60, at_start=True)
    scheduler.start()
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.INFO, logger="bot.scheduler"):
        await jobs.stop(scheduler, patience=0.1)
        await asyncio.sleep(0.1)  # the cancelled job's last words
    lines = [r.getMessage() for r in caplog.records]
    assert "scheduler: 1 job(s) still running at the stop are cut short" in lines
    assert "scheduler: endless stopped with the bot; it runs again at the next start" in lines
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
