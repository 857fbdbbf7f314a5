"""A resident talking to the dispatcher directly: dialogs tested with no network."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from bot.core.config import Config
from bot.core.messages import Button, Incoming, Kind, Outcome, Reply
from dialogs.engine import NONCE, PAGE
from handlers.dispatcher import Dispatcher
from storage.models import ChannelIdentity, DialogState
from tests.phrases import failed_apologies

_events = itertools.count(1)


@dataclass
class Chat:
    dispatcher: Dispatcher
    user_id: str = "resident-1"
    channel: str = "webchat"
    locale: str = ""
    # An update that crashes into the generic apology fails the test at once, unless the
    # test is about that very apology: no assertion can then pass on the error path.
    may_fail: bool = False
    last: list[Reply] = field(default_factory=list)
    shown: list[Reply] = field(default_factory=list)  # every reply, in order

    async def send(self, kind: Kind, **fields: object) -> list[Reply]:
        event_id = str(fields.pop("event_id", "")) or f"e{next(_events)}"
        incoming = Incoming(
            channel=self.channel,
            user_id=self.user_id,
            event_id=event_id,
            kind=kind,
            locale=self.locale,
            **fields,  # type: ignore[arg-type]
        )
        self.last = (await self.dispatcher.feed(incoming)).replies
        self.shown.extend(self.last)
        if not self.may_fail and failed_apologies() & set(self.texts()):
            raise AssertionError(f"the update {incoming} crashed into the apology: {self.texts()}")
        return self.last

    async def command(self, name: str) -> list[Reply]:
        return await self.send(Kind.COMMAND, command=name, text=f"/{name}")

    async def text(self, text: str) -> list[Reply]:
        return await self.send(Kind.TEXT, text=text)

    def button(self, label: str) -> Button:
        """A button the resident can see now, found by (part of) its label."""
        for reply in reversed(self.shown):
            for button in reply.all_buttons():
                if label in button.label:
                    return button
        raise AssertionError(f"no button {label!r} on screen: {self.texts()}")

    async def press(self, label: str) -> list[Reply]:
        return await self.send(Kind.BUTTON, payload=self.button(label).payload)

    async def send_press(self, label: str, message_id: str) -> list[Reply]:
        """Press a button on the bot message ``message_id`` (as a channel reports it)."""
        payload = self.button(label).payload
        return await self.send(Kind.BUTTON, payload=payload, message_id=message_id)

    async def press_payload(self, payload: str, event_id: str = "") -> list[Reply]:
        return await self.send(Kind.BUTTON, payload=payload, event_id=event_id)

    def button_for(self, state: str, value: str) -> Button:
        """The on-screen button of step ``state`` with ``value``, whatever instance it names."""
        for reply in reversed(self.shown):
            for button in reply.all_buttons():
                tagged, _, got = button.payload.rpartition(":")
                if tagged.partition("~")[0] == state and got == value:
                    return button
        raise AssertionError(f"no button {state}:{value} on screen: {self.texts()}")

    async def choose(self, state: str, value: str, event_id: str = "") -> list[Reply]:
        """Press the button of step ``state`` with ``value`` (a choice by id, whatever the
        label says in the resident's language)."""
        payload = self.button_for(state, value).payload
        return await self.send(Kind.BUTTON, payload=payload, event_id=event_id)

    def texts(self) -> list[str]:
        return [reply.text for reply in self.last]

    def said(self, fragment: str) -> bool:
        """Whether a fragment shows in the last replies; a test asserts ``texts()`` whole."""
        return any(fragment in reply.text for reply in self.last)

    def labels(self, index: int = -1) -> list[list[str]]:
        """The button labels of one of the last replies (the last by default), as rows."""
        return [[button.label for button in row] for row in self.last[index].buttons]

    async def dialog(self) -> tuple[str, dict[str, Any]]:
        """Where this resident's conversation stands in the database: (state, the dialog's
        data); the engine's own keys (the instance's nonce, the page) are in ``stored()``."""
        state, data = await self.stored()
        return state, {key: value for key, value in data.items() if key not in (NONCE, PAGE)}

    async def stored(self) -> tuple[str, dict[str, Any]]:
        """The dialog row as stored: (state, data) with the engine's keys."""
        identity = await ChannelIdentity.get(channel=self.channel, external_id=self.user_id)
        dialog = await DialogState.get(resident_id=identity.resident_id)  # type: ignore[attr-defined]
        return dialog.state, dialog.data

    async def onboard(self, language: str = "en") -> None:
        """Through onboarding by payloads, whatever the labels say in that language."""
        await self.command("start")
        await self.choose("onb:language", language)
        await self.choose("onb:neighbourhood", "centrs")
        await self.choose("onb:topics", "_done")
        await self.choose("onb:privacy", "_yes")


@dataclass
class Scripted:
    """Stands in for the dispatcher: answers each update with the next replies of a script."""

    script: list[list[Reply]]
    config: Config = field(default_factory=Config)

    async def feed(self, incoming: Incoming) -> Outcome:
        return Outcome(self.script.pop(0), "en")
