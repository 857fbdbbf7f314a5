"""The web chat end to end: the whole bot started as in production, a real Chromium.

Each test starts the bot on an empty database (SQLite, then PostgreSQL, through
``start_bot``), opens http://127.0.0.1:PORT/ in headless Chromium and talks to
it as a resident does. The browser is launched per test: Playwright's objects
belong to the event loop they were made in, and with pytest-asyncio's
function-scoped loops that is the test's loop, which the bot runs in too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from bot.app import Runtime
from bot.channels.webchat import COOKIE, UI_STRINGS, WebChat, verify
from bot.core.i18n import translator
from bot.core.messages import Button, Reply
from bot.http import build_app
from storage import residents
from storage.models import ChannelIdentity, DialogState, Resident
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat_guard import (
    config_file,
    minutes_to_the_hour,
    refusal,
    wait_clear_of_the_hour,
)
from tests.chat import Scripted
from tests.conftest import RuntimeFactory, free_port

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.storage]

# What the bot says in English, the language of the catalogs' message ids.
NEIGHBOURHOOD_QUESTION = "Which neighbourhood do you live in, or care about most?"
TOPICS_QUESTION = "Which topics interest you?"
PRIVACY_QUESTION = "Before we start, how we treat your data:"
ALL_SET = "Thank you, you are all set! You can change these choices any time in Settings."
MAIN_MENU = "Main menu — what would you like to do?"
MENU_BUTTONS = [
    "Idea or problem",
    "Polls",
    "My proposals",
    "Proposals nearby",
    "Settings",
    "My data",
    "Stop announcements",
    "Help",
]
EXPIRED = "That button belongs to an earlier question and has expired. Here is where we are now:"
DID_NOT_UNDERSTAND = "Sorry, I did not understand that. Please use the menu below."
UNKNOWN_COMMAND = "Sorry, I do not know that command. /help lists what I can do."
EMPTY = "Your message was empty. Please write something or use the buttons."
TOO_LONG = "Your message is too long: I can read at most 2000 characters. Please shorten it."
UNKNOWN_NEIGHBOURHOOD = "I do not know that neighbourhood. Please choose one of the buttons below."
UNREADABLE = "I could not read that message. Please try again."
HELP = "/menu – the main menu"

# What a resident who has chosen no language sees: Latvian, from the catalog.
LV = translator("lv")
FIRST_QUESTION_LV = LV.gettext(
    "Hello! I am the residents' assistant of {municipality}. Here you can follow what "
    "happens in your neighbourhood and have your say.\n\nPlease choose your language:",
    municipality="Demo novads",
)
PLACEHOLDER_LV = LV.gettext("Write a message…")
UNREADABLE_LV = LV.gettext(UNREADABLE)

PHONE = {"width": 360, "height": 740}


# --- fixtures ---------------------------------------------------------------
@pytest.fixture
def chromium_present() -> None:
    """Checked before the bot starts, so a missing browser skips at once."""
    require_chromium()


@pytest.fixture
async def bot(start_bot: RuntimeFactory) -> Runtime:
    return await start_bot()


@pytest.fixture
async def browser(chromium_present: None, bot: Runtime) -> AsyncIterator[Browser]:
    # Depends on ``bot`` so the browser closes first and the bot stops after it.
    async with chromium() as launched:
        yield launched


@pytest.fixture
def url(bot: Runtime) -> str:
    return f"http://127.0.0.1:{bot.config.http_port}/"


async def quiet_context(browser: Browser, **options: Any) -> BrowserContext:
    """A context that prefers reduced motion: no animation or smooth scrolling to wait out.

    Test 1 keeps the defaults, so the animated path is driven too.
    """
    return await browser.new_context(reduced_motion="reduce", **options)


async def open_chat(context: BrowserContext, url: str) -> ChatPage:
    """A new page in ``context``, once the bot's first message is shown."""
    return await ChatPage.open(await context.new_page(), url)


async def choose_english_and_centre(chat: ChatPage) -> None:
    await expect(chat.bot.last).to_contain_text(FIRST_QUESTION_LV)
    await chat.press("English")
    await expect(chat.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    await chat.press("Centre")
    await expect(chat.bot.last).to_contain_text(TOPICS_QUESTION)


async def onboard(chat: ChatPage) -> None:
    """Language, neighbourhood, two topics, privacy: to the main menu."""
    await choose_english_and_centre(chat)
    await chat.press("Roads and transport")
    await expect(chat.button("✓ Roads and transport")).to_be_visible()
    await chat.press("Education")
    await expect(chat.button("✓ Education")).to_be_visible()
    await chat.press("Done")
    await expect(chat.bot.last).to_contain_text(PRIVACY_QUESTION)
    await chat.press("I agree")
    # The thanks and the main menu: one message, with the menu's buttons.
    await chat.expect_text(chat.bot.last, f"{ALL_SET}\n\n{MAIN_MENU}")
    await expect(chat.bot.last.get_by_role("button")).to_have_text(MENU_BUTTONS)


async def cookie_user(context: BrowserContext, runtime: Runtime) -> str:
    """The resident's web-chat id, read from the signed cookie the page set."""
    [cookie] = [c for c in await context.cookies() if c["name"] == COOKIE]
    assert runtime.webchat is not None
    user_id = verify(runtime.webchat.secret, cookie["value"])
    assert user_id is not None
    return user_id


# --- 1. onboarding ------------------------------------------------------------
async def test_a_resident_onboards_to_the_main_menu(
    browser: Browser, bot: Runtime, url: str
) -> None:
    context = await browser.new_context()
    chat = await open_chat(context, url)
    await expect(chat.bot).to_have_count(1)
    await expect(chat.bot.first).to_contain_text(FIRST_QUESTION_LV)
    await expect(chat.button("English")).to_have_attribute("data-payload", "onb:language:en")
    assert await chat.html_lang() == "lv"
    await expect(chat.input).to_have_attribute("placeholder", PLACEHOLDER_LV)
    assert PLACEHOLDER_LV != "Write a message…"

    await chat.press("English")
    await expect(chat.user.last).to_have_text("English")
    await expect(chat.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    await expect(chat.page.locator("html")).to_have_attribute("lang", "en")
    await expect(chat.input).to_have_attribute("placeholder", "Write a message…")
    await expect(chat.send_button).to_have_text("Send")
    title = translator("en").gettext(UI_STRINGS["title"], municipality="Demo novads")
    await expect(chat.title).to_have_text(title)
    await expect(chat.page).to_have_title(title)

    await chat.press("Centre")
    await expect(chat.bot.last).to_contain_text(TOPICS_QUESTION)
    await expect(chat.bot).to_have_count(3)
    topics = chat.bot.nth(2)
    first_id = await topics.get_attribute("data-message-id")

    # A topic press edits the topics message in place: no new bot message.
    await chat.press("Roads and transport")
    await expect(chat.button("✓ Roads and transport", topics)).to_be_visible()
    await expect(topics).to_contain_text("1 topic chosen: Roads and transport")
    await chat.press("Education", topics)
    await expect(chat.button("✓ Education", topics)).to_be_visible()
    await expect(topics).to_contain_text("2 topics chosen: Roads and transport, Education")
    await expect(chat.bot).to_have_count(3)
    await expect(topics.get_by_role("button", name="✓")).to_have_count(2)
    await expect(chat.button("Environment and parks", topics)).to_be_visible()
    # Edited in place, it keeps its id, so it can be edited again (a staff report is).
    assert await topics.get_attribute("data-message-id") == first_id
    await expect(chat.user).to_have_count(4)  # English, Centre and the two topics

    await chat.press("Done", topics)
    await expect(chat.bot.last).to_contain_text(PRIVACY_QUESTION)
    await chat.press("I agree")
    # The thanks and the main menu come as one message: a notice is joined to what follows.
    await chat.expect_text(chat.bot.last, f"{ALL_SET}\n\n{MAIN_MENU}")
    await expect(chat.bot).to_have_count(5)
    await expect(chat.bot.last.get_by_role("button")).to_have_text(MENU_BUTTONS)
    await expect(chat.errors).to_have_count(0)

    # The database holds what the resident chose, under the id in their cookie.
    identity = await ChannelIdentity.get(channel="webchat")
    assert identity.external_id == await cookie_user(context, bot)
    resident = await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]
    assert resident.language == "en"
    assert await residents.neighbourhood_key(resident) == "centrs"
    assert await residents.topic_keys(resident) == ["education", "transport"]
    assert resident.privacy_accepted_at is not None
    assert resident.onboarded_at is not None
    dialog = await DialogState.get(resident_id=resident.id)
    assert (dialog.state, dialog.data) == ("", {})
    assert await Resident.all().count() == 1


# --- 2. coming back -----------------------------------------------------------
async def test_coming_back_resumes_and_a_new_browser_is_a_new_resident(
    browser: Browser, bot: Runtime, url: str
) -> None:
    context = await quiet_context(browser)
    chat = await open_chat(context, url)
    await choose_english_and_centre(chat)
    await chat.press("Education")
    await expect(chat.button("✓ Education")).to_be_visible()
    user_id = await cookie_user(context, bot)
    await chat.page.close()

    # Same browser, same cookie: the open question is asked again, choices kept.
    again = await open_chat(context, url)
    await expect(again.bot).to_have_count(1)
    await expect(again.bot.last).to_contain_text(TOPICS_QUESTION)
    await expect(again.bot.last).to_contain_text("1 topic chosen: Education")
    await expect(again.page.locator("html")).to_have_attribute("lang", "en")
    await expect(again.input).to_have_attribute("placeholder", "Write a message…")
    assert await cookie_user(context, bot) == user_id
    await again.press("Social care")
    await expect(again.button("✓ Social care")).to_be_visible()
    await expect(again.button("✓ Education")).to_be_visible()
    await expect(again.bot).to_have_count(1)
    await again.press("Done")
    await expect(again.bot.last).to_contain_text(PRIVACY_QUESTION)
    assert await Resident.all().count() == 1

    # Another browser (no cookie) is somebody else, starting from the beginning; opening
    # the page creates nobody, answering the first question does.
    stranger = await open_chat(await quiet_context(browser), url)
    await expect(stranger.bot).to_have_count(1)
    await expect(stranger.bot.last).to_contain_text(FIRST_QUESTION_LV)
    assert await stranger.html_lang() == "lv"
    assert await Resident.all().count() == 1
    await stranger.press("Русский")
    await expect(stranger.page.locator("html")).to_have_attribute("lang", "ru")
    assert await Resident.all().count() == 2
    others = await ChannelIdentity.filter(channel="webchat").exclude(external_id=user_id)
    assert len(others) == 1


# --- 3. bad input ---------------------------------------------------------------
async def test_bad_input_gets_an_answer_in_the_residents_language(
    browser: Browser, url: str
) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    # Each answer is one message: the notice, a blank line, then the question again with
    # its buttons. Before a language is chosen, the answer is in Latvian.
    first = chat.bot.first
    await chat.say("/nope")
    await expect(chat.bot).to_have_count(2)
    await chat.expect_asks_again(chat.bot.last, first, notice=LV.gettext(UNKNOWN_COMMAND))
    assert LV.gettext(UNKNOWN_COMMAND) != UNKNOWN_COMMAND
    await chat.press("English")
    await expect(chat.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    await expect(chat.bot).to_have_count(3)
    neighbourhood = chat.bot.nth(2)

    # Emoji only, where a typed neighbourhood name is expected.
    await chat.say("🙂🎉👍")
    await expect(chat.user.last).to_have_text("🙂🎉👍")
    await expect(chat.bot).to_have_count(4)
    await chat.expect_asks_again(chat.bot.last, neighbourhood, notice=UNKNOWN_NEIGHBOURHOOD)
    await chat.press("Centre")
    await expect(chat.bot.last).to_contain_text(TOPICS_QUESTION)
    await expect(chat.bot).to_have_count(5)
    topics = chat.bot.nth(4)

    # The topics question is edited in place as topics are toggled: from here on a
    # notice comes as a message of its own, then the question again.
    # A button from a question already answered.
    await chat.press("English", first)
    await expect(chat.bot).to_have_count(7)
    await chat.expect_notice_then_question(topics, EXPIRED)

    # A command nobody knows.
    await chat.say("/nope")
    await expect(chat.user.last).to_have_text("/nope")
    await expect(chat.bot).to_have_count(9)
    await chat.expect_notice_then_question(topics, UNKNOWN_COMMAND)

    # 10,000 characters: the page sends them, the bot says how long it may be.
    await chat.say("x" * 10_000)
    await expect(chat.user.last).to_have_text("x" * 10_000)
    await expect(chat.bot).to_have_count(11)
    await chat.expect_notice_then_question(topics, TOO_LONG)
    assert await chat.page.evaluate(
        "document.scrollingElement.scrollWidth"
    ) <= await chat.page.evaluate("window.innerWidth")

    # Whitespace only: the page trims and sends nothing (the text stays in the box)…
    users = await chat.user.count()
    await chat.say("   \n ")
    await chat.send_button.click()
    await expect(chat.input).to_have_value("   \n ")
    await expect(chat.user).to_have_count(users)
    # …so send it over a WebSocket of our own; the answer reaches the page too.
    await chat.open_probe_socket()
    await chat.probe_send(json.dumps({"type": "text", "id": "blank-1", "text": "  \t\n "}))
    await expect(chat.bot).to_have_count(13)
    await chat.expect_notice_then_question(topics, EMPTY)

    # After all that the conversation goes on.
    await chat.press("Culture and sport")
    await expect(chat.button("✓ Culture and sport")).to_be_visible()
    await expect(chat.errors).to_have_count(0)


async def test_malformed_frames_get_an_error_frame_and_the_socket_stays_usable(
    browser: Browser, url: str
) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    await chat.open_probe_socket()
    await chat.wait_for_probe_frames("message", 1)  # the question, asked again on connect
    malformed = [
        "not json",
        json.dumps({"type": "text"}),  # no id
        json.dumps({"type": "text", "id": "t-1"}),  # no text
        json.dumps({"type": "text", "id": "", "text": "hi"}),
        json.dumps({"type": "text", "id": "i" * 65, "text": "hi"}),
        json.dumps([1, 2, 3]),
        json.dumps(None),
        json.dumps({"type": "teleport", "id": "t-2"}),
        json.dumps({"type": "button", "id": "t-3", "payload": ""}),
        json.dumps({"type": "button", "id": "t-4", "payload": "p" * 65}),
        json.dumps({"type": "location", "id": "t-5", "latitude": "north", "longitude": 0}),
        json.dumps({"type": "location", "id": "t-6", "latitude": 91, "longitude": 0}),
        json.dumps({"type": "location", "id": "t-7", "latitude": [], "longitude": 0}),
    ]
    for raw in malformed:
        await chat.probe_send(raw)
    errors = await chat.wait_for_probe_frames("error", len(malformed))
    # No language chosen yet: the answer is in the municipality's, Latvian.
    assert [e["text"] for e in errors] == [UNREADABLE_LV] * len(malformed)

    # The same socket still works: a good frame after the bad ones is answered.
    messages = len(await chat.probe_frames("message"))
    await chat.probe_send(json.dumps({"type": "text", "id": "t-8", "text": "/help"}))
    frames = await chat.wait_for_probe_frames("message", messages + 1)
    # The help and the open question again, as one message with the question's buttons.
    answer = frames[messages]
    assert "/mydata" in answer["text"]
    assert answer["text"].endswith(f"\n\n{FIRST_QUESTION_LV}")
    assert [b["payload"] for row in answer["buttons"] for b in row] == [
        "onb:language:lv",
        "onb:language:en",
        "onb:language:ru",
    ]
    assert await chat.page.evaluate("window.__probe.ws.readyState") == 1
    # The page's own connection was not disturbed, and it shows no error.
    await expect(chat.bot.filter(has_text="/mydata")).to_have_count(1)
    await expect(chat.errors).to_have_count(0)
    await expect(chat.status).to_have_text("")


async def test_an_error_frame_speaks_the_residents_language(browser: Browser, url: str) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    await chat.press("English")
    await expect(chat.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    await chat.open_probe_socket()
    await chat.probe_send("not json")
    [error] = await chat.wait_for_probe_frames("error", 1)
    assert error["text"] == UNREADABLE


async def test_a_deeply_nested_frame_gets_an_error_frame_too(browser: Browser, url: str) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    await chat.open_probe_socket()
    await chat.probe_send("[" * 100_000)  # 100 KB: under the frame limit
    # Whichever comes first: the answer, or the socket closing.
    await chat.page.wait_for_function(
        "() => window.__probe.closed !== null"
        " || window.__probe.frames.some((f) => f.type === 'error')"
    )
    assert await chat.page.evaluate("window.__probe.closed") is None
    assert [e["text"] for e in await chat.probe_frames("error")] == [UNREADABLE_LV]


# --- 4. keyboard and screen reader ----------------------------------------------
async def test_the_chat_works_by_keyboard_and_names_its_parts(browser: Browser, url: str) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    page = chat.page
    await expect(chat.log).to_have_attribute("role", "log")
    await expect(chat.log).to_have_attribute("aria-live", "polite")
    await expect(page.get_by_role("log")).to_have_count(1)
    await expect(chat.input).to_have_accessible_name(
        await page.locator("#input-label").text_content() or "?"
    )
    await expect(chat.status).to_have_attribute("role", "status")

    # The first question by keyboard alone: Tab to "English", press Enter.
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    english = chat.button("English")
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await english.evaluate("(b) => b === document.activeElement"):
            break
    await expect(english).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(chat.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    await expect(page.get_by_role("log", name="Conversation")).to_be_visible()
    await expect(page.get_by_label("Your message")).to_have_count(1)

    # Onwards with Tab into the new question, and Space to press.
    centre = chat.button("Centre")
    for _ in range(6):
        await page.keyboard.press("Tab")
        if await centre.evaluate("(b) => b === document.activeElement"):
            break
    await expect(centre).to_be_focused()
    await page.keyboard.press("Space")
    await expect(chat.bot.last).to_contain_text(TOPICS_QUESTION)
    await expect(chat.user.last).to_have_text("Centre")

    # Enter in the box sends; Shift+Enter starts a new line instead.
    await chat.input.focus()
    await page.keyboard.type("/he")
    await page.keyboard.press("Shift+Enter")
    await expect(chat.input).to_have_value("/he\n")
    await page.keyboard.press("Backspace")
    await page.keyboard.type("lp")
    await page.keyboard.press("Enter")
    await expect(chat.user.last).to_have_text("/help")
    await expect(chat.input).to_have_value("")
    await expect(chat.input).to_be_focused()
    await expect(chat.bot.filter(has_text=HELP)).to_have_count(1)
    # The help, then the open question again (the topics question is edited in place
    # by toggles, so the help stays a message of its own above it).
    await expect(chat.bot).to_have_count(5)
    await expect(chat.bot.nth(-2)).to_contain_text(HELP)
    await expect(chat.bot.last).to_contain_text(TOPICS_QUESTION)
    await expect(chat.button("Done")).to_be_visible()


async def test_focus_stays_on_the_topic_pressed_by_keyboard(browser: Browser, url: str) -> None:
    chat = await open_chat(await quiet_context(browser), url)
    await choose_english_and_centre(chat)
    education = chat.button("Education")
    await education.focus()
    await chat.page.keyboard.press("Enter")
    await expect(chat.button("✓ Education")).to_be_visible()
    # The focus moves (or not) when the message is rebuilt: nothing to wait for.
    focused = await chat.page.evaluate("document.activeElement.textContent")
    assert focused == "✓ Education"


# --- 5 and 8. a phone screen ------------------------------------------------------
async def test_the_chat_fits_a_phone_screen(browser: Browser, url: str, tmp_path: Path) -> None:
    context = await quiet_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    chat = await open_chat(context, url)
    page = chat.page
    await onboard(chat)

    assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    await expect(chat.input).to_be_visible()
    await expect(chat.input).to_be_in_viewport()
    await expect(chat.send_button).to_be_in_viewport()
    await expect(chat.bot.last.get_by_role("button")).to_have_text(MENU_BUTTONS)
    for button in await chat.bot.last.get_by_role("button").all():
        await expect(button).to_be_in_viewport()
    heights = await page.eval_on_selector_all(
        "[data-testid=log] button, [data-testid=send], [data-testid=input]",
        "(nodes) => nodes.map((n) => n.getBoundingClientRect().height)",
    )
    assert heights, "no buttons on the page"
    assert min(heights) >= 44, heights
    await page.screenshot(path=tmp_path / "main-menu-360x740.png")

    # A long unbroken word (a pasted link, say) wraps instead of widening the page.
    await chat.say("https://example.lv/" + "a" * 300)
    await expect(chat.bot).to_have_count(6)
    await chat.expect_text(chat.bot.last, f"{DID_NOT_UNDERSTAND}\n\n{MAIN_MENU}")
    assert await page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    await expect(chat.input).to_be_in_viewport()


# --- 6. nothing from elsewhere -----------------------------------------------------
async def test_the_page_loads_nothing_from_outside_the_server(browser: Browser, url: str) -> None:
    context = await quiet_context(browser)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = await context.new_page()
    page.on("websocket", lambda socket: requested.append(socket.url))
    chat = await ChatPage.open(page, url)
    await onboard(chat)

    paths = {urlsplit(u).path for u in requested}
    assert {"/", "/static/chat.js", "/static/chat.css", "/ws"} <= paths, requested
    network = [u for u in requested if urlsplit(u).scheme != "data"]
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in network), requested


# --- 7. security ------------------------------------------------------------------------
async def test_the_websocket_needs_the_cookie_and_our_origin(bot: Runtime, url: str) -> None:
    base = url.rstrip("/")
    ws_url = base.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            cookie = response.cookies[COOKIE].value

        async def handshake(**headers: str) -> int:
            try:
                async with http.ws_connect(ws_url, headers=headers) as ws:
                    frame = await ws.receive_json(timeout=5)
                    assert frame["type"] == "ui"
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

        own = f"{COOKIE}={cookie}"
        assert await handshake() == 403
        assert await handshake(Origin=base) == 403
        assert await handshake(Cookie=own, Origin="http://evil.example") == 403
        assert await handshake(Cookie=own, Origin="http://127.0.0.1.evil.example") == 403
        assert await handshake(Cookie=f"{COOKIE}=someone.{cookie.split('.', 1)[1]}") == 403
        assert await handshake(Cookie=f"{COOKIE}={cookie}x", Origin=base) == 403
        # The same cookie from our own page's origin is let in.
        assert await handshake(Cookie=own, Origin=base) == 101


async def test_the_cookie_is_httponly_and_invisible_to_scripts(
    browser: Browser, bot: Runtime, url: str
) -> None:
    context = await quiet_context(browser)
    chat = await open_chat(context, url)
    [cookie] = [c for c in await context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert COOKIE not in await chat.page.evaluate("document.cookie")
    assert await cookie_user(context, bot)


# --- /mydata --------------------------------------------------------------------------
async def test_my_data_shows_what_is_held_and_deletes_it(
    browser: Browser, bot: Runtime, url: str
) -> None:
    context = await quiet_context(browser)
    chat = await open_chat(context, url)
    await onboard(chat)
    user_id = await cookie_user(context, bot)

    await chat.press("My data")
    overview = chat.bot.last
    await expect(overview).to_contain_text("This is everything we hold about you:")
    await expect(overview).to_contain_text("Language: English")
    await expect(overview).to_contain_text("Neighbourhood: Centre")
    await expect(overview).to_contain_text("Topics: Roads and transport, Education")
    await expect(overview).to_contain_text(f"Account: Web chat {user_id}")
    await chat.press("Delete my data")
    await expect(chat.bot.last).to_contain_text("This cannot be undone.")
    await chat.press("Yes, delete")
    await expect(chat.bot.filter(has_text="Your data has been deleted.")).to_have_count(1)
    assert await Resident.all().count() == 0
    assert await ChannelIdentity.all().count() == 0

    # The page is given a fresh cookie at once, without a reload, and connects again as
    # nobody yet: it shows the first question, and no resident row is made for it.
    await expect(chat.bot.last).to_contain_text(FIRST_QUESTION_LV)
    fresh = await cookie_user(context, bot)
    assert fresh != user_id
    await expect(chat.status).to_have_text("")
    await expect(chat.errors).to_have_count(0)
    assert await Resident.all().count() == 0

    # Reloading the page creates nobody either; the old id never comes back.
    again = await open_chat(context, url)
    await expect(again.bot.last).to_contain_text(FIRST_QUESTION_LV)
    await expect(again.page.locator("html")).to_have_attribute("lang", "lv")
    assert await cookie_user(context, bot) == fresh
    assert await Resident.all().count() == 0

    # Answering starts a new resident, under the new id.
    await again.press("English")
    await expect(again.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)
    [identity] = await ChannelIdentity.all()
    assert identity.external_id == fresh
    resident = await Resident.get()
    assert (resident.language, resident.onboarded_at) == ("en", None)


# --- a notice and the reply after it: one message ---------------------------------------
@asynccontextmanager
async def serve(webchat: WebChat) -> AsyncIterator[str]:
    """The web chat alone on a free port, as the bot's HTTP server serves it; yields its URL."""
    app = build_app()
    webchat.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await webchat.close()
        await runner.cleanup()


async def test_a_notice_is_joined_to_the_question_after_it_but_never_to_an_edit(
    chromium_present: None,
) -> None:
    asked = "Which topics interest you?"
    toggled = f"{asked}\n\n1 topic chosen: Education"
    buttons = [[Button("Education", "onb:topics:education"), Button("Done", "onb:topics:_done")]]
    ticked = [[Button("✓ Education", "onb:topics:education"), Button("Done", "onb:topics:_done")]]
    scripted = Scripted(
        [
            [Reply(EXPIRED), Reply(asked, buttons)],  # on opening the page
            [Reply("Noted."), Reply(toggled, ticked, replace=True)],  # on pressing Education
        ]
    )
    webchat = WebChat(scripted.feed, "Demo novads", "lv", "cookie-secret")
    async with serve(webchat) as url, chromium() as browser:
        chat = await open_chat(await quiet_context(browser), url)

        # A notice and a question: one message, the question's buttons under both.
        question = chat.bot.first
        await chat.expect_text(question, f"{EXPIRED}\n\n{asked}")
        await expect(chat.bot).to_have_count(1)
        assert await chat.buttons(question) == [
            ("Education", "onb:topics:education"),
            ("Done", "onb:topics:_done"),
        ]

        # A notice and an edit in place (a toggle): the pressed message becomes the toggled
        # question alone, without any notice, and the notice is a message of its own after it.
        await chat.press("Education", question)
        await expect(chat.bot).to_have_count(2)
        await chat.expect_text(question, toggled)
        assert await chat.buttons(question) == [
            ("✓ Education", "onb:topics:education"),
            ("Done", "onb:topics:_done"),
        ]
        await chat.expect_text(chat.bot.last, "Noted.")
        assert await chat.buttons(chat.bot.last) == []
        await expect(chat.errors).to_have_count(0)
    assert scripted.script == []


# --- too many new residents from one address --------------------------------------------
async def test_a_client_over_its_new_resident_limit_is_told_why_in_the_page(
    chromium_present: None, start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(
        config_file(tmp_path, "[webchat]\nnew_residents_per_address_per_hour = 1\n")
    )
    url = f"http://127.0.0.1:{runtime.config.http_port}/"
    await wait_clear_of_the_hour()
    async with chromium() as browser:
        first = await open_chat(await quiet_context(browser), url)
        await first.press("English")
        await expect(first.bot.last).to_contain_text(NEIGHBOURHOOD_QUESTION)

        # Fresh cookies from the same address: the page says why and when, not an empty chat.
        chat = ChatPage(await (await quiet_context(browser)).new_page())
        before = minutes_to_the_hour()
        await chat.page.goto(url)
        await expect(chat.errors).to_have_count(1)
        said = await chat.errors.first.text_content()
        assert said in refusal(LV, {before, minutes_to_the_hour()})
        await expect(chat.bot).to_have_count(0)
        await expect(chat.status).to_have_text("")
        assert await chat.html_lang() == "lv"
    assert await Resident.all().count() == 1


# --- a push and its edit reach every open tab under one message id -----------------------
async def test_a_push_returns_its_frame_id_and_an_edit_changes_it_in_every_tab() -> None:
    """What the outbox keeps (``Channel.send``'s id) names the same message in both tabs,
    so a later edit through the outbox (a staff report, a poll) changes it in both."""
    webchat = WebChat(Scripted([[], []]).feed, "Demo novads", "lv", "cookie-secret")
    async with serve(webchat) as url, aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            cookie = response.cookies[COOKIE].value
        user_id = verify("cookie-secret", cookie)
        assert user_id is not None
        headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": url.rstrip("/")}
        ws_url = url.replace("http://", "ws://") + "ws"
        async with (
            http.ws_connect(ws_url, headers=headers) as one,
            http.ws_connect(ws_url, headers=headers) as two,
        ):
            for tab in (one, two):
                assert (await tab.receive_json(timeout=5))["type"] == "ui"
            question = Reply("Votes: 0", [[Button("Vote", "poll:3:opt:1")]])
            message_id = await webchat.send(user_id, question)
            sent = [await tab.receive_json(timeout=5) for tab in (one, two)]
            assert {frame["id"] for frame in sent} == {message_id}
            assert sent[0]["buttons"] == [[{"label": "Vote", "payload": "poll:3:opt:1"}]]

            later = Reply("Votes: 1", [[Button("Vote", "poll:3:opt:1")]])
            assert await webchat.edit(user_id, message_id, later) is True
            edited = [await tab.receive_json(timeout=5) for tab in (one, two)]
            assert {(f["id"], f["replace"], f["text"]) for f in edited} == {
                (message_id, message_id, "Votes: 1")
            }
    assert await webchat.edit(user_id, message_id, later) is False, "no tab open any more"
