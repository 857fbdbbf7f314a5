"""The Messenger webhook against drawn deliveries: messaging items of every kind (texts,
quick replies, postbacks, referrals, attachments, echoes and receipts) with hostile values,
forged payloads and replayed mids, and deliveries that are wrongly signed or malformed.

The whole bot runs (``start_page``: ``start_bot`` with the Messenger channel pointed at
the Graph API stand-in); each drawn conversation is a fresh resident. Fixed inputs
(derandomized); ``bench/fuzz.py`` draws many more.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.bot.channels.messenger_helpers import StartPage
from tests.bot.channels.test_webchat_guard import config_file
from tests.fuzz.checks import LogWatch, Tally
from tests.fuzz.harness import SETTINGS, fuzz, play
from tests.fuzz.messenger_target import MessengerTarget, normal_answer
from tests.fuzz.strategies import messenger_conversations
from tests.phrases import HELP, MUNICIPALITY, tr

pytestmark = pytest.mark.storage

CONVERSATIONS = 30  # about 150 inputs on each database


async def test_every_drawn_delivery_is_handled_or_refused_cleanly(
    start_page: StartPage, tmp_path: Path
) -> None:
    page = await start_page(config_file(tmp_path, SETTINGS["messenger"]))
    target = MessengerTarget(page.graph, page.meta.url)
    tally = Tally("messenger")
    try:
        with LogWatch() as watch:
            await fuzz(
                messenger_conversations(),
                lambda conversation: play(target, conversation, watch, tally, strict=True),
                CONVERSATIONS,
            )
            # Healthy at the end: the health check, and a newcomer's /help answered as ever.
            port = page.runtime.config.http_port
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
            assert (await normal_answer(target)).startswith(
                tr("lv", HELP, municipality=MUNICIPALITY)
            )
            assert watch.since(0, collect=True) == []
    finally:
        await target.close()
    print("\n".join(tally.lines()))
    assert tally.inputs >= CONVERSATIONS * 2
    assert {"well-formed", "malformed"} <= set(tally.kinds)
