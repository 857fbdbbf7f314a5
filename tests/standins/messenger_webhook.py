"""Meta's side of the Messenger webhook: deliveries built like Meta's documented payloads,
signed with the app secret and POSTed to the bot as Meta does.

Shapes from https://developers.facebook.com/docs/messenger-platform/webhooks and the
event reference (messages, messaging_postbacks, messaging_referrals, message_reactions,
message_edits, message_echoes, message_reads, message_deliveries); see
``/work/shared/research/messenger-platform.md`` §1. Meta escapes non-ASCII as ``\\uXXXX``
and signs those exact bytes: so does ``MetaWebhook``.

``Resident`` plays one person on Messenger against the bot and the Send API stand-in:
what they write is delivered here, what the bot answers is read from the stand-in's
record of what this person received.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.standins.graph_api import GraphStandIn, Sent
from tests.standins.graph_core import APP_SECRET, PAGE_ID

JSONDict = dict[str, Any]
_mids = itertools.count(1)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_mid() -> str:
    return f"m_standin{next(_mids):06d}AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


def _item(psid: str, ts: int | None, **event: Any) -> JSONDict:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": now_ms() if ts is None else ts,
        **event,
    }


def text(psid: str, words: str, *, mid: str | None = None, ts: int | None = None) -> JSONDict:
    return _item(psid, ts, message={"mid": mid or new_mid(), "text": words})


def quick_reply(psid: str, title: str, payload: str, *, ts: int | None = None) -> JSONDict:
    """A tap on a quick reply: its title comes as the text, its payload beside it."""
    message = {"mid": new_mid(), "text": title, "quick_reply": {"payload": payload}}
    return _item(psid, ts, message=message)


def postback(
    psid: str, title: str, payload: str, *, referral: JSONDict | None = None, ts: int | None = None
) -> JSONDict:
    body: JSONDict = {"mid": new_mid(), "title": title, "payload": payload}
    if referral is not None:
        body["referral"] = referral
    return _item(psid, ts, postback=body)


def get_started(psid: str, ref: str = "", *, ts: int | None = None) -> JSONDict:
    """The Get Started tap of a new conversation (with the m.me link's ref, if any)."""
    referral = {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"} if ref else None
    return postback(psid, "Get Started", "/start", referral=referral, ts=ts)


def referral(psid: str, ref: str, *, ts: int | None = None) -> JSONDict:
    """An m.me link opened in an existing conversation (Meta stamps some in seconds)."""
    return _item(psid, ts, referral={"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"})


def attachment(psid: str, kind: str, payload: JSONDict | None, **extra: Any) -> JSONDict:
    found: JSONDict = {"type": kind, **extra}
    if payload is not None:
        found["payload"] = payload
    return _item(psid, None, message={"mid": new_mid(), "attachments": [found]})


def image(psid: str, url: str) -> JSONDict:
    return attachment(psid, "image", {"url": url})


def legacy_sticker(psid: str, sticker_id: int = 369239263222822) -> JSONDict:
    """Before 2026-08-30 a sticker came as an image with a sticker_id (this one: 👍)."""
    return attachment(
        psid, "image", {"url": "https://scontent.example/sticker.png", "sticker_id": sticker_id}
    )


def sticker(psid: str, sticker_id: int = 369239263222822) -> JSONDict:
    return attachment(
        psid, "sticker", {"sticker_id": sticker_id, "url": "https://scontent.example/s.png"}
    )


def location(psid: str, lat: float, long: float) -> JSONDict:
    return attachment(psid, "location", {"coordinates": {"lat": lat, "long": long}})


def reaction(psid: str, mid: str, emoji: str = "👍") -> JSONDict:
    return _item(
        psid, None, reaction={"reaction": "like", "emoji": emoji, "action": "react", "mid": mid}
    )


def message_edit(psid: str, mid: str, words: str) -> JSONDict:
    return _item(psid, None, message_edit={"mid": mid, "text": words, "num_edit": 1})


def echo(psid: str, words: str) -> JSONDict:
    """What the page itself sent, echoed: sender and recipient swapped."""
    return {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": psid},
        "timestamp": now_ms(),
        "message": {"mid": new_mid(), "is_echo": True, "app_id": 1234, "text": words},
    }


def read(psid: str) -> JSONDict:
    return _item(psid, None, read={"watermark": now_ms()})


def delivered(psid: str) -> JSONDict:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "delivery": {"mids": [new_mid()], "watermark": now_ms()},
    }


def delivery(*items: JSONDict, entries: list[list[JSONDict]] | None = None) -> JSONDict:
    """A webhook body: one entry holding ``items``, or the ``entries`` given."""
    groups = entries if entries is not None else [list(items)]
    return {
        "object": "page",
        "entry": [{"id": PAGE_ID, "time": now_ms(), "messaging": group} for group in groups],
    }


def encode(body: JSONDict) -> bytes:
    """As Meta sends it: compact JSON, non-ASCII escaped."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()


def sign(raw: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@dataclass
class MetaWebhook:
    """POSTs deliveries to the bot's webhook, signed, as Meta does."""

    url: str  # http://127.0.0.1:PORT/webhooks/messenger
    secret: str = APP_SECRET

    async def post(
        self,
        body: JSONDict | bytes,
        *,
        signature: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """(status, text). ``signature`` "" signs correctly; None sends no signature."""
        raw = body if isinstance(body, bytes) else encode(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        if signature is not None:
            sent["X-Hub-Signature-256"] = signature or sign(raw, self.secret)
        async with aiohttp.ClientSession() as session:
            async with session.post(self.url, data=raw, headers=sent) as response:
                return response.status, await response.text()

    async def deliver(self, *items: JSONDict) -> None:
        status, answer = await self.post(delivery(*items))
        assert status == 200, f"the webhook answered {status}: {answer}"

    async def verify(self, mode: str, token: str, challenge: str) -> tuple[int, str]:
        query = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url, params=query) as response:
                return response.status, await response.text()


@dataclass
class Resident:
    """One person writing to the page, and what they see of the bot's answers."""

    meta: MetaWebhook
    graph: GraphStandIn
    psid: str
    seen: int = 0  # how many of their received messages the test has looked at
    last: list[Sent] = field(default_factory=list)

    async def send(self, item: JSONDict, expect: int = 1, timeout: float = 10.0) -> list[Sent]:  # noqa: ASYNC109
        """Deliver ``item`` (they wrote: the window opens) and wait for ``expect`` new
        messages to them; returns those."""
        self.graph.opened(self.psid)
        await self.meta.deliver(item)
        return await self.received(expect, timeout)

    async def received(self, expect: int = 1, timeout: float = 10.0) -> list[Sent]:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while len(self.graph.inbox(self.psid)) < self.seen + expect:
            if time.monotonic() > deadline:
                got = [m.text for m in self.graph.inbox(self.psid)[self.seen :]]
                raise AssertionError(f"{self.psid} expected {expect} message(s), got {got}")
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # nothing more on its way?
        new = self.graph.inbox(self.psid)[self.seen :]
        self.seen += len(new)
        self.last = new
        return new

    async def says(self, words: str, expect: int = 1) -> list[Sent]:
        return await self.send(text(self.psid, words), expect)

    async def taps(self, label: str, expect: int = 1) -> list[Sent]:
        """Tap the choice labelled ``label`` on the newest message that offers it."""
        for message in reversed(self.graph.inbox(self.psid)):
            for title, payload in message.choices:
                if title == label:
                    if message.quick_replies:
                        return await self.send(quick_reply(self.psid, title, payload), expect)
                    return await self.send(postback(self.psid, title, payload), expect)
        offered = [m.choices for m in self.graph.inbox(self.psid)[-3:]]
        raise AssertionError(f"no choice {label!r} offered to {self.psid}: {offered}")
