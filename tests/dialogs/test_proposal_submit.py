"""A resident submits an idea or a problem: category, text, the summary card, a place,
photos, the similar proposals offered first, the daily limit; on both databases."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from bot.core.config import Config
from bot.core.geo import Bounds
from bot.core.messages import Capabilities, Kind, Location
from handlers.dispatcher import Dispatcher
from storage import photos, proposals
from storage.models import (
    ChannelIdentity,
    Proposal,
    ProposalFollow,
    ProposalPhoto,
    ProposalSupport,
    Resident,
)
from tests.chat import Chat
from tests.phrases import MAIN_MENU, ntr, too_long, tr

CATEGORY_QUESTION = "What is it about? Choose a category."
TEXT_QUESTION = (
    "Describe it in your own words: what, where, since when. One message, at most {n} characters."
)
CARD_TITLE = "Your proposal — check it, then press Submit."
SUBMITTED = (
    "Thank you! Your proposal is registered as {reference}. You will hear here of "
    'every change of its status; "My proposals" in the menu shows it.'
)
FOLLOWED_SAME = (
    "Thank you! You now follow {reference} and your support is counted. You will "
    "hear here of every change of its status."
)
SIMILAR_TITLE = "These open proposals look like yours:"
OUTSIDE = (
    "That place is outside {municipality}. Please share a place within it, or type the address."
)
PHOTO_LIMIT = (
    "A proposal can have at most {n} photo; this one was not added.",
    "A proposal can have at most {n} photos; this one was not added.",
)
NOT_IMAGE = "That file is not a photo I can read. Please send a JPEG or PNG picture."
NOT_RECEIVED = "The photo did not reach me. Please send it again."
DAILY_LIMIT = (
    "You have submitted {n} proposal in the last 24 hours, as many as one resident may. "
    "Thank you for your care! Please submit the next one tomorrow.",
    "You have submitted {n} proposals in the last 24 hours, as many as one resident may. "
    "Thank you for your care! Please submit the next one tomorrow.",
)
EMPTY = "Your message was empty. Please write something or use the buttons."
PHOTOS_PROMPT = "Send photos of it, one or several at once (at most {most}). Added so far: {n}."
YEAR = datetime.now(UTC).year

# Riga's centre, and a square around it that the demo's "centrs" takes in the tests.
RIGA = (56.9496, 24.1052)
CENTRE_SQUARE = (
    (
        (
            (24.09, 56.94),
            (24.12, 56.94),
            (24.12, 56.96),
            (24.09, 56.96),
            (24.09, 56.94),
        ),
    ),
)


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


def jpeg_with_gps(colour: str = "red") -> bytes:
    """A real JPEG whose EXIF tells the phone and where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (56.0, 57.0, 1.5),
    }
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


@dataclass
class Photos:
    """The channel's files: what each photo id the resident sends holds (None: not handed)."""

    files: dict[str, bytes | None] = field(default_factory=dict)

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        return self.files.get(file_id)


PHOTO_CAPS = Capabilities(takes_photos=True, asks_location=True)


@pytest.fixture
def proposals_config(config: Config, tmp_path: Path) -> Config:
    return replace(config, proposals=replace(config.proposals, photo_dir=str(tmp_path / "photos")))


def chat_for(config: Config, source: Photos | None = None, user_id: str = "resident-1") -> Chat:
    files = {"webchat": source} if source is not None else {}
    dispatcher = Dispatcher(config, files=files, capabilities={"webchat": PHOTO_CAPS})  # type: ignore[dict-item]
    return Chat(dispatcher, user_id=user_id, locale="en")


async def resident_of(chat: Chat) -> Resident:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


async def draft(chat: Chat, text: str, category: str = "roads") -> None:
    """From the menu to the summary card."""
    await chat.press("Idea or problem")
    assert chat.texts() == [en(CATEGORY_QUESTION)]
    await chat.choose("prop:category", category)
    assert chat.texts() == [en(TEXT_QUESTION, n=2000)]
    await chat.text(text)
    assert chat.last[-1].text.startswith(en(CARD_TITLE))


async def test_a_report_with_neither_place_nor_photo_takes_one_message_and_two_taps(
    proposals_config: Config,
) -> None:
    chat = chat_for(proposals_config)
    await chat.onboard()
    await chat.press("Idea or problem")
    await chat.choose("prop:category", "roads")  # tap one
    await chat.text("A deep pothole by the school gate on Skolas iela")  # the message
    card = chat.last[-1].text
    assert card.splitlines() == [
        en(CARD_TITLE),
        "",
        en("Category: {name}", name="Roads, pavements"),
        en("Text: «{text}»", text="A deep pothole by the school gate on Skolas iela"),
        en("Neighbourhood: {name}", name="Centre"),  # from the resident's settings
        en("Place: not given"),
        en("Photos: {n} of {most}", n=0, most=3),
    ]
    await chat.choose("prop:card", "submit")  # tap two
    reference = f"P-{YEAR}-0001"
    assert chat.texts() == [en(SUBMITTED, reference=reference), en(MAIN_MENU)]
    assert await chat.dialog() == ("", {})

    [row] = await Proposal.all()
    resident = await resident_of(chat)
    assert (row.reference, row.category, row.department, row.neighbourhood) == (
        reference,
        "roads",
        "municipality",
        "centrs",
    )
    assert row.author_id == resident.id  # type: ignore[attr-defined]
    assert (row.text, row.language, row.status, row.supporters) == (
        "A deep pothole by the school gate on Skolas iela",
        "en",
        "received",
        1,
    )
    assert (row.latitude, row.longitude, row.address) == (None, None, "")
    assert await ProposalFollow.filter(proposal_id=row.id, resident_id=resident.id).exists()
    assert await ProposalSupport.filter(proposal_id=row.id, resident_id=resident.id).exists()

    # The next one gets the next number of the year.
    await draft(chat, "The street light at the bus stop is broken", "lighting")
    await chat.choose("prop:card", "submit")
    assert chat.texts()[0] == en(SUBMITTED, reference=f"P-{YEAR}-0002")


async def test_a_typed_address_and_another_neighbourhood_go_with_the_proposal(
    proposals_config: Config,
) -> None:
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Overflowing bins behind the shop")
    await chat.choose("prop:card", "place")
    # The web chat asks for the location apart, then for the address.
    assert chat.texts() == [
        en("Share the place with the button below…"),
        en("…or type the address or a description of the place."),
    ]
    assert chat.last[0].request_location == en("Share the location")
    await chat.text("  Skolas   iela 5, by the back door ")
    assert en("Place: {address}", address="Skolas iela 5, by the back door") in chat.last[-1].text
    await chat.choose("prop:card", "hood")
    await chat.choose("prop:hood", "parupe")
    assert en("Neighbourhood: {name}", name="Across the river") in chat.last[-1].text
    await chat.choose("prop:card", "submit")
    [row] = await Proposal.all()
    assert (row.address, row.neighbourhood, row.latitude) == (
        "Skolas iela 5, by the back door",
        "parupe",
        None,
    )


async def test_an_address_over_256_characters_is_refused_plainly(proposals_config: Config) -> None:
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Broken bench")
    await chat.choose("prop:card", "place")
    await chat.text("x" * 257)
    assert chat.texts()[0] == en(
        "The address is too long: at most {n} characters. Please shorten it.", n=256
    )
    assert (await chat.dialog())[0] == "prop:place"
    assert "address" not in (await chat.dialog())[1]


async def test_a_shared_location_inside_the_bounds_finds_its_neighbourhood(
    proposals_config: Config,
) -> None:
    config = replace(
        proposals_config,
        proposals=replace(
            proposals_config.proposals,
            bounds=Bounds(56.8, 23.9, 57.1, 24.4),
            boundaries=(("jaunciems", CENTRE_SQUARE),),
        ),
    )
    chat = chat_for(config)
    await chat.onboard()  # lives in the centre
    await draft(chat, "A fallen tree blocks the path", "greenery")
    await chat.choose("prop:card", "place")

    # Outside the municipality's box: refused, the place step asked again.
    await chat.send(Kind.LOCATION, location=Location(59.437, 24.7536))  # Tallinn
    assert chat.texts()[0] == en(OUTSIDE, municipality="Demo novads")
    assert (await chat.dialog())[0] == "prop:place"

    await chat.send(Kind.LOCATION, location=Location(*RIGA))
    _state, data = await chat.dialog()
    assert (data["latitude"], data["longitude"], data["neighbourhood"]) == (*RIGA, "jaunciems")
    assert en("Neighbourhood: {name}", name="Jaunciems") in chat.last[-1].text
    await chat.choose("prop:card", "submit")
    [row] = await Proposal.all()
    assert (row.latitude, row.longitude, row.neighbourhood) == (*RIGA, "jaunciems")


async def test_a_location_outside_every_boundary_keeps_the_neighbourhood_chosen(
    proposals_config: Config,
) -> None:
    config = replace(
        proposals_config,
        proposals=replace(proposals_config.proposals, boundaries=(("jaunciems", CENTRE_SQUARE),)),
    )
    chat = chat_for(config)
    await chat.onboard()
    await draft(chat, "Ice on the pavement")
    # Shared straight on the card, with no bounds configured: any place is taken.
    await chat.send(Kind.LOCATION, location=Location(57.5, 25.0))
    await chat.choose("prop:card", "submit")
    [row] = await Proposal.all()
    assert (row.latitude, row.neighbourhood) == (57.5, "centrs")


async def test_photos_are_kept_without_exif_and_a_fourth_is_refused(
    proposals_config: Config,
) -> None:
    source = Photos(
        {f"photo-{n}": jpeg_with_gps(c) for n, c in enumerate("red green blue grey".split())}
    )
    source.files["document"] = b"%PDF-1.4 not a picture"
    source.files["lost"] = None
    chat = chat_for(proposals_config, source)
    await chat.onboard()
    await draft(chat, "Graffiti on the bridge")
    await chat.choose("prop:card", "photos")
    assert chat.texts() == [en(PHOTOS_PROMPT, most=3, n=0)]

    await chat.send(Kind.PHOTO, photo_id="document")
    assert chat.texts() == [en(NOT_IMAGE), en(PHOTOS_PROMPT, most=3, n=0)]
    await chat.send(Kind.PHOTO, photo_id="lost")
    assert chat.texts() == [en(NOT_RECEIVED), en(PHOTOS_PROMPT, most=3, n=0)]

    # An album of four: three are added, the card comes with the third, the fourth is refused.
    await chat.send(Kind.PHOTO, photo_id="photo-0")
    assert chat.texts() == [en(PHOTOS_PROMPT, most=3, n=1)]
    await chat.send(Kind.PHOTO, photo_id="photo-1")
    await chat.send(Kind.PHOTO, photo_id="photo-2")
    assert en("Photos: {n} of {most}", n=3, most=3) in chat.last[-1].text
    await chat.send(Kind.PHOTO, photo_id="photo-3")
    assert chat.texts()[0] == ntr("en", *PHOTO_LIMIT, 3)
    assert len((await chat.dialog())[1]["photos"]) == 3

    await chat.choose("prop:card", "submit")
    [row] = await Proposal.all()
    kept = await photos.of(row.id)
    assert len(kept) == 3 and await ProposalPhoto.all().count() == 3
    for photo in kept:
        stored = photos.read(proposals_config.proposals.photo_dir, photo.key)
        assert stored is not None
        with Image.open(io.BytesIO(stored)) as image:
            assert image.format == "JPEG" and (image.width, image.height) == (640, 480)
            assert dict(image.getexif()) == {}, "no EXIF: no GPS, no phone"
        assert b"Phone" not in stored


async def test_a_photo_with_a_caption_while_no_question_is_open_starts_a_report(
    proposals_config: Config,
) -> None:
    source = Photos({"photo-1": jpeg_with_gps()})
    chat = chat_for(proposals_config, source)
    await chat.onboard()
    await chat.send(Kind.PHOTO, photo_id="photo-1", text="Broken swing in the playground")
    assert chat.texts() == [en(CATEGORY_QUESTION)]
    await chat.choose("prop:category", "greenery")
    card = chat.last[-1].text
    assert en("Text: «{text}»", text="Broken swing in the playground") in card
    assert en("Photos: {n} of {most}", n=1, most=3) in card
    await chat.choose("prop:card", "submit")
    [row] = await Proposal.all()
    assert row.text == "Broken swing in the playground"
    assert len(await photos.of(row.id)) == 1


async def test_a_photo_without_a_caption_starts_nothing(proposals_config: Config) -> None:
    chat = chat_for(proposals_config, Photos({"photo-1": jpeg_with_gps()}))
    await chat.onboard()
    await chat.send(Kind.PHOTO, photo_id="photo-1")
    assert (await chat.dialog())[0] == ""
    assert await Proposal.all().count() == 0


async def test_the_daily_limit_is_answered_politely_at_start_and_at_submit(
    proposals_config: Config,
) -> None:
    config = replace(proposals_config, proposals=replace(proposals_config.proposals, daily_limit=1))
    chat = chat_for(config)
    await chat.onboard()
    await draft(chat, "First report")
    await chat.choose("prop:card", "submit")
    assert chat.texts()[0] == en(SUBMITTED, reference=f"P-{YEAR}-0001")
    await chat.press("Idea or problem")
    assert chat.texts() == [ntr("en", *DAILY_LIMIT, 1), en(MAIN_MENU)]
    assert await chat.dialog() == ("", {})
    assert await Proposal.all().count() == 1


async def test_the_limit_is_checked_again_when_submitting(proposals_config: Config) -> None:
    config = replace(proposals_config, proposals=replace(proposals_config.proposals, daily_limit=1))
    chat = chat_for(config)
    await chat.onboard()
    await draft(chat, "Drafted before the other one came in")
    # Meanwhile one arrives from the same resident (another tab, another worker).
    await proposals.submit(
        await resident_of(chat), proposals.Draft("roads", "municipality", "Other", "en")
    )
    await chat.choose("prop:card", "submit")
    assert chat.texts() == [ntr("en", *DAILY_LIMIT, 1), en(MAIN_MENU)]
    assert await Proposal.all().count() == 1


async def test_submitting_counts_the_residents_day_once(
    proposals_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = replace(proposals_config, proposals=replace(proposals_config.proposals, daily_limit=3))
    chat = chat_for(config)
    await chat.onboard()
    await draft(chat, "A bench by the river")
    counted = 0
    submitted_today = proposals.submitted_today

    async def counting(resident: Resident) -> int:
        nonlocal counted
        counted += 1
        return await submitted_today(resident)

    monkeypatch.setattr(proposals, "submitted_today", counting)
    await chat.choose("prop:card", "submit")  # no similar one: filed in this update
    assert chat.texts()[0] == en(SUBMITTED, reference=f"P-{YEAR}-0001")
    assert counted == 1


async def test_an_empty_or_overlong_text_gets_a_clear_answer_and_the_question_stays(
    proposals_config: Config,
) -> None:
    config = replace(proposals_config, limits=replace(proposals_config.limits, max_text_length=50))
    chat = chat_for(config)
    await chat.onboard()
    await chat.command("propose")
    await chat.choose("prop:category", "waste")
    await chat.text("   ")
    assert chat.texts()[0] == en(EMPTY)
    await chat.text("x" * 51)
    assert chat.texts()[0] == too_long("en", 50)
    assert (await chat.dialog())[1]["text"] == ""
    assert (await chat.dialog())[0] == "prop:text"
    await chat.text("x" * 50)
    assert (await chat.dialog())[0] == "prop:card"


async def test_cancel_discards_the_draft(proposals_config: Config) -> None:
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Never mind")
    await chat.choose("prop:card", "_cancel")
    assert chat.texts() == [en("The draft is discarded; nothing was submitted."), en(MAIN_MENU)]
    assert await Proposal.all().count() == 0


async def test_the_draft_survives_a_restart(proposals_config: Config) -> None:
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Noise at night from the factory")
    # Another worker (a new dispatcher) picks it up where it was.
    again = chat_for(proposals_config)
    await again.press_payload(chat.button_for("prop:card", "submit").payload)
    [row] = await Proposal.all()
    assert row.text == "Noise at night from the factory"


async def someone_elses(text: str, **place: float) -> Proposal:
    neighbour = await Resident.create(language="lv")
    return await proposals.submit(
        neighbour,
        proposals.Draft("roads", "municipality", text, "lv", neighbourhood="centrs", **place),
    )


async def test_a_similar_open_proposal_is_offered_and_following_it_adds_support(
    proposals_config: Config,
) -> None:
    earlier = await someone_elses("Dziļa bedre pie skolas vārtiem, Skolas ielā")
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Bedre pie skolas vārtiem")
    await chat.choose("prop:card", "submit")
    offer = chat.last[-1]
    assert offer.text.splitlines()[:3] == [
        en(SIMILAR_TITLE),
        "",
        f"1. {earlier.reference} · Roads, pavements · received: "
        "Dziļa bedre pie skolas vārtiem, Skolas ielā",
    ]
    assert chat.labels() == [["Same as 1"], ["Mine is different"], ["Back"]]
    await chat.choose("prop:same", str(earlier.id))  # one tap
    assert chat.texts() == [en(FOLLOWED_SAME, reference=earlier.reference), en(MAIN_MENU)]
    assert await Proposal.all().count() == 1, "nothing new created"
    resident = await resident_of(chat)
    assert await proposals.is_following(earlier, resident)
    assert await proposals.has_supported(earlier, resident)
    assert (await Proposal.get(id=earlier.id)).supporters == 2


async def test_a_proposal_close_by_is_offered_and_mine_is_different_submits(
    proposals_config: Config,
) -> None:
    earlier = await someone_elses("Cits teksts", latitude=RIGA[0], longitude=RIGA[1])
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Cracked asphalt")
    await chat.send(Kind.LOCATION, location=Location(RIGA[0] + 0.0005, RIGA[1]))  # ~55 m
    await chat.choose("prop:card", "submit")
    assert chat.last[-1].text.startswith(en(SIMILAR_TITLE))
    assert chat.button_for("prop:same", str(earlier.id))
    await chat.choose("prop:same", "different")
    assert chat.texts()[0] == en(SUBMITTED, reference=f"P-{YEAR}-0002")
    assert await Proposal.all().count() == 2
    assert not await proposals.is_following(earlier, await resident_of(chat))


async def test_a_forged_value_on_the_similar_step_follows_nothing(
    proposals_config: Config,
) -> None:
    earlier = await someone_elses("Bedre pie skolas vārtiem")
    other = await someone_elses("Pavisam cits priekšlikums par parku")
    chat = chat_for(proposals_config)
    await chat.onboard()
    await draft(chat, "Bedre pie skolas vārtiem")
    await chat.choose("prop:card", "submit")
    nonce_payload = chat.button_for("prop:same", str(earlier.id)).payload
    forged = nonce_payload.rsplit(":", 1)[0] + f":{other.id}"
    await chat.press_payload(forged)
    assert not await proposals.is_following(other, await resident_of(chat))
    assert (await chat.dialog())[0] == "prop:same"
