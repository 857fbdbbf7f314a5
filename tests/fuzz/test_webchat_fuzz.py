"""The web chat's WebSocket against drawn frames: every kind the page sends, with hostile
values, forged and stale button payloads, replayed frame ids, floods; and frames that are
not JSON, not objects, binary, nested too deep or over the size limit.

The whole bot runs (``start_bot``); each drawn conversation is a fresh cookie and socket.
``harness.SETTINGS`` raises the limit of new residents per address. Fixed inputs
(derandomized); ``bench/fuzz.py`` draws many more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.channels.test_webchat_guard import config_file
from tests.conftest import RuntimeFactory
from tests.fuzz.harness import SETTINGS, suite_run
from tests.fuzz.strategies import webchat_conversations
from tests.fuzz.webchat_target import WebchatTarget, normal_answer

pytestmark = pytest.mark.storage

CONVERSATIONS = 30  # about 150 inputs on each database


async def test_every_drawn_frame_is_handled_or_refused_cleanly(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = await start_bot(config_file(tmp_path, SETTINGS["webchat"]))
    base = f"http://127.0.0.1:{runtime.config.http_port}"
    target = WebchatTarget(base)
    await suite_run(target, webchat_conversations(), base, normal_answer, CONVERSATIONS)
