"""What the dispatcher answers when the chat is opened, when an update fails or repeats, and
when a resident is forgotten."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core.config import Config, LimitsConfig
from bot.core.i18n import translator
from bot.core.messages import Incoming, Kind
from dialogs.context import Ctx
from handlers.commands import router as commands
from handlers.dispatcher import FAILED, Dispatcher
from handlers.router import Router
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident
from tests.chat import Chat

pytestmark = pytest.mark.storage

GREETING_LV = translator("lv").gettext(
    "Hello! I am the residents' assistant of {municipality}. Here you can follow what "
    "happens in your neighbourhood and have your say.\n\nPlease choose your language:",
    municipality="Demo novads",
)


def opening(user_id: str) -> Incoming:
    return Incoming(channel="webchat", user_id=user_id, event_id="", kind=Kind.OPEN)


async def test_opening_the_chat_greets_a_stranger_and_writes_nothing(config: Config) -> None:
    outcome = await Dispatcher(config).feed(opening("stranger"))
    assert [reply.text for reply in outcome.replies] == [GREETING_LV]
    assert [b.payload for b in outcome.replies[0].all_buttons()] == [
        "onb:language:lv",
        "onb:language:en",
        "onb:language:ru",
    ]
    for model in (Resident, ChannelIdentity, DialogState, ProcessedEvent):
        assert await model.all().count() == 0, model
    assert (outcome.language, outcome.forgotten) == ("lv", False)


async def test_the_first_press_on_the_greeting_answers_it(config: Config) -> None:
    dispatcher = Dispatcher(config)
    await dispatcher.feed(opening("resident-1"))
    chat = Chat(dispatcher)
    replies = await chat.press_payload("onb:language:ru")
    assert replies[0].text.startswith("В каком районе Вы живёте")
    assert (await Resident.get()).language == "ru"


async def test_opening_the_chat_is_not_counted_by_the_throttle(config: Config) -> None:
    limits = LimitsConfig(throttle_messages=2, throttle_seconds=600)
    dispatcher = Dispatcher(replace(config, limits=limits))
    chat = Chat(dispatcher)
    await chat.press_payload("onb:language:en")
    for _ in range(5):
        outcome = await dispatcher.feed(opening("resident-1"))
        assert outcome.replies[0].text.startswith("Which neighbourhood"), outcome.replies
    assert (await Resident.get()).throttle_count == 1


async def test_a_failed_update_apologises_in_the_residents_own_language(config: Config) -> None:
    router = Router()

    @router.command("explode", anytime=True)
    async def explode(ctx: Ctx) -> None:
        raise RuntimeError("boom")

    router.include(commands)
    # The web chat tells no locale; the apology is what the test is about.
    chat = Chat(Dispatcher(config, router=router), may_fail=True)
    await chat.onboard("en")
    replies = await chat.command("explode")
    assert [reply.text for reply in replies] == [FAILED]
    # A lone surrogate reaching the database: the same apology, still in English.
    replies = await chat.send(Kind.TEXT, text="hello", event_id="\ud800")
    assert [reply.text for reply in replies] == [FAILED]


async def test_a_duplicate_keeps_the_residents_language(config: Config) -> None:
    dispatcher = Dispatcher(config)
    chat = Chat(dispatcher)
    await chat.onboard("ru")
    incoming = Incoming(
        channel="webchat", user_id="resident-1", event_id="again", kind=Kind.COMMAND
    )
    incoming = replace(incoming, command="help", text="/help")
    assert (await dispatcher.feed(incoming)).replies
    outcome = await dispatcher.feed(incoming)
    assert (outcome.replies, outcome.language) == ([], "ru")


async def test_the_outcome_says_when_the_resident_was_forgotten(config: Config) -> None:
    dispatcher = Dispatcher(config)
    chat = Chat(dispatcher)
    await chat.onboard("en")
    await chat.command("mydata")
    await chat.press("Delete my data")
    incoming = Incoming(
        channel="webchat",
        user_id="resident-1",
        event_id="delete",
        kind=Kind.BUTTON,
        payload=chat.button_for("data:confirm", "_yes").payload,
    )
    outcome = await dispatcher.feed(incoming)
    assert outcome.forgotten is True
    assert outcome.replies[0].text.startswith("Your data has been deleted.")
    assert await Resident.all().count() == 0
