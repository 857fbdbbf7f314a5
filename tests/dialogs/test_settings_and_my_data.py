"""Settings after onboarding, and a resident's own data: seeing it, deleting it."""

from __future__ import annotations

from bot.config import Config
from handlers.dispatcher import Dispatcher
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident, Subscription
from tests.chat import Chat


async def test_settings_change_language_neighbourhood_and_topics(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("settings")
    assert chat.said("Language: English") and chat.said("Neighbourhood: Centre")
    await chat.press("Neighbourhood")
    await chat.press("Jaunciems")
    assert chat.said("Neighbourhood: Jaunciems")
    await chat.press("Topics")
    await chat.press("Education")
    assert chat.last[0].replace and chat.button("✓ Education")
    await chat.press("Done")
    assert chat.said("Topics: Education")
    await chat.press("Language")
    await chat.press("Latviešu")
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
    await chat.press_payload("lang:en")
    assert chat.said("I will write to you in English")
    assert chat.said("Which neighbourhood")


async def test_cancel_leaves_a_dialog_for_the_menu(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("settings")
    await chat.command("cancel")
    assert chat.said("Cancelled.") and chat.said("Main menu")
    await chat.command("cancel")
    assert chat.said("There was nothing to cancel")


async def test_my_data_shows_everything_held(config: Config) -> None:
    chat = Chat(Dispatcher(config), user_id="anna")
    await chat.onboard("en")
    await chat.press("My data")
    text = chat.texts()[0]
    for fragment in (
        "Language: English",
        "Neighbourhood: Centre",
        "Topics: none",
        "Web chat anna",
        "Privacy notice accepted: 20",
    ):
        assert fragment in text, (fragment, text)


async def test_deleting_my_data_removes_identity_choices_and_conversation(config: Config) -> None:
    chat = Chat(Dispatcher(config), user_id="anna")
    await chat.onboard("en")
    await chat.command("settings")
    await chat.press("Topics")
    await chat.press("Culture and sport")
    await chat.command("mydata")
    await chat.press("Delete my data")
    assert chat.said("cannot be undone")
    await chat.press("Yes, delete")
    assert chat.said("Your data has been deleted")
    assert await Resident.all().count() == 0
    assert await ChannelIdentity.all().count() == 0
    assert await Subscription.all().count() == 0
    assert await DialogState.all().count() == 0
    assert await ProcessedEvent.all().count() > 0, "event ids hold no personal data and stay"
    await chat.text("hello")
    assert chat.said("Please choose your language") or chat.said("valodu")


async def test_keeping_my_data_changes_nothing(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.onboard("en")
    await chat.command("mydata")
    await chat.press("Delete my data")
    await chat.press("No, keep it")
    assert chat.said("Nothing was deleted") and chat.said("Main menu")
    assert await Resident.all().count() == 1
