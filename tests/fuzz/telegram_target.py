"""The Telegram webhook as a fuzz target: updates POSTed as Telegram would, with its secret.

The resident's app is the Bot API stand-in's user (so the bot's answers land in a chat the
stand-in knows); the updates are built here, not by the stand-in, so that they can be
anything. The webhook answers once the update is handled and answered, so after the POST
the bot has done all it will do.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from typing import Any

import aiohttp

from bot.channels.telegram import SECRET_HEADER
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
from tests.standins.telegram_api import BotApiStandIn, BotMessage, JSONDict

_users = itertools.count(7_000_000_001)
_updates = itertools.count(500_000_001)
_messages = itertools.count(1_000_001)
_queries = itertools.count(4_000_000_000_000_000_001)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _is_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _coordinate_ok(value: object, limit: int) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and -limit <= value <= limit
    )


class TelegramTarget:
    name = "telegram"

    def __init__(self, api: BotApiStandIn, url: str, secret: str) -> None:
        self.api = api
        self.url = url
        self.secret = secret
        self.http: aiohttp.ClientSession | None = None
        self.user_id = 0
        self.user: JSONDict = {}
        self.chat: JSONDict = {}
        self.history: list[tuple[bytes, str]] = []  # (body, kind) of what this resident sent

    async def begin(self, conversation: Conversation) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        self.user_id = next(_users)
        self.user = self.api.add_user(self.user_id, "Fuzz", language_code=conversation.locale)
        self.chat = {"id": self.user_id, "type": "private", "first_name": "Fuzz"}
        self.history = []

    async def end(self) -> None:
        pass

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    async def chosen_language(self) -> str | None:
        return await known_language("telegram", str(self.user_id))

    # --- building updates ---------------------------------------------------------------
    def _message(self, **extra: Any) -> JSONDict:
        # Copies: a malformation of one update must not spread to the next ones.
        message = {
            "message_id": next(_messages),
            "from": copy.deepcopy(self.user),
            "chat": copy.deepcopy(self.chat),
            "date": int(time.time()),
            **extra,
        }
        return {"update_id": next(_updates), "message": message}

    def _question(self) -> BotMessage | None:
        for message in reversed(self.api.messages(self.user_id)):
            if message.callback_data():
                return message
        return None

    def _callback(self, data: str, message_id: int | None) -> JSONDict:
        query: JSONDict = {
            "id": str(next(_queries)),
            "from": copy.deepcopy(self.user),
            "chat_instance": "-5000000000000000001",
            "data": data,
        }
        if message_id is not None:
            query["message"] = {
                "message_id": message_id,
                "from": self.api.bot_user,
                "chat": copy.deepcopy(self.chat),
                "date": int(time.time()),
                "text": "…",
            }
        return {"update_id": next(_updates), "callback_query": query}

    def build(self, action: Action) -> tuple[JSONDict | bytes, str, set[str]]:
        """The body, its kind, and the texts it carries."""
        if isinstance(action, Unknown):
            body, kind, sent = self.build(action.action)
            if isinstance(body, dict):
                body = {**action.fields, **body}
                inner = body.get("message") or body.get("callback_query")
                if isinstance(inner, dict):
                    inner.update({k: v for k, v in action.fields.items() if k not in inner})
            return body, kind, sent
        if isinstance(action, Say):
            kind = WELL_FORMED if _is_text(action.text) else MALFORMED
            return self._message(text=action.text), kind, {action.text}
        if isinstance(action, Command):
            text = f"/{action.name}" + (f" {action.args}" if action.args else "")
            extra: JSONDict = {"text": text}
            if action.entity:
                length = _utf16(f"/{action.name}")
                extra["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
            return self._message(**extra), WELL_FORMED, {text, action.args}
        if isinstance(action, Tap):
            question = self._question()
            if question is None:
                return self._callback("menu:main", None), WELL_FORMED, set()
            data = question.callback_data()
            return (
                self._callback(data[action.index % len(data)], question.message_id),
                WELL_FORMED,
                set(),
            )
        if isinstance(action, Press):
            return self._callback(action.payload, action.on_message), WELL_FORMED, {action.payload}
        if isinstance(action, Place):
            ok = _coordinate_ok(action.latitude, 90) and _coordinate_ok(action.longitude, 180)
            location = {"latitude": action.latitude, "longitude": action.longitude}
            return self._message(location=location), WELL_FORMED if ok else MALFORMED, set()
        if isinstance(action, Photo):
            file_id = self.api.register_file_id() if action.known else "AgAC-no-such-file"
            size = {"file_id": file_id, "file_unique_id": "AQADfuzz", "width": 800, "height": 600}
            extra = {"photo": [size]}
            if action.caption:
                extra["caption"] = action.caption
            return self._message(**extra), WELL_FORMED, {action.caption}
        if isinstance(action, Contact):
            contact = {"phone_number": action.phone, "first_name": "Fuzz", "user_id": self.user_id}
            return self._message(contact=contact), WELL_FORMED, set()
        if isinstance(action, Other):
            files = {
                "sticker": {
                    "file_id": "CAAC-fuzz",
                    "file_unique_id": "AQADs",
                    "type": "regular",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                },
                "voice": {"file_id": "AwAC-fuzz", "file_unique_id": "AQADv", "duration": 3},
                "document": {"file_id": "BQAC-fuzz", "file_unique_id": "AQADd"},
            }
            return self._message(**{action.what: files[action.what]}), WELL_FORMED, set()
        if isinstance(action, Ignored):
            return self._ignored(action), IGNORED, set()
        if isinstance(action, Malformed):
            return self._malformed(action)
        raise AssertionError(f"not an action for Telegram: {action!r}")

    def _ignored(self, action: Ignored) -> JSONDict:
        body = self._message(text=action.text or "x")
        message = body.pop("message")
        if action.what in ("edited_message", "edited_photo"):
            message["edit_date"] = message["date"]
            if action.what == "edited_photo":
                message.pop("text")
                message["photo"] = [
                    {"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}
                ]
            body["edited_message"] = message
        elif action.what == "my_chat_member":
            body["my_chat_member"] = {
                "chat": self.chat,
                "from": self.user,
                "date": message["date"],
                "old_chat_member": {"status": "member", "user": self.user},
                "new_chat_member": {"status": "kicked", "user": self.user, "until_date": 0},
            }
        elif action.what == "channel_post":
            message.pop("from")
            message["chat"] = {"id": -1001234567890, "type": "channel", "title": "News"}
            body["channel_post"] = message
        elif action.what == "group":
            message["chat"] = {"id": -4000000001, "type": "group", "title": "Neighbours"}
            body["message"] = message
        else:  # no_from: an anonymous sender, as in channels
            message.pop("from")
            body["message"] = message
        return body

    def _malformed(self, action: Malformed) -> tuple[JSONDict | bytes, str, set[str]]:
        what, value = action.what, action.value
        if what == "not_json":
            try:
                json.loads(value)
            except (ValueError, RecursionError):
                return bytes(value), MALFORMED, set()
            return b"not json: " + bytes(value), MALFORMED, set()
        if what == "not_object":
            return json.dumps(value).encode(), MALFORMED, set()
        if what == "no_update_id":
            body = {k: v for k, v in value.items() if k != "update_id"}
            return json.dumps(body).encode(), MALFORMED, set()
        if what == "nested":
            raw = '{"update_id": 1, "message": ' + "[" * value + "]" * value + "}"
            return raw.encode(), MALFORMED, set()
        if what == "huge":
            body = self._message(text="x" * value)
            return json.dumps(body).encode(), MALFORMED, set()
        if what == "wrong_secret":
            return self._message(text="/help"), MALFORMED, set()
        if what == "surrogate_text":
            return self._message(text=value), MALFORMED, set()
        if what == "break":
            path, wrong = value
            if path[0] == "callback_query":
                body = self._callback("menu:main", 1)
            else:
                body = self._message(
                    text="/help", entities=[{"offset": 0, "length": 5, "type": "bot_command"}]
                )
            _set(body, path, wrong)
            return body, _kind_of_break(path, wrong), set()
        raise AssertionError(f"no such Telegram malformation: {what}")

    # --- sending ------------------------------------------------------------------------
    async def _post(self, body: bytes, secret: str | None) -> str:
        assert self.http is not None
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with self.http.post(self.url, data=body, headers=headers) as response:
            await response.read()
            return str(response.status)

    async def send(self, action: Action) -> Answer:
        before = len(self.api.messages(self.user_id))
        edits = sum(m.edits for m in self.api.messages(self.user_id))
        secret: str | None = self.secret
        if isinstance(action, Malformed) and action.what == "wrong_secret":
            secret = action.value
        if isinstance(action, Replay) and self.history:
            raw, first_kind = self.history[-1 - (action.back - 1) % len(self.history)]
            kind = MALFORMED if first_kind == MALFORMED else REPLAY
            status = await self._post(raw, secret)
            sent: set[str] = set()
        elif isinstance(action, Flood):
            import asyncio

            bodies = [json.dumps(self._message(text=t)).encode() for t in action.texts]
            statuses = await asyncio.gather(*(self._post(b, secret) for b in bodies))
            self.history.extend((b, WELL_FORMED) for b in bodies)
            kind, status, sent = WELL_FORMED, ",".join(sorted(set(statuses))), set(action.texts)
        else:
            if isinstance(action, Replay):  # nothing sent yet to repeat
                action = Say("first")
            body, kind, sent = self.build(action)
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            status = await self._post(raw, secret)
            if secret == self.secret:
                self.history.append((raw, kind))
        messages = self.api.messages(self.user_id)
        new = messages[before:]
        shown = [m.body for m in new]
        shown += [label for m in new for row in m.button_texts() for label in row]
        problems = []
        if kind in (MALFORMED, IGNORED, REPLAY):
            edited = sum(m.edits for m in messages) - edits
            if new or edited:
                problems.append(f"answered {len(new)} message(s), {edited} edit(s): {shown[:3]}")
        return Answer(kind, status, shown, {s for s in sent if s}, problems)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind_of_break(path: tuple[str, ...], value: object) -> str:
    """What Telegram's documentation makes of a field set to ``value``: most such values
    are malformed, some are merely unusual (a chat id of 0), a chat that is not private
    is one the bot takes no part in."""
    name = path[-1]
    if name == "update_id":
        ok = _is_int(value) and 0 <= value < 2**63  # type: ignore[operator]
    elif name == "id" and path[-2] == "from":
        ok = _is_int(value) and 0 < value < 2**52  # type: ignore[operator]
    elif name == "id" and path[-2] == "chat":
        ok = _is_int(value) and -(2**52) < value < 2**52  # type: ignore[operator]
    elif name == "message_id":
        ok = _is_int(value)
    elif name == "type":
        return IGNORED if _is_text(value) else MALFORMED  # never "private" here
    elif name in ("text", "language_code", "data") or (
        name == "id" and path[0] == "callback_query"
    ):
        ok = _is_text(value)
    elif name in ("entities", "photo"):
        ok = value == []
    else:  # location, contact, from, message: objects none of the wrong values fills
        ok = False
    return WELL_FORMED if ok else MALFORMED


def _set(body: JSONDict, path: tuple[str, ...], value: object) -> None:
    target: Any = body
    for key in path[:-1]:
        target = target.setdefault(key, {}) if isinstance(target, dict) else target
    if isinstance(target, dict):
        target[path[-1]] = value


async def normal_answer(target: TelegramTarget) -> str:
    """A new resident's /help, as anyone would send it: the text of the bot's answer."""
    await target.begin(Conversation("lv", ()))
    answer = await target.send(Command("help"))
    return answer.shown[0] if answer.shown else ""
