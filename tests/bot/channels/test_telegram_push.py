"""The lean push sender against the strict Bot API stand-in, over real HTTP.

A push must look to Telegram (and to the resident) as it did through python-telegram-bot:
long texts cut at Telegram's limit, an image with the text as its caption when it fits, and
every refusal reported as the delivery worker understands it. The token, which is part of
every URL, must never appear in what it raises.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram import TelegramChannel
from bot.channels.telegram_push import CAPTION_LENGTH, PushFailed, PushSender
from bot.core.channel import RateLimited, RecipientBlocked
from bot.core.config import Config, TelegramConfig
from bot.core.messages import Button, CommandMenu, Reply
from handlers.dispatcher import Dispatcher
from tests.conftest import free_port
from tests.standins.telegram_api import BotApiStandIn

ANNA = 2001
TEXT = "Rīt no 9:00 līdz 15:00 Brīvības ielā nebūs ūdens."
IMAGE = "https://example.lv/udens.jpg"


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        stand_in.add_user(ANNA)
        yield stand_in


@pytest.fixture
async def pushes(api: BotApiStandIn) -> AsyncIterator[PushSender]:
    sender = PushSender(api.url, api.token)
    await sender.open()
    yield sender
    await sender.close()


async def test_a_push_is_one_message_with_the_text(api: BotApiStandIn, pushes: PushSender) -> None:
    await pushes.send(str(ANNA), TEXT)
    (message,) = api.delivered(ANNA)
    assert message.text == TEXT and message.reply_markup is None
    assert api.errors == []


async def test_a_text_longer_than_telegram_allows_goes_as_several_messages(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    words = [f"vārds{i}" for i in range(800)]  # 6,089 characters
    await pushes.send(str(ANNA), " ".join(words))
    first, second = api.delivered(ANNA)
    assert f"{first.text} {second.text}".split() == words
    assert api.errors == [], "each piece within 4096 UTF-16 units"


async def test_a_long_text_of_emoji_is_cut_by_telegrams_count_not_pythons(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    text = "🚰" * 3000  # 3000 characters, 6000 UTF-16 units
    await pushes.send(str(ANNA), text)
    assert "".join(m.text or "" for m in api.delivered(ANNA)) == text
    assert len(api.delivered(ANNA)) == 2 and api.errors == []


async def test_an_image_carries_the_text_as_its_caption_when_it_fits(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    await pushes.send(str(ANNA), TEXT, IMAGE)
    (photo,) = api.delivered(ANNA)
    assert (photo.photo, photo.caption) == (IMAGE, TEXT)


async def test_a_text_too_long_for_a_caption_follows_the_image(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    text = "Ielas remonts. " * 100  # 1500 characters: over the 1024 of a caption
    assert len(text) > CAPTION_LENGTH
    await pushes.send(str(ANNA), text, IMAGE)
    photo, message = api.delivered(ANNA)
    assert photo.photo == IMAGE and photo.caption is None
    assert message.text == text.strip()
    assert api.errors == []


async def test_a_resident_who_blocked_the_bot_is_reported_as_blocked(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    api.block(ANNA)
    with pytest.raises(RecipientBlocked, match="blocked by the user"):
        await pushes.send(str(ANNA), TEXT)
    assert api.delivered(ANNA) == []


async def test_flood_control_is_reported_with_its_retry_after(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await pushes.send(str(ANNA), TEXT)
    assert limited.value.retry_after == 7

    api.fail_next("sendPhoto", 429, retry_after=3)
    with pytest.raises(RateLimited) as limited:
        await pushes.send(str(ANNA), TEXT, IMAGE)
    assert limited.value.retry_after == 3


async def test_the_rate_the_stand_in_enforces_comes_back_as_rate_limited(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    api.limit_rate(1, burst=1)
    await pushes.send(str(ANNA), TEXT)
    with pytest.raises(RateLimited) as limited:
        await pushes.send(str(ANNA), TEXT)
    assert limited.value.retry_after == 1  # the stand-in's wait, rounded up to a whole second
    assert [m.text for m in api.delivered(ANNA)] == [TEXT]


async def test_telegrams_own_trouble_raises_for_a_retry_without_the_token(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    api.fail_next("sendMessage", 500)
    with pytest.raises(PushFailed) as failed:
        await pushes.send(str(ANNA), TEXT)
    assert str(failed.value) == "sendMessage: 500 Internal Server Error"
    assert failed.value.__cause__ is None and failed.value.__context__ is None

    api.fail_next("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(PushFailed) as failed:
        await pushes.send(str(ANNA), TEXT)
    assert str(failed.value) == "sendMessage: 400 Bad Request: chat not found"
    assert api.delivered(ANNA) == []


async def test_an_unreachable_api_raises_for_a_retry_without_the_token() -> None:
    token = "123456:SECRET-part-of-the-token-0123456789"
    sender = PushSender(f"http://127.0.0.1:{free_port()}", token)
    await sender.open()
    try:
        with pytest.raises(PushFailed) as failed:
            await sender.send(str(ANNA), TEXT)
    finally:
        await sender.close()
    assert str(failed.value) == "sendMessage: ClientConnectorError", "no URL, so no token"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__


async def test_the_started_channel_sends_pushes_with_their_buttons(
    api: BotApiStandIn,
) -> None:
    """Pushes take the lean path between start() and stop(), buttons and all."""
    channel = TelegramChannel(
        TelegramConfig(token=api.token, api_url=api.url, mode="webhook"),
        Dispatcher(Config()).feed,
        CommandMenu(),
        "lv",
    )
    await channel.start()
    try:
        api.block(ANNA)
        with pytest.raises(RecipientBlocked):
            await channel.send(str(ANNA), Reply(TEXT))
        api.unblock(ANNA)
        await channel.send(str(ANNA), Reply(TEXT))
        await channel.send(str(ANNA), Reply("Jā vai nē?", [[Button("Jā", "poll:1:opt:1")]]))
    finally:
        await channel.stop()
    push, question = api.delivered(ANNA)
    assert push.text == TEXT and push.reply_markup is None
    assert question.callback_data() == ["poll:1:opt:1"]
    assert [r.method for r in api.requests if r.method.startswith("send")] == ["sendMessage"] * 3, (
        "all on the lean path (PTB would have sent the same, but with its own client)"
    )


async def test_a_push_returns_the_message_id_of_its_last_message(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    first = await pushes.send(str(ANNA), TEXT)
    photo = await pushes.send(str(ANNA), TEXT, IMAGE)
    long = await pushes.send(str(ANNA), "Ielas remonts. " * 400)  # two messages
    sent = api.delivered(ANNA)
    assert [first, photo, long] == [str(sent[n].message_id) for n in (0, 1, 3)]


async def test_buttons_ride_on_the_last_message_of_a_push(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    markup = {"inline_keyboard": [[{"text": "Jā", "callback_data": "poll:1:opt:1"}]]}
    await pushes.send(str(ANNA), "Ielas remonts. " * 400, markup=markup)
    await pushes.send(str(ANNA), TEXT, IMAGE, markup=markup)
    first, second, photo = api.delivered(ANNA)
    assert first.reply_markup is None and second.callback_data() == ["poll:1:opt:1"]
    assert photo.photo == IMAGE and photo.callback_data() == ["poll:1:opt:1"]
    assert api.errors == []


async def test_an_edit_changes_the_message_in_place(api: BotApiStandIn, pushes: PushSender) -> None:
    markup = {"inline_keyboard": [[{"text": "Jā (1)", "callback_data": "poll:1:opt:1"}]]}
    message_id = await pushes.send(str(ANNA), "Balsis: 0")
    assert await pushes.edit(str(ANNA), message_id, "Balsis: 1", markup) is True
    (message,) = api.messages(ANNA)
    assert (message.text, message.callback_data()) == ("Balsis: 1", ["poll:1:opt:1"])
    assert [r.method for r in api.requests][-1] == "editMessageText"
    assert await pushes.edit(str(ANNA), message_id, "Balsis: 1", markup) is True, (
        "Telegram's 'not modified' means it shows what it should"
    )
    assert await pushes.edit(str(ANNA), "999", "Balsis: 2") is False, "no such message"
    assert await pushes.edit(str(ANNA), message_id, "x" * 5000) is False, "too long for one"
    assert len(api.delivered(ANNA)) == 1, "an edit is no new message"


async def test_an_edit_under_flood_control_or_refused_as_blocked_raises_as_a_send_does(
    api: BotApiStandIn, pushes: PushSender
) -> None:
    message_id = await pushes.send(str(ANNA), TEXT)
    api.fail_next("editMessageText", 429, retry_after=4)
    with pytest.raises(RateLimited) as limited:
        await pushes.edit(str(ANNA), message_id, "Jauns teksts")
    assert limited.value.retry_after == 4
    api.fail_next("editMessageText", 500)
    with pytest.raises(PushFailed, match="500"):
        await pushes.edit(str(ANNA), message_id, "Jauns teksts")
    api.fail_next("editMessageText", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(RecipientBlocked):
        await pushes.edit(str(ANNA), message_id, "Jauns teksts")
