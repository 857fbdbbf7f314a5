"""Images the municipality sends, kept by us so every channel can show them.

A platform's own file id (Telegram's) works only on that platform; the web
chat (and later Messenger) need the image from our server. Only real images
are kept: the type is read from the bytes, not taken from what a platform says.
"""

from __future__ import annotations

import hashlib

from storage.models import Media

MAX_BYTES = 10 * 1024 * 1024

_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The image's MIME type from its first bytes, or None when it is no image we show."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in _SIGNATURES if data.startswith(signature)), None)


async def save_image(data: bytes) -> str | None:
    """Keep an image; returns its key, or None when it is not an image or too large."""
    kind = image_type(data)
    if kind is None or len(data) > MAX_BYTES:
        return None
    key = hashlib.sha256(data).hexdigest()
    await Media.get_or_create(key=key, defaults={"content_type": kind, "data": data})
    return key


async def image(key: str) -> tuple[bytes, str] | None:
    """The bytes and MIME type of a kept image."""
    row = await Media.get_or_none(key=key)
    return (bytes(row.data), row.content_type) if row else None


def url(key: str) -> str:
    """Where our HTTP server serves it (relative: the web chat is on the same origin)."""
    return f"/media/{key}"
