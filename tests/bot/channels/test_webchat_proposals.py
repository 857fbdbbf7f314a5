"""A resident on the web chat page, in Chromium, reports a problem: a category, the text,
a typed address and a photo chosen on the page; the proposal is stored with its place and
its re-encoded photo (no EXIF), the resident reads its reference and finds it under
"My proposals". A photo with a caption sent while nothing is asked starts a report."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import Runtime
from storage import photos
from storage.models import Proposal, ProposalPhoto
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat import choose_english_and_centre, quiet_context
from tests.bot.test_photo_serving import photo_config
from tests.conftest import RuntimeFactory
from tests.dialogs.test_proposal_submit import CARD_TITLE, SUBMITTED, jpeg_with_gps
from tests.phrases import ALL_SET, MAIN_MENU, PRIVACY_QUESTION, tr

pytestmark = pytest.mark.storage

YEAR = datetime.now(UTC).year
ADDRESS = "Brīvības iela 1, by the school gate"


@pytest.fixture
async def bot(start_bot: RuntimeFactory, tmp_path: Path) -> Runtime:
    return await start_bot(photo_config(tmp_path), IESAISTE_WEBCHAT_COOKIE_SECRET="s" * 32)


async def onboarded(chat: ChatPage) -> None:
    await choose_english_and_centre(chat)
    await chat.press("Done")
    await chat.expect_text(chat.bot.last, tr("en", PRIVACY_QUESTION))
    await chat.press("I agree")
    await chat.expect_text(chat.bot.last, f"{tr('en', ALL_SET)}\n\n{tr('en', MAIN_MENU)}")


async def choose_photo(chat: ChatPage, photo: Path) -> None:
    async with chat.page.expect_file_chooser() as chosen:
        await chat.page.get_by_test_id("attach").click()
    await (await chosen.value).set_files(photo)


async def test_a_report_with_a_typed_address_and_a_photo_from_the_page(
    bot: Runtime, tmp_path: Path
) -> None:
    require_chromium()
    photo = tmp_path / "pothole.jpg"
    photo.write_bytes(jpeg_with_gps())
    async with chromium() as browser:
        chat = await ChatPage.open(
            await (await quiet_context(browser)).new_page(),
            f"http://127.0.0.1:{bot.config.http_port}/",
        )
        await onboarded(chat)
        await chat.press("Idea or problem")
        await chat.press("Roads, pavements")
        await chat.say("A deep pothole that fills with water")
        await expect(chat.bot.last).to_contain_text(tr("en", CARD_TITLE))
        await chat.press("Add a place")
        await chat.say(ADDRESS)
        await expect(chat.bot.last).to_contain_text(ADDRESS)
        await chat.press("Add photos")
        await choose_photo(chat, photo)
        await expect(chat.bot.last).to_contain_text("Added so far: 1")
        await chat.press("Done")
        await expect(chat.bot.last).to_contain_text("Photos: 1 of 3")
        await chat.press("Submit")
        reference = f"P-{YEAR}-0001"
        await expect(chat.log).to_contain_text(tr("en", SUBMITTED, reference=reference))
        await expect(chat.errors).to_have_count(0)

        await chat.press("My proposals")
        await expect(chat.bot.last).to_contain_text(reference)

    proposal = await Proposal.get(reference=reference)
    assert (proposal.category, proposal.neighbourhood, proposal.address) == (
        "roads",
        "centrs",
        ADDRESS,
    )
    (kept,) = await ProposalPhoto.filter(proposal_id=proposal.id)
    stored = photos.read(bot.config.proposals.photo_dir, kept.key)
    assert stored is not None and b"Exif" not in stored and b"Phone" not in stored


async def test_a_photo_with_a_caption_while_nothing_is_asked_starts_a_report(
    bot: Runtime, tmp_path: Path
) -> None:
    require_chromium()
    photo = tmp_path / "bench.jpg"
    photo.write_bytes(jpeg_with_gps("green"))
    async with chromium() as browser:
        chat = await ChatPage.open(
            await (await quiet_context(browser)).new_page(),
            f"http://127.0.0.1:{bot.config.http_port}/",
        )
        await onboarded(chat)
        await chat.input.fill("The bench in the park is broken")
        await choose_photo(chat, photo)
        await chat.press("Parks and trees")
        await expect(chat.bot.last).to_contain_text(tr("en", CARD_TITLE))
        await expect(chat.bot.last).to_contain_text("The bench in the park is broken")
        await expect(chat.bot.last).to_contain_text("Photos: 1 of 3")
        await chat.press("Submit")
        await expect(chat.log).to_contain_text(f"P-{YEAR}-0001")
    proposal = await Proposal.get(reference=f"P-{YEAR}-0001")
    assert proposal.category == "greenery"
    assert await ProposalPhoto.filter(proposal_id=proposal.id).count() == 1
