"""A proposal's photo: re-encoded with nothing of the original's metadata (a phone's GPS
position is personal data), upright, at most 2048 pixels; anything that is not an image
refused; seen only by its author and staff until approved on a public proposal;
deleted with its proposal, kept (detached) when its author is forgotten."""

from __future__ import annotations

import io
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from storage import photos, proposals, residents, staff
from storage.models import Proposal, ProposalPhoto, Resident
from storage.photos import PhotoRefused
from storage.proposals import Draft
from storage.sessions import open_session

GPS = ExifTags.IFD.GPSInfo
ORIENTATION = 0x0112
MAKE = 0x010F


def jpeg(width: int = 64, height: int = 32, exif: Image.Exif | None = None) -> bytes:
    """A photo as a phone takes it: red on the left half, blue on the right."""
    image = Image.new("RGB", (width, height), "blue")
    image.paste("red", (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif or Image.Exif())
    return out.getvalue()


def with_gps_and_camera() -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "PhoneMaker"
    exif.get_ifd(GPS).update({1: "N", 2: (56.0, 57.0, 1.5), 3: "E", 4: (24.0, 6.0, 2.0)})
    return exif


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims gigapixels in a few bytes: a decompression bomb's head."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- re-encoding (no database) --------------------------------------------------
def test_the_gps_position_and_the_camera_are_gone_from_the_kept_photo() -> None:
    original = jpeg(exif=with_gps_and_camera())
    assert opened(original).getexif().get_ifd(GPS)  # the phone's photo had them
    encoded, _, _ = photos.reencode(original)
    kept = opened(encoded)
    assert kept.format == "JPEG"
    assert dict(kept.getexif()) == {}
    assert kept.getexif().get_ifd(GPS) == {}
    assert b"PhoneMaker" not in encoded
    assert "exif" not in kept.info and "icc_profile" not in kept.info


def test_a_photo_taken_sideways_is_kept_upright() -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to view"
    encoded, width, height = photos.reencode(jpeg(64, 32, exif))
    kept = opened(encoded)
    assert (width, height) == kept.size == (32, 64)
    assert ORIENTATION not in kept.getexif()
    # The left half (red) is now on top.
    red, _, blue = kept.getpixel((16, 8))  # type: ignore[misc]
    assert red > 200 and blue < 60


def test_a_large_photo_is_downscaled_to_2048_on_its_longest_side() -> None:
    encoded, width, height = photos.reencode(jpeg(4100, 1025))
    assert (width, height) == opened(encoded).size == (2048, 512)
    _, width, height = photos.reencode(jpeg(300, 200))
    assert (width, height) == (300, 200)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.7 not a photo at all", "not_image"),
        (jpeg(400, 300)[:300], "not_image"),  # cut short in transfer
        (png_header_only(30_000, 30_000), "too_large"),  # a decompression bomb
        (b"\xff\xd8\xff" + b"\x00" * (10 * 1024 * 1024), "too_large"),  # over 10 MB
    ],
    ids=["not an image", "truncated", "decompression bomb", "over 10 MB"],
)
def test_what_is_not_a_photo_we_can_keep_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(PhotoRefused) as refused:
        photos.reencode(data)
    assert refused.value.reason == reason


async def test_a_kept_photo_is_a_file_named_by_its_hash(tmp_path: Path) -> None:
    kept = await photos.keep(tmp_path, jpeg(exif=with_gps_and_camera()))
    assert photos.is_key(kept.key)
    data = photos.read(tmp_path, kept.key)
    assert data is not None and b"PhoneMaker" not in data
    assert photos.url(kept.key) == f"/photos/{kept.key}.jpg"
    assert photos.read(tmp_path, "../" + kept.key[3:]) is None  # never a path of its own


# --- who may see it, and deletion (both databases) -----------------------------------
async def resident(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


async def proposal_with_photo(author: Resident, directory: Path, *, approved: bool = False):  # type: ignore[no-untyped-def]
    proposal = await proposals.submit(
        author, Draft("roads", "municipality", "A pothole by the school", "en", "centrs")
    )
    kept = await photos.keep(directory, jpeg())
    await photos.attach(proposal.id, [kept], approved=approved)
    return proposal, kept.key


@pytest.mark.usefixtures("database")
async def test_before_approval_only_the_author_and_staff_see_a_photo(tmp_path: Path) -> None:
    author, neighbour = await resident("1"), await resident("2")
    _, key = await proposal_with_photo(author, tmp_path)
    assert await photos.may_see(key, author.id, is_staff=False)
    assert await photos.may_see(key, None, is_staff=True)
    assert not await photos.may_see(key, neighbour.id, is_staff=False)
    assert not await photos.may_see(key, None, is_staff=False)
    assert not await photos.is_public(key)


@pytest.mark.usefixtures("database")
async def test_an_approved_photo_is_public_until_its_proposal_is_hidden(tmp_path: Path) -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal, key = await proposal_with_photo(author, tmp_path, approved=True)
    assert await photos.is_public(key)
    assert await photos.may_see(key, neighbour.id, is_staff=False)
    assert await photos.may_see(key, None, is_staff=False)
    await Proposal.filter(id=proposal.id).update(hidden_at=datetime.now(UTC))
    assert not await photos.is_public(key)
    assert not await photos.may_see(key, None, is_staff=False)
    assert await photos.may_see(key, author.id, is_staff=False)  # their own, still
    assert await photos.may_see(key, None, is_staff=True)


@pytest.mark.usefixtures("database")
async def test_a_photo_no_proposal_uses_is_seen_by_nobody(tmp_path: Path) -> None:
    author = await resident("1")
    draft_photo = await photos.keep(tmp_path, jpeg(80, 80))  # a draft's, not submitted
    assert not await photos.may_see(draft_photo.key, author.id, is_staff=False)
    assert not await photos.may_see(draft_photo.key, None, is_staff=True)
    assert not await photos.may_see("not-a-key", None, is_staff=True)


@pytest.mark.usefixtures("database")
async def test_deleting_a_proposal_deletes_its_photo_files_but_not_a_shared_one(
    tmp_path: Path,
) -> None:
    author = await resident("1")
    first, key = await proposal_with_photo(author, tmp_path)
    second, same_key = await proposal_with_photo(author, tmp_path)  # the same picture again
    own = await photos.keep(tmp_path, jpeg(90, 90))
    await photos.attach(first.id, [own])
    assert same_key == key

    assert await photos.delete_of(tmp_path, first.id) == 1
    await first.delete()
    assert photos.read(tmp_path, own.key) is None
    assert photos.read(tmp_path, key) is not None  # the second proposal still shows it
    assert await ProposalPhoto.filter(proposal_id=first.id).count() == 0

    assert await photos.delete_of(tmp_path, second.id) == 1
    assert photos.read(tmp_path, key) is None
    assert await photos.prune_orphans(tmp_path, 0) == 0  # nothing was left behind


@pytest.mark.usefixtures("database")
async def test_a_forgotten_author_leaves_the_photos_with_the_proposal(tmp_path: Path) -> None:
    author = await resident("1")
    proposal, key = await proposal_with_photo(author, tmp_path)
    former_id = author.id
    await residents.forget(author)
    row = await Proposal.get(id=proposal.id)
    assert row.author_id is None  # type: ignore[attr-defined]
    assert [p.key for p in await photos.of(proposal.id)] == [key]
    assert photos.read(tmp_path, key) is not None
    assert not await photos.may_see(key, former_id, is_staff=False)
    assert await photos.may_see(key, None, is_staff=True)


@pytest.mark.usefixtures("database")
async def test_the_viewer_of_an_account_is_its_resident_and_whether_it_is_staff() -> None:
    someone = await resident("7")
    assert await photos.viewer("telegram", "7") == (someone.id, False)
    assert await photos.viewer("telegram", "8") == (None, False)
    await staff.grant("telegram", "8", "moderator", actor="test")
    assert await photos.viewer("telegram", "8") == (None, True)
