"""Two workers on one PostgreSQL database and a web-chat tab open on the second: its pushes
reach it, whichever worker would have claimed them, and a staff member's progress report is
edited in place there.

Only the worker holding a resident's socket can deliver to it, so the web chat's claim takes
only the rows of residents present on the claiming worker (``storage.presence``). Before
that, the first worker claimed about half of them and they went "waiting" for good: the
report lost its message and the announcements waited until the resident wrote.

The bots run as in production (``python -m bot run``, webhook mode, as
tests/bot/test_delivery_processes.py starts them); the browser is headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import staff
from storage.models import Announcement, ChannelIdentity, Delivery, Presence
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat import choose_english_and_centre, open_chat, quiet_context
from tests.bot.test_announcements import config_without_quiet_hours
from tests.bot.test_delivery_processes import Bots, bots, start_two_webhook_bots
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
from tests.standins.telegram_api import BotApiStandIn

__all__ = ["bots"]  # the fixture, used by name

pytestmark = [pytest.mark.browser, pytest.mark.storage]

ANNOUNCEMENTS = ["Pirmais paziņojums.", "Otrais paziņojums.", "Trešais paziņojums."]
STAFF_TEXT = "Sveiki no domes!"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_tab_on_the_second_worker_gets_its_pushes_and_its_report_edited(
    bots: Bots, tmp_path: Path
) -> None:
    require_chromium()
    # The example configuration (its neighbourhoods and topics), quiet hours off.
    bots.config = config_without_quiet_hours(tmp_path)
    async with BotApiStandIn() as api, chromium() as browser:
        await start_two_webhook_bots(bots, api)
        one, two = bots.started
        context = await quiet_context(browser)
        chat = await open_chat(context, f"http://127.0.0.1:{two.port}/")
        await choose_english_and_centre(chat)
        await chat.press("Done")
        await chat.expect_text(chat.bot.last, tr("en", PRIVACY_QUESTION))
        await chat.press("I agree")
        await chat.expect_text(chat.bot.last, f"{tr('en', ALL_SET)}\n\n{tr('en', MAIN_MENU)}")
        (worker,) = await Presence.all().values_list("worker", flat=True)
        assert worker.endswith(f"/127.0.0.1:{two.port}"), "the tab is present on worker two"

        # Each announcement reaches the tab; with one row each, a claim by worker one
        # (no socket) would lose it to "waiting".
        for text in ANNOUNCEMENTS:
            await bots.announce(text)
        for text in ANNOUNCEMENTS:
            await expect(chat.bot.filter(has_text=text)).to_have_count(1, timeout=20_000)
        rows = await Delivery.filter(channel="webchat").values_list("state", "claimed_by")
        assert {state for state, _ in rows} == {"sent"} and len(rows) == 3
        assert {claimed for _, claimed in rows} == {worker}

        # A staff member on worker two: the summary turns into the report, edited in place.
        user_id = (await ChannelIdentity.get(channel="webchat")).external_id
        await staff.grant("webchat", user_id, "admin", actor="test")
        everyone = audience("en")
        await chat.say("/announce")
        await chat.expect_text(chat.bot.last, write_prompt("en"))
        await chat.say(STAFF_TEXT)
        await chat.expect_text(chat.bot.last, draft_card("en", {"lv": STAFF_TEXT}, everyone, 1))
        await chat.press("Preview and send")
        await chat.expect_text(
            chat.bot.last, f"{STAFF_TEXT}\n\n{preview_summary('en', everyone, 1)}"
        )
        summary = chat.bot.nth(await chat.bot.count() - 1)
        await chat.press("Send", summary)
        staff_id = len(ANNOUNCEMENTS) + 1  # after the three from the command line
        final = progress("en", staff_id, 1, (GONE_OUT_ONE, GONE_OUT), sent=1)
        await expect(ChatPage.text(summary)).to_have_text(final, timeout=30_000)
        assert await ChatPage.text(summary).text_content() == final
        await expect(chat.bot.filter(has_text=STAFF_TEXT)).to_have_count(2)  # preview, push
        report = await Delivery.get(source_kind="announcement_report")
        assert (report.source_id, report.state, report.claimed_by) == (staff_id, "sent", worker)
        assert (await Announcement.get(id=staff_id)).texts == {"lv": STAFF_TEXT}
        await expect(chat.errors).to_have_count(0)
        assert one.running and two.running
