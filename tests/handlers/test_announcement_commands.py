"""A resident stops and resumes announcements; what waited for them comes when they return."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.config import Config
from handlers.dispatcher import Dispatcher
from storage import deliveries
from storage.models import ChannelIdentity, Delivery, Resident
from tests.chat import Chat


async def test_stop_mutes_announcements_and_start_brings_them_back(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    assert chat.button("Stop announcements")
    await chat.command("stop")
    assert chat.said("you will get no more announcements")
    assert chat.button("Resume announcements"), "the menu offers the way back"
    assert await deliveries.recipients({"kind": "all"}) == []
    await chat.command("stop")
    assert chat.said("already off")
    await chat.command("start")
    assert chat.said("you will get announcements again")
    assert len(await deliveries.recipients({"kind": "all"})) == 1


async def test_the_menu_buttons_mute_and_unmute(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await chat.press("Stop announcements")
    assert (await Resident.get()).announcements_muted
    await chat.press("Resume announcements")
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
    assert (await Delivery.get()).state == "queued", "released as a catch-up"
    assert not (await Resident.get()).pushes_held


async def test_a_resident_who_blocked_the_bot_and_writes_again_is_reachable(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await deliveries.mark_blocked("webchat", chat.user_id, "Forbidden: bot was blocked by the user")
    assert (await ChannelIdentity.get()).unreachable_since is not None
    await chat.command("menu")
    assert (await ChannelIdentity.get()).unreachable_since is None
    assert len(await deliveries.recipients({"kind": "all"})) == 1
