"""Settings after onboarding, and a resident's own data: seeing it, deleting it."""

from __future__ import annotations

from bot.core.config import Config
from handlers.dispatcher import Dispatcher
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident, Subscription
from tests.chat import Chat
from tests.phrases import (
    CANCELLED,
    CONTRIBUTIONS_STAY,
    DATA_DELETED,
    DELETE_QUESTION,
    LANGUAGE_QUESTION,
    LANGUAGE_SWITCHED,
    MAIN_MENU,
    MUNICIPALITY,
    NEIGHBOURHOOD_QUESTION,
    NOTHING_DELETED,
    NOTHING_TO_CANCEL,
    SETTINGS_NEIGHBOURHOOD,
    SETTINGS_TOPICS,
    my_data_overview,
    settings_home,
    tr,
)

MENU_LABELS = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Stop announcements", "Help"],
]


async def overview(chat: Chat, config: Config, *choices: str) -> str:
    """/mydata of this web-chat resident: language, its name, neighbourhood, topics."""
    return await my_data_overview("webchat", chat.user_id, config.municipality.zone, *choices)


async def test_settings_change_language_neighbourhood_and_topics(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("settings")
    assert chat.texts() == [settings_home("en", "English", "Centre")]
    assert chat.labels() == [["Language", "Neighbourhood"], ["Topics"], ["Back to the menu"]]
    assert await chat.dialog() == ("set:home", {})

    await chat.press("Neighbourhood")
    assert chat.texts() == [tr("en", SETTINGS_NEIGHBOURHOOD)]
    assert await chat.dialog() == ("set:neighbourhood", {})
    await chat.press("Jaunciems")
    assert chat.texts() == [settings_home("en", "English", "Jaunciems")]
    assert await chat.dialog() == ("set:home", {})

    await chat.press("Topics")
    assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
    await chat.press("Education")
    assert chat.texts() == [tr("en", SETTINGS_TOPICS)]
    assert chat.last[0].replace and chat.labels()[1] == ["✓ Education", "Culture and sport"]
    assert await chat.dialog() == ("set:topics", {})
    await chat.press("Done")
    assert chat.texts() == [settings_home("en", "English", "Jaunciems", "Education")]

    await chat.press("Language")
    await chat.press("Latviešu")
    assert chat.texts() == [
        tr("lv", LANGUAGE_SWITCHED),
        settings_home("lv", "Latviešu", "Jaunciems", "Izglītība"),
    ]
    assert await chat.dialog() == ("set:home", {})
    resident = await Resident.get(language="lv")
    await resident.fetch_related("neighbourhood")
    assert resident.neighbourhood.key == "jaunciems"
    keys = [
        s.topic.key for s in await Subscription.filter(resident=resident).prefetch_related("topic")
    ]
    assert keys == ["education"]


async def test_the_language_command_switches_and_asks_the_open_question_again(
    config: Config,
) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.command("start")
    await chat.press("English")
    await chat.command("language")
    await chat.press_payload("lang:ru")
    assert chat.texts() == [tr("ru", LANGUAGE_SWITCHED), tr("ru", NEIGHBOURHOOD_QUESTION)]
    assert chat.labels()[0] == ["Центр", "Яунциемс"]
    assert await chat.dialog() == ("onb:neighbourhood", {})
    assert (await Resident.get()).language == "ru"


async def test_cancel_leaves_a_dialog_for_the_menu(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("settings")
    await chat.command("cancel")
    assert chat.texts() == [tr("en", CANCELLED), tr("en", MAIN_MENU)]
    assert chat.labels() == MENU_LABELS
    assert await chat.dialog() == ("", {})
    await chat.command("cancel")
    assert chat.texts() == [tr("en", NOTHING_TO_CANCEL), tr("en", MAIN_MENU)]


async def test_my_data_shows_everything_held(config: Config) -> None:
    chat = Chat(Dispatcher(config), user_id="anna")
    await chat.onboard("en")
    await chat.press("My data")
    assert chat.texts() == [await overview(chat, config, "en", "English", "Centre")]
    assert chat.labels() == [["Delete my data"], ["Back to the menu"]]
    assert await chat.dialog() == ("data:overview", {})
    resident = await Resident.get()
    assert resident.privacy_accepted_at is not None and resident.last_seen_at is not None


async def test_my_data_is_shown_in_the_residents_language(config: Config) -> None:
    chat = Chat(Dispatcher(config), user_id="anna")
    await chat.onboard("ru")
    await chat.command("settings")
    await chat.choose("set:home", "topics")
    await chat.choose("set:topics", "culture")
    await chat.command("mydata")
    expected = await overview(chat, config, "ru", "Русский", "Центр", "Культура и спорт")
    assert chat.texts() == [expected]


async def test_deleting_my_data_removes_identity_choices_and_conversation(config: Config) -> None:
    chat = Chat(Dispatcher(config), user_id="anna")
    await chat.onboard("en")
    await chat.command("settings")
    await chat.press("Topics")
    await chat.press("Culture and sport")
    await chat.command("mydata")
    await chat.press("Delete my data")
    assert chat.texts() == [f"{tr('en', DELETE_QUESTION)}\n\n{tr('en', CONTRIBUTIONS_STAY)}"]
    assert chat.labels() == [["Yes, delete", "No, keep it"]]
    await chat.press("Yes, delete")
    assert chat.texts() == [tr("en", DATA_DELETED)]
    assert await Resident.all().count() == 0
    assert await ChannelIdentity.all().count() == 0
    assert await Subscription.all().count() == 0
    assert await DialogState.all().count() == 0
    assert await ProcessedEvent.all().count() == 11, "event ids hold no personal data and stay"
    # Writing again starts afresh, in Latvian: the English choice was deleted too.
    await chat.text("hello")
    assert chat.texts() == [tr("lv", LANGUAGE_QUESTION, municipality=MUNICIPALITY)]
    assert await chat.dialog() == ("onb:language", {})


async def test_keeping_my_data_changes_nothing(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("mydata")
    await chat.press("Delete my data")
    await chat.press("No, keep it")
    assert chat.texts() == [tr("en", NOTHING_DELETED), tr("en", MAIN_MENU)]
    assert chat.labels() == MENU_LABELS
    assert await chat.dialog() == ("", {})
    assert await Resident.all().count() == 1
