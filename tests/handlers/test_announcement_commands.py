"""A resident stops and resumes announcements; what waited for them comes when they return."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.config import Config
from handlers.dispatcher import Dispatcher
from storage import deliveries
from storage.models import ChannelIdentity, Delivery, Resident
from tests.chat import Chat
from tests.phrases import ALREADY_MUTED, MAIN_MENU, MUTED, UNMUTED, tr

MUTED_MENU = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Resume announcements", "Help"],
]
MENU = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Stop announcements", "Help"],
]


def en(message: str) -> str:
    return tr("en", message)


async def reached() -> list[tuple[str, str]]:
    """The accounts an announcement to everyone would reach now."""
    return [(channel, ext) for _, _, channel, ext in await deliveries.recipients({"kind": "all"})]


async def test_stop_mutes_announcements_and_start_brings_them_back(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    assert chat.labels() == MENU
    assert await reached() == [("webchat", "resident-1")]
    await chat.command("stop")
    assert chat.texts() == [en(MUTED), en(MAIN_MENU)]
    assert chat.labels() == MUTED_MENU, "the menu offers the way back"
    assert await reached() == []
    await chat.command("stop")
    assert chat.texts() == [en(ALREADY_MUTED), en(MAIN_MENU)]
    assert chat.labels() == MUTED_MENU
    await chat.command("start")
    assert chat.texts() == [en(UNMUTED), en(MAIN_MENU)]
    assert chat.labels() == MENU
    assert await reached() == [("webchat", "resident-1")]
    await chat.command("start")
    assert chat.texts() == [en(MAIN_MENU)], "nothing to resume: only the menu"


async def test_the_menu_buttons_mute_and_unmute(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await chat.press("Stop announcements")
    assert chat.texts() == [en(MUTED), en(MAIN_MENU)]
    assert chat.labels() == MUTED_MENU
    assert (await Resident.get()).announcements_muted
    await chat.press("Resume announcements")
    assert chat.texts() == [en(UNMUTED), en(MAIN_MENU)]
    assert chat.labels() == MENU
    assert not (await Resident.get()).announcements_muted


async def test_pushes_held_for_a_resident_go_out_when_they_write_again(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    announcement = await deliveries.create_announcement(
        author="cli", texts={"lv": "Sveiki"}, audience={"kind": "all"}, send_at=datetime.now(UTC)
    )
    await deliveries.release(announcement, datetime.now(UTC))
    (claimed,) = await deliveries.claim("w", "webchat", 10)
    await deliveries.mark_waiting(claimed, "the resident has no chat open")
    assert (await Resident.get()).pushes_held

    await chat.command("menu")
    assert chat.texts() == [en(MAIN_MENU)]
    (delivery,) = await Delivery.all()
    assert (delivery.state, delivery.external_id) == ("queued", "resident-1"), "a catch-up"
    assert delivery.not_before <= datetime.now(UTC)
    assert not (await Resident.get()).pushes_held


async def test_a_resident_who_blocked_the_bot_and_writes_again_is_reachable(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await deliveries.mark_blocked("webchat", chat.user_id, "Forbidden: bot was blocked by the user")
    assert (await ChannelIdentity.get()).unreachable_since is not None
    assert await reached() == []
    await chat.command("menu")
    assert chat.texts() == [en(MAIN_MENU)]
    assert (await ChannelIdentity.get()).unreachable_since is None
    assert await reached() == [("webchat", "resident-1")]
