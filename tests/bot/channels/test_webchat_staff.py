"""A staff member composes an announcement in the web chat: the preview's summary turns into
the progress report, and the bot edits that same message until the final figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import staff
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat import (
    choose_english_and_centre,
    cookie_user,
    open_chat,
    quiet_context,
)
from tests.bot.test_announcements import config_without_quiet_hours
from tests.conftest import RuntimeFactory
from tests.phrases import (
    ALL_SET,
    GONE_OUT,
    GONE_OUT_ONE,
    MAIN_MENU,
    PRIVACY_QUESTION,
    audience,
    draft_card,
    preview_summary,
    progress,
    tr,
    write_prompt,
)

TEXT = "Sveiki no domes!"

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
        await chat.expect_text(chat.bot.last, tr("en", PRIVACY_QUESTION))
        await chat.press("I agree")
        await chat.expect_text(chat.bot.last, f"{tr('en', ALL_SET)}\n\n{tr('en', MAIN_MENU)}")
        await staff.grant("webchat", await cookie_user(context, runtime), "admin", actor="test")

        everyone = audience("en")
        await chat.say("/announce")
        await chat.expect_text(chat.bot.last, write_prompt("en"))
        await chat.say(TEXT)
        await chat.expect_text(chat.bot.last, draft_card("en", {"lv": TEXT}, everyone, 1))
        await chat.press("Preview and send")
        # The announcement as residents will see it, and under it (one message, as a notice
        # and the question after it are) the summary.
        await chat.expect_text(chat.bot.last, f"{TEXT}\n\n{preview_summary('en', everyone, 1)}")
        summary = chat.bot.nth(await chat.bot.count() - 1)  # this very message, not "the last"

        await chat.press("Send", summary)
        # The summary turns into the report, edited in place until the final figures.
        final = progress("en", 1, 1, (GONE_OUT_ONE, GONE_OUT), sent=1)
        await expect(ChatPage.text(summary)).to_have_text(final, timeout=20_000)
        assert await ChatPage.text(summary).text_content() == final
        # The preview, and the announcement itself, pushed to this resident's open tab.
        await expect(chat.bot.filter(has_text=TEXT)).to_have_count(2)
        await chat.expect_text(chat.bot.last, TEXT)
        await expect(chat.errors).to_have_count(0)
