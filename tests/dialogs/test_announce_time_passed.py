"""A draft whose time passed while it was open asks for a new time, at the time step.

The question must be the current step, or its buttons ("As soon as I confirm", "Back")
and a typed time would be answered as belonging to another step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.config import Config
from handlers.dispatcher import Dispatcher
from storage import staff
from storage.models import Announcement, ChannelIdentity, DialogState
from tests.chat import Chat
from tests.phrases import TIME_PASSED, audience, draft_card, tr, when_prompts


async def set_time(chat: Chat, moment: datetime) -> None:
    """What the clock does to an open draft: its time is now ``moment``."""
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    row = await DialogState.get(resident_id=identity.resident_id)  # type: ignore[attr-defined]
    row.data = {**row.data, "at": moment.isoformat()}
    await row.save()


@pytest.mark.parametrize("where", ["preview", "send"])
async def test_a_time_that_passed_is_asked_for_again_at_the_time_step(
    config: Config, where: str
) -> None:
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    chat = Chat(Dispatcher(config), user_id="staff-1", locale="en")
    await chat.command("announce")
    await chat.text("Rīt nebūs ūdens.")
    await chat.choose("ann:card", "when")
    await chat.text("10:00")
    if where == "send":
        await chat.choose("ann:card", "preview")
    await set_time(chat, datetime.now(UTC) - timedelta(hours=2))
    before = datetime.now(UTC)
    if where == "send":
        await chat.choose("ann:preview", "send")
    else:
        await chat.choose("ann:card", "preview")
    after = datetime.now(UTC)

    [notice, question] = chat.texts()
    assert notice == tr("en", TIME_PASSED)
    assert question in when_prompts("en", config.municipality.zone, before, after)
    assert (await chat.dialog())[0] == "ann:when"
    # Its buttons work: the draft goes on, to go out as soon as it is confirmed.
    await chat.choose("ann:when", "now")
    assert chat.texts() == [draft_card("en", {"lv": "Rīt nebūs ūdens."}, audience("en"), 0)]
    assert await Announcement.all().count() == 0
