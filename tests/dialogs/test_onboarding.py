"""Onboarding: language, neighbourhood, topics, privacy, then the menu."""

from __future__ import annotations

import pytest

from bot.core.config import Config, demo_municipality
from dialogs.engine import EXPIRED
from handlers.dispatcher import Dispatcher
from storage.models import ChannelIdentity, DialogState, Resident, Subscription
from tests.chat import Chat
from tests.phrases import (
    ALL_SET,
    DECLINED,
    LANGUAGE_QUESTION,
    MAIN_MENU,
    MUNICIPALITY,
    NEIGHBOURHOOD_QUESTION,
    PRIVACY_QUESTION,
    TOPICS_CHOSEN,
    TOPICS_CHOSEN_ONE,
    TOPICS_QUESTION,
    UNKNOWN_NEIGHBOURHOOD,
    ntr,
    tr,
)

LANGUAGE_LABELS = [["Latviešu", "English", "Русский"]]
DEMO = demo_municipality()


async def stored(user_id: str = "resident-1") -> Resident | None:
    identity = await ChannelIdentity.get_or_none(channel="webchat", external_id=user_id)
    return await Resident.get(id=identity.resident_id) if identity else None  # type: ignore[attr-defined]


def greeting(language: str) -> str:
    return tr(language, LANGUAGE_QUESTION, municipality=MUNICIPALITY)


def hood_labels(language: str) -> list[list[str]]:
    names = [hood.name(language) for hood in DEMO.neighbourhoods]
    return [names[0:2], names[2:4], [tr(language, "Skip")]]


def topic_labels(language: str, ticked: tuple[str, ...] = ()) -> list[list[str]]:
    names = [("✓ " if t.id in ticked else "") + t.name(language) for t in DEMO.topics]
    return [names[0:2], names[2:4], names[4:5], [tr(language, "Done")]]


def topics_question(language: str, chosen: tuple[str, ...] = ()) -> str:
    text = tr(language, TOPICS_QUESTION)
    if not chosen:
        return text
    names = ", ".join(t.name(language) for t in DEMO.topics if t.id in chosen)
    n = len(chosen)
    return f"{text}\n\n{ntr(language, TOPICS_CHOSEN_ONE, TOPICS_CHOSEN, n, names=names)}"


async def test_a_new_resident_is_greeted_in_the_language_of_their_app(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="ru-RU")
    await chat.command("start")
    assert chat.texts() == [greeting("ru")]
    assert chat.labels() == LANGUAGE_LABELS
    assert await chat.dialog() == ("onb:language", {})
    resident = await stored()
    assert resident is not None and resident.language == "", "nothing chosen yet"


async def test_without_a_known_app_language_the_greeting_is_latvian(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    assert chat.texts() == [greeting("lv")]
    assert chat.labels() == LANGUAGE_LABELS


@pytest.mark.parametrize(
    ("label", "language"), [("English", "en"), ("Latviešu", "lv"), ("Русский", "ru")]
)
async def test_a_resident_walks_through_onboarding_to_the_main_menu(
    config: Config, label: str, language: str
) -> None:
    def said(message: str) -> str:
        return tr(language, message)

    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press(label)
    assert chat.texts() == [said(NEIGHBOURHOOD_QUESTION)]
    assert chat.labels() == hood_labels(language)
    assert await chat.dialog() == ("onb:neighbourhood", {})

    await chat.press(DEMO.neighbourhoods[0].name(language))
    assert chat.texts() == [topics_question(language)]
    assert chat.labels() == topic_labels(language)
    assert await chat.dialog() == ("onb:topics", {"neighbourhood": "centrs"})

    await chat.press(DEMO.topics[0].name(language))
    assert chat.texts() == [topics_question(language, ("transport",))]
    assert chat.last[0].replace, "a toggle edits the message in place"
    assert chat.labels() == topic_labels(language, ("transport",))
    await chat.press(DEMO.topics[3].name(language))
    assert chat.texts() == [topics_question(language, ("transport", "culture"))]
    assert chat.labels() == topic_labels(language, ("transport", "culture"))
    assert await chat.dialog() == (
        "onb:topics",
        {"neighbourhood": "centrs", "topics": ["transport", "culture"]},
    )

    await chat.press(said("Done"))
    assert chat.texts() == [said(PRIVACY_QUESTION)]
    assert chat.labels() == [[said("I agree"), said("No, thanks")]]
    assert await chat.dialog() == (
        "onb:privacy",
        {"neighbourhood": "centrs", "topics": ["transport", "culture"]},
    )

    await chat.press(said("I agree"))
    assert chat.texts() == [said(ALL_SET), said(MAIN_MENU)]
    assert chat.labels() == [
        [said("Idea or problem"), said("Polls")],
        [said("My proposals"), said("Proposals nearby")],
        [said("Settings"), said("My data")],
        [said("Stop announcements"), said("Help")],
    ]

    resident = await stored()
    assert resident is not None
    assert resident.language == language
    assert resident.onboarded_at is not None and resident.privacy_accepted_at is not None
    await resident.fetch_related("neighbourhood")
    assert resident.neighbourhood.key == "centrs"
    topics = await Subscription.filter(resident=resident).prefetch_related("topic")
    assert sorted(s.topic.key for s in topics) == ["culture", "transport"]
    assert await chat.dialog() == ("", {})


async def test_a_neighbourhood_may_be_typed_by_name_in_any_language(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.text("  pārupe ")
    assert chat.texts() == [topics_question("en")]
    assert await chat.dialog() == ("onb:topics", {"neighbourhood": "parupe"})
    await chat.press("Done")
    await chat.press("I agree")
    resident = await stored()
    assert resident is not None
    await resident.fetch_related("neighbourhood")
    assert resident.neighbourhood.key == "parupe"


async def test_an_unknown_typed_neighbourhood_asks_again(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.text("Atlantis")
    assert chat.texts() == [tr("en", UNKNOWN_NEIGHBOURHOOD), tr("en", NEIGHBOURHOOD_QUESTION)]
    assert chat.labels() == hood_labels("en")
    assert await chat.dialog() == ("onb:neighbourhood", {})


async def test_skipping_the_neighbourhood_leaves_it_unset(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Skip")
    assert chat.texts() == [topics_question("en")]
    assert await chat.dialog() == ("onb:topics", {"neighbourhood": None})
    await chat.press("Done")
    await chat.press("I agree")
    resident = await stored()
    assert resident is not None and resident.onboarded_at is not None
    assert resident.neighbourhood_id is None  # type: ignore[attr-defined]


async def test_declining_the_privacy_notice_forgets_the_resident(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Centre")
    await chat.press("Done")
    await chat.press("No, thanks")
    assert chat.texts() == [tr("en", DECLINED)]
    assert chat.labels() == []
    assert await stored() is None
    assert await Resident.all().count() == 0
    assert await DialogState.all().count() == 0
    # A new conversation starts from the top, and in Latvian: the English choice went too.
    await chat.text("hello again")
    assert chat.texts() == [greeting("lv")]
    assert await chat.dialog() == ("onb:language", {})


async def test_any_first_message_starts_onboarding(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.text("Labdien! Kur var izmest lielgabarīta atkritumus?")
    assert chat.texts() == [greeting("lv")]
    assert chat.labels() == LANGUAGE_LABELS
    assert await chat.dialog() == ("onb:language", {})


async def test_menu_buttons_do_nothing_before_onboarding_is_finished(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press_payload("menu:settings")
    assert chat.texts() == [tr("en", EXPIRED), tr("en", NEIGHBOURHOOD_QUESTION)]
    assert chat.labels() == hood_labels("en")
    await chat.command("settings")
    assert chat.texts() == [tr("en", NEIGHBOURHOOD_QUESTION)]
    assert chat.labels() == hood_labels("en")
    assert await chat.dialog() == ("onb:neighbourhood", {})
