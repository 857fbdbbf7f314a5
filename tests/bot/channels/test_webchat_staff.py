"""A staff member composes an announcement in the web chat: the preview's summary turns into
the progress report, and the bot edits that same message until the final figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import staff
from tests.bot.channels.browser import chromium, expect, require_chromium
from tests.bot.channels.test_webchat import (
    PRIVACY_QUESTION,
    choose_english_and_centre,
    cookie_user,
    open_chat,
    quiet_context,
)
from tests.bot.test_announcements import config_without_quiet_hours
from tests.conftest import RuntimeFactory

pytestmark = [pytest.mark.browser, pytest.mark.storage]


async def test_staff_compose_in_the_web_chat_and_the_report_is_edited_in_place(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    require_chromium()
    runtime = await start_bot(config_without_quiet_hours(tmp_path))
    url = f"http://127.0.0.1:{runtime.config.http_port}/"
    async with chromium() as browser:
        context = await quiet_context(browser)
        chat = await open_chat(context, url)
        await choose_english_and_centre(chat)
        await chat.press("Done")
        await expect(chat.bot.last).to_contain_text(PRIVACY_QUESTION)
        await chat.press("I agree")
        await staff.grant("webchat", await cookie_user(context, runtime), "admin", actor="test")

        await chat.say("/announce")
        await expect(chat.bot.last).to_contain_text("Write the announcement in Latvian")
        await chat.say("Sveiki no domes!")
        await expect(chat.bot.last).to_contain_text("Audience: everyone (1 resident now)")
        await chat.press("Preview and send")
        await expect(chat.bot.last).to_contain_text("Audience: everyone — 1 resident now")
        summary = chat.bot.nth(await chat.bot.count() - 1)  # this very message, not "the last"

        await chat.press("Send", summary)
        await expect(summary).to_contain_text("has gone out to 1 resident.", timeout=20_000)
        await expect(summary).to_contain_text("Sent: 1")
        # The preview, and the announcement itself, pushed to this resident's open tab.
        await expect(chat.bot.filter(has_text="Sveiki no domes!")).to_have_count(2)
        await expect(chat.errors).to_have_count(0)
