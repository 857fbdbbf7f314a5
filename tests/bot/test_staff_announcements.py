"""A staff member on Telegram composes an announcement with a photo and follows it going out:
the bot runs whole against the Bot API stand-in, and the report message is edited in place."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from storage import staff
from storage.models import Announcement, Delivery
from tests.bot.channels.telegram_helpers import Chat, eventually, tr
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory
from tests.dialogs.test_pushes import words
from tests.standins.telegram_api import BotApiStandIn


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

        (prompt,) = await chat.send("/announce")
        assert prompt.body.startswith("Write the announcement in Latvian")
        (card,) = await chat.send("Rīt Brīvības ielā nebūs ūdens.")
        assert "Audience: everyone (3 residents now)" in card.body
        (prompt,) = await chat.press(card, "Image")
        attached, card = await chat.send_photo(replies=2)
        assert attached.body == "The image is attached."
        assert "Image: attached\n" in card.body, "kept by us: every channel can show it"
        shown, summary = await chat.press(card, "Preview and send", replies=2)
        assert shown.photo and shown.caption == "Rīt Brīvības ielā nebūs ūdens."
        assert "3 residents now" in summary.body

        report = await chat.press_to_edit(summary, "Send")
        assert "is going out now" in report.body
        for resident in (1001, 1002):
            await api.wait_until(lambda r=resident: api.messages(r), timeout=15)  # type: ignore[misc]
            (got,) = api.messages(resident)
            assert got.photo == shown.photo and got.caption == "Rīt Brīvības ielā nebūs ūdens."

        # The web chat shows the copy we keep, from our own server.
        await eventually(
            lambda: Delivery.filter(channel="webchat", state="waiting").exists(),
            timeout=15,
            what="the web-chat push (no tab open: it waits)",
        )
        web = await words(await Delivery.get(channel="webchat"))
        assert web is not None and web.image.startswith("/media/")
        assert web.text == "Rīt Brīvības ielā nebūs ūdens."
        root = f"http://127.0.0.1:{runtime.config.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(root + web.image) as served:
                assert served.status == 200 and served.content_type == "image/jpeg"
                assert (await served.read()).startswith(b"\xff\xd8\xff")
                assert "immutable" in served.headers["Cache-Control"]
            for wrong in ("/media/" + "0" * 64, "/media/ABC", "/media/" + "f" * 65):
                async with http.get(root + wrong) as refused:
                    assert refused.status == 404, wrong

        await api.wait_until(lambda: "has gone out" in report.body, timeout=15)
        assert report.body.splitlines()[:4] == [
            "Announcement #1 has gone out to 3 residents.",
            "Sent: 2",
            "Queued: 0",
            "Waiting until the resident writes to the bot: 1",
        ]
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
        assert menu[-2:] == ["announce", "announcements"]
        assert menu[:-2] == [command["command"] for command in api.commands]
        described = {c["command"]: c["description"] for c in api.commands_by_chat[(2001, "")]}
        assert described["announce"] == tr("lv", "Write an announcement"), "Latvian by default"
        assert set(api.commands_by_chat) == {(2001, "")}, "a moderator's menu is a resident's"
