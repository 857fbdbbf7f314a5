"""The runtime tells the dialogs what each channel can do, as the channels declare it."""

from __future__ import annotations

from datetime import timedelta

from bot.channels import telegram, webchat
from bot.core.config import Config
from bot.core.messages import STRICTEST, Capabilities
from dialogs.context import Ctx
from handlers.dispatcher import Dispatcher
from handlers.router import Router
from tests.chat import Chat
from tests.conftest import RuntimeFactory
from tests.standins.telegram_api import BotApiStandIn


async def test_each_channel_s_capabilities_are_registered_with_the_dispatcher(
    start_bot: RuntimeFactory,
) -> None:
    async with BotApiStandIn() as api:
        runtime = await start_bot(
            IESAISTE_TELEGRAM_API_URL=api.url, IESAISTE_TELEGRAM_TOKEN=api.token
        )
        assert runtime.dispatcher.capabilities == {
            "webchat": webchat.CAPABILITIES,
            "telegram": telegram.CAPABILITIES,
        }
        await runtime.stop()


def test_the_channels_declare_what_their_limits_and_platforms_allow() -> None:
    assert telegram.CAPABILITIES == Capabilities(
        can_edit=True,
        takes_photos=True,
        resends_photo_ids=True,
        asks_location=True,
        buttons_per_message=100,
        label_length=64,
        payload_bytes=64,
        push_window=None,
    )
    assert webchat.CAPABILITIES == Capabilities(
        can_edit=True,
        takes_photos=True,  # uploaded by the page (POST /webchat/photo)
        asks_location=True,
        buttons_per_message=100,
        label_length=64,
        payload_bytes=64,
        push_window=None,
    )
    # Messenger's, the least we support: what every dialog is tested under.
    assert STRICTEST == Capabilities(
        can_edit=False,
        takes_photos=False,
        asks_location=False,
        buttons_per_message=13,
        label_length=20,
        payload_bytes=64,
        push_window=timedelta(hours=24),
    )


async def test_a_handler_sees_the_capabilities_of_its_update_s_channel(config: Config) -> None:
    seen: list[tuple[str, Capabilities]] = []
    router = Router()

    @router.command("probe", anytime=True)
    async def probe(ctx: Ctx) -> None:
        seen.append((ctx.incoming.channel, ctx.capabilities))
        ctx.answer("ok")

    dispatcher = Dispatcher(config, router=router, capabilities={"messenger": STRICTEST})
    await Chat(dispatcher, channel="messenger").command("probe")
    await Chat(dispatcher, channel="webchat").command("probe")
    # An unregistered channel (here the web chat) gets the defaults.
    assert seen == [("messenger", STRICTEST), ("webchat", Capabilities())]
