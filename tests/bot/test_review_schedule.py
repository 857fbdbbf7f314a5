"""The scheduler's proposal jobs, the clock driven by hand: new proposals reach their
department's staff in one push per batch, and promised dates are recalled by the
municipality's calendar, the day before and once overdue, each once."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.config import Config
from bot.core.proposals_config import Category, Department, ProposalsConfig
from bot.scheduler import notify_new_proposals, remind_promised_dates
from storage import proposals, review
from storage.models import Delivery, Proposal, Resident
from storage.proposals import Draft
from storage.sessions import open_session
from tests.bot.channels.telegram_helpers import Chat
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory
from tests.phrases import ntr, tr
from tests.standins.telegram_api import BotApiStandIn

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


DEPARTMENTS = """
[proposals]
[[proposals.departments]]
id = "roads"
name = { lv = "Satiksmes nodaļa", en = "Roads office", ru = "Отдел дорог" }
staff = ["telegram:2001", "telegram:2002"]

[[proposals.categories]]
id = "roads"
name = { lv = "Ceļi", en = "Roads", ru = "Дороги" }
department = "roads"
"""


async def test_on_telegram_a_batch_reaches_each_staff_member_once_and_a_hiding_the_author(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    async with BotApiStandIn() as api:
        for user_id, name, language in (
            (1001, "Anna", "lv"),
            (2001, "Ilze", "en"),
            (2002, "Jānis", "lv"),
        ):
            api.add_user(user_id, name, language_code=language)
        runtime = await start_bot(
            config_without_quiet_hours(tmp_path, DEPARTMENTS),
            IESAISTE_TELEGRAM_API_URL=api.url,
            IESAISTE_TELEGRAM_TOKEN=api.token,
        )
        await onboarded("1001", "lv", "centrs")
        await onboarded("2001", "en", "centrs")
        await onboarded("2002", "lv", "centrs")
        author = await Resident.get(identities__external_id="1001")
        await notify_new_proposals(runtime.config)
        made = [await submit(author) for _ in range(3)]
        assert (
            await notify_new_proposals(runtime.config, datetime.now(UTC) + timedelta(minutes=1))
            == 2
        )
        for user_id, language in ((2001, "en"), (2002, "lv")):
            await api.wait_until(lambda u=user_id: api.messages(u), timeout=15)  # type: ignore[misc]
            (notice,) = api.messages(user_id)
            lines = notice.body.splitlines()
            assert lines[0] == ntr(language, NEW_ONE, NEW_MANY, 3)
            assert lines[1:4] == [f"{p.reference}: A pothole by the school" for p in made]

        staff_chat = Chat(api, 2001)
        (card,) = await staff_chat.send("/review")
        assert card.body.startswith(made[0].reference)
        (prompt,) = await staff_chat.press(card, "Hide")
        assert prompt.body == tr("en", "Why is it hidden? The author is told this reason.")
        await staff_chat.send("Aizskaroši vārdi", replies=1)
        await api.wait_until(lambda: api.messages(1001), timeout=15, what="the author told")
        (told,) = api.messages(1001)
        assert told.body == tr(
            "lv",
            "Your proposal {reference} is no longer shown publicly. The reason: {reason}",
            reference=made[0].reference,
            reason="Aizskaroši vārdi",
        )
        assert (await Proposal.get(id=made[0].id)).hidden_at is not None
        await runtime.stop()


NEW_ONE = "{n} new proposal for your department:"
NEW_MANY = "{n} new proposals for your department:"
