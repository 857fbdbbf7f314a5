"""The web chat's WebSocket as a fuzz target: frames as the page sends them, and anything else.

Each conversation is a fresh cookie (``GET /``) and a socket to ``/ws``. The socket handles
one frame after another, so after each input the target sends a barrier, a frame that is
not JSON, and reads until the barrier's "I could not read that message" arrives: what came
before it is the answer to the input. A malformed input gets that same answer first, so for
it two are awaited; one that is not, and a missing one, is a failure.
"""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

import aiohttp

from bot.channels.webchat import COOKIE, MAX_FRAME, UNREADABLE
from bot.core.i18n import LANGUAGES, translator
from storage.sessions import known_language
from tests.fuzz.checks import IGNORED, MALFORMED, REPLAY, WELL_FORMED
from tests.fuzz.harness import Answer
from tests.fuzz.strategies import (
    Action,
    Command,
    Contact,
    Conversation,
    Flood,
    Ignored,
    Malformed,
    Other,
    Photo,
    Place,
    Press,
    Replay,
    Say,
    Tap,
    Unknown,
)

BARRIER = "\x01 barrier"
UNREADABLE_TEXTS = frozenset(translator(language).gettext(UNREADABLE) for language in LANGUAGES)
FRAME_SECONDS = 30.0  # the most one input's answer may take
_ids = itertools.count(1)


def _valid_text(value: object, *, nul: bool = False) -> bool:
    """A string the page can send: valid Unicode, no NUL."""
    if not isinstance(value, str) or (not nul and "\x00" in value):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _number_within(value: object, limit: int) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit
    )


def frame_is_valid(frame: object) -> bool:
    """The frame format of the page (``bot/channels/webchat_static/chat.js``)."""
    if not isinstance(frame, dict):
        return False
    frame_id = frame.get("id")
    if not _valid_text(frame_id) or not 1 <= len(frame_id) <= 64:  # type: ignore[arg-type]
        return False
    kind = frame.get("type")
    if kind == "text":
        return _valid_text(frame.get("text"))
    if kind == "button":
        payload, message = frame.get("payload"), frame.get("message_id", "")
        return (
            _valid_text(payload)
            and 0 < len(str(payload).encode()) <= 64
            and _valid_text(message)
            and len(str(message)) <= 64
        )
    if kind == "location":
        return _number_within(frame.get("latitude"), 90) and _number_within(
            frame.get("longitude"), 180
        )
    if kind == "photo":
        token = frame.get("photo")
        hex_token = isinstance(token, str) and len(token) == 32
        hex_token = hex_token and all(c in "0123456789abcdef" for c in str(token))
        return hex_token and _valid_text(frame.get("text", ""))
    return False


class WebchatTarget:
    name = "webchat"

    def __init__(self, base: str) -> None:
        self.base = base
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.cookie = ""
        self.user_id = ""
        self.frames: list[dict[str, Any]] = []  # every frame the bot sent this resident
        self.history: list[tuple[str, str]] = []  # (frame, kind) sent

    async def begin(self, conversation: Conversation) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=120)
            )
        async with self.http.get(self.base + "/") as page:
            self.cookie = page.cookies[COOKIE].value
        self.user_id = self.cookie.split(".", 1)[0]
        self.frames, self.history = [], []
        await self._connect()

    async def _connect(self) -> list[dict[str, Any]]:
        assert self.http is not None
        self.ws = await self.http.ws_connect(
            self.base.replace("http://", "ws://") + "/ws",
            headers={"Cookie": f"{COOKIE}={self.cookie}", "Origin": self.base},
            max_msg_size=0,
        )
        greeting, _ = await self._until_barrier(1)
        return greeting

    async def end(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def close(self) -> None:
        await self.end()
        if self.http is not None:
            await self.http.close()

    async def chosen_language(self) -> str | None:
        return await known_language("webchat", self.user_id)

    async def _until_barrier(self, errors: int) -> tuple[list[dict[str, Any]], str]:
        """Send the barrier; the frames before its answer (``errors`` "could not read"
        answers in all are awaited), and how the socket fared."""
        assert self.ws is not None
        try:
            await self.ws.send_str(BARRIER)
        except ConnectionError:
            return [], f"closed {self.ws.close_code}"
        got: list[dict[str, Any]] = []
        seen = 0
        while seen < errors:
            try:
                message = await self.ws.receive(timeout=FRAME_SECONDS)
            except TimeoutError:
                return got, "no answer"
            if message.type is not aiohttp.WSMsgType.TEXT:
                return got, f"closed {self.ws.close_code}"
            frame = json.loads(message.data)
            got.append(frame)
            if frame.get("type") == "error" and frame.get("text") in UNREADABLE_TEXTS:
                seen += 1
        # The barrier's own answer: the page's strings and the error.
        self.frames.extend(got[:-2])
        return got[:-2], "answered"

    # --- frames -------------------------------------------------------------------------
    def _question(self) -> dict[str, Any] | None:
        for frame in reversed(self.frames):
            if frame.get("type") == "message" and frame.get("buttons"):
                return frame
        return None

    def frame(self, action: Action) -> tuple[dict[str, Any] | str, set[str]]:
        """The frame (or a text that is not one) and the texts it carries."""
        frame_id = f"fuzz-{next(_ids)}"
        if isinstance(action, Unknown):
            inner, sent = self.frame(action.action)
            return ({**action.fields, **inner} if isinstance(inner, dict) else inner), sent
        if isinstance(action, Say):
            return {"type": "text", "id": frame_id, "text": action.text}, {action.text}
        if isinstance(action, Command):
            text = f"/{action.name}" + (f" {action.args}" if action.args else "")
            return {"type": "text", "id": frame_id, "text": text}, {text, action.args}
        if isinstance(action, Tap):
            question = self._question()
            if question is None:
                return {"type": "button", "id": frame_id, "payload": "menu:main"}, set()
            payloads = [b["payload"] for row in question["buttons"] for b in row]
            payload = payloads[action.index % len(payloads)]
            return {
                "type": "button",
                "id": frame_id,
                "payload": payload,
                "message_id": question["id"],
            }, set()
        if isinstance(action, Press):
            frame: dict[str, Any] = {"type": "button", "id": frame_id, "payload": action.payload}
            if action.on_message is not None:
                frame["message_id"] = f"m-{action.on_message}"
            return frame, {action.payload}
        if isinstance(action, Place):
            return {
                "type": "location",
                "id": frame_id,
                "latitude": action.latitude,
                "longitude": action.longitude,
            }, set()
        if isinstance(action, Photo):
            token = secrets.token_hex(16) if action.known else "../../etc/passwd"
            return {"type": "photo", "id": frame_id, "photo": token, "text": action.caption}, {
                action.caption
            }
        if isinstance(action, Contact):
            return {"type": "contact", "id": frame_id, "phone": action.phone}, set()
        if isinstance(action, Other):
            return {"type": action.what, "id": frame_id}, set()
        if isinstance(action, Malformed):
            return self._malformed(action, frame_id), set()
        raise AssertionError(f"not a frame: {action!r}")

    def _malformed(self, action: Malformed, frame_id: str) -> dict[str, Any] | str:
        what, value = action.what, action.value
        if what == "not_json":
            return f"not json {value}" if _parses(value) else str(value)
        if what == "not_object":
            return json.dumps(value)
        if what == "bad_frame":
            return dict(value)
        if what in ("nul_text", "surrogate_text"):
            return {"type": "text", "id": frame_id, "text": value}
        if what == "nested":
            return "[" * value + "]" * value
        if what == "huge":
            return {"type": "text", "id": frame_id, "text": "x" * value}
        raise AssertionError(f"no such web-chat malformation: {what}")

    # --- sending ------------------------------------------------------------------------
    async def send(self, action: Action) -> Answer:
        assert self.ws is not None
        sent: set[str] = set()
        raw = ""
        if isinstance(action, Ignored):  # a binary frame: the page never sends one
            await self.ws.send_bytes(action.text.encode())
            kind = IGNORED
        elif isinstance(action, Flood):
            for text in action.texts:
                raw = json.dumps({"type": "text", "id": f"fuzz-{next(_ids)}", "text": text})
                self.history.append((raw, WELL_FORMED))
                await self.ws.send_str(raw)
            kind, sent = WELL_FORMED, set(action.texts)
        elif isinstance(action, Replay) and self.history:
            raw, first = self.history[-1 - (action.back - 1) % len(self.history)]
            kind = MALFORMED if first == MALFORMED else REPLAY
            await self.ws.send_str(raw)
        else:
            frame, sent = self.frame(Say("first") if isinstance(action, Replay) else action)
            raw = frame if isinstance(frame, str) else json.dumps(frame)
            kind = WELL_FORMED if frame_is_valid(_loads(raw)) else MALFORMED
            if len(raw.encode("utf-8", "surrogatepass")) > MAX_FRAME:
                kind = MALFORMED
            self.history.append((raw, kind))
            await self.ws.send_str(raw)
        got, status = await self._until_barrier(2 if kind == MALFORMED else 1)
        problems = []
        if status.startswith("closed"):
            # Only a frame over the size limit closes the socket (1009): open it again.
            if len(raw.encode("utf-8", "surrogatepass")) <= MAX_FRAME:
                problems.append(f"the socket was {status}")
            got += await self._connect()
        elif status != "answered":
            problems.append(f"{status}: no 'could not read' answer after the input")
        messages = [f for f in got if f.get("type") in ("message", "error")]
        shown = [str(f.get("text", "")) for f in messages]
        shown += [b["label"] for f in messages for row in f.get("buttons", []) for b in row]
        if kind in (IGNORED, REPLAY) and messages:
            problems.append(f"answered {len(messages)} frame(s): {shown[:3]}")
        # A known race, reported and not fixed here: when the socket closes and the tab
        # reconnects at once, the old socket's "leave" may delete the presence row after the
        # new one's "arrive" (WebChat._tell_presence checks before it awaits).
        excused = frozenset({"presence"}) if status.startswith("closed") else frozenset()
        return Answer(kind, status, shown, {s for s in sent if s}, problems, excused)


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _loads(raw: str) -> object:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


async def normal_answer(target: WebchatTarget) -> str:
    """A new resident's /help: the text of the bot's first answer."""
    await target.begin(Conversation(None, ()))
    answer = await target.send(Command("help"))
    await target.end()
    return answer.shown[0] if answer.shown else ""
