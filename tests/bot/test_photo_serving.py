"""A proposal's photo over HTTP goes only to those who may see it — its author by the web
chat's cookie, staff, anyone once approved — and anyone else gets 404, as for no photo at
all. On Telegram, which cannot fetch our paths, the bot uploads the bytes."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.app import Runtime
from bot.channels.webchat import COOKIE, sign
from bot.core.config import load
from bot.core.messages import Incoming, Outcome, Reply
from bot.scheduler import ORPHAN_PHOTOS_AFTER, build_scheduler, prune_photos
from storage import deliveries, media, photos, proposals, staff
from storage.models import Delivery, Proposal
from storage.proposals import Draft
from storage.sessions import open_session
from tests.bot.channels.telegram_helpers import Chat, eventually, telegram_env
from tests.bot.test_announcements import config_without_quiet_hours
from tests.conftest import RuntimeFactory
from tests.standins.telegram_api import BotApiStandIn, UploadedFile
from tests.storage.test_photos import jpeg

pytestmark = pytest.mark.storage

SECRET = "photo-serving-test-cookie-secret"
AUTHOR, NEIGHBOUR, MODERATOR = "a" * 32, "b" * 32, "c" * 32
ANNA = 1001


def photo_config(tmp_path: Path) -> str:
    return config_without_quiet_hours(
        tmp_path, f'\n[proposals]\nphoto_dir = "{tmp_path / "photos"}"\n'
    )


async def webchat_resident(user_id: str) -> int:
    async with open_session("webchat", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident.id


async def submitted_with_photo(runtime: Runtime, author: str, *, approved: bool = False) -> str:
    """A proposal by a web-chat resident, with one photo; returns the photo's key."""
    async with open_session("webchat", author, "") as session:
        proposal = await proposals.submit(
            session.resident, Draft("roads", "municipality", "A pothole", "en", "centrs")
        )
    kept = await photos.keep(runtime.config.proposals.photo_dir, jpeg())
    await photos.attach(proposal.id, [kept], approved=approved)
    return kept.key


@pytest.fixture
async def bot(start_bot: RuntimeFactory, tmp_path: Path) -> Runtime:
    return await start_bot(photo_config(tmp_path), IESAISTE_WEBCHAT_COOKIE_SECRET=SECRET)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession, runtime: Runtime, path: str, as_user: str | None = None
) -> tuple[int, bytes, str]:
    """GET a path, with the web chat's cookie of ``as_user`` if given."""
    cookies = {COOKIE: sign(SECRET, as_user)} if as_user else {}
    url = f"http://127.0.0.1:{runtime.config.http_port}{path}"
    async with http.get(url, cookies=cookies) as response:
        return response.status, await response.read(), response.headers.get("Cache-Control", "")


# --- HTTP -------------------------------------------------------------------------
async def test_the_author_sees_their_photo_and_nobody_else_does(
    bot: Runtime, http: aiohttp.ClientSession
) -> None:
    await webchat_resident(AUTHOR)
    await webchat_resident(NEIGHBOUR)
    key = await submitted_with_photo(bot, AUTHOR)
    stored = photos.read(bot.config.proposals.photo_dir, key)

    status, body, cache = await get(http, bot, photos.url(key), as_user=AUTHOR)
    assert (status, body) == (200, stored)
    assert cache.startswith("private")

    assert (await get(http, bot, photos.url(key), as_user=NEIGHBOUR))[0] == 404
    assert (await get(http, bot, photos.url(key)))[0] == 404
    # A cookie we did not sign is nobody's.
    url = f"http://127.0.0.1:{bot.config.http_port}{photos.url(key)}"
    async with http.get(url, cookies={COOKIE: f"{AUTHOR}.forged"}) as response:
        assert response.status == 404


async def test_staff_see_every_proposal_photo(bot: Runtime, http: aiohttp.ClientSession) -> None:
    await webchat_resident(AUTHOR)
    key = await submitted_with_photo(bot, AUTHOR)
    assert (await get(http, bot, photos.url(key), as_user=MODERATOR))[0] == 404
    await staff.grant("webchat", MODERATOR, "moderator", actor="test")
    status, _, cache = await get(http, bot, photos.url(key), as_user=MODERATOR)
    assert (status, cache.split(",")[0]) == (200, "private")


async def test_an_approved_photo_is_public_until_its_proposal_is_hidden(
    bot: Runtime, http: aiohttp.ClientSession
) -> None:
    await webchat_resident(AUTHOR)
    key = await submitted_with_photo(bot, AUTHOR, approved=True)
    status, body, cache = await get(http, bot, photos.url(key))
    assert (status, cache.split(",")[0]) == (200, "public")
    assert body == photos.read(bot.config.proposals.photo_dir, key)

    await Proposal.all().update(hidden_at=datetime.now(UTC))
    assert (await get(http, bot, photos.url(key)))[0] == 404
    assert (await get(http, bot, photos.url(key), as_user=AUTHOR))[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/photos/0123.jpg",
        "/photos/" + "f" * 64 + ".png",
        "/photos/" + "F" * 64 + ".jpg",
        "/photos/" + "f" * 64,
        "/photos/..%2f..%2fconfig.toml",
        "/photos/" + "f" * 64 + ".jpg",  # a key, but no such photo
    ],
)
async def test_a_path_that_names_no_photo_is_404(
    bot: Runtime, http: aiohttp.ClientSession, path: str
) -> None:
    await staff.grant("webchat", MODERATOR, "admin", actor="test")
    assert (await get(http, bot, path, as_user=MODERATOR))[0] == 404


# --- Telegram -----------------------------------------------------------------------
@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna", language_code="en")
        yield stand_in


def uploaded(api: BotApiStandIn) -> list[bytes]:
    """The bytes of every photo the bot uploaded (multipart), in order."""
    return [
        p["photo"].content
        for p in api.requests_of("sendPhoto")
        if isinstance(p.get("photo"), UploadedFile)
    ]


async def test_a_push_with_our_photo_reaches_telegram_as_an_upload(
    api: BotApiStandIn, start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(photo_config(tmp_path), **telegram_env(api))
    await Chat(api, ANNA).send("/start")
    kept = await photos.keep(runtime.config.proposals.photo_dir, jpeg(120, 80))
    image_key = await media.save_image(jpeg(50, 50))
    assert image_key is not None

    await deliveries.queue_answer(
        "telegram",
        str(ANNA),
        [
            Reply("Your photo", image=photos.url(kept.key)),
            Reply("The announcement's image", image=media.url(image_key)),
            Reply("A photo that is gone", image=photos.url("e" * 64)),
            Reply("", image=photos.url("d" * 64)),  # nothing left to show: nothing sent
            Reply("The end"),
        ],
    )
    messages = await api.wait_for_messages(ANNA, 5, timeout=20)

    photo, announcement, gone, end = messages[1:]
    assert end.text == "The end"
    assert (photo.caption, announcement.caption) == ("Your photo", "The announcement's image")
    assert uploaded(api) == [
        photos.read(runtime.config.proposals.photo_dir, kept.key),
        jpeg(50, 50),
    ]
    assert not any(p.get("photo", "").startswith("/") for p in _sent_photo_strings(api))
    assert (gone.text, gone.photo) == ("A photo that is gone", None)  # the text, alone
    # Each push is done with, the one with nothing to show too: none is tried again.
    await eventually(all_sent, timeout=10, what="every push marked sent")
    assert await Delivery.filter(source_kind="answer").count() == 5


async def test_an_answer_with_our_photo_reaches_telegram_as_an_upload(
    api: BotApiStandIn, start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    """The answer path (python-telegram-bot), as a dialog's Reply(image=photos.url(key))
    takes it: the dispatcher's answer is stood in for, the channel's sending is real."""
    runtime = await start_bot(photo_config(tmp_path), **telegram_env(api))
    kept = await photos.keep(runtime.config.proposals.photo_dir, jpeg(120, 80))
    channel = runtime.telegram
    assert channel is not None

    async def answer_with_photo(incoming: Incoming) -> Outcome:
        return Outcome([Reply("Your proposal P-2026-0001", image=photos.url(kept.key))], "en")

    channel.feed = answer_with_photo
    (message,) = await Chat(api, ANNA).send("hello")

    assert message.caption == "Your proposal P-2026-0001"
    assert message.photo is not None and not message.photo.startswith("/")
    assert uploaded(api) == [photos.read(runtime.config.proposals.photo_dir, kept.key)]


async def all_sent() -> bool:
    return await Delivery.filter(source_kind="answer").exclude(state="sent").count() == 0


def _sent_photo_strings(api: BotApiStandIn) -> list[dict[str, str]]:
    return [p for p in api.requests_of("sendPhoto") if isinstance(p.get("photo"), str)]


async def test_a_departments_staff_see_its_photos_without_a_staff_role(
    start_bot: RuntimeFactory, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    clerk = "d" * 32
    departments = f"""
[proposals]
photo_dir = "{tmp_path / "photos"}"

[[proposals.departments]]
id = "municipality"
name = {{ lv = "Pašvaldība", en = "The municipality", ru = "Самоуправление" }}
staff = ["webchat:{clerk}"]

[[proposals.categories]]
id = "roads"
name = {{ lv = "Ceļi", en = "Roads", ru = "Дороги" }}
department = "municipality"
"""
    runtime = await start_bot(
        config_without_quiet_hours(tmp_path, departments), IESAISTE_WEBCHAT_COOKIE_SECRET=SECRET
    )
    await webchat_resident(AUTHOR)
    key = await submitted_with_photo(runtime, AUTHOR)
    assert (await get(http, runtime, photos.url(key), as_user=clerk))[0] == 200
    assert (await get(http, runtime, photos.url(key), as_user=NEIGHBOUR))[0] == 404


# --- the daily job ------------------------------------------------------------------
@pytest.mark.usefixtures("database")
async def test_a_daily_job_deletes_the_photos_no_proposal_came_to_use(tmp_path: Path) -> None:
    config = load(photo_config(tmp_path), {})
    directory = config.proposals.photo_dir
    await webchat_resident(AUTHOR)
    async with open_session("webchat", AUTHOR, "") as session:
        proposal = await proposals.submit(
            session.resident, Draft("roads", "municipality", "A pothole", "en", "centrs")
        )
    used = await photos.keep(directory, jpeg(60, 60))
    await photos.attach(proposal.id, [used])
    abandoned = await photos.keep(directory, jpeg(70, 70))  # a draft's, never submitted
    recent = await photos.keep(directory, jpeg(80, 80))  # a draft's, still being written
    long_ago = time.time() - ORPHAN_PHOTOS_AFTER.total_seconds() - 60
    for kept in (used, abandoned):
        os.utime(photos.path_of(directory, kept.key), (long_ago, long_ago))

    assert build_scheduler(config).get_job("prune-orphan-photos") is not None
    assert await prune_photos(config) == 1
    assert photos.read(directory, abandoned.key) is None
    assert photos.read(directory, used.key) is not None
    assert photos.read(directory, recent.key) is not None
