"""A resident answers a quick poll on the web chat page, in Chromium: the invitation is
pushed to the open tab, one tap edits that very message to show the answer, another
changes it, and once the poll has closed a tap shows the results in its place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import polls
from storage.models import Ballot
from storage.polls import PollDraft
from tests.bot.channels.browser import ChatPage, chromium, expect, require_chromium
from tests.bot.channels.test_webchat import quiet_context
from tests.bot.channels.test_webchat_proposals import onboarded
from tests.bot.test_announcements import config_without_quiet_hours
from tests.conftest import RuntimeFactory
from tests.phrases import tr

pytestmark = [pytest.mark.browser, pytest.mark.storage]


async def test_a_poll_answered_and_changed_in_the_web_chat(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    require_chromium()
    bot = await start_bot(
        config_without_quiet_hours(tmp_path), IESAISTE_WEBCHAT_COOKIE_SECRET="s" * 32
    )
    now = datetime.now(UTC)
    async with chromium() as browser:
        chat = await ChatPage.open(
            await (await quiet_context(browser)).new_page(),
            f"http://127.0.0.1:{bot.config.http_port}/",
        )
        await onboarded(chat)
        poll = await polls.create(
            PollDraft(
                {"lv": "Kur likt soliņus?", "en": "Where should the benches go?"},
                [{"lv": "Parkā", "en": "In the park"}, {"lv": "Pie skolas", "en": "At school"}],
                now - timedelta(seconds=5),
                now + timedelta(days=1),
            ),
            author="cli",
        )
        await polls.open_due(now)
        invitation = chat.bot.last
        await expect(chat.text(invitation)).to_contain_text("Where should the benches go?")
        count = await chat.bot.count()
        assert await chat.buttons(invitation) == [
            ("In the park", f"pl:{poll.id}:0"),
            ("At school", f"pl:{poll.id}:1"),
        ]

        await chat.press("At school", invitation)
        answer = tr("en", "Your answer: {answer}", answer="At school")
        await expect(chat.text(invitation)).to_contain_text(answer)
        await expect(chat.button("✓ At school", invitation)).to_be_visible()
        await chat.press("In the park", invitation)
        await expect(chat.button("✓ In the park", invitation)).to_be_visible()
        await expect(chat.text(invitation)).to_contain_text(
            tr("en", "Your answer: {answer}", answer="In the park")
        )
        assert await chat.bot.count() == count, "edited in place, nothing new sent"
        (ballot,) = await Ballot.filter(poll_id=poll.id)
        assert (ballot.choices, ballot.channel) == (0b01, "webchat")

        await polls.close(poll.id, actor="cli")
        await chat.press("✓ In the park", invitation)
        await expect(chat.text(invitation)).to_contain_text(tr("en", "This poll is closed."))
        await expect(invitation.locator("button.choice")).to_have_count(0)
        await expect(chat.errors).to_have_count(0)
    assert await Ballot.filter(poll_id=poll.id).count() == 1
