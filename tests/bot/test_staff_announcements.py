"""A staff member on Telegram composes an announcement with a photo and follows it going out:
the bot runs whole against the Bot API stand-in, and the report message is edited in place."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from storage import staff
from storage.models import Announcement, Delivery
from tests.bot.channels.telegram_helpers import Chat, eventually
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory
from tests.dialogs.test_pushes import words
from tests.phrases import (
    GOING_OUT_NOW,
    GONE_OUT,
    GONE_OUT_ONE,
    IMAGE_ATTACHED,
    PHOTO_ATTACHED,
    SEND_PHOTO,
    audience,
    draft_card,
    preview_summary,
    progress,
    tr,
    write_prompt,
)
from tests.standins.telegram_api import BotApiStandIn

TEXT = "Rīt Brīvības ielā nebūs ūdens."


async def test_staff_compose_on_telegram_and_watch_the_report_reach_its_final_figures(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    config = config_without_quiet_hours(tmp_path)
    async with BotApiStandIn() as api:
        api.add_user(1001, "Anna", language_code="en")
        api.add_user(1002, "Jānis", language_code="lv")
        api.add_user(2001, "Ilze", language_code="en")
        runtime = await start_bot(
            config, IESAISTE_TELEGRAM_API_URL=api.url, IESAISTE_TELEGRAM_TOKEN=api.token
        )
        await onboarded("1001", "en", "centrs")
        await onboarded("1002", "lv", "jaunciems")
        await onboarded("browser-1", "lv", "centrs", channel="webchat")
        await staff.grant("telegram", "2001", "communications", actor="test")
        chat = Chat(api, 2001)

        everyone = audience("en")
        (prompt,) = await chat.send("/announce")
        assert prompt.body == write_prompt("en")
        (card,) = await chat.send(TEXT)
        assert card.body == draft_card("en", {"lv": TEXT}, everyone, 3)
        assert card.button_texts()[1] == ["Image", "Audience"], "Telegram hands photos over"
        (prompt,) = await chat.press(card, "Image")
        assert prompt.body == tr("en", SEND_PHOTO)
        attached, card = await chat.send_photo(replies=2)
        assert attached.body == tr("en", PHOTO_ATTACHED)
        # Kept by us, so every channel can show it.
        assert card.body == draft_card("en", {"lv": TEXT}, everyone, 3, image=IMAGE_ATTACHED)
        shown, summary = await chat.press(card, "Preview and send", replies=2)
        assert shown.photo and shown.caption == TEXT
        assert summary.body == preview_summary("en", everyone, 3)

        report = await chat.press_to_edit(summary, "Send")
        assert report.body == tr("en", GOING_OUT_NOW, id=1)
        for resident in (1001, 1002):
            await api.wait_until(lambda r=resident: api.messages(r), timeout=15)  # type: ignore[misc]
            (got,) = api.messages(resident)
            assert got.photo == shown.photo and got.caption == TEXT

        # The web chat shows the copy we keep, from our own server.
        await eventually(
            lambda: Delivery.filter(channel="webchat", state="waiting").exists(),
            timeout=15,
            what="the web-chat push (no tab open: it waits)",
        )
        web = await words(await Delivery.get(channel="webchat"))
        assert web is not None and web.image.startswith("/media/") and web.text == TEXT
        root = f"http://127.0.0.1:{runtime.config.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(root + web.image) as served:
                assert served.status == 200 and served.content_type == "image/jpeg"
                assert (await served.read()).startswith(b"\xff\xd8\xff")
                assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            for wrong in ("/media/" + "0" * 64, "/media/ABC", "/media/" + "f" * 65):
                async with http.get(root + wrong) as refused:
                    assert refused.status == 404, wrong

        final = progress("en", 1, 3, (GONE_OUT_ONE, GONE_OUT), sent=2, waiting=1)
        await api.wait_until(lambda: report.body == final, timeout=15, what=final)
        assert len(chat.messages) == 7, "the report was edited, never sent anew"
        await eventually(
            lambda: Announcement.filter(state="done").exists(), what="the announcement done"
        )
        await runtime.stop()


async def test_staff_who_may_announce_find_the_commands_in_their_telegram_menu(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    config = config_without_quiet_hours(
        tmp_path,
        '\n[[staff]]\nuser = "telegram:2001"\nrole = "communications"\n'
        '\n[[staff]]\nuser = "telegram:2002"\nrole = "moderator"\n'
        '\n[[staff]]\nuser = "telegram:2099"\nrole = "admin"\n',  # never opened the bot
    )
    async with BotApiStandIn() as api:
        api.add_user(2001, "Ilze", language_code="en")
        api.add_user(2002, "Pēteris", language_code="lv")
        await start_bot(
            config, IESAISTE_TELEGRAM_API_URL=api.url, IESAISTE_TELEGRAM_TOKEN=api.token
        )
        menu = [command["command"] for command in api.commands_by_chat[(2001, "")]]
        assert menu[-3:] == ["announce", "announcements", "newpoll"]
        assert menu.count("polls") == 1  # the residents' /polls, with the staff's words
        assert menu[:-3] == [command["command"] for command in api.commands]
        described = {c["command"]: c["description"] for c in api.commands_by_chat[(2001, "")]}
        assert described["announce"] == tr("lv", "Write an announcement"), "Latvian by default"
        assert described["polls"] == tr("lv", "Polls: results, close, cancel")
        moderator = [command["command"] for command in api.commands_by_chat[(2002, "")]]
        assert moderator[-2:] == ["review", "summary"], "a moderator reviews, not announces"
        assert "announce" not in moderator
        assert set(api.commands_by_chat) == {(2001, ""), (2002, "")}
