"""The scheduler's proposal jobs, the clock driven by hand: new proposals reach their
department's staff in one push per batch, and promised dates are recalled by the
municipality's calendar, the day before and once overdue, each once."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.core.config import Config
from bot.core.proposals_config import Category, Department, ProposalsConfig
from bot.scheduler import notify_new_proposals, remind_promised_dates
from storage import proposals, review
from storage.models import Delivery, Proposal, Resident
from storage.proposals import Draft
from storage.sessions import open_session

NAMES = {"lv": "Ceļi", "en": "Roads", "ru": "Дороги"}


def with_departments(config: Config) -> Config:
    return replace(
        config,
        proposals=ProposalsConfig(
            categories=(
                Category("roads", NAMES, department="roads"),
                Category("parks", NAMES, department="parks"),
            ),
            departments=(
                Department("roads", NAMES, staff=(("telegram", "900"), ("telegram", "901"))),
                Department("parks", NAMES, staff=(("telegram", "950"),)),
            ),
        ),
    )


async def account(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


async def submit(author: Resident, department: str = "roads") -> Proposal:
    draft = Draft(department, department, "A pothole by the school", "en", "centrs")
    return await proposals.submit(author, draft)


async def test_three_proposals_in_a_minute_make_one_push_per_staff_account(
    config: Config,
) -> None:
    config = with_departments(config)
    for user_id in ("900", "901", "950"):
        await account(user_id)
    author = await account("1")
    await notify_new_proposals(config)
    now = datetime.now(UTC)
    for seconds in (60, 50, 40):
        made = await submit(author)
        await Proposal.filter(id=made.id).update(created_at=now - timedelta(seconds=seconds))
    # Two workers fire at once, one a little behind (it sees two of the three): one tells.
    told = await asyncio.gather(
        notify_new_proposals(config, now), notify_new_proposals(config, now - timedelta(seconds=44))
    )
    assert sorted(told) == [0, 2]
    rows = await Delivery.filter(template=review.NEW_PUSH).values_list("external_id", flat=True)
    assert sorted(rows) == ["900", "901"]
    await submit(author, "parks")
    in_a_minute = now + timedelta(minutes=1)
    await notify_new_proposals(config, in_a_minute)
    # Every proposal told once, in one batch or two, and nothing told twice.
    params = await Delivery.filter(template=review.NEW_PUSH).values_list("external_id", "params")
    told_of = sorted((who, n) for who, p in params for n in json.loads(p)["proposals"])
    ids = sorted(await Proposal.all().values_list("id", flat=True))
    roads, park = ids[:3], ids[3]
    assert told_of == sorted([*((w, n) for w in ("900", "901") for n in roads), ("950", park)])


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 22:30 UTC on 8 March is already 9 March in Riga: the day before 10 March.
        (datetime(2027, 3, 8, 22, 30, tzinfo=UTC), ["before"]),
        (datetime(2027, 3, 8, 21, 30, tzinfo=UTC), []),
    ],
)
async def test_the_day_before_is_the_day_before_in_the_municipality(
    config: Config, now: datetime, expected: list[str]
) -> None:
    config = with_departments(config)
    await account("900")
    proposal = await submit(await account("1"))
    await review.set_status(proposal.id, "planned", "cli", expected_on=date(2027, 3, 10))
    await remind_promised_dates(config, now)
    keys = await Delivery.filter(template=review.DUE_PUSH).values_list("dedupe_key", flat=True)
    assert [key.split(":")[3] for key in keys] == expected


async def test_reminders_before_and_overdue_go_once_each_and_never_for_a_closed_one(
    config: Config,
) -> None:
    config = with_departments(config)
    await account("900")
    author = await account("1")
    open_one, closed = await submit(author), await submit(author)
    for row in (open_one, closed):
        await review.set_status(row.id, "planned", "cli", expected_on=date(2027, 3, 10))
    await review.set_status(closed.id, "rejected", "cli", explanation="No budget.")
    noon = datetime(2027, 3, 9, 10, tzinfo=UTC)
    counts = [await remind_promised_dates(config, noon + timedelta(hours=h)) for h in range(72)]
    assert sum(counts) == 2
    rows = await Delivery.filter(template=review.DUE_PUSH).values_list("external_id", "dedupe_key")
    assert sorted(rows) == [
        ("900", f"proposal:{open_one.id}:due:before:2027-03-10"),
        ("900", f"proposal:{open_one.id}:due:overdue:2027-03-10"),
    ]
