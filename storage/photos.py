"""Photos of proposals: proven to be images, stripped of EXIF, re-encoded, kept as files.

A photo a resident sends may carry the phone's GPS position and the camera's
serial number in its EXIF: personal data we do not keep. Pillow decodes it (so
anything that is not an image is refused), applies its orientation, and writes
a fresh JPEG with no metadata at all, the longest side at most ``LONGEST_SIDE``.
The file is named by the SHA-256 of what we wrote, under ``proposals.photo_dir``
(not in the database: photos are large and the database is backed up often).
A photo is kept as soon as it arrives, before the proposal exists (a draft
holds only the keys); ``prune_orphans`` removes files no proposal came to use.
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

from PIL import Image, ImageOps, UnidentifiedImageError

from storage.models import ProposalPhoto

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


def path_of(directory: str | os.PathLike[str], key: str) -> Path:
    """Where a kept photo's file is: two levels, so no folder holds too many files."""
    if len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key):
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
