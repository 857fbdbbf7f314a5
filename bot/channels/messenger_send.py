"""Messenger's sending side: a neutral ``Reply`` as Send API messages, and Meta's errors
as the delivery engine's outcomes.

Rendering never drops a choice: up to 3 buttons under a short text become a button
template (postback buttons stay on the message, so a poll invitation can be answered
later), up to 13 quick replies otherwise, and more than the engine should ever hand
over go as several templates. Errors are told apart by ``code``/``error_subcode``
(``bot.channels.messenger_graph``); a refused token stops the channel, logged once,
until a probe at most every 5 minutes finds it accepted again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp

from bot.channels.messenger_events import NAME
from bot.channels.messenger_graph import GraphClient, GraphError
from bot.core import metrics
from bot.core.channel import (
    ChannelDown,
    PushRefused,
    RateLimited,
    RecipientBlocked,
    coalesce,
    fit_label,
    split_text,
)
from bot.core.logs import who
from bot.core.messages import Button, Reply

log = logging.getLogger(__name__)

TEXT_LENGTH = 2000
TEMPLATE_TEXT_LENGTH = 640
TEMPLATE_BUTTONS = 3
QUICK_REPLIES = 13
LABEL_LENGTH = 20
PAYLOAD_BYTES = 1000
MORE = "…"  # the text of a template that only carries more buttons
PROBE_SECONDS = 300.0  # a refused token is tried again (GET /me) at most this often
ANSWER_ATTEMPTS = 3
ANSWER_PAUSES = (0.5, 1.0)  # before the second and the third try
ANSWER_RATE_WAIT = 5.0  # an answer waits out a rate limit this short; longer ones go on_unsent
BACKOFF = (30.0, 60.0)  # a rate limit without Meta's estimate: a push waits this long, jittered
RATE_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2, 1200})  # Meta's "temporary": worth another try
OUTSIDE_WINDOW = (10, 2018278)
TOKEN_REFUSED = (
    "the page access token was refused (Graph API error 190): "
    "set a new messenger.page_token and restart"
)

Unsent = Callable[[str, list[Reply]], Awaitable[None]]
"""As ``bot.channels.telegram.Unsent``: what of an answer could not go within a short
wait, in order; the runtime queues it through the outbox."""
LocalImages = Callable[[str], Awaitable[bytes | None]]
"""As ``bot.channels.telegram.LocalImages``: the bytes of an image our server serves
("/photos/….jpg", "/media/…"), None when it is gone."""


# --- rendering ---------------------------------------------------------------
def messages_of(reply: Reply, *, public_url: str = "") -> list[dict[str, Any]]:
    """The Send API "message" objects of a reply, in order.

    An image of our own server that Meta cannot fetch (a private "/photos/…", or no
    ``public_url``) stays as ``{"url": "/photos/…"}``: the sender uploads it.
    Raises ValueError for a button Meta would refuse (no label, a payload over 1000
    bytes): a bug of ours, not the resident's.
    """
    return [message for message, _ in _parts(reply, public_url)]


def _parts(reply: Reply, public_url: str) -> list[tuple[dict[str, Any], Reply]]:
    """Each message with the reply that renders it and all after it (what is left to
    send should this one fail)."""
    buttons = reply.all_buttons()
    for button in buttons:
        if not button.label.strip():
            raise ValueError(f"a Messenger button needs a label (payload {button.payload!r})")
        if len(button.payload.encode()) > PAYLOAD_BYTES:
            raise ValueError(f"a button payload over {PAYLOAD_BYTES} bytes: {button.label!r}")
    parts: list[tuple[dict[str, Any], Reply]] = []
    rest = replace(reply, image="", replace=False, request_location="")
    if reply.image:
        parts.append((_image(reply.image, public_url), replace(rest, image=reply.image)))
    pieces = split_text(reply.text, TEXT_LENGTH) if reply.text.strip() else []
    if not buttons:
        return parts + [
            ({"text": piece}, replace(rest, text="\n\n".join(pieces[index:])))
            for index, piece in enumerate(pieces)
        ]
    pieces = pieces or [MORE]
    last = pieces.pop()
    parts += [
        ({"text": piece}, replace(rest, text="\n\n".join([*pieces[index:], last])))
        for index, piece in enumerate(pieces)
    ]
    if len(buttons) <= TEMPLATE_BUTTONS and len(last) <= TEMPLATE_TEXT_LENGTH:
        parts.append((_template(last, buttons), replace(rest, text=last)))
    elif len(buttons) <= QUICK_REPLIES:
        quick = [
            {
                "content_type": "text",
                "title": fit_label(b.label, LABEL_LENGTH),
                "payload": b.payload,
            }
            for b in buttons
        ]
        parts.append(({"text": last, "quick_replies": quick}, replace(rest, text=last)))
    else:
        # The dialog engine pages choices to 13; more means it did not. Drop none.
        log.warning("messenger: %d buttons in one reply, sent as templates of 3", len(buttons))
        text = last
        if len(last) > TEMPLATE_TEXT_LENGTH:
            parts.append(({"text": last}, replace(rest, text=last)))
            text = MORE
        for start in range(0, len(buttons), TEMPLATE_BUTTONS):
            left = Reply(text, [[b] for b in buttons[start:]])
            parts.append((_template(text, buttons[start : start + TEMPLATE_BUTTONS]), left))
            text = MORE
    return parts


def _template(text: str, buttons: list[Button]) -> dict[str, Any]:
    return {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": text,
                "buttons": [
                    {
                        "type": "postback",
                        "title": fit_label(b.label, LABEL_LENGTH),
                        "payload": b.payload,
                    }
                    for b in buttons
                ],
            },
        }
    }


def _image(image: str, public_url: str) -> dict[str, Any]:
    url = image
    if image.startswith("/media/") and public_url:
        url = public_url.rstrip("/") + image
    payload: dict[str, Any] = {"url": url}
    if url.startswith(("http://", "https://")):
        payload["is_reusable"] = True
    return {"attachment": {"type": "image", "payload": payload}}


def _local_path(message: dict[str, Any]) -> str:
    """The path of an image the sender must upload, else ""."""
    attachment = message.get("attachment") or {}
    url = (
        str(attachment.get("payload", {}).get("url", ""))
        if attachment.get("type") == "image"
        else ""
    )
    return url if url and not url.startswith(("http://", "https://")) else ""


# --- the outcomes of Meta's errors ------------------------------------------
def _blocked(error: GraphError) -> bool:
    return error.code == 551 or (error.code, error.subcode) in ((10, 2018108), (100, 2018001))


def _outside_window(error: GraphError) -> bool:
    return (error.code, error.subcode) == OUTSIDE_WINDOW


def _transient(error: GraphError) -> bool:
    return error.status >= 500 or error.code in TRANSIENT_CODES


class _GiveUp(Exception):
    """An answer's message cannot go now; what is left goes to on_unsent."""


class _Stop(Exception):
    """The resident cannot be reached: the rest of the answer would fail alike."""


class MessengerSender:
    """Sends answers (RESPONSE) and pushes (UPDATE, HUMAN_AGENT) through the Send API."""

    def __init__(
        self,
        client: GraphClient,
        *,
        public_url: str = "",
        human_agent: bool = False,
        local_images: LocalImages | None = None,
        on_unsent: Unsent | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.public_url = public_url
        self.human_agent = human_agent
        self.local_images = local_images
        self.on_unsent = on_unsent
        self.failing: str | None = None
        self._clock = clock
        self._sleep = sleep
        self._probe_at = 0.0

    # --- pushes --------------------------------------------------------------
    async def push(self, recipient: str, reply: Reply) -> str:
        """UPDATE (HUMAN_AGENT when allowed and needed); the mid of the last message.
        Raises RecipientBlocked, RateLimited, PushRefused, ChannelDown, or another error
        (a fault worth retrying later)."""
        await self._ready()
        tagged = False
        message_id = ""
        for message in messages_of(reply, public_url=self.public_url):
            try:
                resolved = await self._resolved(message)
                if resolved is None:
                    continue
                try:
                    message_id = await self._send(recipient, resolved, tagged=tagged)
                except GraphError as error:
                    if not (_outside_window(error) and reply.human and self.human_agent):
                        raise
                    if tagged:
                        raise
                    tagged = True  # a staff member's words: the HUMAN_AGENT week
                    message_id = await self._send(recipient, resolved, tagged=True)
            except GraphError as error:
                raise self._outcome(error, recipient, tagged) from error
        return message_id

    def _outcome(self, error: GraphError, recipient: str, tagged: bool) -> Exception:
        if error.code == 190:
            return ChannelDown(self._token_refused())
        if _blocked(error):
            return RecipientBlocked(f"{who(NAME, recipient)}: Graph API {error.code}")
        if _outside_window(error) or (tagged and error.code == 200):
            if tagged and error.code == 200:
                log.warning("messenger: HUMAN_AGENT refused: %s", error.message)
            return PushRefused("outside Messenger's window")
        if error.code in RATE_CODES:
            return RateLimited(error.regain_seconds or random.uniform(*BACKOFF))
        return error

    async def _ready(self) -> None:
        """Raise ChannelDown while the token is refused; probe it now and then."""
        if self.failing is None:
            return
        now = self._clock()
        if now < self._probe_at:
            raise ChannelDown(self.failing, retry_after=self._probe_at - now)
        self._probe_at = now + PROBE_SECONDS
        try:
            await self.client.call("GET", "/me")
        except (GraphError, aiohttp.ClientError, TimeoutError):
            raise ChannelDown(self.failing, retry_after=PROBE_SECONDS) from None
        log.info("messenger: the page access token is accepted again; sending resumes")
        self.failing = None

    def _token_refused(self) -> str:
        if self.failing is None:
            log.error("messenger: %s", TOKEN_REFUSED)
            self.failing = TOKEN_REFUSED
            self._probe_at = self._clock() + PROBE_SECONDS
        return self.failing

    # --- answers -------------------------------------------------------------
    async def answer(self, recipient: str, replies: list[Reply]) -> None:
        """RESPONSE; never raises; what cannot go within a short wait goes to on_unsent."""
        queue = coalesce(replies, TEXT_LENGTH)
        for index, reply in enumerate(queue):
            try:
                parts = _parts(reply, self.public_url)
            except ValueError:
                log.exception("messenger: an answer to %s cannot be rendered", who(NAME, recipient))
                continue
            for message, left in parts:
                if self.failing is not None:
                    await self._unsent(recipient, [left, *queue[index + 1 :]], self.failing)
                    return
                try:
                    await self._answer_one(recipient, message)
                except _Stop:
                    log.info(
                        "messenger: %s cannot be reached; answer dropped", who(NAME, recipient)
                    )
                    return
                except _GiveUp as reason:
                    await self._unsent(recipient, [left, *queue[index + 1 :]], str(reason))
                    return
                except Exception:
                    log.exception("messenger: an answer to %s failed", who(NAME, recipient))
                    await self._unsent(recipient, [left, *queue[index + 1 :]], "an error")
                    return

    async def _answer_one(self, recipient: str, message: dict[str, Any]) -> None:
        """One message, tried again after a network fault or a 5xx; raises _GiveUp or
        _Stop; a message Meta refuses is logged and skipped."""
        reason = ""
        waited = False  # a rate limit was just waited out: no pause on top of it
        for attempt in range(ANSWER_ATTEMPTS):
            if attempt and not waited:
                await self._sleep(ANSWER_PAUSES[min(attempt, len(ANSWER_PAUSES)) - 1])
            waited = False
            try:
                resolved = await self._resolved(message)
                if resolved is not None:
                    await self._send(recipient, resolved, messaging_type="RESPONSE")
                return
            except (aiohttp.ClientError, TimeoutError) as error:
                reason = f"no answer from the Graph API ({type(error).__name__})"
            except GraphError as error:
                if error.code == 190:
                    raise _GiveUp(self._token_refused()) from None
                if _blocked(error):
                    raise _Stop from None
                if _outside_window(error):
                    raise _GiveUp("outside Messenger's window") from None
                if error.code in RATE_CODES:
                    seconds = error.regain_seconds
                    metrics.rate_limited(NAME, "answer", seconds or 0.0)
                    if seconds is None or seconds > ANSWER_RATE_WAIT:
                        raise _GiveUp(f"rate limited (Graph API {error.code})") from None
                    await self._sleep(seconds)
                    waited = True
                    reason = f"rate limited (Graph API {error.code})"
                    continue
                if not _transient(error):
                    log.error(
                        "messenger: a message to %s was refused: Graph API %d/%d: %s",
                        who(NAME, recipient),
                        error.code,
                        error.subcode,
                        error.message,
                    )
                    return
                reason = f"Graph API {error.code}/{error.subcode} (HTTP {error.status})"
        raise _GiveUp(reason)

    async def _unsent(self, recipient: str, rest: list[Reply], reason: str) -> None:
        log.warning(
            "messenger: %d message(s) of an answer to %s not sent: %s",
            len(rest),
            who(NAME, recipient),
            reason,
        )
        if self.on_unsent is None:
            log.warning("messenger: an answer to %s is lost", who(NAME, recipient))
            return
        try:
            await self.on_unsent(recipient, rest)
        except Exception:
            log.exception(
                "messenger: the answer to %s could not be handed on", who(NAME, recipient)
            )

    # --- one call ------------------------------------------------------------
    async def _send(
        self,
        recipient: str,
        message: dict[str, Any],
        *,
        tagged: bool = False,
        messaging_type: str = "UPDATE",
    ) -> str:
        body: dict[str, Any] = {"recipient": {"id": recipient}, "messaging_type": messaging_type}
        if tagged:
            body.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        body["message"] = message
        answer = await self.client.call("POST", "/me/messages", body=body)
        return str(answer.get("message_id", ""))

    async def _resolved(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The message with a local image uploaded; None when the image is gone."""
        path = _local_path(message)
        if not path:
            return message
        data = await self.local_images(path) if self.local_images is not None else None
        if data is None:
            log.warning("messenger: the image %s is gone; the text goes alone", path)
            return None
        form = aiohttp.FormData()
        form.add_field(
            "message",
            json.dumps({"attachment": {"type": "image", "payload": {"is_reusable": True}}}),
        )
        kind = mimetypes.guess_type(path)[0] or "image/jpeg"
        form.add_field("filedata", data, filename=path.rsplit("/", 1)[-1], content_type=kind)
        answer = await self.client.call("POST", "/me/message_attachments", form=form)
        attachment_id = str(answer["attachment_id"])
        return {"attachment": {"type": "image", "payload": {"attachment_id": attachment_id}}}
