"""Proposals through Telegram end to end: the whole bot against the Bot API stand-in over
real HTTP, on SQLite and PostgreSQL. A resident submits with a photo (fetched with getFile,
kept without its EXIF) and with a shared location (asked for with a location keyboard)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from bot.app import Runtime
from storage import photos
from storage.models import Proposal
from tests.bot.channels.telegram_helpers import Chat, assert_no_failure, joined, telegram_env
from tests.conftest import RuntimeFactory
from tests.phrases import MAIN_MENU, tr
from tests.standins.telegram_api import BotApiStandIn, BotMessage, JSONDict

ANNA = 5101
YEAR = datetime.now(UTC).year
RIGA = (56.9496, 24.1052)
CATEGORY_QUESTION = "What is it about? Choose a category."
TEXT_QUESTION = (
    "Describe it in your own words: what, where, since when. One message, at most {n} characters."
)
CARD_TITLE = "Your proposal — check it, then press Submit."
PHOTOS_PROMPT = "Send photos of it, one or several at once (at most {most}). Added so far: {n}."
SUBMITTED = (
    "Thank you! Your proposal is registered as {reference}. You will hear here of "
    'every change of its status; "My proposals" in the menu shows it.'
)

storage = pytest.mark.storage


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N"}
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), "green").save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna", language_code="en")
        yield stand_in


@pytest.fixture
def photo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the bot keeps photos with no configuration: data/photos, here under tmp_path."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data" / "photos"


@pytest.fixture
async def bot(
    api: BotApiStandIn, start_bot: RuntimeFactory, photo_dir: Path
) -> AsyncIterator[Runtime]:
    runtime = await start_bot(**telegram_env(api))
    yield runtime
    await runtime.stop()


@pytest.fixture
async def anna(api: BotApiStandIn, bot: Runtime) -> Chat:
    chat = Chat(api, ANNA)
    await chat.onboard()
    return chat


async def expect(chat: Chat, act: Callable[[], JSONDict], replies: int = 1) -> list[BotMessage]:
    """What the bot answers to something the resident sends that the helpers lack."""
    before = len(chat.messages)
    act()
    messages = await chat.api.wait_for_messages(chat.user_id, before + replies)
    assert_no_failure(messages[before:])
    return messages[before:]


async def to_card(chat: Chat, text: str) -> BotMessage:
    (question,) = await chat.send("/propose")
    assert question.text == en(CATEGORY_QUESTION)
    (question,) = await chat.press(question, "Roads, pavements")
    assert question.text == en(TEXT_QUESTION, n=2000)
    (card,) = await chat.send(text)
    assert card.text is not None and card.text.startswith(en(CARD_TITLE))
    return card


@storage
async def test_a_resident_submits_a_report_with_a_photo(
    api: BotApiStandIn, anna: Chat, photo_dir: Path
) -> None:
    card = await to_card(anna, "Graffiti on the new bridge")
    (prompt,) = await anna.press(card, "Add photos")
    assert prompt.text == en(PHOTOS_PROMPT, most=3, n=0)
    (prompt,) = await expect(anna, lambda: api.send_photo(ANNA, content=jpeg_with_gps()))
    assert prompt.text == en(PHOTOS_PROMPT, most=3, n=1)
    (card,) = await anna.press(prompt, "Done")
    assert card.text is not None
    assert en("Photos: {n} of {most}", n=1, most=3) in card.text
    (thanks,) = await anna.press(card, "Submit")
    reference = f"P-{YEAR}-0001"
    assert thanks.text == joined(en(SUBMITTED, reference=reference), en(MAIN_MENU))

    row = await Proposal.get(reference=reference)
    assert row.text == "Graffiti on the new bridge"
    [photo] = await photos.of(row.id)
    stored = photos.read(photo_dir, photo.key)
    assert stored is not None and b"Phone" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.width, image.height) == (800, 600)
        assert dict(image.getexif()) == {}, "no EXIF kept: no GPS"


@storage
async def test_a_resident_shares_the_location_of_a_problem(api: BotApiStandIn, anna: Chat) -> None:
    card = await to_card(anna, "A deep pothole at the crossing")
    keyboard, prompt = await anna.press(card, "Add a place", replies=2)
    # Telegram asks for a location with a keyboard of its own; the message after it keeps
    # the inline buttons.
    assert keyboard.text == en("Share the place with the button below…")
    assert (keyboard.reply_markup or {}).get("keyboard") == [
        [{"text": "📍 " + en("Share the location"), "request_location": True}]
    ]
    assert prompt.text == en("…or type the address or a description of the place.")
    (card,) = await expect(anna, lambda: api.send_location(ANNA, *RIGA))
    assert card.text is not None
    assert (
        en(
            "Place: the location you shared ({latitude}, {longitude})",
            latitude="56.94960",
            longitude="24.10520",
        )
        in card.text
    )
    (thanks,) = await anna.press(card, "Submit")
    assert thanks.text == joined(en(SUBMITTED, reference=f"P-{YEAR}-0001"), en(MAIN_MENU))
    row = await Proposal.get()
    assert (row.latitude, row.longitude) == RIGA


@storage
async def test_a_photo_with_a_caption_starts_a_report(api: BotApiStandIn, anna: Chat) -> None:
    (question,) = await expect(
        anna, lambda: api.send_photo(ANNA, "Broken swing", content=jpeg_with_gps())
    )
    assert question.text == en(CATEGORY_QUESTION)
    (card,) = await anna.press(question, "Parks and trees")
    assert card.text is not None
    assert en("Text: «{text}»", text="Broken swing") in card.text
    assert en("Photos: {n} of {most}", n=1, most=3) in card.text
