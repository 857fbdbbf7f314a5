"""The middlewares and routing around every update."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.config import Config, LimitsConfig
from bot.core.messages import Incoming, Kind
from dialogs.context import Ctx
from dialogs.engine import CANNOT_READ, EXPIRED, NONCE, RESTARTED
from handlers.commands import router as commands
from handlers.dispatcher import FAILED, UNKNOWN_COMMAND, Dispatcher
from handlers.router import Router
from storage.models import (
    ChannelIdentity,
    DialogState,
    ProcessedEvent,
    Resident,
    Subscription,
)
from tests.chat import Chat
from tests.dialogs.test_settings_and_my_data import overview
from tests.phrases import (
    CANCELLED,
    CHOOSE_LANGUAGE,
    EMPTY,
    HELP,
    LANGUAGE_BUTTON_EXPIRED,
    LANGUAGE_QUESTION,
    LANGUAGE_SWITCHED,
    MAIN_MENU,
    MUNICIPALITY,
    NEIGHBOURHOOD_QUESTION,
    PLEASE_USE_BUTTONS,
    SETTINGS_TOPICS,
    TOPICS_QUESTION,
    UNKNOWN_NEIGHBOURHOOD,
    settings_home,
    throttled,
    too_long,
    tr,
)

MENU_LABELS = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Stop announcements", "Help"],
]
SETTINGS_TOPIC_LABELS = [
    ["Roads and transport", "Environment and parks"],
    ["Education", "Culture and sport"],
    ["Social care"],
    ["Done"],
]


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


async def language_of(chat: Chat) -> str:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return (await Resident.get(id=identity.resident_id)).language  # type: ignore[attr-defined]


async def test_a_duplicate_delivery_has_one_effect(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    first = await chat.press_payload("onb:language:en", event_id="update-7")
    again = await chat.press_payload("onb:language:en", event_id="update-7")
    assert [reply.text for reply in first] == [en(NEIGHBOURHOOD_QUESTION)]
    assert again == []
    assert await ProcessedEvent.filter(event_id="update-7").count() == 1
    assert await chat.dialog() == ("onb:neighbourhood", {})


async def test_a_stale_button_says_it_has_expired_and_changes_nothing(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Centre")
    question = chat.last[0]
    before = await chat.dialog()
    assert before == ("onb:topics", {"neighbourhood": "centrs"})
    await chat.press_payload("onb:language:ru")
    assert chat.texts() == [en(EXPIRED), en(TOPICS_QUESTION)], "the current question again"
    assert chat.last[1].buttons == question.buttons
    assert await chat.dialog() == before
    assert await language_of(chat) == "en"


@pytest.mark.parametrize("where", ["the menu", "the middle of settings"])
@pytest.mark.parametrize(
    ("payload", "notice"),
    [
        ("onb:privacy:_yes", EXPIRED),  # a step of another dialog
        ("set:home:reboot", EXPIRED),  # a step that is not the current one
        # the current step and instance, a value it does not know
        ("set:topics~{nonce}:no-such-topic", None),
        ("set:topics:transport", EXPIRED),  # the current step, but no instance named
        ("set:topics~AAAAAA:transport", EXPIRED),  # the current step of another instance
        ("nonsense", EXPIRED),
        ("lang:xx", LANGUAGE_BUTTON_EXPIRED),
        ("x" * 64, EXPIRED),
    ],
)
async def test_a_forged_or_unknown_payload_is_answered_plainly_and_the_dialog_resumes(
    config: Config, where: str, payload: str, notice: str | None
) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    if where == "the menu":
        expected_state: tuple[str, dict[str, object]] = ("", {})
        question, labels = en(MAIN_MENU), MENU_LABELS
    else:
        await chat.command("settings")
        await chat.press("Topics")
        expected_state = ("set:topics", {})
        question, labels = en(SETTINGS_TOPICS), SETTINGS_TOPIC_LABELS
    if notice is None:  # only a dialog's own step can tell a value it does not know
        notice = EXPIRED if where == "the menu" else PLEASE_USE_BUTTONS

    await chat.press_payload(payload.format(nonce=(await chat.stored())[1].get(NONCE, "")))
    assert chat.texts() == [en(notice), question]
    assert chat.labels() == labels
    assert await chat.dialog() == expected_state
    assert await Subscription.all().count() == 0

    # And the question shown works: the conversation goes on from there.
    if where == "the menu":
        await chat.press("Settings")
        assert chat.texts() == [settings_home("en", "English", "Centre")]
        assert await chat.dialog() == ("set:home", {})
    else:
        await chat.press("Education")
        assert chat.texts() == [en(SETTINGS_TOPICS)]
        assert chat.labels()[1] == ["✓ Education", "Culture and sport"]
        assert await chat.dialog() == ("set:topics", {})


async def test_a_step_renamed_by_a_deploy_restarts_politely(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    identity = await ChannelIdentity.get(external_id=chat.user_id)
    await DialogState.filter(resident_id=identity.resident_id).update(  # type: ignore[attr-defined]
        state="set:colour", data={"old": True}
    )
    await chat.text("blue")
    assert chat.texts() == [en(RESTARTED), en(MAIN_MENU)]
    assert chat.labels() == MENU_LABELS
    assert await chat.dialog() == ("", {})


async def test_bad_input_gets_an_answer_and_the_question_again(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    question = chat.last[0]
    assert question.text == en(NEIGHBOURHOOD_QUESTION)
    for kind, fields, answer in [
        (Kind.TEXT, {"text": "   "}, en(EMPTY)),
        (Kind.TEXT, {"text": "x" * 10_000}, too_long("en")),
        (Kind.TEXT, {"text": "😀🎉👍"}, en(UNKNOWN_NEIGHBOURHOOD)),
        (Kind.OTHER, {}, en(CANNOT_READ)),
        (Kind.PHOTO, {"photo_id": "AgAD"}, en(CANNOT_READ)),
        (Kind.COMMAND, {"command": "nope"}, en(UNKNOWN_COMMAND)),
    ]:
        await chat.send(kind, **fields)
        assert chat.texts() == [answer, question.text], (kind, fields)
        assert chat.last[1].buttons == question.buttons, "the open question is repeated"
        assert await chat.dialog() == ("onb:neighbourhood", {})
    await chat.press("Centre")
    assert chat.texts() == [en(TOPICS_QUESTION)], "and it can still be answered"


async def test_a_resident_who_floods_is_asked_once_to_slow_down(config: Config) -> None:
    limits = LimitsConfig(throttle_messages=3, throttle_seconds=60)
    chat = Chat(Dispatcher(replace(config, limits=limits)), locale="en")
    asked = en(LANGUAGE_QUESTION, municipality=MUNICIPALITY)
    assert [r.text for r in await chat.text("hello")] == [asked]
    for _ in range(2):
        assert [r.text for r in await chat.text("hello")] == [en(PLEASE_USE_BUTTONS), asked]
    sent = datetime.now(UTC)
    (notice,) = [r.text for r in await chat.text("hello")]
    answered = datetime.now(UTC)
    identity = await ChannelIdentity.get(external_id="resident-1")
    resident = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    assert resident.throttle_window_start is not None
    assert notice in throttled("en", resident.throttle_window_start, 60, sent, answered)
    assert await chat.text("hello") == []
    assert await chat.dialog() == ("onb:language", {})
    resident.throttle_window_start = datetime.now(UTC) - timedelta(minutes=2)
    await resident.save()
    replies = await chat.text("hello")
    assert [r.text for r in replies] == [en(PLEASE_USE_BUTTONS), asked], "a new window"


async def test_a_failing_handler_apologises_and_saves_nothing_half_done(config: Config) -> None:
    router = Router()

    @router.command("explode", anytime=True)
    async def explode(ctx: Ctx) -> None:
        ctx.set_state("onb:topics", {"topics": ["transport"]})
        raise RuntimeError("boom")

    router.include(commands)
    chat = Chat(Dispatcher(config, router=router), locale="en", may_fail=True)
    await chat.command("start")
    replies = await chat.command("explode")
    assert [reply.text for reply in replies] == [en(FAILED)]
    assert await chat.dialog() == ("onb:language", {})
    # Nothing is left broken: the next update carries on from the saved step.
    await chat.press("English")
    assert chat.texts() == [en(NEIGHBOURHOOD_QUESTION)]
    assert await chat.dialog() == ("onb:neighbourhood", {})


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
    assert resident.texts() == [en(UNKNOWN_COMMAND), en(MAIN_MENU)]

    await staff.grant("webchat", "officer-1", "communications", actor="test")
    officer = Chat(dispatcher, user_id="officer-1")
    await officer.onboard()
    await officer.command("broadcast")
    assert officer.texts() == ["broadcast composer"]


async def test_one_residents_updates_are_handled_one_after_another_even_on_two_workers(
    config: Config,
) -> None:
    """Two dispatchers stand for two workers; toggles of one topic must never be lost."""
    workers = [Dispatcher(config), Dispatcher(config)]
    chat = Chat(workers[0])
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    toggle = chat.button_for("set:topics", "transport").payload
    outcomes = await asyncio.gather(
        *(
            workers[i % 2].feed(
                Incoming("webchat", "resident-1", f"toggle-{i}", Kind.BUTTON, payload=toggle)
            )
            for i in range(10)
        )
    )
    # Each toggle answered by the topics question, edited in place: half of them with the
    # topic ticked, as ten toggles one after another leave it.
    for outcome in outcomes:
        assert [(r.text, r.replace) for r in outcome.replies] == [(en(SETTINGS_TOPICS), True)]
    ticked = [o.replies[0].buttons[0][0].label == "✓ Roads and transport" for o in outcomes]
    assert ticked.count(True) == 5
    identity = await ChannelIdentity.get(external_id="resident-1")
    count = await Subscription.filter(
        resident_id=identity.resident_id, topic__key="transport"
    ).count()  # type: ignore[attr-defined]
    assert count == 0, "ten toggles of one topic leave it as it was"
    assert await chat.dialog() == ("set:topics", {})


async def test_help_in_the_middle_of_a_dialog_answers_and_the_dialog_resumes(
    config: Config,
) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    await chat.command("help")
    assert chat.texts() == [en(HELP, municipality=MUNICIPALITY), en(SETTINGS_TOPICS)]
    assert chat.labels() == SETTINGS_TOPIC_LABELS
    assert await chat.dialog() == ("set:topics", {})
    await chat.press("Education")
    assert chat.texts() == [en(SETTINGS_TOPICS)]
    assert await Subscription.filter(topic__key="education").count() == 1


async def test_language_in_the_middle_of_a_dialog_switches_and_the_dialog_resumes(
    config: Config,
) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    await chat.command("language")
    assert chat.texts() == [en(CHOOSE_LANGUAGE)]
    assert [b.payload for b in chat.last[0].all_buttons()] == ["lang:lv", "lang:en", "lang:ru"]
    assert await chat.dialog() == ("set:topics", {})
    await chat.press("Русский")
    assert chat.texts() == [tr("ru", LANGUAGE_SWITCHED), tr("ru", SETTINGS_TOPICS)]
    assert chat.labels()[0] == ["Дороги и транспорт", "Среда и парки"]
    assert await chat.dialog() == ("set:topics", {})
    assert await language_of(chat) == "ru"


@pytest.mark.parametrize("command", ["cancel", "menu"])
async def test_cancel_and_menu_in_the_middle_of_a_dialog_leave_it_for_the_menu(
    config: Config, command: str
) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    await chat.command(command)
    menu = [en(MAIN_MENU)]
    assert chat.texts() == ([en(CANCELLED), *menu] if command == "cancel" else menu)
    assert chat.labels() == MENU_LABELS
    assert await chat.dialog() == ("", {})


async def test_mydata_in_the_middle_of_a_dialog_shows_the_data(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("settings")
    await chat.press("Topics")
    await chat.command("mydata")
    assert chat.texts() == [await overview(chat, config, "en", "English", "Centre")]
    assert chat.labels() == [["Delete my data"], ["Back to the menu"]]
    assert await chat.dialog() == ("data:overview", {})


async def test_a_language_button_pressed_while_no_dialog_is_open_shows_the_menu(
    config: Config,
) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard()
    await chat.command("language")
    await chat.press("Latviešu")
    assert chat.texts() == [tr("lv", LANGUAGE_SWITCHED), tr("lv", MAIN_MENU)]
    assert await chat.dialog() == ("", {})
    assert await language_of(chat) == "lv"
