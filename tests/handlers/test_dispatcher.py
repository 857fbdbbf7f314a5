"""The middlewares and routing around every update."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config, LimitsConfig
from bot.messages import Incoming, Kind
from dialogs.context import Ctx
from handlers.commands import router as commands
from handlers.dispatcher import Dispatcher
from handlers.router import Router
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident, Subscription
from tests.chat import Chat


async def state_of(user_id: str = "resident-1") -> DialogState:
    identity = await ChannelIdentity.get(channel="webchat", external_id=user_id)
    return await DialogState.get(resident_id=identity.resident_id)  # type: ignore[attr-defined]


async def test_a_duplicate_delivery_has_one_effect(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    first = await chat.press_payload("onb:language:en", event_id="update-7")
    again = await chat.press_payload("onb:language:en", event_id="update-7")
    assert first and again == []
    assert await ProcessedEvent.filter(event_id="update-7").count() == 1
    assert (await state_of()).state == "onb:neighbourhood"


async def test_a_stale_button_says_it_has_expired_and_changes_nothing(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Centre")
    before = await state_of()
    await chat.press_payload("onb:language:ru")
    assert chat.said("has expired")
    assert chat.said("Which topics"), "the current question is asked again"
    after = await state_of()
    assert (after.state, after.data) == (before.state, before.data)
    resident = await Resident.get(id=after.resident_id)  # type: ignore[attr-defined]
    assert resident.language == "en"


async def test_a_forged_or_unknown_payload_is_answered_plainly(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    for payload in ("onb:privacy:_yes", "nonsense", "set:home:reboot", "lang:xx", "x" * 64):
        replies = await chat.press_payload(payload)
        assert replies, payload
        assert all("Traceback" not in r.text for r in replies)
    assert chat.said("Main menu") or chat.said("Your settings")


async def test_a_step_renamed_by_a_deploy_restarts_politely(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    state = await state_of()
    state.state, state.data = "set:colour", {"old": True}
    await state.save()
    await chat.text("blue")
    assert chat.said("I lost track of our conversation")
    assert chat.said("Main menu")
    assert (await state_of()).state == ""


async def test_bad_input_gets_an_answer_and_the_question_again(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    for kind, fields, answer in [
        (Kind.TEXT, {"text": "   "}, "Your message was empty"),
        (Kind.TEXT, {"text": "x" * 10_000}, "at most 2000 characters"),
        (Kind.TEXT, {"text": "😀🎉👍"}, "I do not know that neighbourhood"),
        (Kind.OTHER, {}, "I can only read text and buttons here"),
        (Kind.PHOTO, {"photo_id": "AgAD"}, "I can only read text and buttons here"),
        (Kind.COMMAND, {"command": "nope"}, "I do not know that command"),
    ]:
        await chat.send(kind, **fields)
        assert chat.said(answer), (kind, chat.texts())
        assert chat.said("Which neighbourhood"), "the open question is repeated"
    assert (await state_of()).state == "onb:neighbourhood"


async def test_a_resident_who_floods_is_asked_once_to_slow_down(config: Config) -> None:
    limits = LimitsConfig(throttle_messages=3, throttle_seconds=60)
    chat = Chat(Dispatcher(replace(config, limits=limits)), locale="en")
    for _ in range(3):
        assert await chat.text("hello")
    warned = await chat.text("hello")
    assert len(warned) == 1 and "faster than I can read" in warned[0].text
    assert await chat.text("hello") == []
    identity = await ChannelIdentity.get(external_id="resident-1")
    resident = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    resident.throttle_window_start = datetime.now(UTC) - timedelta(minutes=2)
    await resident.save()
    assert await chat.text("hello"), "a new window lets the resident talk again"


async def test_a_failing_handler_apologises_and_saves_nothing_half_done(config: Config) -> None:
    router = Router()

    @router.command("explode", anytime=True)
    async def explode(ctx: Ctx) -> None:
        ctx.set_state("onb:topics", {"topics": ["transport"]})
        raise RuntimeError("boom")

    router.include(commands)
    chat = Chat(Dispatcher(config, router=router), locale="en")
    await chat.command("start")
    replies = await chat.command("explode")
    assert len(replies) == 1 and "something went wrong" in replies[0].text
    assert "boom" not in replies[0].text
    assert (await state_of()).state == "onb:language"


async def test_a_resident_cannot_reach_a_staff_command_but_staff_can(config: Config) -> None:
    from storage import staff

    router = Router()

    @router.command("broadcast", roles={"admin", "communications"})
    async def broadcast(ctx: Ctx) -> None:
        ctx.answer("broadcast composer")

    router.include(commands)
    dispatcher = Dispatcher(config, router=router)
    resident = Chat(dispatcher, user_id="resident-1")
    await resident.onboard()
    await resident.command("broadcast")
    assert resident.said("I do not know that command")
    assert not resident.said("broadcast composer")

    await staff.grant("webchat", "officer-1", "communications", actor="test")
    officer = Chat(dispatcher, user_id="officer-1")
    await officer.onboard()
    await officer.command("broadcast")
    assert officer.said("broadcast composer")


async def test_one_residents_updates_are_handled_one_after_another_even_on_two_workers(
    config: Config,
) -> None:
    """Two dispatchers stand for two workers; toggles of one topic must never be lost."""
    workers = [Dispatcher(config), Dispatcher(config)]
    chat = Chat(workers[0])
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    toggle = "set:topics:transport"
    outcomes = await asyncio.gather(
        *(
            workers[i % 2].feed(
                Incoming("webchat", "resident-1", f"toggle-{i}", Kind.BUTTON, payload=toggle)
            )
            for i in range(10)
        )
    )
    answers = [reply.text for outcome in outcomes for reply in outcome.replies]
    assert not [text for text in answers if "something went wrong" in text]
    identity = await ChannelIdentity.get(external_id="resident-1")
    count = await Subscription.filter(
        resident_id=identity.resident_id, topic__key="transport"
    ).count()  # type: ignore[attr-defined]
    assert count == 0, "ten toggles of one topic leave it as it was"


@pytest.mark.parametrize("command", ["help", "language", "cancel", "menu", "mydata"])
async def test_global_commands_work_in_the_middle_of_a_dialog(config: Config, command: str) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    replies = await chat.command(command)
    assert replies and all(r.text for r in replies)
