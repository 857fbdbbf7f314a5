"""A photo from the web chat: chosen with the keyboard, checked for size on the page,
uploaded over HTTP to the resident's own cookie, handed to the step that takes it as the
bytes of a photo update, and not kept once that update is handled.

The step used is the staff announcement's image (it takes a photo today): the photo ends
up as the announcement's kept image, which every other channel shows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.app import Runtime
from bot.channels.webchat import (
    COOKIE,
    PHOTO_MAX_BYTES,
    PHOTO_PATH,
    UPLOADS_PER_RESIDENT,
    _incoming_fields,
    sign,
)
from bot.core.i18n import translator
from bot.core.messages import Kind
from storage import media, staff
from storage.models import DialogState, Media
from storage.sessions import open_session
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat import choose_english_and_centre, cookie_user, quiet_context
from tests.bot.test_photo_serving import photo_config
from tests.conftest import RuntimeFactory
from tests.phrases import (
    ALL_SET,
    IMAGE_ATTACHED,
    MAIN_MENU,
    PHOTO_ATTACHED,
    PRIVACY_QUESTION,
    audience,
    draft_card,
    tr,
    write_prompt,
)
from tests.storage.test_photos import jpeg

pytestmark = pytest.mark.storage

SECRET = "webchat-photos-test-cookie-secret"
ANNA, BEN = "a" * 32, "b" * 32
TEXT = "Sveiki no domes!"


@pytest.fixture
async def bot(start_bot: RuntimeFactory, tmp_path: Path) -> Runtime:
    return await start_bot(photo_config(tmp_path), IESAISTE_WEBCHAT_COOKIE_SECRET=SECRET)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def chat_draft(runtime: Runtime) -> dict[str, object]:
    """The draft the only staff member composes (their dialog's data)."""
    (state,) = await DialogState.filter(state__startswith="ann:")
    return state.data


def uploads(runtime: Runtime) -> Path:
    assert runtime.webchat is not None and runtime.webchat.uploads is not None
    return runtime.webchat.uploads


async def resident(user_id: str) -> None:
    async with open_session("webchat", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()


async def upload(
    http: aiohttp.ClientSession,
    runtime: Runtime,
    body: bytes,
    as_user: str | None = ANNA,
    origin: str | None = None,
) -> tuple[int, str]:
    cookies = {COOKIE: sign(SECRET, as_user)} if as_user else {}
    headers = {"Content-Type": "image/jpeg", **({"Origin": origin} if origin else {})}
    url = f"http://127.0.0.1:{runtime.config.http_port}{PHOTO_PATH}"
    async with http.post(url, data=body, cookies=cookies, headers=headers) as response:
        return response.status, await response.text()


# --- the upload endpoint ----------------------------------------------------------
async def test_an_upload_is_kept_for_the_resident_of_the_cookie_only(
    bot: Runtime, http: aiohttp.ClientSession
) -> None:
    await resident(ANNA)
    status, answer = await upload(http, bot, jpeg())
    assert status == 200
    token = json.loads(answer)["photo"]
    assert [p.name for p in uploads(bot).iterdir()] == [f"{ANNA}.{token}"]

    chat = bot.webchat
    assert chat is not None
    assert await chat.fetch(f"{ANNA}.{token}", PHOTO_MAX_BYTES) == jpeg()
    # Another resident naming the same token names a file of their own: there is none.
    assert await chat.fetch(f"{BEN}.{token}", PHOTO_MAX_BYTES) is None
    assert await chat.fetch(f"{ANNA}.../{token}", PHOTO_MAX_BYTES) is None
    assert await chat.fetch(f"{ANNA}.{token}", 10) is None  # larger than the step takes


async def test_an_upload_is_refused_without_a_resident_from_our_page(
    bot: Runtime, http: aiohttp.ClientSession
) -> None:
    await resident(ANNA)
    assert (await upload(http, bot, jpeg(), as_user=None))[0] == 403
    assert (await upload(http, bot, jpeg(), as_user=BEN))[0] == 403  # nobody behind it yet
    assert (await upload(http, bot, jpeg(), origin="https://evil.example"))[0] == 403
    assert not uploads(bot).exists() or not any(uploads(bot).iterdir())


async def test_an_upload_that_is_no_image_or_over_10_mb_is_refused(
    bot: Runtime, http: aiohttp.ClientSession
) -> None:
    await resident(ANNA)
    assert (await upload(http, bot, b"%PDF-1.7 a document"))[0] == 415
    too_large = b"\xff\xd8\xff" + b"\x00" * PHOTO_MAX_BYTES
    assert (await upload(http, bot, too_large))[0] == 413
    assert (await upload(http, bot, b"\xff\xd8\xff" + b"\x00" * (PHOTO_MAX_BYTES - 3)))[0] == 200


async def test_a_resident_cannot_pile_uploads_up(bot: Runtime, http: aiohttp.ClientSession) -> None:
    await resident(ANNA)
    await resident(BEN)
    for _ in range(UPLOADS_PER_RESIDENT):
        assert (await upload(http, bot, jpeg()))[0] == 200
    assert (await upload(http, bot, jpeg()))[0] == 429
    assert (await upload(http, bot, jpeg(), as_user=BEN))[0] == 200  # others still may


# --- the page, in Chromium ------------------------------------------------------------
async def staff_on_the_image_step(runtime: Runtime, chat: ChatPage) -> None:
    """An admin composing an announcement, at the step that asks for its image."""
    await choose_english_and_centre(chat)
    await chat.press("Done")
    await chat.expect_text(chat.bot.last, tr("en", PRIVACY_QUESTION))
    await chat.press("I agree")
    await chat.expect_text(chat.bot.last, f"{tr('en', ALL_SET)}\n\n{tr('en', MAIN_MENU)}")
    context = chat.page.context
    await staff.grant("webchat", await cookie_user(context, runtime), "admin", actor="test")
    await chat.say("/announce")
    await chat.expect_text(chat.bot.last, write_prompt("en"))
    await chat.say(TEXT)
    await chat.expect_text(chat.bot.last, draft_card("en", {"lv": TEXT}, audience("en"), 1))
    await chat.press("Image")
    await expect(chat.bot.last).to_contain_text("Send the photo")


async def test_a_photo_chosen_with_the_keyboard_reaches_the_step_that_takes_it(
    bot: Runtime, tmp_path: Path
) -> None:
    require_chromium()
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(jpeg(200, 100))
    url = f"http://127.0.0.1:{bot.config.http_port}/"
    async with chromium() as browser:
        context = await quiet_context(browser)
        chat = await ChatPage.open(await context.new_page(), url)
        await staff_on_the_image_step(bot, chat)
        page = chat.page
        frames: list[dict[str, object]] = []
        page.on(
            "websocket",
            lambda ws: ws.on("framesent", lambda payload: frames.append(json.loads(payload))),
        )
        await page.reload()  # the socket from now on is watched
        await expect(chat.bot.last).to_contain_text("Send the photo")

        attach = page.get_by_test_id("attach")
        assert await attach.get_attribute("aria-label") == translator("en").gettext(
            "Attach a photo"
        )
        await chat.input.fill("Look here")  # the caption goes with the photo
        await page.keyboard.press("Shift+Tab")  # from the text box back to the button
        await expect(attach).to_be_focused()
        outline = await attach.evaluate("(b) => getComputedStyle(b).outlineStyle")
        assert outline != "none", "the focus is visible"
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        chooser = None
        for _ in range(3):  # a key press can be lost on a loaded machine: press it again
            try:
                async with page.expect_file_chooser(timeout=10_000) as chosen:
                    await page.keyboard.press("Enter")
                chooser = await chosen.value
                break
            except PlaywrightTimeoutError:
                await expect(attach).to_be_focused()
        assert chooser is not None, "Enter on the focused button opens the file chooser"
        await chooser.set_files(photo)

        await expect(chat.bot.last).to_contain_text(tr("en", IMAGE_ATTACHED))
        await expect(chat.log).to_contain_text(tr("en", PHOTO_ATTACHED))
        await expect(chat.user.last).to_have_text("📷 Look here")
        await expect(chat.input).to_have_value("")
        await expect(chat.errors).to_have_count(0)
    (sent,) = [f for f in frames if f.get("type") == "photo"]
    assert sent["text"] == "Look here"
    # The announcement's copy is the photo's bytes; the upload itself is gone.
    (kept,) = await Media.all()
    assert bytes(kept.data) == photo.read_bytes()
    # The upload's id lasts only for its update: the draft's image is our copy, by URL.
    assert (await chat_draft(bot))["image"] == media.url(kept.key)
    assert list(uploads(bot).iterdir()) == []


async def test_a_photo_over_10_mb_is_stopped_on_the_page(bot: Runtime, tmp_path: Path) -> None:
    require_chromium()
    large = tmp_path / "large.jpg"
    large.write_bytes(b"\xff\xd8\xff" + b"\x00" * PHOTO_MAX_BYTES)
    url = f"http://127.0.0.1:{bot.config.http_port}/"
    async with chromium() as browser:
        context = await quiet_context(browser)
        chat = await ChatPage.open(await context.new_page(), url)
        await staff_on_the_image_step(bot, chat)
        page = chat.page
        posted: list[str] = []
        page.on("request", lambda r: posted.append(r.url) if PHOTO_PATH in r.url else None)
        users = await chat.user.count()

        async with page.expect_file_chooser() as chosen:
            await page.get_by_test_id("attach").click()
        await (await chosen.value).set_files(large)

        too_large = translator("en").gettext(
            "This photo is larger than 10 MB. Please choose a smaller one."
        )
        await expect(chat.errors.last).to_have_text(too_large)
        assert posted == []
        assert await chat.user.count() == users
        await expect(chat.bot.last).to_contain_text("Send the photo")  # still asked
    assert await Media.all().count() == 0


# --- the photo frame --------------------------------------------------------------
def test_a_photo_frame_names_an_upload_and_carries_the_caption_as_its_text() -> None:
    token = "0" * 32
    frame = {"type": "photo", "id": "e-1", "photo": token, "text": "Look here"}
    assert _incoming_fields(frame) == (
        Kind.PHOTO,
        {"event_id": "e-1", "photo_id": token, "text": "Look here"},
    )
    for forged in (f"{ANNA}.{token}", "../" + token, "F" * 32, ""):
        with pytest.raises(ValueError):
            _incoming_fields({**frame, "photo": forged})
