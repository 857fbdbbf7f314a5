"""Helpers for the Telegram end-to-end tests: a resident's chat, what the bot says, the database.

The bot runs whole (``start_bot``) against ``BotApiStandIn`` over real HTTP. A ``Chat`` plays
one resident: every action waits for the replies the test says to expect, so a test never
sleeps blindly and a missing reply fails with the stand-in's account of what the bot did.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialogs.engine import NONCE, PAGE
from storage import residents
from storage.models import ChannelIdentity, DialogState, Resident
from tests.phrases import ALL_SET, MAIN_MENU, failed_apologies
from tests.standins.telegram_api import BotApiStandIn, BotMessage, JSONDict

WEBHOOK_SECRET = "webhook-secret-0123456789_abcdefXYZ"


def joined(notice: str, text: str) -> str:
    """A notice and the reply after it, as the bot sends them: one message, a blank line between."""
    return f"{notice}\n\n{text}"


def telegram_env(api: BotApiStandIn, **extra: str) -> dict[str, str]:
    """The environment that points the bot at the stand-in, as an operator would set it."""
    return {"IESAISTE_TELEGRAM_API_URL": api.url, "IESAISTE_TELEGRAM_TOKEN": api.token, **extra}


async def eventually(
    predicate: Callable[[], object],
    timeout: float = 5.0,  # noqa: ASYNC109 - a test helper's deadline
    what: str = "",
) -> None:
    """Waits for a condition the stand-in does not see (a log record, a row), checking often.

    ``predicate`` may be a coroutine function (a database query).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate!r}")
        await asyncio.sleep(0.01)


def labels(message: BotMessage) -> list[str]:
    return [label for row in message.button_texts() for label in row]


def assert_no_failure(messages: list[BotMessage]) -> None:
    """No traceback and no "something went wrong" apology, in any language."""
    failed = failed_apologies()
    for message in messages:
        assert "Traceback" not in message.body, message.body
        assert message.body not in failed, f"the bot failed: {message.body!r}"


@dataclass
class Chat:
    """One resident's private chat with the bot, seen from the resident's phone."""

    api: BotApiStandIn
    user_id: int
    last_update: JSONDict = field(default_factory=dict)
    # A test about the apology itself says so; every other reply must not be it.
    may_fail: bool = False

    @property
    def messages(self) -> list[BotMessage]:
        return self.api.messages(self.user_id)

    def question(self) -> BotMessage:
        """The newest message with inline buttons: the question the resident is looking at."""
        for message in reversed(self.messages):
            if message.callback_data():
                return message
        raise AssertionError(f"no message with buttons in chat {self.user_id}")

    async def _expect(self, act: Callable[[], JSONDict], replies: int) -> list[BotMessage]:
        before = len(self.messages)
        self.last_update = act()
        messages = await self.api.wait_for_messages(self.user_id, before + replies)
        # No expectation a test writes can then pass on a crash into the apology.
        if not self.may_fail:
            assert_no_failure(messages[before:])
        return messages[before:]

    async def send(self, text: str, *, replies: int = 1) -> list[BotMessage]:
        """Sends a text (or /command); returns the ``replies`` new messages of the bot."""
        return await self._expect(lambda: self.api.send_text(self.user_id, text), replies)

    async def send_sticker(self, *, replies: int = 1) -> list[BotMessage]:
        return await self._expect(lambda: self.api.send_sticker(self.user_id), replies)

    async def send_photo(self, *, replies: int = 1) -> list[BotMessage]:
        return await self._expect(lambda: self.api.send_photo(self.user_id, "look"), replies)

    def button(self, message: BotMessage, button: str) -> str:
        """The callback data of the button labelled ``button`` (or with that very data)."""
        rows = (message.reply_markup or {}).get("inline_keyboard", [])
        for row in rows:
            for key in row:
                if button in (key["text"], key.get("callback_data")):
                    return str(key["callback_data"])
        raise AssertionError(f"no button {button!r} on {labels(message)!r}")

    def tap(self, message: BotMessage, button: str) -> JSONDict:
        """Presses a button without waiting for anything."""
        self.last_update = self.api.press_button(
            self.user_id, message.message_id, self.button(message, button)
        )
        return self.last_update

    async def press(
        self, message: BotMessage, button: str, *, replies: int = 1
    ) -> list[BotMessage]:
        """Presses a button (by label or callback data); returns the new messages."""
        return await self._expect(lambda: self.tap(message, button), replies)

    async def press_to_edit(self, message: BotMessage, button: str) -> BotMessage:
        """Presses a button whose answer edits ``message`` in place; returns it edited."""
        edits = message.edits
        before = len(self.messages)
        self.tap(message, button)
        await self.api.wait_until(
            lambda: message.edits > edits or len(self.messages) > before,
            what=f"an edit of message {message.message_id}",
        )
        assert len(self.messages) == before, "a new message was sent instead of an edit"
        return message

    async def onboard(
        self,
        neighbourhood: str = "Centre",
        topics: tuple[str, ...] = ("Roads and transport", "Education"),
    ) -> None:
        """Onboarding in English by buttons, from /start to the main menu."""
        (question,) = await self.send("/start")
        (question,) = await self.press(question, "English")
        (question,) = await self.press(question, neighbourhood)
        for topic in topics:
            await self.press_to_edit(question, topic)
        (question,) = await self.press(question, "Done")
        # The thanks and the main menu come as one message, with the menu's buttons.
        (menu,) = await self.press(question, "I agree")
        assert menu.text == joined(ALL_SET, MAIN_MENU)
        assert menu.callback_data() == [
            "menu:propose",
            "menu:polls",
            "menu:myproposals",
            "menu:proposals",
            "menu:settings",
            "menu:data",
            "menu:mute",
            "menu:help",
        ]


_update_ids = itertools.count(900_000_001)


def text_update(template: JSONDict, text: str) -> JSONDict:
    """A new text-message update of the same resident as ``template`` (a message update)."""
    update = copy.deepcopy(template)
    update["update_id"] = next(_update_ids)
    message = update["message"]
    message["message_id"] = update["update_id"]
    message["text"] = text
    message.pop("entities", None)
    if text.startswith("/"):
        length = len(text.split(" ", 1)[0])
        message["entities"] = [{"offset": 0, "length": length, "type": "bot_command"}]
    return update


# --- the database -------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What the database holds about one Telegram resident."""

    resident_id: int
    language: str
    neighbourhood: str | None
    topics: list[str]
    privacy_accepted: bool
    onboarded: bool
    state: str
    data: dict[str, Any]


async def stored(user_id: int) -> Stored | None:
    """The resident behind a Telegram account, read through storage; None if there is none."""
    identity = await ChannelIdentity.get_or_none(channel="telegram", external_id=str(user_id))
    if identity is None:
        return None
    resident = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    dialog = await DialogState.get_or_none(resident_id=resident.id)
    return Stored(
        resident_id=resident.id,
        language=resident.language,
        neighbourhood=await residents.neighbourhood_key(resident),
        topics=await residents.topic_keys(resident),
        privacy_accepted=resident.privacy_accepted_at is not None,
        onboarded=resident.onboarded_at is not None,
        state=dialog.state if dialog else "",
        # The dialog's own data; the engine's keys (instance nonce, page) left out.
        data={k: v for k, v in dialog.data.items() if k not in (NONCE, PAGE)} if dialog else {},
    )


async def must_be_stored(user_id: int) -> Stored:
    found = await stored(user_id)
    assert found is not None, f"no resident for telegram:{user_id}"
    return found
