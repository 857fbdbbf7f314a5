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
