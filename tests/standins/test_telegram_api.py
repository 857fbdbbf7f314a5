"""The Bot API stand-in behaves like Telegram, driven by the real python-telegram-bot client.

Error texts are asserted on ``api.errors`` (exactly what went over the wire): PTB rewrites
descriptions before raising (drops "Bad Request: ", then ``str.capitalize()``).
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    filters,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBUserWarning

from .telegram_api import BLOCKED_BY_USER, BotApiStandIn, IgnoredRetryAfter, RateLimited

ANNA = 1001
JANIS = 1002


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.upper(), callback_data=d) for d in data]])


@pytest_asyncio.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA, "Anna")
        stand_in.add_user(JANIS, "Jānis", language_code="en")
        yield stand_in


@pytest_asyncio.fixture
async def bot(api: BotApiStandIn) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as client:
        yield client


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class WebhookReceiver:
    """A minimal bot-side webhook endpoint that answers with scripted statuses."""

    def __init__(self, statuses: list[int], answers: list[dict[str, object]] | None = None) -> None:
        self.statuses = statuses
        self.answers = answers or []  # JSON bodies of the 200s, in turn
        self.received: list[tuple[dict[str, object], str | None]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.received.append((update, request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and self.answers:
            return web.json_response(self.answers.pop(0))
        return web.Response(status=status)

    async def __aenter__(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


# ------------------------------------------------------------------------------- wire format


@pytest.mark.asyncio
async def test_get_me_describes_the_bot_behind_the_token(bot: Bot, api: BotApiStandIn) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (api.bot_id, api.bot_username, True)
    assert api.token.startswith(f"{api.bot_id}:")


@pytest.mark.asyncio
async def test_a_wrong_token_is_unauthorized(api: BotApiStandIn) -> None:
    # Own request objects: Bot.shutdown() skips closing them when initialize() failed.
    requests = HTTPXRequest(), HTTPXRequest()
    stranger = Bot(
        "654321:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        base_url=api.base_url,
        request=requests[0],
        get_updates_request=requests[1],
    )
    try:
        with pytest.raises(InvalidToken):
            await stranger.get_me()
    finally:
        await asyncio.gather(*(r.shutdown() for r in requests))
    assert api.errors[-1].description == "Unauthorized"


@pytest.mark.asyncio
async def test_error_bodies_have_telegrams_exact_shape(
    api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{api.url}/bot654321:wrong/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    async with http.post(f"{api.url}/bot{api.token}/sendTelepathy") as response:
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
    async with http.post(f"{api.url}/bot{api.token}/sendMessage", data={"text": "x"}) as response:
        assert response.status == 400
        assert await response.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: chat_id is empty",
        }


@pytest.mark.asyncio
async def test_an_unknown_method_is_not_found(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(EndPointNotFound):  # PTB's reading of a 404 once getMe has worked
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": ANNA})
    assert api.errors[-1] == ("sendTelepathy", "Not Found")


@pytest.mark.asyncio
async def test_method_names_are_case_insensitive(
    api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{api.url}/bot{api.token}/GETME") as response:
        body = await response.json()
    assert body["ok"] is True and body["result"]["id"] == api.bot_id
    assert api.requests[-1].method == "getMe"


@pytest.mark.asyncio
async def test_json_bodies_and_query_strings_are_understood_like_form_fields(
    api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    base = f"{api.url}/bot{api.token}"
    markup = {"inline_keyboard": [[{"text": "Jā", "callback_data": "yes"}]]}
    async with http.post(
        f"{base}/sendMessage", json={"chat_id": ANNA, "text": "json", "reply_markup": markup}
    ) as response:
        assert (await response.json())["result"]["reply_markup"] == markup
    async with http.post(f"{base}/sendMessage?chat_id={ANNA}&text=query") as response:
        assert (await response.json())["ok"] is True
    # Non-string JSON values arrive as their JSON text, exactly as Telegram sees them.
    assert api.requests_of("sendMessage")[0]["chat_id"] == str(ANNA)
    assert [m.text for m in api.messages(ANNA)] == ["json", "query"]


@pytest.mark.asyncio
async def test_ptb_sends_form_fields_with_json_encoded_values(bot: Bot, api: BotApiStandIn) -> None:
    await bot.send_message(ANNA, "Sveiki!", reply_markup=keyboard("yes"))
    params = api.requests_of("sendMessage")[-1]
    assert params["chat_id"] == str(ANNA)
    assert json.loads(params["reply_markup"]) == {
        "inline_keyboard": [[{"text": "YES", "callback_data": "yes"}]]
    }


# ------------------------------------------------------------------------------- sendMessage


@pytest.mark.asyncio
async def test_sent_message_is_returned_and_shown_in_the_chat(bot: Bot, api: BotApiStandIn) -> None:
    sent = await bot.send_message(ANNA, "Sveiki, <b>Anna</b>!", parse_mode="HTML")
    assert sent.text == "Sveiki, Anna!"
    assert sent.chat.id == ANNA and sent.from_user is not None and sent.from_user.is_bot
    assert sent.entities[0].type == "bold"
    shown = api.last_message(ANNA)
    assert (shown.message_id, shown.text, shown.reply_markup) == (sent.message_id, sent.text, None)


@pytest.mark.asyncio
async def test_unknown_chat_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999_999, "Sveiki!")
    assert api.errors[-1] == ("sendMessage", "Bad Request: chat not found")


@pytest.mark.asyncio
async def test_a_command_menu_for_one_chat_needs_a_chat_that_exists(
    bot: Bot, api: BotApiStandIn
) -> None:
    api.add_user(4242, "Ilze")
    commands = [BotCommand("announce", "Write an announcement")]
    assert await bot.set_my_commands(commands, scope=BotCommandScopeChat(4242))
    assert api.commands_by_chat[(4242, "")] == [
        {"command": "announce", "description": "Write an announcement"}
    ]
    assert api.commands == [], "the default menu is left alone"
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.set_my_commands(commands, scope=BotCommandScopeChat(999_999))
    with pytest.raises(BadRequest, match="Unsupported"):  # a scope the bot never uses
        await bot.set_my_commands(commands, scope=BotCommandScopeAllGroupChats())


@pytest.mark.asyncio
async def test_missing_required_parameter_is_named(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest), pytest.warns(PTBUserWarning, match="Bot.sendMessage"):
        await bot.do_api_request("sendMessage", api_kwargs={"text": "Sveiki!"})
    assert api.errors[-1].description == "Bad Request: chat_id is empty"


@pytest.mark.asyncio
async def test_empty_text_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "")
    assert api.errors[-1].description == "Bad Request: message text is empty"


@pytest.mark.asyncio
async def test_whitespace_only_text_is_rejected_as_telegram_words_it(
    bot: Bot, api: BotApiStandIn
) -> None:
    # The real server: "" fails in the Bot API layer, " \n " only after TDLib trims it.
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, " \n ")
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "<b> </b>", parse_mode="HTML")
    assert {e.description for e in api.errors} == {"Bad Request: text must be non-empty"}
    assert api.messages(ANNA) == []


@pytest.mark.asyncio
async def test_surrounding_spaces_and_newlines_are_trimmed(bot: Bot, api: BotApiStandIn) -> None:
    sent = await bot.send_message(ANNA, "\n  Sveiki!  \n")
    assert sent.text == api.last_message(ANNA).text == "Sveiki!"


@pytest.mark.asyncio
async def test_text_over_4096_utf16_units_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    await bot.send_message(ANNA, "a" * 4096)
    await bot.send_message(ANNA, "😀" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "😀" * 2049)  # only 2049 characters, but 4098 units
    assert api.errors[-1].description == "Bad Request: message is too long"
    assert len(api.messages(ANNA)) == 2


@pytest.mark.asyncio
async def test_length_is_counted_after_markup_is_parsed(bot: Bot, api: BotApiStandIn) -> None:
    await bot.send_message(ANNA, f"<b>{'a' * 4096}</b>", parse_mode="HTML")
    assert len(api.last_message(ANNA).body) == 4096


@pytest.mark.asyncio
async def test_html_that_telegram_cannot_parse_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    for text in ("Ielas nr. < 5", "<b>bold</i>", "<div>x</div>", "<b>open"):
        with pytest.raises(BadRequest):
            await bot.send_message(ANNA, text, parse_mode="HTML")
    assert [e.description for e in api.errors] == [
        'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 10',
        "Bad Request: can't parse entities: Unmatched end tag at byte offset 7, "
        'expected "</b>", found "</i>"',
        'Bad Request: can\'t parse entities: Unsupported start tag "div" at byte offset 0',
        "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"",
    ]
    sent = await bot.send_message(ANNA, "Ielas nr. &lt; 5 &amp; <i>ok</i>", parse_mode="HTML")
    assert sent.text == "Ielas nr. < 5 & ok"


@pytest.mark.asyncio
async def test_unescaped_markdown_v2_reserved_character_is_rejected(
    bot: Bot, api: BotApiStandIn
) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "Cena: 5.50 EUR", parse_mode="MarkdownV2")
    assert api.errors[-1].description == (
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped "
        "with the preceding '\\'"
    )
    sent = await bot.send_message(ANNA, r"*Cena:* 5\.50 EUR", parse_mode="MarkdownV2")
    assert sent.text == "Cena: 5.50 EUR" and sent.entities[0].type == "bold"


@pytest.mark.asyncio
async def test_callback_data_over_64_utf8_bytes_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    await bot.send_message(ANNA, "ok", reply_markup=keyboard("a" * 64, "ā" * 32))  # 64 bytes each
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "too long", reply_markup=keyboard("ā" * 33))  # 66 bytes
    assert api.errors[-1].description == "Bad Request: BUTTON_DATA_INVALID"
    assert [m.body for m in api.messages(ANNA)] == ["ok"]


@pytest.mark.asyncio
async def test_a_button_without_callback_data_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    # The real server treats "" as absent, i.e. as a plain text button, which inline
    # keyboards do not allow.
    markup = json.dumps({"inline_keyboard": [[{"text": "Jā", "callback_data": ""}]]})
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "x", api_kwargs={"reply_markup": markup})
    assert api.errors[-1].description == (
        "Bad Request: can't parse inline keyboard button: "
        "Text buttons are unallowed in the inline keyboard"
    )


@pytest.mark.asyncio
async def test_malformed_reply_markup_json_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "x", api_kwargs={"reply_markup": '{"inline_keyboard": [['})
    assert api.errors[-1].description == (
        "Bad Request: can't parse reply keyboard markup JSON object"
    )


@pytest.mark.asyncio
async def test_reply_keyboard_is_kept_for_the_test_but_not_echoed_by_telegram(
    bot: Bot, api: BotApiStandIn
) -> None:
    markup = ReplyKeyboardMarkup(
        [[KeyboardButton("Sūtīt atrašanās vietu", request_location=True)]], resize_keyboard=True
    )
    sent = await bot.send_message(ANNA, "Kur tas ir?", reply_markup=markup)
    assert sent.reply_markup is None  # Message.reply_markup is inline keyboards only
    assert api.keyboard(ANNA) is not None
    assert api.last_message(ANNA).button_texts() == [["Sūtīt atrašanās vietu"]]
    await bot.send_message(ANNA, "Paldies!", reply_markup=ReplyKeyboardRemove())
    assert api.keyboard(ANNA) is None


@pytest.mark.asyncio
async def test_reply_to_a_missing_message_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    update = api.send_text(ANNA, "Bedre uz ielas")
    asked = update["message"]["message_id"]
    sent = await bot.send_message(ANNA, "Pieņemts", reply_to_message_id=asked)
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "Bedre uz ielas"
    with pytest.raises(BadRequest):
        await bot.send_message(ANNA, "Pieņemts", reply_to_message_id=asked + 100)
    assert api.errors[-1].description == "Bad Request: message to be replied not found"


# ------------------------------------------------------------------------------- edits


@pytest.mark.asyncio
async def test_edits_change_the_message_in_place(bot: Bot, api: BotApiStandIn) -> None:
    sent = await bot.send_message(ANNA, "Izvēlieties:", reply_markup=keyboard("a", "b"))
    edited = await bot.edit_message_text(
        "Izvēlēts: A", chat_id=ANNA, message_id=sent.message_id, reply_markup=keyboard("back")
    )
    assert isinstance(edited, type(sent)) and edited.edit_date is not None
    shown = api.messages(ANNA)
    assert len(shown) == 1
    assert (shown[0].text, shown[0].callback_data(), shown[0].edits) == ("Izvēlēts: A", ["back"], 1)
    await bot.edit_message_reply_markup(chat_id=ANNA, message_id=sent.message_id)
    assert api.last_message(ANNA).reply_markup is None


@pytest.mark.asyncio
async def test_edit_of_unknown_message_is_rejected(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest):
        await bot.edit_message_text("x", chat_id=ANNA, message_id=4242)
    with pytest.raises(BadRequest):
        await bot.edit_message_reply_markup(chat_id=ANNA, message_id=4242)
    assert {e.description for e in api.errors} == {"Bad Request: message to edit not found"}


@pytest.mark.asyncio
async def test_edit_with_identical_text_and_markup_is_rejected(
    bot: Bot, api: BotApiStandIn
) -> None:
    sent = await bot.send_message(ANNA, "Izvēlieties:", reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Izvēlieties:", chat_id=ANNA, message_id=sent.message_id, reply_markup=keyboard("a")
        )
    with pytest.raises(BadRequest):
        await bot.edit_message_reply_markup(
            chat_id=ANNA, message_id=sent.message_id, reply_markup=keyboard("a")
        )
    assert {e.description for e in api.errors} == {
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message"
    }
    # Same text without reply_markup is a change: it removes the keyboard, as at Telegram.
    await bot.edit_message_text("Izvēlieties:", chat_id=ANNA, message_id=sent.message_id)
    assert api.last_message(ANNA).reply_markup is None


@pytest.mark.asyncio
async def test_a_residents_message_cannot_be_edited(bot: Bot, api: BotApiStandIn) -> None:
    update = api.send_text(ANNA, "Sveiki")
    with pytest.raises(BadRequest):
        await bot.edit_message_text("x", chat_id=ANNA, message_id=update["message"]["message_id"])
    assert api.errors[-1].description == "Bad Request: message can't be edited"


@pytest.mark.asyncio
async def test_deleted_message_disappears_and_cannot_be_deleted_twice(
    bot: Bot, api: BotApiStandIn
) -> None:
    sent = await bot.send_message(ANNA, "Uz brīdi")
    assert await bot.delete_message(ANNA, sent.message_id) is True
    assert api.messages(ANNA) == []
    with pytest.raises(BadRequest):
        await bot.delete_message(ANNA, sent.message_id)
    assert api.errors[-1].description == "Bad Request: message to delete not found"


# ------------------------------------------------------------------------------- photos


@pytest.mark.asyncio
async def test_send_photo_takes_an_upload_a_known_file_id_or_a_url(
    bot: Bot, api: BotApiStandIn
) -> None:
    uploaded = await bot.send_photo(ANNA, b"\xff\xd8\xff\xe0fake-jpeg", caption="Karte")
    assert uploaded.caption == "Karte" and len(uploaded.photo) > 1
    largest = uploaded.photo[-1].file_id
    again = await bot.send_photo(ANNA, largest)
    by_url = await bot.send_photo(ANNA, "https://example.org/karte.png")
    assert again.photo and by_url.photo
    assert [m.photo for m in api.messages(ANNA)] == [
        largest,
        largest,
        "https://example.org/karte.png",
    ]


@pytest.mark.asyncio
async def test_send_photo_rejects_what_telegram_rejects(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest):
        await bot.send_photo(ANNA, "AgACAgIAAxkBAAINeverIssued")
    with pytest.raises(BadRequest):
        await bot.send_photo(ANNA, b"not an image")
    with pytest.raises(BadRequest):
        await bot.send_photo(ANNA, b"\xff\xd8\xff\xe0fake-jpeg", caption="x" * 1025)
    assert [e.description for e in api.errors] == [
        "Bad Request: wrong file identifier/HTTP URL specified",
        "Bad Request: IMAGE_PROCESS_FAILED",
        "Bad Request: message caption is too long",
    ]
    await bot.send_photo(ANNA, b"\xff\xd8\xff\xe0fake-jpeg", caption="x" * 1024)


@pytest.mark.asyncio
async def test_a_residents_photo_can_be_downloaded_with_get_file(
    bot: Bot, api: BotApiStandIn
) -> None:
    update = api.send_photo(ANNA, caption="Bedre", content=b"\xff\xd8\xffPOTHOLE")
    file = await bot.get_file(update["message"]["photo"][-1]["file_id"])
    assert bytes(await file.download_as_bytearray()) == b"\xff\xd8\xffPOTHOLE"
    with pytest.raises(BadRequest):
        await bot.get_file("no-such-file")
    assert api.errors[-1].description == "Bad Request: invalid file_id"


# ------------------------------------------------------------------------------- residents


@pytest.mark.asyncio
async def test_resident_messages_arrive_as_ptb_understands_them(
    bot: Bot, api: BotApiStandIn
) -> None:
    api.send_text(ANNA, "/start pothole_42")
    api.send_photo(ANNA, caption="Bedre")
    api.send_sticker(ANNA)
    api.send_location(ANNA, 56.9496, 24.1052)
    api.send_contact(ANNA, "+37120000000")
    updates = await bot.get_updates()
    messages = [u.message for u in updates if u.message is not None]
    assert len(messages) == 5
    start, photo, sticker, location, contact = messages
    assert filters.COMMAND.check_update(updates[0])
    assert start.parse_entities() == {start.entities[0]: "/start"}
    assert photo.photo and photo.caption == "Bedre"
    assert sticker.sticker is not None and sticker.sticker.emoji == "👍"
    assert location.location is not None and location.location.latitude == 56.9496
    assert contact.contact is not None and contact.contact.user_id == ANNA
    assert start.from_user is not None and start.from_user.language_code == "lv"


@pytest.mark.asyncio
async def test_command_after_text_gets_its_entity_at_the_utf16_offset(api: BotApiStandIn) -> None:
    update = api.send_text(ANNA, "😀 /help@iesaiste_test_bot")
    assert update["message"]["entities"] == [{"offset": 3, "length": 23, "type": "bot_command"}]
    assert "entities" not in api.send_text(ANNA, "a/b un 1/2")["message"]


@pytest.mark.asyncio
async def test_press_button_sends_the_current_message_and_refuses_absent_buttons(
    bot: Bot, api: BotApiStandIn
) -> None:
    sent = await bot.send_message(ANNA, "Vai tas ir bīstami?", reply_markup=keyboard("yes", "no"))
    with pytest.raises(AssertionError, match="no inline button"):
        api.press_button(ANNA, sent.message_id, "maybe")
    with pytest.raises(
        AssertionError, match=f"^chat {JANIS} has no bot message {sent.message_id}$"
    ):
        api.press_button(JANIS, sent.message_id, "yes")  # not in Jānis's chat
    update = api.press_button(ANNA, sent.message_id, "yes")
    (received,) = await bot.get_updates()
    query = received.callback_query
    assert query is not None and query.data == "yes"
    assert query.message is not None and query.message.message_id == sent.message_id
    assert received.update_id == update["update_id"]


@pytest.mark.asyncio
async def test_answering_a_callback_twice_or_an_unknown_one_is_rejected(
    bot: Bot, api: BotApiStandIn
) -> None:
    sent = await bot.send_message(ANNA, "?", reply_markup=keyboard("yes"))
    update = api.press_button(ANNA, sent.message_id, "yes")
    query_id = update["callback_query"]["id"]
    assert await bot.answer_callback_query(query_id, "Paldies!") is True
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(query_id)
    with pytest.raises(BadRequest):
        await bot.answer_callback_query("123")
    assert api.answered_callbacks[0].text == "Paldies!"
    assert [e.description for e in api.errors] == [
        "Bad Request: query is too old and response timeout expired or query ID is invalid"
    ] * 2


# ------------------------------------------------------------------------------- getUpdates


@pytest.mark.asyncio
async def test_get_updates_forgets_updates_below_offset(bot: Bot, api: BotApiStandIn) -> None:
    first = api.send_text(ANNA, "viens")["update_id"]
    second = api.send_text(ANNA, "divi")["update_id"]
    assert [u.update_id for u in await bot.get_updates()] == [first, second]
    assert [u.update_id for u in await bot.get_updates()] == [first, second]  # not confirmed
    assert [u.update_id for u in await bot.get_updates(offset=second)] == [second]
    assert await bot.get_updates(offset=second + 1) == ()
    assert await bot.get_updates() == ()  # confirmed ones are gone for good
    assert api.pending_update_count == 0


@pytest.mark.asyncio
async def test_get_updates_limit_caps_the_batch(bot: Bot, api: BotApiStandIn) -> None:
    for n in range(5):
        api.send_text(ANNA, str(n))
    assert len(await bot.get_updates(limit=2)) == 2


@pytest.mark.asyncio
async def test_long_poll_returns_as_soon_as_an_update_arrives(bot: Bot, api: BotApiStandIn) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for_requests("getUpdates")
    api.send_text(ANNA, "Sveiki")
    (update,) = await poll
    assert update.message is not None and update.message.text == "Sveiki"
    assert time.monotonic() - started < 2


@pytest.mark.asyncio
async def test_long_poll_returns_nothing_after_its_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 < time.monotonic() - started < 3


@pytest.mark.asyncio
async def test_a_second_long_poll_ends_the_first_with_conflict(
    bot: Bot, api: BotApiStandIn
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for_requests("getUpdates")
    async with Bot(api.token, base_url=api.base_url) as second_instance:
        second = asyncio.create_task(second_instance.get_updates(timeout=10))
        with pytest.raises(Conflict):
            await first
        api.send_text(ANNA, "Sveiki")
        assert len(await second) == 1
    assert api.errors[0].description == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running"
    )


@pytest.mark.asyncio
async def test_redelivered_update_keeps_its_update_id(bot: Bot, api: BotApiStandIn) -> None:
    update = api.send_text(ANNA, "/start")
    (received,) = await bot.get_updates()
    api.redeliver(update)
    (again,) = await bot.get_updates(offset=received.update_id + 1)
    assert again.update_id == received.update_id
    assert again.message is not None and again.message.message_id == update["message"]["message_id"]


@pytest.mark.asyncio
async def test_allowed_updates_drops_other_kinds_from_then_on(bot: Bot, api: BotApiStandIn) -> None:
    sent = await bot.send_message(ANNA, "?", reply_markup=keyboard("yes"))
    await bot.get_updates(allowed_updates=["message"])
    api.press_button(ANNA, sent.message_id, "yes")
    api.send_text(ANNA, "teksts")
    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["teksts"]
    assert len(updates) == 1


# ------------------------------------------------------------------------------- webhook


@pytest.mark.asyncio
async def test_get_updates_conflicts_with_an_active_webhook(bot: Bot, api: BotApiStandIn) -> None:
    async with WebhookReceiver([]) as hook:
        assert await bot.set_webhook(hook.url) is True
        with pytest.raises(Conflict):
            await bot.get_updates()
        assert api.errors[-1].description == (
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
            "to delete the webhook first"
        )
        assert await bot.delete_webhook() is True
        assert await bot.get_updates() == ()


@pytest.mark.asyncio
async def test_webhook_gets_updates_as_json_with_the_secret_token(
    bot: Bot, api: BotApiStandIn
) -> None:
    async with WebhookReceiver([]) as hook:
        await bot.set_webhook(hook.url, secret_token="s3cr3t-Token_1")
        update = api.send_text(ANNA, "Sveiki")
        await api.wait_until(lambda: api.webhook_statuses == [200])
        assert hook.received == [(update, "s3cr3t-Token_1")]
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (hook.url, 0)
        assert api.webhook_secret_token == "s3cr3t-Token_1"


@pytest.mark.asyncio
async def test_webhook_delivery_is_retried_until_the_bot_answers_2xx(
    bot: Bot, api: BotApiStandIn
) -> None:
    async with WebhookReceiver([500, 502]) as hook:
        await bot.set_webhook(hook.url)
        update = api.send_text(ANNA, "Sveiki")
        await api.wait_until(lambda: len(api.webhook_statuses) == 3, what="3 attempts")
        assert api.webhook_statuses == [500, 502, 200]
        assert [u for u, _ in hook.received] == [update] * 3
        info = await bot.get_webhook_info()
        assert info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"


@pytest.mark.asyncio
async def test_a_method_in_the_webhooks_answer_is_carried_out(bot: Bot, api: BotApiStandIn) -> None:
    sent = await bot.send_message(ANNA, "Jā vai nē?", reply_markup=keyboard("yes"))
    press = api.press_button(ANNA, sent.message_id, "yes")
    query_id = press["callback_query"]["id"]
    stop_spinner = {"method": "answerCallbackQuery", "callback_query_id": query_id}
    async with WebhookReceiver([], answers=[stop_spinner]) as hook:
        await bot.set_webhook(hook.url)
        await api.wait_until(lambda: api.webhook_statuses == [200])
    assert [a.callback_query_id for a in api.answered_callbacks] == [query_id]
    (request,) = [r for r in api.requests if r.method == "answerCallbackQuery"]
    assert request.from_webhook_answer


@pytest.mark.asyncio
async def test_a_refused_method_in_the_webhooks_answer_changes_nothing(
    bot: Bot, api: BotApiStandIn
) -> None:
    refused = [
        {"method": "answerCallbackQuery", "callback_query_id": "123"},  # no such query
        {"method": "sendMessage", "chat_id": ANNA, "text": ""},  # empty text
        {"method": "noSuchMethod"},
    ]
    async with WebhookReceiver([], answers=refused) as hook:
        await bot.set_webhook(hook.url)
        for text in ("viens", "divi", "trīs"):
            api.send_text(ANNA, text)
        await api.wait_until(lambda: api.webhook_statuses == [200, 200, 200])
        info = await bot.get_webhook_info()
    # Telegram tells no one: the deliveries count as answered, nothing happened.
    assert info.last_error_message is None
    assert api.answered_callbacks == [] and api.messages(ANNA) == []


@pytest.mark.asyncio
async def test_updates_queued_before_set_webhook_are_delivered_to_it(
    bot: Bot, api: BotApiStandIn
) -> None:
    waiting = api.send_text(ANNA, "agri")
    async with WebhookReceiver([]) as hook:
        await bot.set_webhook(hook.url)
        redelivered = api.redeliver(waiting)
        await api.wait_until(lambda: len(hook.received) == 2)
        assert [u["update_id"] for u, _ in hook.received] == [waiting["update_id"]] * 2
        assert redelivered is waiting


@pytest.mark.asyncio
async def test_set_webhook_rejects_bad_urls_and_secret_tokens(bot: Bot, api: BotApiStandIn) -> None:
    with pytest.raises(BadRequest):
        await bot.set_webhook("not a url")
    with pytest.raises(BadRequest):
        await bot.set_webhook("https://example.org/hook", secret_token="ne derīgs")
    assert [e.description for e in api.errors] == [
        "Bad Request: invalid webhook URL specified",
        "Bad Request: secret token contains unallowed characters",
    ]


# ------------------------------------------------------------------------------- failure hook


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's RetryAfter
async def test_fail_next_answers_429_with_retry_after_like_flood_control(
    bot: Bot, api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    api.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
    with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
        await bot.send_message(ANNA, "Sveiki")
    assert api.messages(ANNA) == []  # the refused call had no effect
    await bot.send_message(ANNA, "Sveiki")  # only the next call failed
    api.fail_next("sendMessage", 429, retry_after=5)
    async with http.post(
        f"{api.url}/bot{api.token}/sendMessage", data={"chat_id": ANNA, "text": "x"}
    ) as response:
        assert response.headers["Retry-After"] == "5"
        assert await response.json() == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 5",
            "parameters": {"retry_after": 5},
        }


@pytest.mark.asyncio
async def test_fail_next_can_target_one_chat_and_several_calls(
    bot: Bot, api: BotApiStandIn
) -> None:
    api.fail_next("SENDMESSAGE", 403, "Forbidden: bot was blocked by the user", chat_id=JANIS)
    await bot.send_message(ANNA, "Anna gets it")
    with pytest.raises(Forbidden) as blocked:
        await bot.send_message(JANIS, "Jānis does not")
    assert blocked.value.message == "Forbidden: bot was blocked by the user"
    await bot.send_message(JANIS, "but later does")
    api.fail_next("answerCallbackQuery", 500, times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error") as failed:
            await bot.answer_callback_query("1")
        assert not isinstance(failed.value, BadRequest)
    assert [m.body for m in api.messages(JANIS)] == ["but later does"]


# ------------------------------------------------------------------------------- flood control


class FakeClock:
    """The stand-in's clock under the test's control: time moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> float:
        """Sets the clock to ``offset`` seconds after the start; returns the reading."""
        self.now = 1000.0 + offset
        return self.now


@pytest.fixture
def clock(api: BotApiStandIn) -> FakeClock:
    fake = FakeClock()
    api.clock = fake
    return fake


async def post_send(
    http: aiohttp.ClientSession, api: BotApiStandIn, chat_id: int, text: str = "Paziņojums"
) -> tuple[int, dict[str, object]]:
    """sendMessage over plain HTTP: quicker than PTB where only the status matters."""
    async with http.post(
        f"{api.base_url}{api.token}/sendMessage", data={"chat_id": chat_id, "text": text}
    ) as response:
        return response.status, await response.json()


def seconds(error: RetryAfter) -> float:
    value = error.retry_after  # an int, or a timedelta once PTB drops the int
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


RESIDENTS = range(5000, 5100)


@pytest.mark.asyncio
async def test_sends_are_not_throttled_by_default(bot: Bot, api: BotApiStandIn) -> None:
    await asyncio.gather(*(bot.send_message(ANNA, f"{n}") for n in range(40)))
    assert len(api.messages(ANNA)) == 40 and api.rate_limited == []


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")  # PTB's RetryAfter
async def test_over_the_overall_rate_a_send_gets_429_retry_after_and_has_no_effect(
    bot: Bot, api: BotApiStandIn, clock: FakeClock, http: aiohttp.ClientSession
) -> None:
    api.limit_rate(20, burst=3)  # 3 at once, then one per 50 ms
    start = clock.at(0)
    for chat_id in (ANNA, JANIS, ANNA):
        await bot.send_message(chat_id, "Ūdens atslēgšana rīt 9:00")
    with pytest.raises(RetryAfter) as refused:
        await bot.send_message(JANIS, "Ūdens atslēgšana rīt 9:00")
    assert seconds(refused.value) == 1  # 50 ms away, but Telegram counts whole seconds
    assert api.rate_limited == [RateLimited("sendMessage", JANIS, 1, start, "overall")]
    assert len(api.messages(JANIS)) == 1  # the refused call had no effect
    assert api.errors[-1] == ("sendMessage", "Too Many Requests: retry after 1")
    status, body = await post_send(http, api, ANNA)
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    clock.at(0.05)  # exactly when the bucket holds a token again
    await bot.send_message(JANIS, "Ūdens atslēgšana rīt 9:00")
    assert api.delivery_counts() == Counter({ANNA: 2, JANIS: 2})


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_is_rounded_up_from_when_the_chat_may_get_the_next_message(
    bot: Bot, api: BotApiStandIn, clock: FakeClock
) -> None:
    api.limit_rate(None, per_chat_per_second=0.25)  # one message per 4 s in each chat
    clock.at(0)
    sent = await bot.send_message(ANNA, "1")
    told = []
    for offset in (0.5, 3.1, 3.99):
        clock.at(offset)
        with pytest.raises(RetryAfter) as refused:
            await bot.send_message(ANNA, "2")
        told.append(seconds(refused.value))
    assert told == [4, 1, 1]  # 3.5 s, 0.9 s and 0.01 s to go
    await bot.send_message(JANIS, "other chats are not held up")
    clock.at(4.0)
    await bot.send_message(ANNA, "2")
    clock.at(4.5)  # edits count against the chat too
    with pytest.raises(RetryAfter):
        await bot.edit_message_text("1!", chat_id=ANNA, message_id=sent.message_id)
    assert [r.scope for r in api.rate_limited] == ["chat"] * 4
    assert [r.method for r in api.rate_limited][-1] == "editMessageText"
    assert [m.text for m in api.messages(ANNA)] == ["1", "2"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("pace", "refused"), [(0.95, False), (1.2, True)])
async def test_a_client_paced_below_the_rate_is_never_refused_and_one_above_it_is(
    api: BotApiStandIn, clock: FakeClock, http: aiohttp.ClientSession, pace: float, refused: bool
) -> None:
    api.add_users(RESIDENTS)
    api.limit_rate(20, per_chat_per_second=1, burst=2)
    jitter = random.Random(7)  # arrivals up to 20 ms early or late
    statuses = []
    for n in range(80):  # 4 s at 20/s, 100 chats round robin
        clock.at(n / (20 * pace) + jitter.uniform(-0.02, 0.02))
        statuses.append((await post_send(http, api, RESIDENTS[n % 100]))[0])
    if refused:
        assert 429 in statuses and {r.scope for r in api.rate_limited} == {"overall"}
        assert statuses[:6] == [200] * 6  # the burst covers the first few
    else:
        assert set(statuses) == {200} and api.rate_limited == []


@pytest.mark.asyncio
@pytest.mark.parametrize(("pace", "refused"), [(0.95, False), (1.2, True)])
async def test_per_chat_pacing_below_the_rate_passes_and_above_it_is_refused(
    api: BotApiStandIn, clock: FakeClock, http: aiohttp.ClientSession, pace: float, refused: bool
) -> None:
    api.limit_rate(30, per_chat_per_second=1, burst=2)
    jitter = random.Random(11)
    statuses = []
    for n in range(30):
        clock.at(n / pace + jitter.uniform(-0.4, 0.4))  # 1 s apart, give or take 0.4 s
        statuses.append((await post_send(http, api, ANNA))[0])
    assert (429 in statuses) is refused
    assert {r.scope for r in api.rate_limited} == ({"chat"} if refused else set())


@pytest.mark.asyncio
async def test_flood_control_works_on_the_real_clock(
    bot: Bot, api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    api.add_users(RESIDENTS)
    api.limit_rate(20, burst=2)
    for n in range(12):  # at most 0.95 x 20/s, however slow the machine: never refused
        await bot.send_message(RESIDENTS[n], "Paziņojums")
        await asyncio.sleep(1 / 19)
    assert api.rate_limited == []
    assert 0 < api.achieved_rate() <= 19
    results = await asyncio.gather(*(post_send(http, api, r) for r in RESIDENTS[20:30]))
    assert [status for status, _ in results].count(429) >= 5  # 10 at once, 2 tokens


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_calls_before_the_told_retry_after_has_passed_are_counted(
    bot: Bot, api: BotApiStandIn, clock: FakeClock
) -> None:
    api.limit_rate(None, per_chat_per_second=1, burst=1)
    clock.at(0)
    await bot.send_message(ANNA, "1")
    told_at = clock.at(0.2)
    with pytest.raises(RetryAfter):  # told: not before 1.2
        await bot.send_message(ANNA, "2")
    clock.at(0.5)
    await bot.send_message(JANIS, "another chat is fine after a per-chat 429")
    early = clock.at(1.1)  # the bucket allows it (1 s after "1"), but 1 s had not passed
    await bot.send_message(ANNA, "2")
    clock.at(2.2)
    await bot.send_message(ANNA, "3")  # waited as told
    await bot.send_message(JANIS, "3")
    assert api.ignored_retry_after == [
        IgnoredRetryAfter("sendMessage", ANNA, early, told_at, told_at + 1)
    ]

    api.limit_rate(2, burst=1)  # now an overall refusal: all chats must wait
    clock.at(10)
    await bot.send_message(ANNA, "4")
    told_at = clock.at(10.1)
    with pytest.raises(RetryAfter):
        await bot.send_message(JANIS, "5")
    early = clock.at(10.6)
    await bot.send_message(ANNA, "5")
    assert api.ignored_retry_after[1:] == [
        IgnoredRetryAfter("sendMessage", ANNA, early, told_at, told_at + 1)
    ]


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_an_injected_429_is_recorded_and_waiting_for_it_is_checked(
    bot: Bot, api: BotApiStandIn, clock: FakeClock
) -> None:
    api.fail_next("sendMessage", 429, retry_after=3, chat_id=ANNA)
    told_at = clock.at(0)
    with pytest.raises(RetryAfter) as refused:
        await bot.send_message(ANNA, "1")
    assert seconds(refused.value) == 3
    clock.at(1)
    await bot.send_message(JANIS, "1")
    early = clock.at(2.5)
    await bot.send_message(ANNA, "1")
    clock.at(3.0)
    await bot.send_message(ANNA, "2")
    assert api.rate_limited == [RateLimited("sendMessage", ANNA, 3, told_at, "injected")]
    assert api.ignored_retry_after == [
        IgnoredRetryAfter("sendMessage", ANNA, early, told_at, told_at + 3)
    ]


@pytest.mark.asyncio
async def test_limit_rate_none_ends_flood_control(bot: Bot, api: BotApiStandIn) -> None:
    api.limit_rate(1, per_chat_per_second=1, burst=1)
    api.limit_rate(None)
    await asyncio.gather(*(bot.send_message(ANNA, f"{n}") for n in range(5)))
    assert api.rate_limited == [] and len(api.delivered(ANNA)) == 5


# ------------------------------------------------------------------------------- blocked


@pytest.mark.asyncio
async def test_a_resident_who_blocked_the_bot_gets_nothing_and_the_bot_gets_403(
    bot: Bot, api: BotApiStandIn, http: aiohttp.ClientSession
) -> None:
    api.block(JANIS)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(JANIS, "Paziņojums")
    with pytest.raises(Forbidden):
        await bot.send_photo(JANIS, b"\xff\xd8\xff\xe0fake-jpeg")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(JANIS, "typing")
    assert await post_send(http, api, JANIS) == (
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    )
    assert {e.description for e in api.errors} == {BLOCKED_BY_USER}
    await bot.send_message(ANNA, "Paziņojums")
    # As at Telegram, a request that is wrong anyway is refused for that first.
    with pytest.raises(BadRequest):
        await bot.send_message(JANIS, "<b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999_999, "Paziņojums")
    assert api.delivered(JANIS) == [] and api.delivery_counts() == Counter({ANNA: 1})
    api.unblock(JANIS)
    await bot.send_message(JANIS, "Laipni lūdzam atpakaļ")
    assert api.delivery_counts() == Counter({ANNA: 1, JANIS: 1})


# ------------------------------------------------------------------------------- faults


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "words"),
    [(500, "Internal Server Error"), (502, "Bad Gateway"), (504, "Gateway Timeout")],
)
async def test_fail_next_answers_telegrams_5xx_for_one_chat_only(
    bot: Bot, api: BotApiStandIn, http: aiohttp.ClientSession, code: int, words: str
) -> None:
    api.fail_next("sendMessage", code, chat_id=JANIS, times=2)
    await bot.send_message(ANNA, "Anna gets it")
    with pytest.raises(NetworkError, match=words) as failed:  # PTB: 5xx are network errors
        await bot.send_message(JANIS, "Paziņojums")
    assert isinstance(failed.value, TelegramError) and not isinstance(failed.value, BadRequest)
    assert await post_send(http, api, JANIS) == (
        code,
        {"ok": False, "error_code": code, "description": words},
    )
    await bot.send_message(JANIS, "third time lucky")
    assert [m.text for m in api.delivered(JANIS)] == ["third time lucky"]
    assert api.errors == [("sendMessage", words)] * 2


async def failure_pattern(seed: int, probability: float = 0.3) -> list[bool]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA)
        stand_in.add_user(JANIS)
        stand_in.fail_randomly("sendMessage", probability, 502, seed=seed, chat_id=ANNA)
        async with Bot(stand_in.token, base_url=stand_in.base_url) as client:
            pattern = []
            for n in range(40):
                try:
                    await client.send_message(ANNA, f"{n}")
                    pattern.append(False)
                except NetworkError as error:
                    assert "Bad Gateway" in error.message
                    pattern.append(True)
            await client.send_message(JANIS, "never fails: not the chat")
            assert len(stand_in.delivered(ANNA)) == pattern.count(False)
            stand_in.fail_randomly("sendMessage", 0)
            await client.send_message(ANNA, "after it ends")
        return pattern


@pytest.mark.asyncio
async def test_fail_randomly_repeats_its_failures_for_the_same_seed() -> None:
    first, again, other = await asyncio.gather(
        failure_pattern(seed=42), failure_pattern(seed=42), failure_pattern(seed=43)
    )
    assert first == again and first != other
    assert 5 <= first.count(True) <= 20  # 30 % of 40
    assert (await failure_pattern(seed=1, probability=1.0)) == [True] * 40


@pytest.mark.asyncio
async def test_a_delayed_answer_times_out_but_the_message_was_delivered(
    bot: Bot, api: BotApiStandIn
) -> None:
    api.delay("sendMessage", 30)
    started = time.monotonic()
    with pytest.raises(TimedOut):
        await bot.send_message(ANNA, "Paziņojums", read_timeout=0.2)
    assert [m.text for m in api.delivered(ANNA)] == ["Paziņojums"]  # the hard case: a duplicate
    assert api.in_flight == 1
    api.release_delayed()
    await api.wait_until(lambda: api.in_flight == 0)
    api.delay("sendMessage", 0)
    await bot.send_message(ANNA, "no longer slow", read_timeout=1)
    assert time.monotonic() - started < 3


@pytest.mark.asyncio
async def test_a_delay_before_the_effect_delivers_only_when_it_ends(
    bot: Bot, api: BotApiStandIn
) -> None:
    api.delay("sendMessage", 30, before_effect=True, times=1, chat_id=ANNA)
    held = asyncio.create_task(bot.send_message(ANNA, "lēni"))
    await api.wait_until(lambda: api.in_flight == 1)
    await bot.send_message(JANIS, "not delayed: another chat")
    assert api.delivered(ANNA) == []
    api.release_delayed()
    assert (await held).text == "lēni"
    await asyncio.wait_for(bot.send_message(ANNA, "only once"), 2)
    assert [m.text for m in api.delivered(ANNA)] == ["lēni", "only once"]


@pytest.mark.asyncio
async def test_delay_answers_only_after_its_seconds(bot: Bot, api: BotApiStandIn) -> None:
    api.delay("sendMessage", 0.3, times=1)
    started = time.monotonic()
    await bot.send_message(ANNA, "slow")
    assert 0.29 < time.monotonic() - started < 2


# ------------------------------------------------------------------------------- delivery


@pytest.mark.asyncio
async def test_deliveries_are_counted_with_duplicates_times_and_rate(
    bot: Bot, api: BotApiStandIn, clock: FakeClock
) -> None:
    for offset, chat_id, text in (
        (0, ANNA, "a"),
        (1, ANNA, "b"),
        (2.5, ANNA, "a"),
        (3, JANIS, "a"),
    ):
        clock.at(offset)
        await bot.send_message(chat_id, text)
    api.fail_next("sendMessage", 500)
    with pytest.raises(NetworkError):
        await bot.send_message(JANIS, "a")  # failed sends are not deliveries
    photo = await bot.send_photo(ANNA, b"\xff\xd8\xff\xe0fake-jpeg", caption="b")
    await bot.delete_message(ANNA, photo.message_id)
    assert [m.body for m in api.messages(ANNA)] == ["a", "b", "a"]
    assert [m.body for m in api.delivered(ANNA)] == ["a", "b", "a", "b"]  # deleted ones too
    assert api.delivery_counts() == Counter({ANNA: 4, JANIS: 1}) and api.sent_count == 5
    assert api.duplicates() == {ANNA: 2}
    assert api.duplicates(key=lambda m: (m.text, m.caption)) == {ANNA: 1}
    assert api.duplicates(key=lambda m: m.message_id) == {}
    assert api.send_times(ANNA) == [clock.at(t) for t in (0, 1, 2.5, 3)]
    assert api.send_times(JANIS) == [clock.at(3)]
    assert api.achieved_rate() == 4 / 3  # 5 sends, the first at 0, the last at 3
    assert api.achieved_rate(since=clock.at(0.5), until=clock.at(2.5)) == 1.0
    assert api.achieved_rate(since=clock.at(5)) == 0.0


@pytest.mark.asyncio
async def test_100000_residents_are_added_at_once(bot: Bot, api: BotApiStandIn) -> None:
    started = time.perf_counter()
    assert api.add_users(range(10_000, 110_000), language_code="lv") == 100_000
    assert time.perf_counter() - started < 2
    with pytest.raises(AssertionError, match="already exist"):
        api.add_users([ANNA])
    update = api.send_text(109_999, "Sveiki")
    assert update["message"]["from"]["language_code"] == "lv"
    assert update["message"]["chat"] == {"id": 109_999, "first_name": "Resident", "type": "private"}
    await bot.send_message(55_555, "Paziņojums")
    started = time.perf_counter()
    assert api.duplicates() == {} and len(api.delivery_counts()) == 1
    assert time.perf_counter() - started < 0.5


# ------------------------------------------------------------------------------- waiting


@pytest.mark.asyncio
async def test_wait_for_messages_times_out_with_a_helpful_assertion(api: BotApiStandIn) -> None:
    with pytest.raises(AssertionError, match=r"1 bot message\(s\) in chat 1001 \(have 0\)"):
        await api.wait_for_messages(ANNA, 1, timeout=0.05)


@pytest.mark.asyncio
async def test_wait_for_messages_wakes_when_the_bot_replies(bot: Bot, api: BotApiStandIn) -> None:
    async def reply_later() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(ANNA, "Sveiki!")

    task = asyncio.create_task(reply_later())
    (message,) = await api.wait_for_messages(ANNA, 1, timeout=2)
    await task
    assert message.text == "Sveiki!"


# ------------------------------------------------------------------------------- end to end


async def start_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        "Ko vēlaties ziņot?", reply_markup=keyboard("pothole", "light")
    )


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Pieņemts")
    await query.edit_message_text(f"Izvēlēts: {query.data}")


def build_application(api: BotApiStandIn) -> Application:  # type: ignore[type-arg]
    application = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    application.add_handler(CommandHandler("start", start_command))
    application.add_handler(CallbackQueryHandler(on_button))
    return application


@pytest.mark.asyncio
async def test_a_ptb_application_converses_through_polling(api: BotApiStandIn) -> None:
    application = build_application(api)
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0)
        try:
            api.send_text(ANNA, "/start")
            (question,) = await api.wait_for_messages(ANNA, 1)
            assert question.callback_data() == ["pothole", "light"]
            press = api.press_button(ANNA, question.message_id, "pothole")
            assert (await api.wait_for_answer(press)).text == "Pieņemts"
            await api.wait_until(lambda: question.text == "Izvēlēts: pothole")
            assert question.reply_markup is None and api.errors == []
        finally:
            await application.updater.stop()
            await application.stop()


@pytest.mark.asyncio
async def test_a_ptb_application_converses_through_an_aiohttp_webhook(api: BotApiStandIn) -> None:
    """PTB's custom-webhook pattern: an aiohttp endpoint feeds Application.update_queue."""
    application = build_application(api)

    async def receive(request: web.Request) -> web.Response:
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != "S3cret":
            return web.Response(status=403)
        update = Update.de_json(await request.json(), application.bot)
        await application.update_queue.put(update)
        return web.Response()

    endpoint = web.Application()
    endpoint.router.add_post("/hook", receive)
    runner = web.AppRunner(endpoint, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        async with application:
            await application.start()
            await application.bot.set_webhook(f"http://{host}:{port}/hook", secret_token="S3cret")
            api.send_text(ANNA, "/start")
            (question,) = await api.wait_for_messages(ANNA, 1)
            api.press_button(ANNA, question.message_id, "light")
            await api.wait_until(lambda: question.text == "Izvēlēts: light")
            assert set(api.webhook_statuses) == {200} and api.errors == []
            await application.stop()
    finally:
        await runner.cleanup()
