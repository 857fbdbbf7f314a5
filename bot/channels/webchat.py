"""The web chat: a page served by our aiohttp app, talking over a WebSocket.

A resident is recognised by a signed, HttpOnly cookie holding a random id;
nothing else identifies them. The page's strings come from our catalogs in a
``ui`` frame, so the chrome speaks the resident's language too.

A cookie costs a client nothing, so opening the page creates nobody: the
resident row is made when the person first writes or presses a button, and
only so many new residents a client address may start in an hour. When a
resident is forgotten (/mydata), their sockets close with ``RENEW_CLOSE`` and
the page fetches a fresh cookie, so the old id never comes back.

A photo is uploaded by the page (``POST /webchat/photo``, the cookie's resident only,
10 MB at most, image bytes only) and kept for a few minutes as a file under
``uploads`` (shared by the workers, as the photos themselves are); the page then
sends a ``photo`` frame naming it, which becomes ``Incoming(kind=PHOTO)``, and the
dispatcher fetches the bytes (``fetch``) if the resident's step takes a photo. The
file is deleted once that frame is handled; one never named goes after
``UPLOAD_MINUTES``.

Only the worker holding a resident's socket can push to them, so the chat tells
the runtime (``Presence``) when a resident's first tab opens here and when the
last one closes: the web chat's pushes are claimed by that worker alone
(``ClaimPolicy.PRESENT_HERE``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot.core import metrics
from bot.core.channel import ClaimPolicy, PushRefused, coalesce, fit_label, split_text
from bot.core.config import IPNetwork
from bot.core.i18n import N_, Translator, translator
from bot.core.messages import (
    Capabilities,
    ChannelLimits,
    Feed,
    Incoming,
    Kind,
    Location,
    Outcome,
    Reply,
)

log = logging.getLogger(__name__)

NAME = "webchat"
COOKIE = "iesaiste_chat"
STATIC = Path(__file__).with_name("webchat_static")
MAX_FRAME = 256 * 1024  # a 10,000-character message fits; a flood does not
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
LIMITS = ChannelLimits(
    text_length=4000,
    buttons_per_message=100,
    button_label_length=64,
    payload_bytes=64,
    can_edit=True,
    messages_per_second=1000.0,
    messages_per_second_per_chat=20.0,
)
# Photos uploaded by the page; a location through the browser's geolocation; a push
# needs an open tab, not a time window.
CAPABILITIES = Capabilities.of(LIMITS, takes_photos=True, asks_location=True)
PHOTO_PATH = "/webchat/photo"
PHOTO_MAX_BYTES = 10 * 1024 * 1024  # what the page checks before uploading, too
UPLOAD_MINUTES = 10  # an upload no photo frame named is deleted after this
UPLOADS_PER_RESIDENT = 5  # waiting at once: a resident cannot fill the disk
UPLOAD_TOKEN = re.compile(r"[0-9a-f]{32}")
# What an image starts with (the formats a browser sends; Pillow proves the rest later).
_IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")

UI_STRINGS = {
    "title": N_("{municipality} · residents' assistant"),
    "placeholder": N_("Write a message…"),
    "send": N_("Send"),
    "connecting": N_("Connecting…"),
    "offline": N_("The connection was lost. Trying again…"),
    "share_location": N_("Share my location"),
    "log_label": N_("Conversation"),
    "input_label": N_("Your message"),
    # TRANSLATORS: the label (read aloud) of the web chat's button that attaches a photo
    "attach_photo": N_("Attach a photo"),
    "photo": N_("Photo"),
    "photo_too_large": N_("This photo is larger than 10 MB. Please choose a smaller one."),
    "photo_not_image": N_("This file is not a photo. Please choose a photo."),
    "photo_failed": N_("The photo could not be sent. Please try again."),
    # Shown under a message the bot could not take (its database was away for a moment).
    "not_sent": N_("Not sent: we are having a technical problem. Please try again in a minute."),
    # TRANSLATORS: the button under a message that was not sent, which sends it again
    "send_again": N_("Send again"),
}
USER_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, what every cookie we sign holds
COMMAND_PATTERN = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:\s+(.*))?$", re.DOTALL)
UNREADABLE = N_("I could not read that message. Please try again.")
# The close code that tells the page its resident was forgotten: it asks POST /session
# for a fresh cookie, then connects again as nobody yet.
RENEW_CLOSE = 4001
COOKIE_MAX_AGE = 60 * 60 * 24 * 365


class Newcomers(Protocol):
    """What the web chat asks about the people behind its cookies. The runtime hands it in
    (storage.webchat_guard.Newcomers): a channel reaches no storage of its own."""

    async def language(self, user_id: str) -> str | None:
        """The resident's language ("" if not chosen), or None when nobody is behind the id."""

    async def refused_until(self, address: str) -> datetime | None:
        """When ``address`` may start a new resident again, if its limit is used up now."""

    async def admit(self, address: str) -> datetime | None:
        """Count a new resident from ``address``: None when admitted, else when to try again."""


class Presence(Protocol):
    """Where the web chat says whose sockets it holds. The runtime hands it in
    (storage.presence.Here, bound to this worker): the claim reads it."""

    async def arrive(self, user_id: str) -> None:
        """The resident's first tab opened on this worker."""

    async def leave(self, user_id: str) -> None:
        """The resident's last tab on this worker closed."""


def sign(secret: str, user_id: str) -> str:
    mac = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).digest()
    return f"{user_id}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def verify(secret: str, cookie: str | None) -> str | None:
    """The user id in a cookie we signed, or None; compared in constant time.

    Anything but the ASCII we write is refused before signing: bytes that are not UTF-8
    arrive as lone surrogates, which neither the HMAC nor compare_digest can take.
    """
    if not cookie or not cookie.isascii() or "." not in cookie:
        return None
    user_id = cookie.split(".", 1)[0]
    if not USER_ID.fullmatch(user_id):
        return None
    return user_id if hmac.compare_digest(sign(secret, user_id), cookie) else None


@dataclass(slots=True)
class WebChat:
    feed: Feed
    municipality: str  # its name, in the page's title
    default_language: str  # for a stranger whose language nobody knows yet
    secret: str
    secure_cookie: bool = False
    # Proxies whose X-Forwarded-For names the client; the peer's address counts otherwise.
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # None: every cookie is taken for a resident and nobody is limited (a test's stand-in).
    newcomers: Newcomers | None = None
    # None: nobody is told (a test's stand-in, a single worker's tests that claim anyway).
    presence: Presence | None = None
    name: str = NAME
    limits: ChannelLimits = LIMITS
    capabilities: Capabilities = CAPABILITIES
    claim_policy: ClaimPolicy = ClaimPolicy.PRESENT_HERE
    # Where uploaded photos wait for their frame; None: the chat takes no photos.
    uploads: Path | None = None
    _sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    # The language of the last answer per connected resident, so that an
    # unreadable frame is refused in their language without a database trip.
    _languages: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.uploads is None:
            self.capabilities = replace(self.capabilities, takes_photos=False)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/ws", self.websocket)
        app.router.add_post("/session", self.renew)
        if self.uploads is not None:
            app.router.add_post(PHOTO_PATH, self.upload_photo)

    def account_of(self, request: web.Request) -> str | None:
        """Whose request this is, by our signed cookie: the runtime serves a resident's
        own photos by it."""
        return verify(self.secret, request.cookies.get(COOKIE))

    # --- photos -------------------------------------------------------------
    async def upload_photo(self, request: web.Request) -> web.StreamResponse:
        """Keep an uploaded photo for its frame; answers ``{"photo": token}``.

        Only for our own page, from a resident who exists (a cookie alone costs
        nothing), and only bytes that begin as an image does: 413 past 10 MB, 415 for
        anything else. The runtime lets this route's body be 10 MB (``bot.http``).
        """
        assert self.uploads is not None
        user_id = self.account_of(request)
        if user_id is None or not _same_origin(request):
            raise web.HTTPForbidden(text="open the chat page first")
        if self.newcomers is not None and await self._known_language(user_id) is None:
            raise web.HTTPForbidden(text="write to the chat first")
        data = await request.read()
        if len(data) > PHOTO_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(PHOTO_MAX_BYTES, len(data))
        if not data.startswith(_IMAGE_SIGNATURES) and not (
            data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        ):
            raise web.HTTPUnsupportedMediaType(text="not an image")
        token = uuid.uuid4().hex
        if not await asyncio.to_thread(self._keep_upload, user_id, token, data):
            raise web.HTTPTooManyRequests(text="too many photos waiting")
        return web.json_response({"photo": token}, headers=self._headers())

    def _keep_upload(self, user_id: str, token: str, data: bytes) -> bool:
        """Write an upload (whole or not at all), after sweeping the stale ones; False when
        the resident has too many waiting."""
        assert self.uploads is not None
        self.uploads.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - UPLOAD_MINUTES * 60
        waiting = 0
        for file in self.uploads.iterdir():
            try:
                if file.stat().st_mtime < cutoff:
                    file.unlink(missing_ok=True)
                elif file.name.startswith(f"{user_id}."):
                    waiting += 1
            except FileNotFoundError:  # another worker swept it first
                continue
        if waiting >= UPLOADS_PER_RESIDENT:
            return False
        partial = self.uploads / f"{token}.{os.getpid()}.part"
        partial.write_bytes(data)
        os.replace(partial, self.uploads / f"{user_id}.{token}")
        return True

    def _upload(self, file_id: str) -> Path | None:
        """The file of an upload id ("<user id>.<token>"), or None for anything else."""
        user_id, _, token = file_id.partition(".")
        if self.uploads is None or not USER_ID.fullmatch(user_id):
            return None
        return self.uploads / file_id if UPLOAD_TOKEN.fullmatch(token) else None

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        """The bytes of an upload the page named in a photo frame (``FileSource``)."""
        path = self._upload(file_id)
        if path is None:
            return None

        def read() -> bytes | None:
            try:
                if path.stat().st_size > max_bytes:
                    return None
                return path.read_bytes()
            except OSError:  # expired, or never uploaded
                return None

        return await asyncio.to_thread(read)

    async def _drop_upload(self, file_id: str) -> None:
        path = self._upload(file_id)
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    # --- HTTP -------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html", headers=self._headers())
        if verify(self.secret, request.cookies.get(COOKIE)) is None:
            self._new_cookie(response)
        return response

    async def renew(self, request: web.Request) -> web.StreamResponse:
        """A fresh cookie for a page whose resident was forgotten (see RENEW_CLOSE).

        Only for our own page showing our cookie, and only when nobody stands behind that
        cookie any more: another site cannot make a resident lose their conversation.
        """
        user_id = verify(self.secret, request.cookies.get(COOKIE))
        if user_id is None or not _same_origin(request):
            raise web.HTTPForbidden(text="open the chat page first")
        if self.newcomers is not None and await self._known_language(user_id) is not None:
            raise web.HTTPConflict(text="this chat's resident is still here")
        response = web.Response(status=204, headers=self._headers())
        self._new_cookie(response)
        return response

    def _new_cookie(self, response: web.StreamResponse) -> None:
        response.set_cookie(
            COOKIE,
            sign(self.secret, uuid.uuid4().hex),
            max_age=COOKIE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=self.secure_cookie,
            path="/",
        )

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ("chat.js", "chat.css"):
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name, headers=self._headers())

    @staticmethod
    def _headers() -> dict[str, str]:
        return {
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }

    # --- WebSocket --------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        user_id = verify(self.secret, request.cookies.get(COOKIE))
        if user_id is None or not _same_origin(request):
            # No valid cookie: the page sets one; a foreign origin is refused
            # so another site cannot talk to the bot as this resident.
            raise web.HTTPForbidden(text="open the chat page first")
        address = self._address_key(request)
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        first = user_id not in self._sockets
        self._sockets.setdefault(user_id, set()).add(ws)
        try:
            if first:
                # Before the greeting: opening the chat releases what waited (the
                # catch-up), and this worker must be the one to claim it.
                await self._tell_presence(user_id, arrived=True)
            known = await self._open(user_id, ws, address)
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                known = await self._on_frame(user_id, ws, message.data, address, known)
        finally:
            sockets = self._sockets.get(user_id, set())
            sockets.discard(ws)
            if not sockets:
                self._sockets.pop(user_id, None)
                self._languages.pop(user_id, None)
                await self._tell_presence(user_id, arrived=False)
        return ws

    def present(self) -> frozenset[str]:
        """The residents with a tab open on this worker."""
        return frozenset(self._sockets)

    async def _tell_presence(self, user_id: str, arrived: bool) -> None:
        """The chat works without it: a push then waits until the resident writes."""
        if self.presence is None:
            return
        try:
            if arrived:
                await self.presence.arrive(user_id)
            elif user_id not in self._sockets:  # not reopened meanwhile
                await self.presence.leave(user_id)
                if user_id in self._sockets:
                    # Reopened while the leave was on its way (its arrive may have landed
                    # first): here after all.
                    await self.presence.arrive(user_id)
        except Exception as error:
            metrics.DATABASE_ERRORS.labels("webchat").inc()
            log.warning("web chat: presence not recorded (%s)", type(error).__name__)

    async def _open(self, user_id: str, ws: web.WebSocketResponse, address: str) -> bool:
        """Greet a new tab; returns whether a resident stands behind the cookie."""
        language = await self._known_language(user_id)
        if language:
            self._languages[user_id] = language  # a fresh socket speaks it from the start
        if language is None and self.newcomers is not None:
            until = await self._limit(self.newcomers.refused_until, address)
            if until is not None:
                await self._refuse(user_id, ws, until)
                return False
        # Only the tab that opened sees the question again, not the others.
        await self._deliver(user_id, await self._feed(user_id, Kind.OPEN, {}), None, only=ws)
        return language is not None

    async def _on_frame(
        self, user_id: str, ws: web.WebSocketResponse, raw: str, address: str, known: bool
    ) -> bool:
        """Handle one frame; returns whether a resident now stands behind the cookie."""
        try:
            frame = json.loads(raw)
            kind, fields = _incoming_fields(frame)
        except (ValueError, TypeError, KeyError, RecursionError):
            await self._say(user_id, ws, translator(self._language(user_id)).gettext(UNREADABLE))
            return known
        if not known and not await self._admitted(user_id, ws, address):
            return False
        if kind is Kind.PHOTO:
            # The upload is this cookie's own: a token alone names nobody else's.
            fields["photo_id"] = f"{user_id}.{fields['photo_id']}"
        event_id = fields["event_id"]
        outcome = await self._feed(user_id, kind, fields)
        if outcome.retry:
            # Nothing of it was saved (the database is away) and nobody keeps a frame:
            # the page marks it not sent and offers to send it again, with the same id
            # (the upload of a photo stays for that, until its time runs out).
            await ws.send_json(self._ui_frame(outcome.language))
            await ws.send_json({"type": "not_sent", "id": event_id})
            return known
        if kind is Kind.PHOTO:  # fetched by now, if the step took it: no pile-up
            await self._drop_upload(fields["photo_id"])
        await self._deliver(user_id, outcome, fields.get("message_id") or None)
        return True

    # If the database cannot answer these, the cookie is taken for a resident and the limit
    # for not reached: the update that follows fails with an apology of its own, and so
    # creates nobody.
    async def _known_language(self, user_id: str) -> str | None:
        """The resident's language, None when nobody is behind the cookie yet."""
        if self.newcomers is None:
            return ""
        try:
            return await self.newcomers.language(user_id)
        except Exception as error:
            metrics.DATABASE_ERRORS.labels("webchat").inc()
            log.warning("web chat: no resident look-up (%s)", type(error).__name__)
            return ""

    @staticmethod
    async def _limit(
        ask: Callable[[str], Awaitable[datetime | None]], address: str
    ) -> datetime | None:
        try:
            return await ask(address)
        except Exception as error:
            metrics.DATABASE_ERRORS.labels("webchat").inc()
            log.warning("web chat: no newcomer count (%s)", type(error).__name__)
            return None

    async def _admitted(self, user_id: str, ws: web.WebSocketResponse, address: str) -> bool:
        """Whether this cookie may become a resident now: it is one already (another tab may
        have made it), or its address is within its hourly limit (then counted)."""
        if self.newcomers is None or await self._known_language(user_id) is not None:
            return True
        until = await self._limit(self.newcomers.admit, address)
        if until is None:
            return True
        log.debug("web chat: new residents from one address over the limit until %s", until)
        await self._refuse(user_id, ws, until)
        return False

    async def _refuse(self, user_id: str, ws: web.WebSocketResponse, until: datetime) -> None:
        minutes = max(1, math.ceil((until - datetime.now(UTC)).total_seconds() / 60))
        await self._say(
            user_id, ws, too_many_newcomers(translator(self._language(user_id)), minutes)
        )

    async def _say(self, user_id: str, ws: web.WebSocketResponse, text: str) -> None:
        """An error frame, after the page's strings in the same language."""
        await ws.send_json(self._ui_frame(self._language(user_id)))
        await ws.send_json({"type": "error", "text": text})

    def _language(self, user_id: str) -> str:
        return self._languages.get(user_id, self.default_language)

    def _address_key(self, request: web.Request) -> str:
        """A keyed hash of the client's address: counted per address, never kept in clear."""
        address = client_address(
            request.remote or "",
            request.headers.getall("X-Forwarded-For", []),
            self.trusted_proxies,
        )
        mac = hmac.new(self.secret.encode(), b"newcomer-address:", hashlib.sha256)
        mac.update(address.encode("utf-8", "backslashreplace"))
        return mac.hexdigest()[:32]

    async def _feed(self, user_id: str, kind: Kind, fields: dict[str, Any]) -> Outcome:
        # Opening the page carries no event id: it is not a delivery that
        # could repeat, and recording it would only grow the table.
        event_id = fields.pop("event_id", "")
        return await self.feed(
            Incoming(channel=NAME, user_id=user_id, event_id=event_id, kind=kind, **fields)
        )

    async def _deliver(
        self,
        user_id: str,
        outcome: Outcome,
        pressed_on: str | None,
        only: web.WebSocketResponse | None = None,
    ) -> None:
        self._languages[user_id] = outcome.language
        frames = [self._ui_frame(outcome.language)]
        for reply in coalesce(outcome.replies, self.limits.text_length):
            frames.extend(self.render(reply, pressed_on))
        sockets = [only] if only else list(self._sockets.get(user_id, ()))
        for ws in sockets:
            for frame in frames:
                if ws.closed:
                    break
                await ws.send_json(frame)
        if outcome.forgotten:
            # The id in this cookie must not name anybody again: every tab gets a new one.
            for ws in sockets:
                await ws.close(code=RENEW_CLOSE, message=b"forgotten")

    def _ui_frame(self, language: str) -> dict[str, Any]:
        tr = translator(language)
        municipality = self.municipality
        ui = {key: tr.gettext(text, municipality=municipality) for key, text in UI_STRINGS.items()}
        return {"type": "ui", "lang": language, "strings": ui}

    def render(self, reply: Reply, pressed_on: str | None = None) -> list[dict[str, Any]]:
        """A Reply as message frames; long text is split, buttons ride on the last piece."""
        pieces = split_text(reply.text, self.limits.text_length)
        frames: list[dict[str, Any]] = []
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            frames.append(
                {
                    "type": "message",
                    # A message edited in place keeps its id, so it can be edited again.
                    "id": pressed_on
                    if reply.replace and pressed_on and index == 0
                    else f"m-{uuid.uuid4().hex[:16]}",
                    "text": piece,
                    "buttons": [
                        [
                            {
                                "label": fit_label(b.label, self.limits.button_label_length),
                                "payload": b.payload,
                            }
                            for b in row
                        ]
                        for row in reply.buttons
                    ]
                    if last
                    else [],
                    "image": _shown_image(reply.image) if index == 0 else "",
                    "request_location": bool(reply.request_location) and last,
                    "replace": pressed_on if reply.replace and index == 0 else None,
                }
            )
        return frames

    async def send(self, recipient: str, reply: Reply) -> str:
        """Push to every open tab of the resident; returns the id of the (last) message
        frame, the same in every tab, so that ``edit`` can change it in all of them.

        With no tab open there is nobody to show it to: the push waits until
        the resident opens the chat again.
        """
        sockets = [ws for ws in self._sockets.get(recipient, ()) if not ws.closed]
        if not sockets:
            raise PushRefused("the resident has no chat open")
        frames = self.render(reply)
        for ws in sockets:
            for frame in frames:
                await ws.send_json(frame)
        return str(frames[-1]["id"])

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        """Replace a message in every open tab; a closed tab keeps what it showed."""
        sockets = [ws for ws in self._sockets.get(recipient, ()) if not ws.closed]
        frame = {**self.render(Reply(reply.text, reply.buttons))[0], "id": message_id}
        frame["replace"] = message_id
        for ws in sockets:
            await ws.send_json(frame)
        return bool(sockets)

    async def close(self) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=1001, message=b"server shutting down")


def too_many_newcomers(tr: Translator, minutes: int) -> str:
    """Why a new conversation cannot start now, and when it can."""
    return tr.ngettext(
        "Too many new conversations have been started from your network in the last hour. "
        "Please try again in {n} minute.",
        "Too many new conversations have been started from your network in the last hour. "
        "Please try again in {n} minutes.",
        minutes,
    )


def _shown_image(image: str) -> str:
    """An image the page can load: a path of our server or a web address. Another
    platform's file id (or an upload's, gone once handled) shows nothing."""
    ours = image.startswith("/") and not image.startswith("//")
    return image if ours or image.startswith(("https://", "http://", "data:image/")) else ""


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def client_address(peer: str, forwarded: list[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For hop that is not a trusted proxy itself. Hops further left are whatever
    the client chose to send, so they are never believed."""
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports 127.0.0.1 as ::ffff:127.0.0.1
    return any(ip in network for network in trusted)


def _string(value: object, what: str) -> str:
    """A text field as a page sends it: valid Unicode (a lone surrogate such as "\\ud800"
    cannot be stored) without NUL (PostgreSQL refuses it in text)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode") from None
    if "\x00" in value:
        raise ValueError(f"{what} holds a NUL character")
    return value


def _coordinate(value: object, limit: int, what: str) -> float:
    """A JSON number within ±limit, checked before float(), which a 400-digit integer
    would overflow; NaN and infinities fail the range check."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number")
    if not -limit <= value <= limit:
        raise ValueError(f"{what} out of range")
    return float(value)


def _incoming_fields(frame: Any) -> tuple[Kind, dict[str, Any]]:
    """Validate a client frame into Incoming fields; raises ValueError when malformed."""
    if not isinstance(frame, dict):
        raise ValueError("frame is not an object")
    event_id = _string(frame.get("id"), "id")
    if not 1 <= len(event_id) <= 64:
        raise ValueError("bad id")
    kind = frame.get("type")
    if kind == "text":
        text = _string(frame.get("text"), "text")
        command = COMMAND_PATTERN.match(text.strip())
        if command:
            return Kind.COMMAND, {
                "event_id": event_id,
                "command": command[1].lower(),
                "args": command[2] or "",
                "text": text,
            }
        return Kind.TEXT, {"event_id": event_id, "text": text}
    if kind == "button":
        payload = _string(frame.get("payload"), "payload")
        message_id = _string(frame.get("message_id", ""), "message id")
        if not 0 < len(payload.encode()) <= 64:
            raise ValueError("bad payload")
        if len(message_id) > 64:
            raise ValueError("bad message id")
        return Kind.BUTTON, {"event_id": event_id, "payload": payload, "message_id": message_id}
    if kind == "location":
        latitude = _coordinate(frame.get("latitude"), 90, "latitude")
        longitude = _coordinate(frame.get("longitude"), 180, "longitude")
        return Kind.LOCATION, {"event_id": event_id, "location": Location(latitude, longitude)}
    if kind == "photo":
        token = _string(frame.get("photo"), "photo")
        if not UPLOAD_TOKEN.fullmatch(token):
            raise ValueError("bad photo")
        caption = _string(frame.get("text", ""), "text")
        return Kind.PHOTO, {"event_id": event_id, "photo_id": token, "text": caption}
    raise ValueError(f"unknown frame type {kind!r}")
