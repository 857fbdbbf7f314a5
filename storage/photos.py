"""Photos of proposals: proven to be images, stripped of EXIF, re-encoded, kept as files.

A photo a resident sends may carry the phone's GPS position and the camera's
serial number in its EXIF: personal data we do not keep. Pillow decodes it (so
anything that is not an image is refused), applies its orientation, and writes
a fresh JPEG with no metadata at all, the longest side at most ``LONGEST_SIDE``.
The file is named by the SHA-256 of what we wrote, under ``proposals.photo_dir``
(not in the database: photos are large and the database is backed up often).
A photo is kept as soon as it arrives, before the proposal exists (a draft
holds only the keys); ``prune_orphans`` removes files no proposal came to use.

Who may see one (``may_see``): the author of a proposal it belongs to, staff, and
anyone once a moderator approved it on a proposal that is public. A resident who is
forgotten leaves their proposals detached (author SET NULL): the photos stay with the
proposal, and nobody is its author any more.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from storage.models import ProposalPhoto, Resident, StaffMember
from storage.proposal_states import WITHDRAWN

MAX_BYTES = 10 * 1024 * 1024  # what a resident may send
LONGEST_SIDE = 2048
QUALITY = 85
# A decompression bomb (a tiny file that decodes to gigapixels) is refused, not decoded.
MAX_PIXELS = 50_000_000


class PhotoRefused(Exception):
    """Why a photo was not kept: "too_large" or "not_image"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Kept:
    key: str
    width: int
    height: int


def reencode(data: bytes) -> tuple[bytes, int, int]:
    """The photo as a metadata-free JPEG, downscaled; PhotoRefused when it is no image."""
    if len(data) > MAX_BYTES:
        raise PhotoRefused("too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRefused("too_large")
                probe.verify()  # a truncated or forged file stops here
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                upright = ImageOps.exif_transpose(image)
                upright = upright.convert("RGB")
    except PhotoRefused:
        raise
    except Image.DecompressionBombError:
        raise PhotoRefused("too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning):
        raise PhotoRefused("not_image") from None
    upright.thumbnail((LONGEST_SIDE, LONGEST_SIDE))
    out = io.BytesIO()
    # No exif=, no icc_profile=: Pillow writes none of the original's metadata.
    upright.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue(), upright.width, upright.height


def is_key(text: str) -> bool:
    """Whether ``text`` can name a kept photo (the hex SHA-256 we name files by)."""
    return len(text) == 64 and all(ch in "0123456789abcdef" for ch in text)


def url(key: str) -> str:
    """Where our HTTP server serves a photo (relative: the web chat is on the same origin;
    Telegram is handed the bytes)."""
    return f"/photos/{key}.jpg"


def path_of(directory: str | os.PathLike[str], key: str) -> Path:
    """Where a kept photo's file is: two levels, so no folder holds too many files."""
    if not is_key(key):
        raise ValueError("not a photo key")
    return Path(directory) / key[:2] / f"{key}.jpg"


def _write(directory: str | os.PathLike[str], data: bytes) -> Kept:
    encoded, width, height = reencode(data)
    key = hashlib.sha256(encoded).hexdigest()
    target = path_of(directory, key)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(encoded)
        os.replace(partial, target)  # whole or not at all, even with two workers
    return Kept(key, width, height)


async def keep(directory: str | os.PathLike[str], data: bytes) -> Kept:
    """Re-encode and store a photo (in a thread: decoding takes a CPU for a while)."""
    return await asyncio.to_thread(_write, directory, data)


def read(directory: str | os.PathLike[str], key: str) -> bytes | None:
    try:
        return path_of(directory, key).read_bytes()
    except (OSError, ValueError):
        return None


async def attach(
    proposal_id: int, kept: Iterable[Kept], kind: str = "resident", *, approved: bool = False
) -> list[ProposalPhoto]:
    """Record kept photos as the proposal's (in the caller's transaction)."""
    return [
        await ProposalPhoto.create(
            proposal_id=proposal_id,
            key=photo.key,
            kind=kind,
            width=photo.width,
            height=photo.height,
            approved=approved,
        )
        for photo in kept
    ]


async def of(proposal_id: int) -> list[ProposalPhoto]:
    return list(await ProposalPhoto.filter(proposal_id=proposal_id).order_by("id"))


async def prune_orphans(directory: str | os.PathLike[str], older_than_seconds: float) -> int:
    """Delete photo files no proposal uses that are older than the given age (a draft
    abandoned, a proposal deleted); returns how many."""
    root = Path(directory)
    used = set(await ProposalPhoto.all().values_list("key", flat=True))
    cutoff = time.time() - older_than_seconds

    def sweep() -> int:
        removed = 0
        if not root.is_dir():
            return 0
        for file in root.glob("??/*.jpg"):
            if file.stem not in used and file.stat().st_mtime < cutoff:
                file.unlink(missing_ok=True)
                removed += 1
        return removed

    return await asyncio.to_thread(sweep)


async def _uses(key: str) -> list[dict[str, Any]]:
    """Every proposal using the photo: approved or not, its author, whether it is public."""
    return list(
        await ProposalPhoto.filter(key=key).values(
            "approved", "proposal__author_id", "proposal__hidden_at", "proposal__status"
        )
    )


def _public(use: dict[str, Any]) -> bool:
    """Approved on a proposal others see (``storage.proposals.is_public``)."""
    return bool(use["approved"]) and (
        not use["proposal__hidden_at"] and use["proposal__status"] != WITHDRAWN
    )


async def is_public(key: str) -> bool:
    """Anyone may see it: approved on a proposal that is neither hidden nor withdrawn."""
    return is_key(key) and any(_public(use) for use in await _uses(key))


async def may_see(key: str, resident_id: int | None, is_staff: bool) -> bool:
    """Whether a viewer may see a kept photo: staff and the author of a proposal using
    it always, anyone once it is approved on a public proposal. A key no proposal uses
    (a draft's, an orphan's) is seen by nobody over HTTP."""
    if not is_key(key):
        return False
    uses = await _uses(key)
    if is_staff:
        return bool(uses)
    return any(
        _public(use) or (resident_id is not None and use["proposal__author_id"] == resident_id)
        for use in uses
    )


async def delete_of(directory: str | os.PathLike[str], proposal_id: int) -> int:
    """Remove a proposal's photos, rows and files, before the proposal itself is deleted;
    a file another proposal also uses (the same picture sent twice) stays. Returns how
    many files were removed. Call it in the transaction that deletes the proposal: the
    files go only after the rows are gone, so a photo is never listed without its file
    for long (a rollback leaves a row whose file is gone: it is then simply not shown)."""
    keys = {
        str(key)
        for key in await ProposalPhoto.filter(proposal_id=proposal_id).values_list("key", flat=True)
    }
    await ProposalPhoto.filter(proposal_id=proposal_id).delete()
    if not keys:
        return 0
    still = {
        str(key) for key in await ProposalPhoto.filter(key__in=keys).values_list("key", flat=True)
    }
    gone = sorted(keys - still)

    def unlink() -> int:
        removed = 0
        for key in gone:
            file = path_of(directory, key)
            if file.exists():
                file.unlink(missing_ok=True)
                removed += 1
        return removed

    return await asyncio.to_thread(unlink)


async def viewer(channel: str, external_id: str) -> tuple[int | None, bool]:
    """Who a platform account is to ``may_see``: its resident's id (None when nobody is
    behind it yet) and whether it holds a staff role. A look-up that creates nobody."""
    resident = await Resident.filter(
        identities__channel=channel, identities__external_id=external_id
    ).first()
    role = await StaffMember.get_or_none(channel=channel, external_id=external_id)
    return (resident.id if resident else None), role is not None
