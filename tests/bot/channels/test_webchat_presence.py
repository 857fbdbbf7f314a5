"""A web-chat resident away from the chat: their pushes wait, and opening the chat again
brings them as one digest, not a burst. The whole bot, a real Chromium."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage import deliveries
from storage.models import Delivery, Presence, Resident
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.telegram_helpers import eventually
from tests.bot.channels.test_webchat import choose_english_and_centre, open_chat, quiet_context
from tests.bot.test_announcements import config_without_quiet_hours
from tests.conftest import RuntimeFactory
from tests.phrases import ALL_SET, MAIN_MENU, PRIVACY_QUESTION, tr

pytestmark = [pytest.mark.browser, pytest.mark.storage]

TEXTS = [
    ("Ūdens rīt nebūs.", "No water tomorrow."),
    ("Ceļš slēgts.", "The road is closed."),
    ("Koncerts sestdien.", "A concert on Saturday."),
]


async def states() -> Counter[tuple[str, str]]:
    return Counter(await Delivery.all().values_list("source_kind", "state"))


async def test_three_announcements_held_while_away_come_as_one_digest_on_return(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    require_chromium()
    runtime = await start_bot(config_without_quiet_hours(tmp_path))
    url = f"http://127.0.0.1:{runtime.config.http_port}/"
    async with chromium() as browser:
        context = await quiet_context(browser)
        chat = await open_chat(context, url)
        await onboard(chat)
        assert await Delivery.all().count() == 0
        assert await Presence.all().count() == 1, "the tab is present on this worker"
        await chat.page.close()
        await eventually(lambda: _count(Presence), 10, "the closed tab to leave")

        now = datetime.now(UTC)
        for lv, en in TEXTS:
            row = await deliveries.create_announcement(
                author="cli", texts={"lv": lv, "en": en}, audience={"kind": "all"}, send_at=now
            )
            await deliveries.release(row, now)

        async def all_waiting() -> bool:
            return await states() == Counter({("announcement", "waiting"): 3})

        await eventually(all_waiting, 10, "the worker to set them waiting, in bulk")
        assert (await Resident.get()).pushes_held

        again = await open_chat(context, url)  # the same cookie: the same resident
        digest = "\n\n".join([tr("en", "While you were away:"), *(en for _, en in TEXTS)])
        pushed = again.bot.filter(has_text=TEXTS[0][1])
        await expect(pushed).to_have_count(1)
        await again.expect_text(pushed, digest)
        for _, en in TEXTS[1:]:
            await expect(again.bot.filter(has_text=en)).to_have_count(1)

        async def all_sent() -> bool:
            return await states() == Counter({("announcement", "sent"): 3, ("digest", "sent"): 1})

        await eventually(all_sent, 10, "the digest and its items to count as sent")
        await expect(again.errors).to_have_count(0)


async def onboard(chat: ChatPage) -> None:
    """English, the centre, no topics, the privacy notice: to the main menu."""
    await choose_english_and_centre(chat)
    await chat.press("Done")
    await chat.expect_text(chat.bot.last, tr("en", PRIVACY_QUESTION))
    await chat.press("I agree")
    await chat.expect_text(chat.bot.last, f"{tr('en', ALL_SET)}\n\n{tr('en', MAIN_MENU)}")


async def _count(model: type[Presence]) -> bool:
    return await model.all().count() == 0
