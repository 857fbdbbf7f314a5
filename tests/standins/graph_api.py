"""The Send API and the Attachment Upload API, as strict as Meta is (a ``GraphCore`` surface).

It refuses what Meta refuses (the limits and error texts of
``shared/research/messenger-platform.md`` §2–§6), applies the policy Meta applies
(known residents, blocked ones, the 24-hour window, HUMAN_AGENT within 7 days with
the permission, rate limits) and keeps what each resident received, in order, so a
test can play the resident: ``inbox(psid)``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from aiohttp import web

from tests.standins.graph_core import PAGE_ID, GraphCore, GraphFault, JSONDict, error_response

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY")
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024
RATE_CODES = {
    4: "(#4) Application request limit reached",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}


@dataclass(frozen=True, slots=True)
class Sent:
    """One message as its resident received it."""

    psid: str
    message_id: str
    messaging_type: str
    tag: str = ""
    text: str = ""
    quick_replies: tuple[tuple[str, str], ...] = ()  # (title, payload)
    buttons: tuple[tuple[str, str], ...] = ()  # a button template's (title, payload)
    image_url: str = ""
    attachment_id: str = ""

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        """What the resident can tap on this message, quick replies or buttons."""
        return self.quick_replies or self.buttons


@dataclass
class _Resident:
    last_message: datetime | None = None
    blocked: bool = False


def _fault(message: str, code: int = 100, subcode: int = 0) -> GraphFault:
    return GraphFault(code, message, subcode)


def _invalid(name: str) -> GraphFault:
    return _fault(f"(#100) Param {name} must be a non-empty string")


@dataclass
class GraphStandIn:
    """``await GraphStandIn().start()``; point a ``GraphClient`` at ``url`` with ``token``."""

    core: GraphCore = field(default_factory=GraphCore)
    page_id: str = PAGE_ID
    human_agent_permission: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    sent: list[Sent] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)  # attachment_id -> the bytes (or b"")
    _residents: dict[str, _Resident] = field(default_factory=dict)
    _rate_limited: list[tuple[int, float]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for path in ("/me/messages", "/{page}/messages"):
            self.core.route("POST", path, self._messages)
        for path in ("/me/message_attachments", "/{page}/message_attachments"):
            self.core.route("POST", path, self._attachments)
        self.core.route("GET", "/me", self._me)

    # --- running -------------------------------------------------------------
    async def start(self) -> Self:
        await self.core.start()
        return self

    async def stop(self) -> None:
        await self.core.stop()

    @property
    def url(self) -> str:
        return self.core.url

    @property
    def token(self) -> str:
        return self.core.token

    # --- the residents -------------------------------------------------------
    def add_resident(self, psid: str) -> None:
        """A person who has a thread with the page but has not written lately."""
        self._residents.setdefault(psid, _Resident())

    def opened(self, psid: str, at: datetime | None = None) -> None:
        """The resident wrote to the page at ``at`` (now by default): the window opens."""
        self._residents.setdefault(psid, _Resident()).last_message = at or self.now()

    def block(self, psid: str) -> None:
        self._residents.setdefault(psid, _Resident()).blocked = True

    def limit_rate(self, code: int = 613, regain_minutes: float = 0, times: int = 1) -> None:
        """The next ``times`` sends fail with a rate limit; ``regain_minutes`` > 0 puts
        Meta's estimate in ``X-Business-Use-Case-Usage``."""
        self._rate_limited.extend([(code, regain_minutes)] * times)

    def inbox(self, psid: str) -> list[Sent]:
        return [message for message in self.sent if message.psid == psid]

    # --- the routes ----------------------------------------------------------
    async def _me(self, request: web.Request, call: JSONDict) -> web.Response:
        return web.json_response({"id": self.page_id, "name": "Stand-in municipality"})

    async def _messages(self, request: web.Request, call: JSONDict) -> web.Response:
        if call["params"].get("page", self.page_id) != self.page_id:
            raise _fault("(#100) Unsupported post request.", 100, 33)
        body = call["body"]
        if not isinstance(body, dict) or "multipart" in body:
            raise _fault("(#100) The request must be JSON")
        psid, messaging_type, tag = self._envelope(body)
        has_message, has_action = "message" in body, "sender_action" in body
        if has_message == has_action:
            raise _fault("(#100) Must send either message or sender_action")
        if has_action:
            if body["sender_action"] not in ("typing_on", "typing_off", "mark_seen"):
                raise _fault(
                    "(#100) Param sender_action must be one of {TYPING_ON, TYPING_OFF, MARK_SEEN}"
                )
            self._policy(psid, messaging_type or "RESPONSE", tag)
            return web.json_response({"recipient_id": psid})
        if not messaging_type:
            raise _fault("(#100) Param messaging_type is required")
        received = self._message(body["message"])
        self._policy(psid, messaging_type, tag)
        if self._rate_limited:
            code, minutes = self._rate_limited.pop(0)
            headers = {}
            if minutes:
                usage = [
                    {
                        "type": "messenger",
                        "call_count": 100,
                        "total_cputime": 10,
                        "total_time": 10,
                        "estimated_time_to_regain_access": minutes,
                    }
                ]
                headers["X-Business-Use-Case-Usage"] = json.dumps({self.page_id: usage})
            return error_response(
                GraphFault(code, RATE_CODES.get(code, f"(#{code}) Rate limit")), headers
            )
        message_id = f"m_standin{next(self._ids):06d}"
        self.sent.append(
            Sent(psid, message_id, messaging_type, tag, **received)  # type: ignore[arg-type]
        )
        return web.json_response({"recipient_id": psid, "message_id": message_id})

    def _envelope(self, body: JSONDict) -> tuple[str, str, str]:
        recipient = body.get("recipient")
        psid = recipient.get("id") if isinstance(recipient, dict) else None
        if not isinstance(psid, str) or not psid:
            raise _fault("(#100) The parameter recipient is required")
        messaging_type = body.get("messaging_type", "")
        if messaging_type and messaging_type not in MESSAGING_TYPES:
            raise _fault(
                "(#100) Param messaging_type must be one of "
                "{RESPONSE, UPDATE, MESSAGE_TAG, UTILITY}"
            )
        tag = body.get("tag", "")
        if tag and messaging_type != "MESSAGE_TAG":
            raise _fault("(#100) Param tag is only allowed with messaging_type MESSAGE_TAG")
        if messaging_type == "MESSAGE_TAG" and tag != "HUMAN_AGENT":
            raise _fault("(#100) Invalid parameter")
        return psid, messaging_type, tag

    def _message(self, message: Any) -> dict[str, Any]:
        if not isinstance(message, dict):
            raise _fault("(#100) Param message must be an object")
        kinds = [key for key in ("text", "attachment", "sticker_id") if key in message]
        if len(kinds) != 1:
            raise _fault(
                "(#100) Message must contain exactly one of text, attachment or sticker_id"
            )
        received: dict[str, Any] = {}
        if "text" in message:
            text = message["text"]
            if not isinstance(text, str) or not text.strip():
                raise _invalid("message[text]")
            if len(text) > 2000:
                raise _fault(
                    "(#100) Length of param message[text] must be less than or equal to 2000"
                )
            received["text"] = text
        elif "attachment" in message:
            received.update(self._attachment(message["attachment"]))
        if "quick_replies" in message:
            received["quick_replies"] = self._quick_replies(message["quick_replies"])
        return received

    def _quick_replies(self, replies: Any) -> tuple[tuple[str, str], ...]:
        if not isinstance(replies, list) or not replies:
            raise _fault("(#100) Param message[quick_replies] must be a non-empty array")
        if len(replies) > 13:
            raise _fault("(#105) param message quick_replies has too many elements", 105)
        kept = []
        for index, reply in enumerate(replies):
            name = f"message[quick_replies][{index}]"
            if not isinstance(reply, dict):
                raise _fault(f"(#100) Param {name} must be an object")
            if reply.get("content_type") == "location":
                raise _fault("(#100) Location Quick Reply is now deprecated on API 4.0.")
            if reply.get("content_type") != "text":
                raise _fault(
                    f"(#100) Param {name}[content_type] must be one of "
                    "{TEXT, USER_PHONE_NUMBER, USER_EMAIL}"
                )
            kept.append(self._choice(reply, name))
        return tuple(kept)

    def _choice(self, button: JSONDict, name: str) -> tuple[str, str]:
        title, payload = button.get("title"), button.get("payload")
        if not isinstance(title, str) or not title:
            raise _invalid(f"{name}[title]")
        if len(title) > 20:
            raise _fault(f"(#100) Length of param {name}[title] must be less than or equal to 20")
        if not isinstance(payload, str) or not payload:
            raise _invalid(f"{name}[payload]")
        if len(payload) > 1000:
            raise _fault(
                f"(#100) Length of param {name}[payload] must be less than or equal to 1000"
            )
        return title, payload

    def _attachment(self, attachment: Any) -> dict[str, Any]:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("payload"), dict):
            raise _fault("(#100) Param message[attachment] must have a type and a payload")
        kind, payload = attachment.get("type"), attachment["payload"]
        if kind == "template":
            return self._template(payload)
        if kind not in ("image", "audio", "video", "file"):
            raise _fault(
                "(#100) Param message[attachment][type] must be one of "
                "{IMAGE, AUDIO, VIDEO, FILE, TEMPLATE}"
            )
        if "attachment_id" in payload:
            if payload["attachment_id"] not in self.uploads:
                raise _fault("(#100) Attachment id is invalid", 100, 2018047)
            return {"attachment_id": payload["attachment_id"]}
        url = payload.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _fault("(#100) Failed to fetch the file from the url", 100, 2018008)
        return {"image_url": url}

    def _template(self, payload: JSONDict) -> dict[str, Any]:
        if payload.get("template_type") != "button":
            raise _fault("(#100) The stand-in knows only the button template")
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _invalid("message[attachment][payload][text]")
        if len(text) > 640:
            raise _fault(
                "(#100) Length of param message[attachment][payload][text] "
                "must be less than or equal to 640"
            )
        buttons = payload.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _fault(
                "(#100) param message[attachment][payload][buttons] must have 1 to 3 elements"
            )
        kept = []
        for index, button in enumerate(buttons):
            name = f"message[attachment][payload][buttons][{index}]"
            if not isinstance(button, dict) or button.get("type") != "postback":
                raise _fault(f"(#100) The stand-in knows only postback buttons ({name})")
            kept.append(self._choice(button, name))
        return {"text": text, "buttons": tuple(kept)}

    def _policy(self, psid: str, messaging_type: str, tag: str) -> None:
        """Meta's checks of whom a message may reach, after the message's own."""
        resident = self._residents.get(psid)
        if resident is None:
            raise _fault("(#100) No matching user found", 100, 2018001)
        if resident.blocked:
            raise GraphFault(551, "(#551) This person isn't available right now.", 1545041)
        since = self.now() - resident.last_message if resident.last_message else None
        if messaging_type == "MESSAGE_TAG":
            if not self.human_agent_permission:
                raise GraphFault(
                    200, "(#200) The page does not have the permission to use HUMAN_AGENT", 2018028
                )
            if since is None or since > HUMAN_AGENT_WINDOW:
                raise GraphFault(
                    10, "(#10) This message is sent outside of allowed window.", 2018278
                )
        elif messaging_type in ("RESPONSE", "UPDATE") and (since is None or since > WINDOW):
            raise GraphFault(10, "(#10) This message is sent outside of allowed window.", 2018278)

    async def _attachments(self, request: web.Request, call: JSONDict) -> web.Response:
        body = call["body"]
        if isinstance(body, dict) and "multipart" in body:
            form = body["multipart"]
            try:
                message = json.loads(form.get("message", ""))
            except ValueError:
                raise _fault("(#100) Param message must be JSON") from None
            attachment = message.get("attachment") if isinstance(message, dict) else None
            if not isinstance(attachment, dict) or attachment.get("type") not in (
                "image",
                "audio",
                "video",
                "file",
            ):
                raise _fault("(#100) Param message[attachment][type] is required")
            filedata = form.get("filedata")
            if not isinstance(filedata, web.FileField):
                raise _fault("(#100) Upload requires a filedata part", 100, 2018047)
            data = filedata.file.read()
            if len(data) > MAX_UPLOAD_BYTES:
                raise _fault("(#100) The file is too large", 100, 2018109)
            if attachment["type"] == "image" and not (
                filedata.content_type.startswith("image/") and _looks_like_image(data)
            ):
                raise _fault("(#100) The file is not an image", 100, 2018074)
        elif isinstance(body, dict) and isinstance(body.get("message"), dict):
            attachment = body["message"].get("attachment")
            url = (
                (attachment or {}).get("payload", {}).get("url")
                if isinstance(attachment, dict)
                else None
            )
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _fault("(#100) Failed to fetch the file from the url", 100, 2018008)
            data = b""
        else:
            raise _fault("(#100) Param message is required")
        attachment_id = f"{next(self._ids) + 9_000_000_000}"
        self.uploads[attachment_id] = data
        return web.json_response({"attachment_id": attachment_id})


def _looks_like_image(data: bytes) -> bool:
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"RIFF"))
