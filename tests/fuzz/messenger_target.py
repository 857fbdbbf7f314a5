"""The Messenger webhook as a fuzz target: page deliveries signed with the app secret (or
not), POSTed as Meta does, answered through the Send API stand-in.

Meta gets its 200 once the events are stored; they are handled after it. So after each
POST the target waits until the inbox holds no unhandled event: by then every answer has
reached the stand-in (an event is marked handled after its answer).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp

from bot.channels.messenger import SIGNATURE_HEADER
from storage.models import InboundEvent
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
from tests.standins import messenger_webhook as meta
from tests.standins.graph_api import GraphStandIn
from tests.standins.graph_core import PAGE_ID

_psids = itertools.count(8_100_000_001)
QUIET_SECONDS = 10.0  # the most the handling of one input may take


class MessengerTarget:
    name = "messenger"

    def __init__(self, graph: GraphStandIn, url: str) -> None:
        self.graph = graph
        self.url = url
        self.http: aiohttp.ClientSession | None = None
        self.psid = ""
        self.history: list[tuple[dict[str, Any], str]] = []  # (item, kind) sent

    async def begin(self, conversation: Conversation) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.psid = str(next(_psids))
        self.graph.opened(self.psid)
        self.history = []

    async def end(self) -> None:
        pass

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def chosen_language(self) -> str | None:
        return await known_language("messenger", self.psid)

    # --- building deliveries --------------------------------------------------------------
    def _choices(self) -> tuple[bool, tuple[tuple[str, str], ...]]:
        for message in reversed(self.graph.inbox(self.psid)):
            if message.choices:
                return bool(message.quick_replies), message.choices
        return False, ()

    def item(self, action: Action) -> tuple[dict[str, Any], str, set[str]]:
        """One messaging item, its kind and the texts it carries."""
        psid = self.psid
        if isinstance(action, Unknown):
            item, kind, sent = self.item(action.action)
            return {**item, **action.fields}, kind, sent
        if isinstance(action, Say):
            return meta.text(psid, action.text), WELL_FORMED, {action.text}
        if isinstance(action, Command):
            text = f"/{action.name}" + (f" {action.args}" if action.args else "")
            return meta.text(psid, text), WELL_FORMED, {text, action.args}
        if isinstance(action, Tap):
            quick, choices = self._choices()
            if not choices:
                return meta.postback(psid, "Menu", "/menu"), WELL_FORMED, set()
            title, payload = choices[action.index % len(choices)]
            if quick:
                return meta.quick_reply(psid, title, payload), WELL_FORMED, set()
            return meta.postback(psid, title, payload), WELL_FORMED, set()
        if isinstance(action, Press):
            sent = {action.payload}
            if action.via == "quick_reply":
                return meta.quick_reply(psid, "?", action.payload), WELL_FORMED, sent
            if action.via == "referral":
                return meta.referral(psid, action.payload), WELL_FORMED, sent
            return meta.postback(psid, "?", action.payload), WELL_FORMED, sent
        if isinstance(action, Place):
            return meta.location(psid, action.latitude, action.longitude), WELL_FORMED, set()
        if isinstance(action, Photo):
            url = f"{self.graph.url}/no-such-photo.jpg" if action.known else "http://127.0.0.1:9/x"
            item = meta.image(psid, url)
            if action.caption:
                item["message"]["text"] = action.caption
            return item, WELL_FORMED, {action.caption}
        if isinstance(action, Contact):  # Messenger has none: a link preview's fallback
            fallback = {"title": action.phone, "url": "https://example.invalid/"}
            return meta.attachment(psid, "fallback", fallback), WELL_FORMED, {action.phone}
        if isinstance(action, Other):
            if action.what == "sticker":
                return meta.sticker(psid), WELL_FORMED, set()
            media = "audio" if action.what == "voice" else "file"
            where = {"url": "https://cdn.example.invalid/a.mp4"}
            return meta.attachment(psid, media, where), WELL_FORMED, set()
        if isinstance(action, Ignored):
            return self._ignored(action), IGNORED, set()
        raise AssertionError(f"not an item for Messenger: {action!r}")

    def _ignored(self, action: Ignored) -> dict[str, Any]:
        psid, what = self.psid, action.what
        if what == "echo":
            return meta.echo(psid, action.text)
        if what == "read":
            return meta.read(psid)
        if what == "delivery":
            return meta.delivered(psid)
        if what == "reaction":
            return meta.reaction(psid, meta.new_mid())
        if what == "message_edit":
            return meta.message_edit(psid, meta.new_mid(), action.text)
        if what == "optin":
            optin = {"type": "notification_messages", "payload": action.text[:100]}
            return {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "optin": optin}
        # user_ref: a plugin's visitor with no PSID yet
        item = meta.text(psid, action.text)
        item["sender"] = {"user_ref": "ref-" + psid}
        return item

    def body(self, action: Action) -> tuple[bytes, str | None, str, set[str]]:
        """The raw delivery, its signature header (None: none), kind and texts."""
        if isinstance(action, Malformed):
            return self._malformed(action)
        if isinstance(action, Flood):
            items = [meta.text(self.psid, text) for text in action.texts]
            self.history.extend((item, WELL_FORMED) for item in items)
            raw = meta.encode(meta.delivery(*items))
            return raw, meta.sign(raw), WELL_FORMED, set(action.texts)
        if isinstance(action, Replay):
            if not self.history:
                return self.body(Say("first"))
            item, first = self.history[-1 - (action.back - 1) % len(self.history)]
            raw = meta.encode(meta.delivery(item))
            return raw, meta.sign(raw), MALFORMED if first == MALFORMED else REPLAY, set()
        item, kind, sent = self.item(action)
        self.history.append((item, kind))
        raw = meta.encode(meta.delivery(item))
        return raw, meta.sign(raw), kind, sent

    def _malformed(self, action: Malformed) -> tuple[bytes, str | None, str, set[str]]:
        what, value = action.what, action.value

        def signed(raw: bytes) -> tuple[bytes, str | None, str, set[str]]:
            return raw, meta.sign(raw), MALFORMED, set()

        if what == "wrong_signature":
            raw = meta.encode(meta.delivery(meta.text(self.psid, "/help")))
            if value == "other-secret":
                return raw, meta.sign(raw, "not-the-app-secret"), MALFORMED, set()
            return raw, value, MALFORMED, set()
        if what == "not_json":
            try:
                json.loads(value)
            except (ValueError, RecursionError):
                return signed(bytes(value))
            return signed(b"not json: " + bytes(value))
        if what in ("not_object", "not_page"):
            return signed(json.dumps(value).encode())
        if what == "nested":
            return signed(
                ('{"object": "page", "entry": ' + "[" * value + "]" * value + "}").encode()
            )
        if what == "huge":
            return signed(meta.encode(meta.delivery(meta.text(self.psid, "x" * value))))
        if what == "bad_sender":
            item = meta.text(self.psid, "/help")
            item["sender"] = {"id": value}
            return signed(meta.encode(meta.delivery(item)))
        if what == "bad_item":
            body = meta.delivery()
            body["entry"][0]["messaging"] = [value]
            return signed(meta.encode(body))
        if what == "surrogate_mid":  # odd, but a delivery Meta could make: answered
            raw = meta.encode(meta.delivery(meta.text(self.psid, "/help", mid=value)))
            return raw, meta.sign(raw), WELL_FORMED, set()
        raise AssertionError(f"no such Messenger malformation: {what}")

    # --- sending ------------------------------------------------------------------------
    async def send(self, action: Action) -> Answer:
        assert self.http is not None
        before = len(self.graph.inbox(self.psid))
        last = await InboundEvent.all().order_by("-id").first()
        raw, signature, kind, sent = self.body(action)
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
        async with self.http.post(self.url, data=raw, headers=headers) as response:
            await response.read()
            status = str(response.status)
        problems = []
        if isinstance(action, Malformed) and action.what == "wrong_signature" and status != "403":
            problems.append(f"a wrongly signed delivery was answered {status}")
        if not await _quiet(last.id if last is not None else 0):
            problems.append(f"events still unhandled after {QUIET_SECONDS:g} s")
        new = self.graph.inbox(self.psid)[before:]
        shown = [m.text for m in new if m.text]
        shown += [title for m in new for title, _ in m.choices]
        if kind != WELL_FORMED and new:
            problems.append(f"answered {len(new)} message(s): {shown[:3]}")
        return Answer(kind, status, shown, {s for s in sent if s}, problems)


async def _quiet(after: int) -> bool:
    """Whether every event stored since event ``after`` is handled (soon enough)."""
    deadline = time.monotonic() + QUIET_SECONDS
    while await InboundEvent.filter(id__gt=after, handled_at=None).exists():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def normal_answer(target: MessengerTarget) -> str:
    """A new resident's /help: the text of the bot's first answer."""
    await target.begin(Conversation(None, ()))
    answer = await target.send(Command("help"))
    return answer.shown[0] if answer.shown else ""
