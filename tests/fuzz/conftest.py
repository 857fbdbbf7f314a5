"""The stand-ins the fuzz targets answer through: the Bot API's and Meta's Graph API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.bot.channels.messenger_helpers import graph, start_page
from tests.standins.telegram_api import BotApiStandIn

__all__ = ["api", "graph", "start_page"]


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        yield stand_in
