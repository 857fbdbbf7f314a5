"""The web chat's WebSocket against drawn frames: every kind the page sends, with hostile
values, forged and stale button payloads, replayed frame ids, floods; and frames that are
not JSON, not objects, binary, nested too deep or over the size limit.

The whole bot runs (``start_bot``); each drawn conversation is a fresh cookie and socket.
``harness.SETTINGS`` raises the limit of new residents per address. Fixed inputs
(derandomized); ``bench/fuzz.py`` draws many more.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.bot.channels.test_webchat_guard import config_file
from tests.conftest import RuntimeFactory
from tests.fuzz.checks import LogWatch, Tally
from tests.fuzz.harness import SETTINGS, fuzz, play
from tests.fuzz.strategies import webchat_conversations
from tests.fuzz.webchat_target import WebchatTarget, normal_answer
from tests.phrases import HELP, MUNICIPALITY, tr

pytestmark = pytest.mark.storage

CONVERSATIONS = 30  # about 150 inputs on each database


async def test_every_drawn_frame_is_handled_or_refused_cleanly(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(config_file(tmp_path, SETTINGS["webchat"]))
    base = f"http://127.0.0.1:{runtime.config.http_port}"
    target = WebchatTarget(base)
    tally = Tally("webchat")
    try:
        with LogWatch() as watch:
            await fuzz(
                webchat_conversations(),
                lambda conversation: play(target, conversation, watch, tally, strict=True),
                CONVERSATIONS,
            )
            # Healthy at the end: the health check, and a newcomer's /help answered as ever.
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/healthz") as response:
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
