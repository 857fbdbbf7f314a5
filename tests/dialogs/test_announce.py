"""Staff compose, confirm, list and cancel announcements in the chat; residents cannot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import Config
from bot.messages import Kind
from handlers.dispatcher import Dispatcher
from storage import announcements, deliveries, staff
from storage.models import Announcement, AuditEntry, Delivery
from tests.chat import Chat
from tests.dialogs.test_pushes import words

UNKNOWN = "Sorry, I do not know that command."


async def staff_chat(config: Config, role: str, user_id: str = "staff-1") -> Chat:
    await staff.grant("webchat", user_id, role, actor="test")
    return Chat(Dispatcher(config), user_id=user_id, locale="en")


async def residents(config: Config, *hoods: str) -> None:
    for index, hood in enumerate(hoods):
        chat = Chat(Dispatcher(config), user_id=f"resident-{index}", locale="en")
        await chat.onboard()
        if hood != "centrs":
            await chat.command("settings")
            await chat.press_payload("set:home:neighbourhood")
            await chat.press_payload(f"set:neighbourhood:{hood}")


async def compose(chat: Chat, text: str = "Rīt nebūs ūdens.") -> None:
    await chat.command("announce")
    assert chat.said("Write the announcement in Latvian")
    await chat.text(text)
    assert chat.said("New announcement")


async def test_a_staff_member_composes_previews_and_schedules_an_announcement(
    config: Config,
) -> None:
    await residents(config, "centrs", "centrs", "jaunciems")
    chat = await staff_chat(config, "communications")
    await compose(chat)
    assert chat.said("Audience: everyone (3 residents now)")

    await chat.press("English")
    await chat.text("No water tomorrow.")
    assert chat.said("English: «No water tomorrow.»")
    assert chat.said("Русский: none (they get the Latvian text)")

    await chat.press("Audience")
    await chat.press("Neighbourhoods")
    await chat.press("Centre")
    assert chat.button("✓ Centre"), "the choice is marked"
    await chat.press("Done")
    assert chat.said("Audience: neighbourhoods: Centre (2 residents now)")

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(config.municipality.zone)
    await chat.press("Time")
    await chat.text(f"{tomorrow:%d.%m.%Y} 10:30")
    assert chat.said("Goes out: ")

    await chat.press("Preview and send")
    assert chat.texts()[0] == "Rīt nebūs ūdens.", "first the announcement as residents see it"
    assert chat.said("Audience: neighbourhoods: Centre — 2 residents now")
    await chat.send_press("Send", message_id="m-preview")
    assert chat.said("is scheduled for")
    assert chat.last[0].replace, "the summary turns into the report"

    announcement = await Announcement.get()
    assert announcement.state == "scheduled"
    assert announcement.texts == {"lv": "Rīt nebūs ūdens.", "en": "No water tomorrow."}
    assert announcement.audience == {"kind": "neighbourhood", "keys": ["centrs"]}
    local = announcement.send_at.astimezone(config.municipality.zone)
    assert (local.date(), local.hour, local.minute) == (tomorrow.date(), 10, 30)
    assert announcement.report["message"] == "m-preview"
    assert announcement.author == "webchat:staff-1"
    entry = await AuditEntry.get(action="announcement.create")
    assert entry.actor == "webchat:staff-1" and entry.detail["id"] == announcement.id


async def test_a_resident_cannot_reach_any_staff_action(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    caplog.set_level(logging.WARNING)
    for command in ("announce", "announcements"):
        await chat.command(command)
        assert chat.said(UNKNOWN)
    for payload in ("ann:preview:send", "ann:card:urgent", "staff:cancel:1:yes", "staff:approve:1"):
        await chat.press_payload(payload)
        assert chat.said(UNKNOWN), payload
    assert await Announcement.all().count() == 0
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 6


async def test_a_revoked_role_stops_the_draft_at_the_next_step(config: Config) -> None:
    chat = await staff_chat(config, "communications")
    await compose(chat)
    await staff.revoke("webchat", "staff-1", actor="test")
    await chat.press("Preview and send")
    assert chat.said(UNKNOWN)
    await chat.text("anything")
    assert not chat.said("New announcement")


async def test_bad_answers_in_the_draft_are_explained_and_asked_again(config: Config) -> None:
    chat = await staff_chat(config, "communications")
    await compose(chat)
    await chat.press("Time")
    await chat.text("next Friday")
    assert chat.said("I could not read that time")
    assert chat.said("When should it go out?")
    await chat.text("01.01.2020 10:00")
    assert chat.said("That time has passed")
    await chat.press("As soon as I confirm")
    with pytest.raises(AssertionError):
        chat.button("Image")  # this channel hands no photos over: no button for one
    await chat.press("Audience")
    await chat.press("Topics")
    await chat.press("Done")
    assert chat.said("Choose at least one, or press Back.")
    await chat.press("Back")
    await chat.press("Everyone")
    await chat.press("Discard")
    assert chat.said("nothing was sent")
    assert await Announcement.all().count() == 0


async def test_an_urgent_announcement_waits_for_an_admin_who_confirms_it(config: Config) -> None:
    admin = await staff_chat(config, "admin", "admin-1")
    await admin.onboard()
    writer = await staff_chat(config, "communications")
    await writer.onboard()
    await compose(writer)
    await writer.press("Mark urgent")
    assert writer.said("Urgent: yes")
    await writer.press("Preview and send")
    assert writer.said("An admin must confirm it first")
    await writer.send_press("Send to an admin to confirm", message_id="m-1")
    assert writer.said("waits for an admin's confirmation")
    announcement = await Announcement.get()
    assert announcement.state == "pending"
    assert await deliveries.due_announcements() == [], "nothing goes out before the admin says so"
    note = await Delivery.get(external_id="admin-1")
    assert (note.priority, note.quiet_exempt) == (deliveries.PERSONAL, True)
    assert "/announcements" in (await words(note)).text  # type: ignore[union-attr]

    await writer.command("announcements")
    with pytest.raises(AssertionError):
        writer.button(f"Confirm #{announcement.id}")  # only admins may

    await admin.command("announcements")
    assert admin.said("Waiting for an admin's confirmation:")
    await admin.press(f"Confirm #{announcement.id}")
    assert admin.said(f"Confirmed: announcement #{announcement.id}")
    announcement = await Announcement.get()
    assert (announcement.state, announcement.approved_by) == ("scheduled", "webchat:admin-1")
    told = await Delivery.get(external_id="staff-1")
    assert "confirmed your urgent announcement" in (await words(told)).text  # type: ignore[union-attr]

    await admin.press_payload(f"staff:decline:{announcement.id}")
    assert admin.said("Someone else has already decided")


async def test_an_admins_own_urgent_announcement_needs_no_second_admin(config: Config) -> None:
    admin = await staff_chat(config, "admin", "admin-1")
    await compose(admin)
    await admin.press("Mark urgent")
    await admin.press("Preview and send")
    assert admin.said("Urgent: it goes out even during quiet hours.")
    await admin.send_press("Send", message_id="m-1")
    announcement = await Announcement.get()
    assert (announcement.state, announcement.approved_by) == ("scheduled", "webchat:admin-1")


async def test_staff_cancel_a_scheduled_announcement_but_not_one_gone_out(config: Config) -> None:
    chat = await staff_chat(config, "communications")
    later = datetime.now(UTC) + timedelta(hours=2)
    first = await deliveries.create_announcement(
        author="cli", texts={"lv": "Pirmais"}, audience={"kind": "all"}, send_at=later
    )
    gone = await deliveries.create_announcement(
        author="cli", texts={"lv": "Otrais"}, audience={"kind": "all"}, send_at=later
    )
    await chat.command("announcements")
    assert chat.said("Scheduled:") and chat.said("«Pirmais»")
    await chat.press(f"Cancel #{first.id}")
    assert chat.said("Cancel this announcement?")
    await chat.press("Yes, cancel it")
    assert chat.said("is cancelled; nobody got it")
    await chat.press_payload(f"staff:cancel:{first.id}:yes")
    assert chat.said("was already cancelled")
    assert (await Announcement.get(id=first.id)).cancelled_by == "webchat:staff-1"
    assert await AuditEntry.filter(action="announcement.cancel").count() == 1

    await deliveries.release(gone, datetime.now(UTC))
    await announcements.finish(gone.id)  # nobody left to send to: done
    await chat.press_payload(f"staff:cancel:{gone.id}:yes")
    assert chat.said("Too late")
    await chat.press_payload("staff:cancel:999999:yes")
    assert chat.said("There is no such announcement.")


async def test_help_lists_the_staff_commands_to_staff_only(config: Config) -> None:
    member = await staff_chat(config, "communications")
    await member.onboard()
    await member.command("help")
    assert member.said("/announce – write an announcement")
    resident = Chat(Dispatcher(config), locale="en")
    await resident.onboard()
    await resident.command("help")
    assert not resident.said("/announce")


async def test_staff_stop_an_announcement_going_out_and_nobody_else_gets_it(
    config: Config,
) -> None:
    await residents(config, "centrs", "centrs", "jaunciems")
    chat = await staff_chat(config, "communications")
    going = await deliveries.create_announcement(
        author="cli", texts={"lv": "Kļūda"}, audience={"kind": "all"}, send_at=datetime.now(UTC)
    )
    await deliveries.release(going, datetime.now(UTC))
    (first, *_) = await deliveries.claim("w", "webchat", 1)
    await deliveries.mark_sent(first.id)

    await chat.command("announcements")
    assert chat.said(f"Announcement #{going.id} is going out to 3 residents.")
    await chat.press(f"Stop sending #{going.id}")
    assert chat.said("Residents who already got it keep it.")
    await chat.press("Yes, stop it")
    assert chat.said(f"Announcement #{going.id} was stopped by staff.")
    assert chat.said("Stopped before sending: 2")
    assert await deliveries.claim("w", "webchat", 10) == [], "nothing left to send"
    entry = await AuditEntry.get(action="announcement.cancel")
    assert entry.detail == {"id": going.id, "stopped": 2}


async def test_the_author_hears_when_no_admin_can_be_asked(config: Config) -> None:
    await staff.grant("telegram", "555", "admin", actor="test")  # never wrote to the bot
    writer = await staff_chat(config, "communications")
    await compose(writer)
    await writer.press("Mark urgent")
    await writer.press("Preview and send")
    await writer.send_press("Send to an admin to confirm", message_id="m-1")
    assert writer.said("waits for an admin's confirmation")
    assert writer.said("No admin could be told")
    assert await Delivery.all().count() == 0


@dataclass
class PhotoSource:
    """A channel's files, as a channel hands them over (bytes by file id)."""

    files: dict[str, bytes]

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        data = self.files.get(file_id)
        return data if data is not None and len(data) <= max_bytes else None


async def test_a_photo_is_attached_where_the_channel_hands_photos_over(config: Config) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00street\xff\xd9"
    source = PhotoSource({"photo-1": jpeg, "not-an-image": b"%PDF-1.7"})
    await staff.grant("webchat", "staff-1", "communications", actor="test")
    chat = Chat(Dispatcher(config, files={"webchat": source}), user_id="staff-1", locale="en")
    await compose(chat)
    await chat.press("Image")
    await chat.text("here is the picture")
    assert chat.said("Please send a photo, or press Back.")
    await chat.send(Kind.PHOTO, photo_id="not-an-image")
    assert chat.said("Image: attached (residents on the web chat get the text only)")
    await chat.press("Image")
    await chat.send(Kind.PHOTO, photo_id="photo-1")
    assert chat.said("Image: attached\n")
    await chat.press("Image")
    await chat.press("Remove the image")
    assert chat.said("Image: none")
