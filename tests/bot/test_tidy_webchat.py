"""The daily job that forgets unfinished web-chat residents and old newcomer counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger

from bot.core.config import Config
from bot.scheduler import build_scheduler, tidy_webchat
from storage.models import NewcomerCount, Resident
from storage.sessions import open_session
from storage.webchat_guard import admit_newcomer

pytestmark = pytest.mark.storage


async def test_the_daily_job_forgets_after_the_configured_days_and_prunes_counts(
    config: Config,
) -> None:
    config = replace(config, webchat=replace(config.webchat, forget_unfinished_after_days=9))
    for user_id, days in (("ten-days", 10), ("eight-days", 8)):
        async with open_session("webchat", user_id, "") as session:
            resident_id = session.resident.id
        seen = datetime.now(UTC) - timedelta(days=days)
        await Resident.filter(id=resident_id).update(last_seen_at=seen, created_at=seen)
    await admit_newcomer("f" * 32, 5, datetime.now(UTC) - timedelta(hours=3))
    await admit_newcomer("f" * 32, 5)

    assert await tidy_webchat(config) == 1
    [kept] = await Resident.all().prefetch_related("identities")
    assert [i.external_id for i in kept.identities] == ["eight-days"]
    assert await NewcomerCount.all().count() == 1

    job = build_scheduler(config).get_job("tidy-webchat")
    assert job is not None and isinstance(job.trigger, CronTrigger)
    assert str(job.trigger) == "cron[hour='4', minute='20']"
    assert job.args == (config,)
