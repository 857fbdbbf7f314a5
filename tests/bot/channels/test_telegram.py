"""The Telegram channel end to end: the whole bot against a local Bot API over real HTTP.

Each test starts the bot as ``iesaiste run`` would (``start_bot``: environment variables, an
empty database, SQLite then PostgreSQL) and points it at ``BotApiStandIn`` with
``IESAISTE_TELEGRAM_API_URL``. The test plays the residents through the stand-in (texts,
button presses, stickers, photos, redeliveries) and checks both what they see and what the
database holds afterwards.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.app import Runtime
from bot.channels.telegram import (
    ANSWER_ATTEMPTS,
    LIMITS,
    SECRET_HEADER,
    WEBHOOK_PATH,
    TelegramChannel,
)
from bot.core import logs
from bot.core.channel import RateLimited, RecipientBlocked, split_text, utf16_length
from bot.core.config import Config, TelegramConfig
from bot.core.messages import Button, CommandMenu, Reply
from dialogs.engine import CANNOT_READ, EXPIRED, USE_BUTTONS
from handlers.dispatcher import UNKNOWN_COMMAND, Dispatcher
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident, Subscription
from tests.bot.channels.telegram_helpers import (
    WEBHOOK_SECRET,
    Chat,
    assert_no_failure,
    eventually,
    joined,
    labels,
    must_be_stored,
    stored,
    telegram_env,
    text_update,
)
from tests.chat import Scripted
from tests.conftest import RuntimeFactory, free_port
from tests.phrases import (
    ALL_SET,
    CANCELLED,
    CHOOSE_LANGUAGE,
    DATA_DELETED,
    DECLINED,
    DELETE_CONFIRMATION,
    EMPTY,
    HELP,
    HELP_FIRST_LINE,
    LANGUAGE_QUESTION,
    LANGUAGE_SWITCHED,
    MAIN_MENU,
    MUNICIPALITY,
    NEIGHBOURHOOD_QUESTION,
    NOTHING_DELETED,
    PLEASE_USE_BUTTONS,
    PRIVACY_QUESTION,
    SETTINGS_NEIGHBOURHOOD,
    SETTINGS_TOPICS,
    STOPPED,
    TOPICS_QUESTION,
    UNKNOWN_NEIGHBOURHOOD,
    my_data_overview,
    settings_home,
    too_long,
    tr,
)
from tests.standins.telegram_api import BotApiStandIn, BotMessage, JSONDict

ANNA = 1001  # her Telegram app is in English
JANIS = 1002  # his is in Latvian
LANGUAGE_BUTTONS = [["Latviešu", "English", "Русский"]]
HOODS_EN = ["Centre", "Jaunciems", "Across the river", "Rural parish", "Skip"]
HOODS_RU = ["Центр", "Яунциемс", "Заречье", "Сельская волость"]
TOPICS_EN = [
    "Roads and transport",
    "Environment and parks",
    "Education",
    "Culture and sport",
    "Social care",
    "Done",
]
MENU_BUTTONS = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Stop announcements", "Help"],
]
MENU_DESCRIPTIONS = [
    "Main menu",
    "Submit an idea or report a problem",
    "Your proposals and those you follow",
    "Recent proposals of a neighbourhood",
    "Open polls and your answers",
    "Language, neighbourhood and topics",
    "Change the language",
    "See or delete your data",
    "Stop announcements",
    "Stop what we are doing",
    "Help",
]
RIGA = ZoneInfo("Europe/Riga")  # the demo municipality's zone

storage = pytest.mark.storage


# --- fixtures ---------------------------------------------------------------
@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna", language_code="en")
        stand_in.add_user(JANIS, "Jānis", language_code="lv")
        yield stand_in


@pytest.fixture
async def bot(api: BotApiStandIn, start_bot: RuntimeFactory) -> AsyncIterator[Runtime]:
    """The bot in polling mode (the default). Set up after ``api``, so stopped before it."""
    runtime = await start_bot(**telegram_env(api))
    yield runtime
    await runtime.stop()


@pytest.fixture
def anna(api: BotApiStandIn, bot: Runtime) -> Chat:
    return Chat(api, ANNA)


@pytest.fixture
def janis(api: BotApiStandIn, bot: Runtime) -> Chat:
    return Chat(api, JANIS)


def language_question(language: str) -> str:
    return tr(language, LANGUAGE_QUESTION, municipality=MUNICIPALITY)


def assert_asks_again(repeated: BotMessage, original: BotMessage, notice: str = "") -> None:
    """The same question with the same buttons, sent anew at the bottom of the chat.

    With a ``notice`` (why the answer did not fit), the notice and the question come as
    one message: the notice, a blank line, then the question, with the question's buttons.
    """
    assert repeated.message_id != original.message_id
    assert repeated.text == (joined(notice, original.text or "") if notice else original.text)
    assert repeated.button_texts() == original.button_texts()
    assert repeated.callback_data() == original.callback_data()


# --- 1. onboarding ----------------------------------------------------------
@storage
async def test_a_resident_is_onboarded_by_commands_and_buttons(
    api: BotApiStandIn, anna: Chat
) -> None:
    (question,) = await anna.send("/start")
    assert question.text == language_question("en")
    assert question.button_texts() == LANGUAGE_BUTTONS

    (question,) = await anna.press(question, "English")
    assert question.text == NEIGHBOURHOOD_QUESTION
    assert labels(question) == HOODS_EN
    assert (await must_be_stored(ANNA)).state == "onb:neighbourhood"

    (question,) = await anna.press(question, "Centre")
    assert question.text == TOPICS_QUESTION
    assert labels(question) == TOPICS_EN

    # Each tap edits the topics message in place: no new message, a tick on the button.
    topics = question
    await anna.press_to_edit(topics, "Roads and transport")
    assert topics.edits == 1
    assert topics.text == f"{TOPICS_QUESTION}\n\n1 topic chosen: Roads and transport"
    assert labels(topics) == ["✓ Roads and transport", *TOPICS_EN[1:]]
    await anna.press_to_edit(topics, "Education")
    assert topics.edits == 2
    assert topics.text == f"{TOPICS_QUESTION}\n\n2 topics chosen: Roads and transport, Education"
    assert labels(topics) == [
        "✓ Roads and transport",
        "Environment and parks",
        "✓ Education",
        *TOPICS_EN[3:],
    ]
    assert (await must_be_stored(ANNA)).data["topics"] == ["transport", "education"]

    (question,) = await anna.press(topics, "Done")
    assert question.text == PRIVACY_QUESTION
    assert question.button_texts() == [["I agree", "No, thanks"]]

    (menu,) = await anna.press(question, "I agree")
    assert menu.text == joined(ALL_SET, MAIN_MENU)
    assert menu.button_texts() == MENU_BUTTONS

    resident = await must_be_stored(ANNA)
    assert resident.language == "en"
    assert resident.neighbourhood == "centrs"
    assert resident.topics == ["education", "transport"]
    assert resident.privacy_accepted and resident.onboarded
    assert (resident.state, resident.data) == ("", {})
    assert await Subscription.filter(resident_id=resident.resident_id).count() == 2
    # Every press was answered, so no spinner keeps turning on the resident's phone.
    assert len(api.answered_callbacks) == 6
    assert_no_failure(anna.messages)
    assert api.errors == []


@storage
@pytest.mark.parametrize(
    ("app_language", "spoken"),
    [("lv", "lv"), ("en", "en"), ("ru", "ru"), ("de", "lv"), (None, "lv")],
)
async def test_before_choosing_the_bot_speaks_the_language_of_the_residents_telegram_app(
    api: BotApiStandIn, bot: Runtime, app_language: str | None, spoken: str
) -> None:
    api.add_user(2001, "Resident", language_code=app_language)
    (question,) = await Chat(api, 2001).send("/start")
    assert question.text == language_question(spoken)
    assert question.button_texts() == LANGUAGE_BUTTONS
    assert (await must_be_stored(2001)).language == ""  # nothing chosen yet


@storage
async def test_a_resident_with_a_latvian_app_is_greeted_in_latvian_not_english(
    janis: Chat,
) -> None:
    (question,) = await janis.send("/start")
    assert question.text == language_question("lv")
    assert question.text != language_question("en")


@storage
async def test_the_language_chosen_wins_over_the_language_of_the_app(janis: Chat) -> None:
    (question,) = await janis.send("/start")
    (question,) = await janis.press(question, "English")
    assert question.text == NEIGHBOURHOOD_QUESTION
    (again,) = await janis.send("🙂")
    assert_asks_again(again, question, notice=UNKNOWN_NEIGHBOURHOOD)
    assert (await must_be_stored(JANIS)).language == "en"


@storage
async def test_a_typed_neighbourhood_name_is_understood_in_any_language(anna: Chat) -> None:
    (question,) = await anna.send("/start")
    (question,) = await anna.press(question, "English")
    (question,) = await anna.send("  PĀRUPE ")  # the Latvian name, any case and spacing
    assert question.text == TOPICS_QUESTION
    assert (await must_be_stored(ANNA)).data == {"neighbourhood": "parupe"}


# --- 2. a restart in the middle -----------------------------------------------
@storage
async def test_a_restart_in_the_middle_of_onboarding_resumes_it(
    api: BotApiStandIn, bot: Runtime, start_bot: RuntimeFactory, anna: Chat
) -> None:
    (question,) = await anna.send("/start")
    (question,) = await anna.press(question, "English")
    (topics,) = await anna.press(question, "Jaunciems")
    await anna.press_to_edit(topics, "Culture and sport")
    assert (await must_be_stored(ANNA)).state == "onb:topics"

    await bot.stop()
    await start_bot(**telegram_env(api))

    # The buttons of the message sent before the restart still work.
    await anna.press_to_edit(topics, "Social care")
    assert topics.text.endswith("2 topics chosen: Culture and sport, Social care")
    (question,) = await anna.press(topics, "Done")
    assert question.text == PRIVACY_QUESTION
    (menu,) = await anna.press(question, "I agree")
    assert menu.text == joined(ALL_SET, MAIN_MENU)

    resident = await must_be_stored(ANNA)
    assert (resident.language, resident.neighbourhood) == ("en", "jaunciems")
    assert resident.topics == ["culture", "social"]
    assert resident.onboarded and resident.state == ""
    assert await Resident.all().count() == 1
    assert_no_failure(anna.messages)


@storage
async def test_declining_the_privacy_notice_keeps_nothing(anna: Chat) -> None:
    (question,) = await anna.send("/start")
    (question,) = await anna.press(question, "English")
    (question,) = await anna.press(question, "Centre")
    await anna.press_to_edit(question, "Education")
    (question,) = await anna.press(question, "Done")
    (answer,) = await anna.press(question, "No, thanks")
    assert answer.text == DECLINED and answer.reply_markup is None
    assert await stored(ANNA) is None
    assert await Resident.all().count() == 0
    assert await Subscription.all().count() == 0


# --- 3. bad input ---------------------------------------------------------------
@storage
@pytest.mark.parametrize("app_language", ["lv", "en"])
async def test_bad_input_before_choosing_a_language_is_answered_in_the_apps_language(
    api: BotApiStandIn, bot: Runtime, app_language: str
) -> None:
    api.add_user(2002, "Resident", language_code=app_language)
    chat = Chat(api, 2002)
    (question,) = await chat.send("/start")

    def said(message: str, **values: object) -> str:
        return tr(app_language, message, **values)

    # Telegram itself never delivers an empty text; whitespace only is the nearest case.
    (again,) = await chat.send(" \n ")
    assert_asks_again(again, question, notice=said(EMPTY))

    (again,) = await chat.send("a" * 10_000)
    assert_asks_again(again, question, notice=too_long(app_language))

    (again,) = await chat.send("🙂👍🏽")
    assert_asks_again(again, question, notice=said(PLEASE_USE_BUTTONS))

    (again,) = await chat.send_sticker()
    assert_asks_again(again, question, notice=said(CANNOT_READ))

    (again,) = await chat.send_photo()
    assert_asks_again(again, question, notice=said(CANNOT_READ))

    (again,) = await chat.send("/frobnicate now")
    assert_asks_again(again, question, notice=said(UNKNOWN_COMMAND))

    resident = await must_be_stored(2002)
    assert (resident.language, resident.state) == ("", "onb:language")
    assert_no_failure(chat.messages)
    assert api.errors == []


async def _walk_to(chat: Chat, step: str) -> BotMessage:
    """Onboarding in English up to ``step``; returns its question."""
    (question,) = await chat.send("/start")
    (question,) = await chat.press(question, "English")
    if step == "neighbourhood":
        return question
    (question,) = await chat.press(question, "Centre")
    if step == "topics":
        return question
    (question,) = await chat.press(question, "Done")
    return question


@storage
@pytest.mark.parametrize(
    ("step", "typed_answer"),
    [
        ("neighbourhood", UNKNOWN_NEIGHBOURHOOD),
        ("topics", USE_BUTTONS),
        ("privacy", USE_BUTTONS),
    ],
)
async def test_bad_input_at_each_later_step_gets_an_answer_and_the_question_again(
    api: BotApiStandIn, anna: Chat, step: str, typed_answer: str
) -> None:
    question = await _walk_to(anna, step)
    before = await must_be_stored(ANNA)
    assert before.state == f"onb:{step}"

    # The topics question is edited in place as topics are toggled, so a
    # notice stays a message of its own there instead of being wiped out.
    apart = step == "topics"
    replies = 2 if apart else 1
    for send, expected in [
        (lambda: anna.send("\u00a0 \t", replies=replies), EMPTY),
        (lambda: anna.send("x" * 10_000, replies=replies), too_long("en")),
        (lambda: anna.send("🎉🎉🎉", replies=replies), typed_answer),
        (lambda: anna.send_sticker(replies=replies), CANNOT_READ),
        (lambda: anna.send_photo(replies=replies), CANNOT_READ),
        (lambda: anna.send("/nosuchcommand", replies=replies), UNKNOWN_COMMAND),
    ]:
        if apart:
            notice, again = await send()
            assert notice.text == expected and notice.reply_markup is None
            assert_asks_again(again, question)
        else:
            (again,) = await send()
            assert_asks_again(again, question, notice=expected)

    after = await must_be_stored(ANNA)
    assert (after.state, after.data, after.language) == (before.state, before.data, "en")
    assert_no_failure(anna.messages)
    assert api.errors == []


@storage
async def test_a_stale_language_button_says_it_has_expired_and_changes_nothing(
    anna: Chat,
) -> None:
    (languages,) = await anna.send("/start")
    (question,) = await anna.press(languages, "English")

    (again,) = await anna.press(languages, "Русский")
    assert_asks_again(again, question, notice=EXPIRED)
    resident = await must_be_stored(ANNA)
    assert (resident.language, resident.state) == ("en", "onb:neighbourhood")

    # Later on, a topic button of a question already answered has expired just as well.
    (topics,) = await anna.press(again, "Centre")
    (privacy,) = await anna.press(topics, "Done")
    (again,) = await anna.press(topics, "Education")
    assert_asks_again(again, privacy, notice=EXPIRED)
    resident = await must_be_stored(ANNA)
    assert resident.state == "onb:privacy"
    assert resident.data == {"neighbourhood": "centrs"}  # no topic slipped in
    assert_no_failure(anna.messages)


@storage
async def test_an_old_i_agree_button_after_onboarding_has_expired_and_shows_the_menu(
    anna: Chat,
) -> None:
    await anna.onboard()
    privacy = next(m for m in anna.messages if m.text == PRIVACY_QUESTION)
    onboarded_at = (await Resident.get(id=(await must_be_stored(ANNA)).resident_id)).onboarded_at

    (menu,) = await anna.press(privacy, "I agree")
    assert menu.text == joined(EXPIRED, MAIN_MENU)
    assert menu.button_texts() == MENU_BUTTONS
    resident = await Resident.get(id=(await must_be_stored(ANNA)).resident_id)
    assert resident.onboarded_at == onboarded_at


# --- 4. duplicate deliveries ------------------------------------------------------
@pytest.fixture
def dropped(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """``await dropped(update)``: waits until the bot has recognised ``update`` as a duplicate."""
    caplog.set_level(logging.INFO, logger="handlers.dispatcher")

    async def wait(update: dict[str, object]) -> None:
        needle = f"duplicate event telegram:{update['update_id']} dropped"
        await eventually(lambda: any(needle in r.getMessage() for r in caplog.records), what=needle)

    return wait


@storage
async def test_a_redelivered_button_press_has_one_effect(
    api: BotApiStandIn, anna: Chat, dropped
) -> None:
    (question,) = await anna.send("/start")
    (question,) = await anna.press(question, "English")
    (topics,) = await anna.press(question, "Centre")
    await anna.press_to_edit(topics, "Education")
    pressed = anna.last_update
    messages_before = len(anna.messages)

    # Handled twice, the toggle would take the topic away again.
    api.redeliver(pressed)
    await dropped(pressed)

    assert len(anna.messages) == messages_before
    assert topics.edits == 1
    assert topics.text.endswith("1 topic chosen: Education")
    resident = await must_be_stored(ANNA)
    assert (resident.state, resident.data["topics"]) == ("onb:topics", ["education"])
    assert await ProcessedEvent.filter(event_id=str(pressed["update_id"])).count() == 1


@storage
async def test_a_redelivered_command_is_answered_once(
    api: BotApiStandIn, anna: Chat, dropped
) -> None:
    await anna.send("/start")
    update = anna.last_update
    api.redeliver(update)
    await dropped(update)
    assert len(anna.messages) == 1
    assert await Resident.all().count() == 1


# --- 5. commands in the middle of a dialog -----------------------------------------
@storage
async def test_help_in_the_middle_of_onboarding_answers_and_keeps_the_place(
    anna: Chat,
) -> None:
    question = await _walk_to(anna, "topics")
    help_, again = await anna.send("/help", replies=2)
    assert help_.text == HELP.format(municipality=MUNICIPALITY)
    # The topics question is toggled in place, so the help stays a message of
    # its own above it: a toggle must not wipe it out.
    assert help_.reply_markup is None
    assert_asks_again(again, question)
    toggled = await anna.press_to_edit(again, "Education")
    assert toggled.message_id == again.message_id
    (kept,) = [m for m in anna.messages if m.message_id == help_.message_id]
    assert kept.text == help_.text
    assert (await must_be_stored(ANNA)).state == "onb:topics"


@storage
async def test_help_in_the_middle_of_onboarding_asks_the_current_question_again(
    anna: Chat,
) -> None:
    question = await _walk_to(anna, "neighbourhood")
    before = len(anna.messages)
    anna.api.send_text(ANNA, "/help")
    # A sticker right after: its answer comes once everything /help had to say is said.
    anna.api.send_sticker(ANNA)
    # One message each: the help with the question under it, then the sticker's answer with it.
    help_, sticker_answer = (await anna.api.wait_for_messages(ANNA, before + 2))[before:]
    assert help_.text.startswith(HELP_FIRST_LINE.format(municipality=MUNICIPALITY))
    assert_asks_again(help_, question, notice=HELP.format(municipality=MUNICIPALITY))
    assert_asks_again(sticker_answer, question, notice=CANNOT_READ)
    assert len(anna.messages) == before + 2


@storage
async def test_language_in_the_middle_of_onboarding_switches_and_asks_the_question_again(
    anna: Chat,
) -> None:
    await _walk_to(anna, "neighbourhood")
    (choice,) = await anna.send("/language")
    assert choice.text == CHOOSE_LANGUAGE
    assert choice.button_texts() == LANGUAGE_BUTTONS

    (question,) = await anna.press(choice, "Русский")
    assert question.text == joined(tr("ru", LANGUAGE_SWITCHED), tr("ru", NEIGHBOURHOOD_QUESTION))
    assert labels(question) == [*HOODS_RU, tr("ru", "Skip")]  # the configuration's names
    resident = await must_be_stored(ANNA)
    assert (resident.language, resident.state) == ("ru", "onb:neighbourhood")

    # And the question works: onboarding goes on, in Russian.
    (question,) = await anna.press(question, "Центр")
    assert question.text == tr("ru", TOPICS_QUESTION)
    assert (await must_be_stored(ANNA)).data == {"neighbourhood": "centrs"}


@storage
async def test_language_in_settings_switches_and_shows_the_settings_again(anna: Chat) -> None:
    await anna.onboard()
    (home,) = await anna.send("/settings")
    assert home.text == settings_home("en", "English", "Centre", "Roads and transport, Education")

    (choice,) = await anna.send("/language")
    (again,) = await anna.press(choice, "Latviešu")
    home_lv = settings_home("lv", "Latviešu", "Centrs", "Ceļi un transports, Izglītība")
    assert again.text == joined(tr("lv", LANGUAGE_SWITCHED), home_lv)
    assert again.callback_data() == home.callback_data()
    resident = await must_be_stored(ANNA)
    assert (resident.language, resident.state) == ("lv", "set:home")


@storage
async def test_cancel_in_the_middle_of_onboarding_stops_and_start_begins_afresh(
    anna: Chat,
) -> None:
    topics = await _walk_to(anna, "topics")
    await anna.press_to_edit(topics, "Education")

    (answer,) = await anna.send("/cancel")
    assert answer.text == STOPPED
    resident = await must_be_stored(ANNA)
    assert (resident.state, resident.data, resident.onboarded) == ("", {}, False)

    (question,) = await anna.send("/start")
    assert question.text == language_question("en")  # still English: the choice was kept
    assert (await must_be_stored(ANNA)).state == "onb:language"


@storage
async def test_cancel_in_settings_returns_to_the_menu(anna: Chat) -> None:
    await anna.onboard()
    (home,) = await anna.send("/settings")
    (topics,) = await anna.press(home, "Topics")
    assert topics.text == SETTINGS_TOPICS
    assert (await must_be_stored(ANNA)).state == "set:topics"

    (menu,) = await anna.send("/cancel")
    assert menu.text == joined(CANCELLED, MAIN_MENU)
    assert menu.button_texts() == MENU_BUTTONS
    assert (await must_be_stored(ANNA)).state == ""


@storage
async def test_menu_before_onboarding_is_finished_asks_the_current_question_again(
    anna: Chat,
) -> None:
    question = await _walk_to(anna, "privacy")
    (again,) = await anna.send("/menu")
    assert_asks_again(again, question)
    assert (await must_be_stored(ANNA)).state == "onb:privacy"


@storage
async def test_menu_in_settings_leaves_them_for_the_main_menu(anna: Chat) -> None:
    await anna.onboard()
    (home,) = await anna.send("/settings")
    (question,) = await anna.press(home, "Neighbourhood")
    assert question.text == SETTINGS_NEIGHBOURHOOD
    (menu,) = await anna.send("/menu")
    assert menu.text == MAIN_MENU
    assert menu.button_texts() == MENU_BUTTONS
    resident = await must_be_stored(ANNA)
    assert (resident.state, resident.neighbourhood) == ("", "centrs")


# --- 6. /mydata and deleting it ---------------------------------------------------
@storage
async def test_mydata_shows_the_data_and_deleting_it_erases_the_resident(
    api: BotApiStandIn, anna: Chat, janis: Chat
) -> None:
    await janis.send("/start")  # another resident, who must stay
    await anna.onboard()

    (overview,) = await anna.send("/mydata")
    assert overview.text == await my_data_overview(
        "telegram", str(ANNA), RIGA, "en", "English", "Centre", "Roads and transport, Education"
    )
    assert overview.button_texts() == [["Delete my data"], ["Back to the menu"]]

    (confirm,) = await anna.press(overview, "Delete my data")
    assert confirm.text == DELETE_CONFIRMATION
    assert confirm.button_texts() == [["Yes, delete", "No, keep it"]]
    resident_id = (await must_be_stored(ANNA)).resident_id

    (answer,) = await anna.press(confirm, "Yes, delete")
    assert answer.text == DATA_DELETED
    assert await stored(ANNA) is None
    assert not await Resident.exists(id=resident_id)
    assert not await ChannelIdentity.exists(resident_id=resident_id)
    assert not await Subscription.exists(resident_id=resident_id)
    assert not await DialogState.exists(resident_id=resident_id)
    assert await stored(JANIS) is not None
    assert await Resident.all().count() == 1

    # Writing again starts afresh: a new, empty resident, asked for the language.
    (question,) = await anna.send("/start")
    assert question.text == language_question("en")
    fresh = await must_be_stored(ANNA)
    assert fresh.resident_id != resident_id
    assert (fresh.language, fresh.neighbourhood, fresh.topics) == ("", None, [])
    assert not fresh.onboarded and not fresh.privacy_accepted
    assert fresh.state == "onb:language"
    assert_no_failure(anna.messages)


@storage
async def test_keeping_the_data_changes_nothing(anna: Chat) -> None:
    await anna.onboard()
    before = await must_be_stored(ANNA)
    (overview,) = await anna.send("/mydata")
    (confirm,) = await anna.press(overview, "Delete my data")
    (menu,) = await anna.press(confirm, "No, keep it")
    assert menu.text == joined(NOTHING_DELETED, MAIN_MENU)
    assert menu.button_texts() == MENU_BUTTONS
    after = await must_be_stored(ANNA)
    assert (after.resident_id, after.topics, after.state) == (before.resident_id, before.topics, "")


# --- 7. webhook mode ----------------------------------------------------------------
async def start_webhook_bot(api: BotApiStandIn, start_bot: RuntimeFactory) -> tuple[Runtime, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    runtime = await start_bot(
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=url,
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IESAISTE_HTTP_PORT=str(port),
        )
    )
    assert runtime.config.http_port == port
    return runtime, url


@pytest.fixture
async def webhook(api: BotApiStandIn, start_bot: RuntimeFactory) -> AsyncIterator[str]:
    """The bot in webhook mode; yields the webhook URL."""
    runtime, url = await start_webhook_bot(api, start_bot)
    yield url
    await runtime.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@storage
async def test_in_webhook_mode_telegram_posts_the_updates_and_onboarding_works(
    api: BotApiStandIn, webhook: str
) -> None:
    assert api.webhook_url == webhook
    assert api.webhook_secret_token == WEBHOOK_SECRET
    anna = Chat(api, ANNA)
    await anna.onboard()

    resident = await must_be_stored(ANNA)
    assert (resident.language, resident.neighbourhood) == ("en", "centrs")
    assert resident.topics == ["education", "transport"]
    assert resident.onboarded and resident.state == ""
    assert api.requests_of("getUpdates") == []  # nothing polled: every update came by POST
    # The bot answers the POST once its replies are sent: wait for the last status.
    await api.wait_until(lambda: len(api.webhook_deliveries) == 7)
    assert set(api.webhook_statuses) == {200}
    assert_no_failure(anna.messages)
    # Each pressed button's spinner was stopped by the webhook's answer to its update,
    # not by a request of the bot's own.
    presses = [r for r in api.requests if r.method == "answerCallbackQuery"]
    assert len(api.answered_callbacks) == len(presses) >= 4
    assert all(press.from_webhook_answer for press in presses)


@storage
async def test_a_webhook_post_with_a_wrong_or_missing_secret_gets_403_and_has_no_effect(
    api: BotApiStandIn, webhook: str, http: aiohttp.ClientSession
) -> None:
    anna = Chat(api, ANNA)
    await anna.send("/start")
    forged = text_update(anna.last_update, "/mydata")

    for headers in ({SECRET_HEADER: "not-the-secret-0123456789"}, {}):
        async with http.post(webhook, json=forged, headers=headers) as response:
            assert response.status == 403
    # The bot answered 403 without handling anything: no reply, no state, no event.
    assert len(anna.messages) == 1
    assert (await must_be_stored(ANNA)).state == "onb:language"
    assert not await ProcessedEvent.exists(event_id=str(forged["update_id"]))

    # The very same update with the right secret is handled: only the secret was wrong.
    async with http.post(webhook, json=forged, headers={SECRET_HEADER: WEBHOOK_SECRET}) as response:
        assert response.status == 200
    await api.wait_for_messages(ANNA, 2)
    assert anna.messages[-1].body == await my_data_overview(
        "telegram", str(ANNA), RIGA, "en", "—", None
    )
    assert (await must_be_stored(ANNA)).state == "data:overview"


@storage
async def test_a_webhook_post_that_is_not_json_gets_400(
    api: BotApiStandIn, webhook: str, http: aiohttp.ClientSession
) -> None:
    headers = {SECRET_HEADER: WEBHOOK_SECRET, "Content-Type": "application/json"}
    for body in (b"this is not JSON", b'{"update_id": 1,', b"{}"):
        async with http.post(webhook, data=body, headers=headers) as response:
            assert response.status == 400, body
    assert await Resident.all().count() == 0


@storage
async def test_a_webhook_post_of_json_that_is_not_an_update_gets_400(
    api: BotApiStandIn, webhook: str, http: aiohttp.ClientSession
) -> None:
    # Without an integer update_id it is not an update at all. One that has
    # it but is malformed is acknowledged and dropped (tests/bot/test_http_hardening.py).
    headers = {SECRET_HEADER: WEBHOOK_SECRET}
    for body in ([], None, "update", {"update_id": "5", "message": {}}, {"update_id": True}):
        async with http.post(webhook, json=body, headers=headers) as response:
            assert response.status == 400, body


@storage
async def test_a_redelivered_webhook_update_has_one_effect(
    api: BotApiStandIn, webhook: str, dropped
) -> None:
    anna = Chat(api, ANNA)
    (question,) = await anna.send("/start")
    (question,) = await anna.press(question, "English")
    api.redeliver(anna.last_update)
    await dropped(anna.last_update)
    await api.wait_until(lambda: len(api.webhook_deliveries) == 3)
    assert set(api.webhook_statuses) == {200}
    assert len(anna.messages) == 2
    assert (await must_be_stored(ANNA)).state == "onb:neighbourhood"


# --- 8. no secret in the logs -------------------------------------------------------
@pytest.fixture
def production_logs() -> Iterator[io.StringIO]:
    """Logging as ``iesaiste run`` sets it up (``bot.core.logs.configure``) at DEBUG, into a buffer.

    ``configure`` is called by the test (it needs the secrets); the buffer is then attached to
    the handler it installs. Every logger's level and the root's handlers are restored after.
    """
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(root_level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))


def configure_logs(buffer: io.StringIO, *secrets: str) -> None:
    logs.configure("DEBUG", secrets)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)


@storage
async def test_the_token_never_appears_in_the_logs_even_when_a_request_fails(
    api: BotApiStandIn, start_bot: RuntimeFactory, production_logs: io.StringIO
) -> None:
    configure_logs(production_logs, api.token)
    runtime = await start_bot(**telegram_env(api))
    anna = Chat(api, ANNA)
    await anna.send("/start")

    # Every try of the answer fails: it is tried again, then handed on, and logged.
    api.fail_next("sendMessage", 500, "Internal Server Error", times=ANSWER_ATTEMPTS)
    api.send_text(ANNA, "/help")
    await api.wait_until(lambda: any(e.method == "sendMessage" for e in api.errors))
    await eventually(lambda: "go on through the outbox" in production_logs.getvalue())
    helped = joined(HELP.format(municipality=MUNICIPALITY), language_question("en"))
    _language, handed_on = await api.wait_for_messages(ANNA, 2, timeout=20)
    assert handed_on.body == helped, "the outbox delivered it once Telegram answered again"
    (help_,) = await anna.send("/help")  # and the bot carries on
    assert help_.text == helped
    await runtime.stop()

    output = production_logs.getvalue()
    assert "Internal Server Error" in output  # the failure was logged ...
    # PTB's debug lines (the API URL with the token, whole updates) are not printed at all.
    assert "Calling Bot API endpoint" not in output and "Set Bot API URL" not in output
    assert api.token not in output
    assert api.token.split(":", 1)[1] not in output  # not even the secret half alone


@storage
async def test_the_webhook_secret_and_the_token_never_appear_in_the_logs(
    api: BotApiStandIn,
    start_bot: RuntimeFactory,
    production_logs: io.StringIO,
    http: aiohttp.ClientSession,
) -> None:
    configure_logs(production_logs, api.token, WEBHOOK_SECRET)
    runtime, url = await start_webhook_bot(api, start_bot)
    anna = Chat(api, ANNA)
    await anna.send("/start")
    async with http.post(url, json={}, headers={SECRET_HEADER: "wrong-secret-0123456789"}) as r:
        assert r.status == 403
    await runtime.stop()

    output = production_logs.getvalue()
    assert "telegram: webhook set" in output and "wrong secret token" in output
    assert api.token not in output
    assert WEBHOOK_SECRET not in output


# --- 9. long texts ------------------------------------------------------------------
def test_split_text_leaves_a_text_within_the_limit_whole() -> None:
    assert split_text("short", 10) == ["short"]
    assert split_text("x" * 10, 10) == ["x" * 10]
    assert split_text("", 10) == [""]


def test_split_text_cuts_at_a_space_and_keeps_every_word() -> None:
    words = [f"word{i}" for i in range(1000)]
    text = " ".join(words)  # 5889 characters
    pieces = split_text(text, 4096)
    assert len(pieces) == 2
    assert all(0 < len(piece) <= 4096 for piece in pieces)
    assert " ".join(pieces).split() == words  # no word cut in two, none lost


def test_split_text_cuts_a_single_overlong_word_hard() -> None:
    pieces = split_text("y" * 10_000, 4096)
    assert [len(p) for p in pieces] == [4096, 4096, 1808]
    assert "".join(pieces) == "y" * 10_000


def test_split_text_prefers_a_paragraph_break_to_a_space() -> None:
    first = " ".join(["alpha"] * 500)  # 2999 characters
    second = " ".join(["beta"] * 500)
    pieces = split_text(f"{first}\n\n{second}", 4096)
    assert pieces == [first, second]


@pytest.fixture
async def channel(api: BotApiStandIn) -> AsyncIterator[TelegramChannel]:
    """The Telegram channel alone (no database, no polling), sending to the stand-in."""
    config = TelegramConfig(token=api.token, api_url=api.url)
    telegram = TelegramChannel(config, Dispatcher(Config()).feed, CommandMenu(), "lv")
    await telegram.open()
    yield telegram
    await telegram.stop()


async def test_a_reply_longer_than_telegram_allows_is_sent_as_several_messages(
    api: BotApiStandIn, channel: TelegramChannel
) -> None:
    words = [f"vārds{i}" for i in range(800)]
    text = " ".join(words)
    assert len(text) > 5000
    buttons = [[Button("OK", "menu:main")]]
    await channel.send(str(ANNA), Reply(text, buttons))

    first, second = api.messages(ANNA)
    assert len(first.body) <= LIMITS.text_length and len(second.body) <= LIMITS.text_length
    assert f"{first.body} {second.body}".split() == words
    # The buttons go with the last piece, under the end of the text.
    assert first.reply_markup is None
    assert second.callback_data() == ["menu:main"]
    assert api.errors == []


async def test_a_photo_with_a_caption_too_long_for_telegram_is_sent_then_the_text(
    api: BotApiStandIn, channel: TelegramChannel
) -> None:
    text = "Ielas remonts. " * 100  # 1500 characters: over the 1024 of a caption
    await channel.send(
        str(ANNA), Reply(text, [[Button("OK", "menu:main")]], image="https://example.lv/a.jpg")
    )
    photo, message = api.messages(ANNA)
    assert photo.photo == "https://example.lv/a.jpg" and photo.caption is None
    assert message.text == text.strip()
    assert message.callback_data() == ["menu:main"]
    assert api.errors == []


async def test_a_blocked_resident_and_flood_control_are_reported_as_such(
    api: BotApiStandIn, channel: TelegramChannel
) -> None:
    api.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(RecipientBlocked):
        await channel.send(str(ANNA), Reply("Announcement"))

    api.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await channel.send(str(ANNA), Reply("Announcement"))
    assert limited.value.retry_after == 7


# --- a notice and the reply after it: one message ---------------------------------
async def handle(channel: TelegramChannel, update: JSONDict) -> None:
    """The channel handles ``update`` as if it had polled it, and sends what it answers."""
    assert await channel.take(update) is False


async def test_a_notice_is_joined_to_the_question_after_it_but_never_to_an_edit(
    api: BotApiStandIn, channel: TelegramChannel
) -> None:
    asked = "Which topics interest you?"
    toggled = f"{asked}\n\n1 topic chosen: Education"
    buttons = [[Button("Education", "onb:topics:education"), Button("Done", "onb:topics:_done")]]
    ticked = [[Button("✓ Education", "onb:topics:education"), Button("Done", "onb:topics:_done")]]
    long_question = "🙂" * 2010  # 2010 characters, but 4020 UTF-16 code units as Telegram counts
    channel.feed = Scripted(
        [
            [Reply(CANNOT_READ), Reply(asked, buttons)],
            [Reply(EXPIRED), Reply(toggled, ticked, replace=True)],
            [Reply(CANNOT_READ), Reply(long_question, buttons)],
        ]
    ).feed

    # A notice and a question: one message, the question's buttons under both.
    await handle(channel, api.send_sticker(ANNA))
    (question,) = api.messages(ANNA)
    assert question.text == joined(CANNOT_READ, asked)
    assert question.button_texts() == [["Education", "Done"]]
    assert question.callback_data() == ["onb:topics:education", "onb:topics:_done"]

    # A notice and an edit in place (a toggle): the notice is a message of its own, and
    # the pressed message is edited to the toggled question alone, without the notice.
    await handle(channel, api.press_button(ANNA, question.message_id, "onb:topics:education"))
    same, notice = api.messages(ANNA)
    assert same is question and question.edits == 1
    assert question.text == toggled
    assert question.button_texts() == [["✓ Education", "Done"]]
    assert notice.text == EXPIRED and notice.reply_markup is None
    assert len(api.requests_of("sendMessage")) == 2
    assert len(api.requests_of("editMessageText")) == 1

    # Joined, the text would be over Telegram's 4096 UTF-16 code units (though not over 4096
    # characters): the notice and the question stay two messages, each whole.
    assert len(CANNOT_READ) + 2 + len(long_question) <= LIMITS.text_length
    assert utf16_length(CANNOT_READ) + 2 + utf16_length(long_question) > LIMITS.text_length
    await handle(channel, api.send_sticker(ANNA))
    alone, again = api.messages(ANNA)[2:]
    assert alone.text == CANNOT_READ and alone.reply_markup is None
    assert again.text == long_question
    assert again.callback_data() == question.callback_data()
    assert api.errors == []


# --- order -------------------------------------------------------------------------
@storage
async def test_a_button_press_and_a_text_sent_right_after_are_handled_in_that_order(
    api: BotApiStandIn, anna: Chat
) -> None:
    (question,) = await anna.send("/start")
    pressed = anna.tap(question, "English")
    typed = api.send_text(ANNA, "Centre")  # the resident types the next answer at once

    async def both_handled() -> bool:
        ids = [str(pressed["update_id"]), str(typed["update_id"])]
        return await ProcessedEvent.filter(event_id__in=ids).count() == 2

    await eventually(both_handled, what="both updates handled")
    resident = await must_be_stored(ANNA)
    assert (resident.state, resident.data) == ("onb:topics", {"neighbourhood": "centrs"})


# --- the command menu -------------------------------------------------------
@storage
async def test_the_command_menu_is_published_in_every_language(
    api: BotApiStandIn, bot: Runtime
) -> None:
    for language in ("", "lv", "en", "ru"):
        names = [c["command"] for c in api.commands_by_language[language]]
        assert names == [
            "menu",
            "propose",
            "myproposals",
            "proposals",
            "polls",
            "settings",
            "language",
            "mydata",
            "stop",
            "cancel",
            "help",
        ]
        described = [c["description"] for c in api.commands_by_language[language]]
        assert described == [tr(language or "lv", text) for text in MENU_DESCRIPTIONS]
