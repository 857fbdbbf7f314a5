"""The Messenger webhook against drawn deliveries: messaging items of every kind (texts,
quick replies, postbacks, referrals, attachments, echoes and receipts) with hostile values,
forged payloads and replayed mids, and deliveries that are wrongly signed or malformed.

The whole bot runs (``start_page``: ``start_bot`` with the Messenger channel pointed at
the Graph API stand-in); each drawn conversation is a fresh resident. Fixed inputs
(derandomized); ``bench/fuzz.py`` draws many more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.channels.messenger_helpers import StartPage
from tests.bot.channels.test_webchat_guard import config_file
from tests.fuzz.harness import SETTINGS, suite_run
from tests.fuzz.messenger_target import MessengerTarget, normal_answer
from tests.fuzz.strategies import messenger_conversations

pytestmark = pytest.mark.storage

CONVERSATIONS = 30  # about 150 inputs on each database


async def test_every_drawn_delivery_is_handled_or_refused_cleanly(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_file(tmp_path, SETTINGS["messenger"]))
    target = MessengerTarget(page.graph, page.meta.url)
    await suite_run(
        target,
        messenger_conversations(),
        f"http://127.0.0.1:{page.runtime.config.http_port}",
        normal_answer,
        CONVERSATIONS,
    )
