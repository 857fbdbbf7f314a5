"""No network inside a transaction: the photo of an update is fetched before it opens.

A download of up to 10 MB inside the update's transaction would hold a database
connection and the resident's row lock for as long as the platform takes; on SQLite
(one writer) it would hold every other resident's update too. The dispatcher fetches
the photo after the per-resident in-process lock and before the session, and only when
the resident's current step takes a photo.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass, field

import asyncpg
import pytest

from bot.core.config import Config
from bot.core.messages import Capabilities, Kind
from handlers import dispatcher as dispatcher_module
from handlers.dispatcher import DID_NOT_UNDERSTAND, Dispatcher
from storage import db, staff
from storage.models import ChannelIdentity, Media
from tests.chat import Chat
from tests.phrases import (
    IMAGE_ATTACHED,
    IMAGE_TEXT_ONLY,
    MAIN_MENU,
    PHOTO_ATTACHED,
    audience,
    draft_card,
    tr,
)

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00street\xff\xd9"
TEXT = "Rīt nebūs ūdens."


async def resident_id(user_id: str) -> int:
    identity = await ChannelIdentity.get(channel="webchat", external_id=user_id)
    return int(identity.resident_id)  # type: ignore[attr-defined]


async def what_holds(url: str, resident: int) -> str:
    """What of the database is held right now, seen from a connection of its own: "" if
    nothing. PostgreSQL: the resident's row lock (NOWAIT), and any open transaction of
    another connection. SQLite: the write lock (BEGIN IMMEDIATE, no waiting)."""
    if db.is_sqlite(url):
        connection = sqlite3.connect(url.removeprefix("sqlite://"), timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.rollback()
        except sqlite3.OperationalError as error:
            return f"the write lock ({error})"
        finally:
            connection.close()
        return ""
    other = await asyncpg.connect(db.normalise_url(url).replace("postgres://", "postgresql://"))
    try:
        try:
            async with other.transaction():
                await other.fetch(
                    'SELECT "id" FROM "resident" WHERE "id" = $1 FOR UPDATE NOWAIT', resident
                )
        except asyncpg.LockNotAvailableError:
            return "the resident's row lock"
        open_transactions = await other.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
        )
    finally:
        await other.close()
    return f"{open_transactions} open transaction(s)" if open_transactions else ""


@dataclass
class WatchingSource:
    """A channel's files that, while handing one over, looks at what the database holds;
    it may also be made to wait (a slow platform) until released."""

    url: str
    files: dict[str, bytes]
    resident: int = 0
    held: list[str] = field(default_factory=list)  # what was held at each fetch
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.released.set()

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        self.held.append(await what_holds(self.url, self.resident))
        self.entered.set()
        await self.released.wait()
        data = self.files.get(file_id)
        return data if data is not None and len(data) <= max_bytes else None


def photo_dispatcher(config: Config, source: WatchingSource) -> Dispatcher:
    """The dispatcher of a web chat that hands photos over, as Telegram does."""
    # A channel that can send a photo again by its id (as Telegram can), named "webchat" here.
    photos = {"webchat": Capabilities(takes_photos=True, resends_photo_ids=True)}
    return Dispatcher(config, files={"webchat": source}, capabilities=photos)


def card(image: str, recipients: int = 0) -> str:
    return draft_card("en", {"lv": TEXT}, audience("en"), recipients, image=image)


async def at_the_image_step(config: Config, source: WatchingSource) -> Chat:
    """A staff member composing an announcement, asked for its photo, on a channel that
    hands photos over."""
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    chat = Chat(photo_dispatcher(config, source), user_id="staff-1", locale="en")
    await chat.command("announce")
    await chat.text(TEXT)
    await chat.press("Image")
    source.resident = await resident_id("staff-1")
    return chat


async def test_the_photo_is_fetched_with_no_transaction_and_no_row_lock_held(
    config: Config,
) -> None:
    source = WatchingSource(config.database_url, {"photo-1": JPEG})
    chat = await at_the_image_step(config, source)

    await chat.send(Kind.PHOTO, photo_id="photo-1")

    assert source.held == [""], f"held during the download: {source.held}"
    assert chat.texts() == [tr("en", PHOTO_ATTACHED), card(IMAGE_ATTACHED)]
    (_, data) = await chat.dialog()
    assert (data["image"], data["image_channel"]) == ("photo-1", "webchat")
    assert await Media.filter(key=data["image_media"]).count() == 1


async def test_a_slow_download_holds_up_no_other_residents_update(config: Config) -> None:
    source = WatchingSource(config.database_url, {"photo-1": JPEG})
    staff_chat = await at_the_image_step(config, source)
    resident = Chat(staff_chat.dispatcher, user_id="resident-1", locale="en")
    await resident.onboard()
    source.released.clear()  # the platform takes its time with the photo

    photo = asyncio.create_task(staff_chat.send(Kind.PHOTO, photo_id="photo-1"))
    await asyncio.wait_for(source.entered.wait(), 10)
    # On SQLite (one writer) a download inside the transaction held every other update.
    await asyncio.wait_for(resident.command("menu"), 10)
    assert resident.texts() == [tr("en", MAIN_MENU)]
    assert not photo.done(), "the photo's update waits for its download, and only it"

    source.released.set()
    await asyncio.wait_for(photo, 10)
    assert staff_chat.texts() == [tr("en", PHOTO_ATTACHED), card(IMAGE_ATTACHED, 1)]


async def test_a_photo_no_step_asks_for_is_not_downloaded(config: Config) -> None:
    source = WatchingSource(config.database_url, {"photo-1": JPEG})
    chat = Chat(photo_dispatcher(config, source), user_id="resident-1", locale="en")
    await chat.send(Kind.PHOTO, photo_id="photo-1")  # nobody yet: onboarding starts
    await chat.onboard()
    await chat.send(Kind.PHOTO, photo_id="photo-1")  # at the main menu
    assert chat.texts() == [tr("en", DID_NOT_UNDERSTAND), tr("en", MAIN_MENU)]
    assert source.held == [], "a photo nobody asked for was downloaded"


async def test_a_download_that_takes_too_long_leaves_the_photo_without_our_copy(
    config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(dispatcher_module, "PHOTO_FETCH_SECONDS", 0.2)
    source = WatchingSource(config.database_url, {"photo-1": JPEG})
    chat = await at_the_image_step(config, source)
    source.released.clear()  # never handed over

    with caplog.at_level(logging.WARNING, logger="handlers.dispatcher"):
        await asyncio.wait_for(chat.send(Kind.PHOTO, photo_id="photo-1"), 10)

    assert chat.texts() == [tr("en", PHOTO_ATTACHED), card(IMAGE_TEXT_ONLY)]
    assert [r.getMessage() for r in caplog.records] == ["photo not fetched: no answer within 0.2 s"]
    (_, data) = await chat.dialog()
    assert (data["image"], data["image_media"]) == ("photo-1", "")
