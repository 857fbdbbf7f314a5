"""The whole bot on Messenger for end-to-end tests: Meta's webhook side and the strict
Send API stand-in, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.app import Runtime
from bot.channels.messenger import WEBHOOK_PATH
from tests.standins.graph_api import GraphStandIn
from tests.standins.graph_core import APP_SECRET
from tests.standins.messenger_webhook import MetaWebhook, Resident

VERIFY_TOKEN = "verify-me-standin-0123"


def messenger_env(graph: GraphStandIn, **extra: str) -> dict[str, str]:
    """The environment that points the bot at the stand-in, as an operator would set it."""
    return {
        "IESAISTE_MESSENGER_PAGE_TOKEN": graph.token,
        "IESAISTE_MESSENGER_APP_SECRET": APP_SECRET,
        "IESAISTE_MESSENGER_VERIFY_TOKEN": VERIFY_TOKEN,
        "IESAISTE_MESSENGER_API_URL": graph.url,
        **extra,
    }


@dataclass
class Page:
    """The running bot, Meta's webhook side and the Send API, for one test."""

    runtime: Runtime
    graph: GraphStandIn
    meta: MetaWebhook

    def resident(self, psid: str) -> Resident:
        return Resident(self.meta, self.graph, psid)


@pytest.fixture
async def graph() -> AsyncIterator[GraphStandIn]:
    standin = await GraphStandIn().start()
    yield standin
    await standin.stop()


StartPage = Callable[..., Awaitable[Page]]


@pytest.fixture
def start_page(start_bot: Callable[..., Awaitable[Runtime]], graph: GraphStandIn) -> StartPage:
    async def start(config_path: str | None = None, **environ: str) -> Page:
        runtime = await start_bot(config_path, **messenger_env(graph, **environ))
        url = f"http://127.0.0.1:{runtime.config.http_port}{WEBHOOK_PATH}"
        return Page(runtime, graph, MetaWebhook(url))

    return start
