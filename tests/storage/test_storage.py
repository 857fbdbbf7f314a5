"""Storage functions in domain terms, on both databases."""

from __future__ import annotations

import asyncio
import re

from storage import catalog, residents, settings, staff
from storage.catalog import Entry
from storage.models import (
    AuditEntry,
    Neighbourhood,
    Resident,
    Setting,
    StaffMember,
    Subscription,
    Topic,
)
from storage.sessions import open_session


async def test_a_neighbourhood_dropped_from_the_configuration_is_deactivated_not_deleted(
    database: str,
) -> None:
    async with open_session("webchat", "anna", "e1") as session:
        assert await residents.set_neighbourhood(session.resident, "lauki")
    await catalog.sync([Entry("centrs", {"lv": "Centrs"})], [])
    lauki = await Neighbourhood.get(key="lauki")
    assert not lauki.active
    resident = await Resident.get(id=session.resident.id)
    assert resident.neighbourhood_id == lauki.id  # type: ignore[attr-defined]
    async with open_session("webchat", "anna", "e2") as session:
        assert not await residents.set_neighbourhood(session.resident, "lauki")
    await catalog.sync([Entry("lauki", {"lv": "Lauki", "en": "Countryside"})], [])
    lauki = await Neighbourhood.get(key="lauki")
    assert lauki.active and lauki.names["en"] == "Countryside"


async def test_topics_are_replaced_and_unknown_ones_ignored(database: str) -> None:
    async with open_session("webchat", "anna", "e1") as session:
        await residents.set_topics(session.resident, ["transport", "culture", "no-such-topic"])
        assert await residents.topic_keys(session.resident) == ["culture", "transport"]
        await residents.set_topics(session.resident, ["education", "culture"])
        assert await residents.topic_keys(session.resident) == ["culture", "education"]
    assert await Subscription.all().count() == 2


async def test_forgetting_a_resident_removes_their_rows(database: str) -> None:
    async with open_session("telegram", "42", "e1") as session:
        await residents.set_topics(session.resident, ["transport"])
        await residents.forget(session.resident)
        session.deleted = True
    assert await Resident.all().count() == 0
    assert await Subscription.all().count() == 0


async def test_personal_data_lists_every_account(database: str) -> None:
    async with open_session("telegram", "42", "e1") as session:
        await residents.set_language(session.resident, "ru")
        held = await residents.personal_data(session.resident)
    assert held.language == "ru"
    assert [(a.channel, a.external_id) for a in held.accounts] == [("telegram", "42")]


async def test_staff_grants_and_revocations_are_audited(database: str) -> None:
    assert await staff.grant("telegram", "7", "moderator", actor="cli")
    assert not await staff.grant("telegram", "7", "moderator", actor="cli")
    assert await staff.role_of("telegram", "7") == "moderator"
    assert await staff.grant("telegram", "7", "admin", actor="cli")
    assert await staff.revoke("telegram", "7", actor="cli")
    assert await staff.role_of("telegram", "7") is None
    actions = [entry.action for entry in await AuditEntry.all().order_by("id")]
    assert actions == ["staff.grant", "staff.grant", "staff.revoke"]


async def test_the_cookie_secret_is_made_once_and_shared(database: str) -> None:
    first = await settings.secret("webchat_cookie")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first), "32 random bytes, URL-safe base64"
    assert await settings.secret("webchat_cookie") == first
    assert await Setting.all().values_list("key", "value") == [("webchat_cookie", first)]
    assert await settings.secret("other") not in ("", first)


async def test_event_ids_older_than_a_week_are_pruned(database: str) -> None:
    from datetime import UTC, datetime, timedelta

    from storage import events
    from storage.models import ProcessedEvent

    await ProcessedEvent.create(channel="telegram", event_id="old")
    await ProcessedEvent.create(channel="telegram", event_id="new")
    await ProcessedEvent.filter(event_id="old").update(
        processed_at=datetime.now(UTC) - timedelta(days=8)
    )
    assert await events.prune() == 1
    assert [e.event_id for e in await ProcessedEvent.all()] == ["new"]


async def test_workers_starting_together_sync_the_catalog_and_staff_once(database: str) -> None:
    """Two workers started at the same moment on an empty database (as in production,
    and in the two-worker tests): neither may stop on a unique key the other wrote."""
    await Neighbourhood.all().delete()
    await Topic.all().delete()
    hoods = [Entry(f"h{n}", {"lv": f"Apkaime {n}"}) for n in range(20)]
    topics = [Entry(f"t{n}", {"lv": f"Tēma {n}"}) for n in range(20)]
    grants = [("telegram", str(1000 + n), "admin") for n in range(10)]

    async def start() -> None:
        await catalog.sync(hoods, topics)
        await staff.sync_from_config(grants)

    await asyncio.gather(*(start() for _ in range(4)))
    assert sorted(await Neighbourhood.all().values_list("key", flat=True)) == sorted(
        e.key for e in hoods
    )
    assert await Topic.all().count() == 20
    assert await StaffMember.all().count() == 10
    assert await AuditEntry.filter(action="staff.grant").count() == 10, "granted once each"
