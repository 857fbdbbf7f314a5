"""Onboarding: language, neighbourhood, topics, privacy, then the menu."""

from __future__ import annotations

from bot.config import Config
from handlers.dispatcher import Dispatcher
from storage.models import ChannelIdentity, DialogState, Resident, Subscription
from tests.chat import Chat


async def stored(user_id: str = "resident-1") -> Resident | None:
    identity = await ChannelIdentity.get_or_none(channel="webchat", external_id=user_id)
    return await Resident.get(id=identity.resident_id) if identity else None  # type: ignore[attr-defined]


async def test_a_new_resident_is_greeted_in_the_language_of_their_app(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="ru-RU")
    await chat.command("start")
    assert "Демо" in chat.texts()[0] or "язык" in chat.texts()[0]
    assert [b.label for b in chat.last[0].all_buttons()] == ["Latviešu", "English", "Русский"]


async def test_without_a_known_app_language_the_greeting_is_latvian(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    assert "valodu" in chat.texts()[0]


async def test_a_resident_walks_through_onboarding_to_the_main_menu(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    assert chat.said("Which neighbourhood")
    await chat.press("Centre")
    assert chat.said("Which topics")
    await chat.press("Roads and transport")
    assert chat.last[0].replace, "a toggle edits the message in place"
    assert chat.button("✓ Roads and transport")
    await chat.press("Culture and sport")
    assert chat.said("2 topics chosen")
    await chat.press("Done")
    assert chat.said("how we treat your data")
    await chat.press("I agree")
    assert chat.texts()[-1].startswith("Main menu")
    labels = [b.label for b in chat.last[-1].all_buttons()]
    assert labels == ["Settings", "My data", "Stop announcements", "Help"]

    resident = await stored()
    assert resident is not None
    assert resident.language == "en"
    assert resident.onboarded_at is not None and resident.privacy_accepted_at is not None
    await resident.fetch_related("neighbourhood")
    assert resident.neighbourhood.key == "centrs"
    topics = await Subscription.filter(resident=resident).prefetch_related("topic")
    assert sorted(s.topic.key for s in topics) == ["culture", "transport"]
    assert (await DialogState.get(resident=resident)).state == ""


async def test_a_neighbourhood_may_be_typed_by_name_in_any_language(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.text("  pārupe ")
    assert chat.said("Which topics")
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
    assert chat.said("I do not know that neighbourhood")
    assert chat.said("Which neighbourhood")


async def test_skipping_the_neighbourhood_leaves_it_unset(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Skip")
    await chat.press("Done")
    await chat.press("I agree")
    resident = await stored()
    assert resident is not None and resident.neighbourhood_id is None  # type: ignore[attr-defined]


async def test_declining_the_privacy_notice_forgets_the_resident(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press("Centre")
    await chat.press("Done")
    await chat.press("No, thanks")
    assert chat.said("We have not kept anything about you")
    assert await stored() is None
    assert await Resident.all().count() == 0
    await chat.text("hello again")
    assert chat.said("valodu") or chat.said("language"), "a new conversation starts from the top"


async def test_any_first_message_starts_onboarding(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.text("Labdien! Kur var izmest lielgabarīta atkritumus?")
    assert "valodu" in chat.texts()[0]


async def test_menu_buttons_do_nothing_before_onboarding_is_finished(config: Config) -> None:
    chat = Chat(Dispatcher(config))
    await chat.command("start")
    await chat.press("English")
    await chat.press_payload("menu:settings")
    assert chat.said("has expired")
    assert chat.said("Which neighbourhood")
    await chat.command("settings")
    assert chat.said("Which neighbourhood")
