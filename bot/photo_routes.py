"""Proposal photos over HTTP (``GET /photos/{key}.jpg``), only to those who may see them.

A photo may show a resident's house or car before a moderator looked at it, so it
is served to the public only once approved (``storage.photos.may_see``); before
that only to its author and to staff. Who a request is comes from a channel's own
cookie: each channel with a browser side (the web chat) hands in a function telling
the account of a request; Telegram needs none (it is handed the bytes). Whoever may
not see a photo gets 404, as for a key that does not exist: an answer of 403 would
tell that the photo is there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from bot.core.proposals_config import ProposalsConfig
from storage import media, photos

# A channel's answer to "whose request is this?": the account's external id, or None.
Identify = Callable[[web.Request], str | None]

PHOTOS = "/photos/"
MEDIA = "/media/"
SUFFIX = ".jpg"
# Approval can be withdrawn (a proposal hidden): even a public photo is not cached for long.
PUBLIC_CACHE = "public, max-age=300"
PRIVATE_CACHE = "private, max-age=300"


@dataclass(frozen=True, slots=True)
class PhotoRoutes:
    proposals: ProposalsConfig  # where the files are, and the departments' staff accounts
    identify: Mapping[str, Identify] = field(default_factory=dict)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(PHOTOS + "{name}", self.photo)

    async def photo(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        key = name.removesuffix(SUFFIX)
        if not name.endswith(SUFFIX) or not photos.is_key(key):
            raise web.HTTPNotFound()
        if await photos.is_public(key):
            cache = PUBLIC_CACHE
        elif await self._may_see(request, key):
            cache = PRIVATE_CACHE
        else:
            raise web.HTTPNotFound()
        data = await asyncio.to_thread(photos.read, self.proposals.photo_dir, key)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=data,
            content_type="image/jpeg",
            headers={
                "Cache-Control": cache,
                # The answer depends on the cookie: a shared cache must not hand it on.
                "Vary": "Cookie",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def _may_see(self, request: web.Request, key: str) -> bool:
        for channel, identify in self.identify.items():
            account = identify(request)
            if account is None:
                continue
            resident_id, has_role = await photos.viewer(channel, account)
            is_staff = has_role or bool(self.proposals.departments_of(channel, account))
            if await photos.may_see(key, resident_id, is_staff):
                return True
        return False


def local_images(proposals: ProposalsConfig) -> Callable[[str], Awaitable[bytes | None]]:
    """The reader a channel that cannot fetch our URLs (Telegram) is handed: the bytes of
    "/photos/<key>.jpg" (a proposal's photo) or "/media/<key>" (an announcement's image),
    None for anything else or a file that is gone. The channel shows what a dialog
    chose to show: whether the resident may see it was decided there."""

    async def read(path: str) -> bytes | None:
        if path.startswith(PHOTOS):
            name = path.removeprefix(PHOTOS)
            key = name.removesuffix(SUFFIX)
            if not name.endswith(SUFFIX) or not photos.is_key(key):
                return None
            return await asyncio.to_thread(photos.read, proposals.photo_dir, key)
        if path.startswith(MEDIA):
            found = await media.image(path.removeprefix(MEDIA))
            return found[0] if found else None
        return None

    return read
