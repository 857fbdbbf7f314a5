"""What the fuzzing found, each pinned down end to end by the smallest input that showed it."""

from __future__ import annotations

import aiohttp
import pytest

from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH
from bot.core.config import Config
from handlers.dispatcher import Dispatcher
from storage.models import InboundEvent, Proposal, Resident
from tests.bot.channels.messenger_helpers import StartPage
from tests.bot.channels.telegram_helpers import WEBHOOK_SECRET, Chat, telegram_env
from tests.chat import Chat as ScriptedChat
from tests.conftest import RuntimeFactory, free_port
from tests.phrases import HELP, MUNICIPALITY, tr
from tests.standins import messenger_webhook as meta
from tests.standins.telegram_api import BotApiStandIn

pytestmark = pytest.mark.storage


async def test_a_mid_with_a_lone_surrogate_is_stored_and_answered_once(
    start_page: StartPage,
) -> None:
    # JSON can carry "\ud800", which UTF-8 cannot: hashing the mid for the inbox's key
    # raised, and Meta got a 500 (and would have delivered it again and again).
    page = await start_page()
    anna = page.resident("8100000001")
    item = meta.text(anna.psid, "/help", mid="m_\ud800")
    (answer,) = await anna.send(item)
    assert answer.text.startswith(tr("lv", HELP, municipality=MUNICIPALITY))
    status, _ = await page.meta.post(meta.delivery(item))  # Meta delivers it again
    assert status == 200
    await anna.received(0)
    assert len(page.graph.inbox(anna.psid)) == 1


@pytest.mark.parametrize("sender", ["١٢٣٤٥", "²³", "٣"])
async def test_a_sender_id_of_digits_that_are_not_ascii_is_no_resident(
    start_page: StartPage, sender: str
) -> None:
    # str.isdigit() takes Arabic-Indic and superscript digits: such a "PSID" became a
    # resident, and the bot then answered an account Meta never named.
    page = await start_page()
    status, _ = await page.meta.post(meta.delivery(meta.text(sender, "/help")))
    assert status == 200
    assert await InboundEvent.all().count() == 0
    assert await Resident.all().count() == 0
    assert page.graph.sent == []


CARD_TITLE = "Your proposal — check it, then press Submit."


async def test_a_telegram_text_holding_a_nul_becomes_a_proposal_without_it(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    # JSON carries "\u0000" and PostgreSQL refuses it in text: the proposal's text crashed
    # into the apology there (SQLite took it).
    await start_bot(**telegram_env(api))
    api.add_user(1001, "Anna", language_code="en")
    anna = Chat(api, 1001)
    await anna.onboard()
    (question,) = await anna.send("/propose")
    (question,) = await anna.press(question, "Roads, pavements")
    (card,) = await anna.send("A deep pothole\x00 by the school gate")
    assert card.body.startswith(CARD_TITLE)
    await anna.press(card, "Submit")
    [proposal] = await Proposal.all()
    assert proposal.text == "A deep pothole by the school gate"


async def test_a_messenger_text_holding_a_nul_or_a_lone_surrogate_is_stored_cleaned(
    start_page: StartPage,
) -> None:
    # Meta escapes non-ASCII as \u escapes, a lone "\ud83d" (half an emoji) among them; the
    # database refused it (and a NUL, on PostgreSQL): the update crashed into the apology.
    page = await start_page()
    anna = page.resident("8100000002")
    await anna.says("/start")
    for label in ("English", "Centre"):
        await anna.taps(label)
    await anna.taps("Done")
    await anna.taps("I agree")
    await anna.says("/propose")
    await anna.taps("Roads, pavements")
    (card, *_) = await anna.says("A deep\x00 pothole \ud83d by the gate")
    assert card.text.startswith(CARD_TITLE), card.text
    await anna.taps("Submit")
    [proposal] = await Proposal.all()
    assert proposal.text == "A deep pothole \ufffd by the gate"


async def test_an_update_of_a_kind_the_bot_did_not_ask_for_is_acknowledged_unread(
    api: BotApiStandIn, start_bot: RuntimeFactory
) -> None:
    # Only "message" and "callback_query" are checked before PTB reads an update; PTB read
    # an edited message with a chat id that is a list and failed hashing it: a 500, which
    # Telegram would have redelivered for a day.
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    await start_bot(
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=url,
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IESAISTE_HTTP_PORT=str(port),
        )
    )
    edited = {"message_id": 1, "date": 0, "chat": {"id": [], "type": "private"}, "text": "x"}
    async with aiohttp.ClientSession() as http:
        for body in (
            {"update_id": 7, "edited_message": edited},
            {"update_id": 8, "my_chat_member": {"chat": {"id": {}}, "from": []}},
        ):
            headers = {SECRET_HEADER: WEBHOOK_SECRET}
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 200
    assert await Resident.all().count() == 0


@pytest.mark.parametrize("number", ["²", "99999999999999999999", "2147483648"])
async def test_a_forged_proposal_button_with_an_odd_number_says_it_is_not_found(
    config: Config, number: str
) -> None:
    # "²".isdigit() is True but int("²") raises; twenty nines overflow the id's column:
    # both crashed into the apology.
    chat = ScriptedChat(Dispatcher(config))
    await chat.onboard()
    for prefix in ("pr:v", "pr:f", "pr:s", "pr:w", "pr:m"):
        await chat.press_payload(f"{prefix}:{number}")  # fails on the apology
        assert chat.texts()


async def test_a_messenger_location_with_a_400_digit_coordinate_is_answered(
    start_page: StartPage,
) -> None:
    # float(10**400) raises OverflowError, which the handling did not catch: the event was
    # left unhandled, its task's exception never retrieved, and the sweep retried it.
    page = await start_page()
    anna = page.resident("8100000003")
    await anna.send(meta.location(anna.psid, 10**400, 24.1))
    assert not await InboundEvent.filter(handled_at=None).exists()
