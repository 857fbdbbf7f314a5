"""The Telegram webhook against drawn updates: well-formed ones of every kind the bot takes,
with hostile values, and malformed ones (see ``tests.fuzz.strategies``).

The whole bot runs in webhook mode (``start_bot``) against the Bot API stand-in; each
drawn conversation is a fresh resident. The inputs are fixed (derandomized), so a failure
here is a failure on every machine; ``bench/fuzz.py`` draws many more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.channels.telegram import WEBHOOK_PATH
from tests.bot.channels.telegram_helpers import WEBHOOK_SECRET, telegram_env
from tests.bot.channels.test_webchat_guard import config_file
from tests.conftest import RuntimeFactory, free_port
from tests.fuzz.harness import SETTINGS, suite_run
from tests.fuzz.strategies import telegram_conversations
from tests.fuzz.telegram_target import TelegramTarget, normal_answer
from tests.standins.telegram_api import BotApiStandIn

pytestmark = pytest.mark.storage

CONVERSATIONS = 30  # about 150 inputs on each database


async def test_every_drawn_update_is_handled_or_refused_cleanly(
    api: BotApiStandIn, start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    await start_bot(
        config_file(tmp_path, SETTINGS["telegram"]),
        **telegram_env(
            api,
            IESAISTE_TELEGRAM_MODE="webhook",
            IESAISTE_TELEGRAM_WEBHOOK_URL=url,
            IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            IESAISTE_HTTP_PORT=str(port),
        ),
    )
    target = TelegramTarget(api, url, WEBHOOK_SECRET)
    await suite_run(
        target, telegram_conversations(), f"http://127.0.0.1:{port}", normal_answer, CONVERSATIONS
    )
