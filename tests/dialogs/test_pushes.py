"""The words of every push, rendered at send time: an announcement in the resident's
language of then (falling back to Latvian) with the image its channel can show, the staff's
notes in their language."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.messages import RenderRequest, Reply
from dialogs.pushes import Pushes
from storage import deliveries, media, residents
from storage.models import Delivery, Resident
from storage.sessions import open_session
from tests.storage.test_deliveries import JPEG, announce, resident

PUSHES = Pushes(ZoneInfo("Europe/Riga"))
NOW = datetime.now(UTC)


async def words(row: Delivery) -> Reply | None:
    """What the delivery worker would send for this row now."""
    resident = await Resident.get(id=row.resident_id)  # type: ignore[attr-defined]
    params = json.loads(row.params)
    if row.template == "reply":
        return Reply.from_json(params)
    return await PUSHES(RenderRequest(row.template, params, resident.language, row.channel))


async def test_an_announcement_is_rendered_in_the_language_of_now_or_latvian(
    database: str,
) -> None:
    await resident("1", language="en")
    await resident("2", language="ru")
    await resident("3", language="")  # no language chosen yet: Latvian
    await resident("4", language="en")
    announcement = await announce({"kind": "all"}, lv="Sveiki", en="Hello", ru="")
    await deliveries.release(announcement, NOW)
    async with open_session("telegram", "4", "") as session:
        await residents.set_language(session.resident, "lv")  # after the release
    rows = {row.external_id: row for row in await Delivery.all()}
    texts = {n: (await words(row)).text for n, row in rows.items()}  # type: ignore[union-attr]
    assert texts == {"1": "Hello", "2": "Sveiki", "3": "Sveiki", "4": "Sveiki"}


@pytest.mark.parametrize("kept", [True, False])
async def test_a_platforms_own_image_goes_only_to_that_platform(database: str, kept: bool) -> None:
    """A Telegram file id means nothing to the web chat: there the copy we keep is shown,
    or, without one, the text goes alone."""
    await resident("1")
    async with open_session("webchat", "browser-1", "") as session:
        await residents.mark_onboarded(session.resident)
    announcement = await deliveries.create_announcement(
        author="telegram:9",
        texts={"lv": "Sveiki"},
        audience={"kind": "all"},
        send_at=NOW,
        image="AgACAgIAAxkBAAI-file-id",
    )
    announcement.image_channel = "telegram"
    key = await media.save_image(JPEG) if kept else None
    announcement.image_media = key or ""
    await announcement.save()
    assert await deliveries.release(announcement, NOW) == 2
    images = {row.channel: (await words(row)).image for row in await Delivery.all()}  # type: ignore[union-attr]
    web = f"/media/{key}" if kept else ""
    assert images == {"telegram": "AgACAgIAAxkBAAI-file-id", "webchat": web}


async def test_an_image_by_url_goes_to_every_channel(database: str) -> None:
    announcement = await deliveries.create_announcement(
        author="cli",
        texts={"lv": "Sveiki"},
        audience={"kind": "all"},
        send_at=NOW,
        image="https://example.lv/a.jpg",
    )
    request = {"announcement": announcement.id}
    for channel in ("telegram", "webchat"):
        reply = await PUSHES(RenderRequest("announcement", request, "lv", channel))
        assert reply is not None and reply.image == "https://example.lv/a.jpg"


async def test_a_cancelled_or_missing_announcement_renders_nothing(database: str) -> None:
    announcement = await announce({"kind": "all"})
    announcement.state = "cancelled"
    await announcement.save()
    for params in ({"announcement": announcement.id}, {"announcement": 999}):
        assert await PUSHES(RenderRequest("announcement", params, "lv", "telegram")) is None


async def test_a_note_is_in_the_language_of_the_resident_or_the_one_it_was_queued_in(
    database: str,
) -> None:
    request = {"announcement": 4, "verdict": "decline", "language": "en"}
    ru = await PUSHES(RenderRequest("announcement_decided", request, "ru", "telegram"))
    en = await PUSHES(RenderRequest("announcement_decided", request, "", "telegram"))
    assert ru is not None and en is not None
    assert en.text == "An admin declined your urgent announcement #4: it will not be sent."
    assert ru.text != en.text and "#4" in ru.text


async def test_a_template_this_version_does_not_know_is_an_error(database: str) -> None:
    with pytest.raises(LookupError, match="budget_reminder"):
        await PUSHES(RenderRequest("budget_reminder", {}, "lv", "telegram"))
