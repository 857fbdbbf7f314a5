"""The web chat: a page served by our aiohttp app, talking over a WebSocket.

A resident is recognised by a signed, HttpOnly cookie holding a random id;
nothing else identifies them. The page's strings come from our catalogs in a
``ui`` frame, so the chrome speaks the resident's language too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from bot.channels.base import PushRefused, coalesce, fit_label, split_text
from bot.i18n import N_, translator
from bot.messages import ChannelLimits, Incoming, Kind, Location, Outcome, Reply
from handlers.dispatcher import Dispatcher

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

UI_STRINGS = {
    "title": N_("{municipality} · residents' assistant"),
    "placeholder": N_("Write a message…"),
    "send": N_("Send"),
    "connecting": N_("Connecting…"),
    "offline": N_("The connection was lost. Trying again…"),
    "share_location": N_("Share my location"),
    "log_label": N_("Conversation"),
    "input_label": N_("Your message"),
}
COMMAND_PATTERN = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:\s+(.*))?$", re.DOTALL)
UNREADABLE = N_("I could not read that message. Please try again.")


def sign(secret: str, user_id: str) -> str:
    mac = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).digest()
    return f"{user_id}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def verify(secret: str, cookie: str | None) -> str | None:
    """The user id in a cookie we signed, or None; compared in constant time."""
    if not cookie or "." not in cookie:
        return None
    user_id = cookie.split(".", 1)[0]
    return user_id if hmac.compare_digest(sign(secret, user_id), cookie) else None


@dataclass(slots=True)
class WebChat:
    dispatcher: Dispatcher
    secret: str
    secure_cookie: bool = False
    name: str = NAME
    limits: ChannelLimits = LIMITS
    _sockets: dict[str, set[web.WebSocketResponse]] = field(default_factory=dict)
    # The language of the last answer per connected resident, so that an
    # unreadable frame is refused in their language without a database trip.
    _languages: dict[str, str] = field(default_factory=dict)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/ws", self.websocket)

    # --- HTTP -------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html", headers=self._headers())
        if verify(self.secret, request.cookies.get(COOKIE)) is None:
            response.set_cookie(
                COOKIE,
                sign(self.secret, uuid.uuid4().hex),
                max_age=60 * 60 * 24 * 365,
                httponly=True,
                samesite="Lax",
                secure=self.secure_cookie,
                path="/",
            )
        return response

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
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        self._sockets.setdefault(user_id, set()).add(ws)
        try:
            # Only the tab that opened sees the question again, not the others.
            await self._deliver(user_id, await self._feed(user_id, Kind.OPEN, {}), None, only=ws)
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                await self._on_frame(user_id, ws, message.data)
        finally:
            sockets = self._sockets.get(user_id, set())
            sockets.discard(ws)
            if not sockets:
                self._sockets.pop(user_id, None)
                self._languages.pop(user_id, None)
        return ws

    async def _on_frame(self, user_id: str, ws: web.WebSocketResponse, raw: str) -> None:
        try:
            frame = json.loads(raw)
            kind, fields = _incoming_fields(frame)
        except (ValueError, TypeError, KeyError, RecursionError):
            language = self._languages.get(
                user_id, self.dispatcher.config.municipality.default_language
            )
            await ws.send_json({"type": "error", "text": translator(language).gettext(UNREADABLE)})
            return
        outcome = await self._feed(user_id, kind, fields)
        await self._deliver(user_id, outcome, fields.get("message_id") or None)

    async def _feed(self, user_id: str, kind: Kind, fields: dict[str, Any]) -> Outcome:
        # Opening the page carries no event id: it is not a delivery that
        # could repeat, and recording it would only grow the table.
        event_id = fields.pop("event_id", "")
        return await self.dispatcher.feed(
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
        tr = translator(outcome.language)
        municipality = self.dispatcher.config.municipality.name
        ui = {key: tr.gettext(text, municipality=municipality) for key, text in UI_STRINGS.items()}
        frames: list[dict[str, Any]] = [{"type": "ui", "lang": outcome.language, "strings": ui}]
        for reply in coalesce(outcome.replies, self.limits.text_length):
            frames.extend(self.render(reply, pressed_on))
        for ws in [only] if only else list(self._sockets.get(user_id, ())):
            for frame in frames:
                if ws.closed:
                    break
                await ws.send_json(frame)

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
                    "image": reply.image if index == 0 else "",
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


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _incoming_fields(frame: Any) -> tuple[Kind, dict[str, Any]]:
    """Validate a client frame into Incoming fields; raises ValueError when malformed."""
    if not isinstance(frame, dict):
        raise ValueError("frame is not an object")
    event_id = frame.get("id")
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 64:
        raise ValueError("bad id")
    kind = frame.get("type")
    if kind == "text":
        text = frame.get("text")
        if not isinstance(text, str):
            raise ValueError("text is not a string")
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
        payload, message_id = frame.get("payload"), frame.get("message_id", "")
        if not isinstance(payload, str) or not 0 < len(payload.encode()) <= 64:
            raise ValueError("bad payload")
        if not isinstance(message_id, str) or len(message_id) > 64:
            raise ValueError("bad message id")
        return Kind.BUTTON, {"event_id": event_id, "payload": payload, "message_id": message_id}
    if kind == "location":
        latitude, longitude = float(frame["latitude"]), float(frame["longitude"])
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError("location out of range")
        return Kind.LOCATION, {"event_id": event_id, "location": Location(latitude, longitude)}
    raise ValueError(f"unknown frame type {kind!r}")
