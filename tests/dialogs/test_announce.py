"""Staff compose, confirm, list and cancel announcements in the chat; residents cannot."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.config import Config
from bot.core.i18n import translator
from bot.core.messages import Capabilities, Kind
from handlers.dispatcher import UNKNOWN_COMMAND, Dispatcher
from storage import announcements, deliveries, staff
from storage.models import Announcement, AuditEntry, Delivery
from tests.chat import Chat
from tests.dialogs.test_pushes import words
from tests.phrases import (
    ADMIN_ASKED,
    ADMIN_CONFIRMED,
    ALREADY_CANCELLED,
    ALREADY_DECIDED,
    ANNOUNCEMENTS,
    BY_AUTHOR,
    CANCEL_QUESTION,
    CANCELLED_NOBODY,
    CHOOSE_AT_LEAST_ONE,
    CONFIRMED,
    DISCARDED,
    GOING_OUT,
    GOING_OUT_NOW,
    GOING_OUT_ONE,
    HELP,
    IMAGE_ATTACHED,
    IMAGE_TEXT_ONLY,
    LANGUAGE_QUESTION,
    MAIN_MENU,
    MUNICIPALITY,
    NO_ADMIN_TOLD,
    NO_SUCH_ANNOUNCEMENT,
    PHOTO_ATTACHED,
    PICK_NEIGHBOURHOODS,
    PICK_TOPICS,
    PLEASE_SEND_PHOTO,
    PLEASE_USE_BUTTONS,
    RECENT_HEADER,
    SCHEDULED_FOR,
    SCHEDULED_HEADER,
    SEND_FOR_APPROVAL,
    SEND_PHOTO,
    STAFF_HELP,
    STOP_QUESTION,
    STOPPED_BY_STAFF,
    TIME_PASSED,
    TOO_LATE,
    UNREADABLE_TIME,
    WAITING_HEADER,
    WAITS_FOR_ADMIN,
    WHO_SHOULD_GET_IT,
    audience,
    draft_card,
    preview_summary,
    progress,
    tr,
    when_prompts,
    write_prompt,
)

TEXT = "Rīt nebūs ūdens."
EN = translator("en")
MENU_LABELS = [
    ["Idea or problem", "Polls"],
    ["My proposals", "Proposals nearby"],
    ["Settings", "My data"],
    ["Stop announcements", "Help"],
]
CARD_LABELS = [  # on a channel that hands no photos over: no Image button
    ["Latviešu", "English", "Русский"],
    ["Audience"],
    ["Mark urgent", "Time"],
    ["Preview and send"],
    ["Discard the draft"],
]


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


async def staff_chat(config: Config, role: str, user_id: str = "staff-1") -> Chat:
    await staff.grant("webchat", user_id, role, actor="test")
    return Chat(Dispatcher(config), user_id=user_id, locale="en")


async def residents(config: Config, *hoods: str) -> None:
    for index, hood in enumerate(hoods):
        chat = Chat(Dispatcher(config), user_id=f"resident-{index}", locale="en")
        await chat.onboard()
        if hood != "centrs":
            await chat.command("settings")
            await chat.choose("set:home", "neighbourhood")
            await chat.choose("set:neighbourhood", hood)


async def compose(chat: Chat, recipients: int, text: str = TEXT) -> None:
    await chat.command("announce")
    assert chat.texts() == [write_prompt("en")]
    assert chat.labels() == []
    await chat.text(text)
    assert chat.texts() == [draft_card("en", {"lv": text}, audience("en"), recipients)]
    assert (await chat.dialog())[0] == "ann:card"


def listed(config: Config, row: Announcement, *more: str) -> str:
    """One announcement in the staff's list: number, time, audience, its Latvian text."""
    parts = [f"#{row.id}", EN.moment(row.send_at, config.municipality.zone), *more]
    return " · ".join(parts) + f"\n«{row.texts['lv']}»"


async def test_a_staff_member_composes_previews_and_schedules_an_announcement(
    config: Config,
) -> None:
    await residents(config, "centrs", "centrs", "jaunciems")
    chat = await staff_chat(config, "communications")
    await compose(chat, 3)

    await chat.press("English")
    assert chat.texts() == [write_prompt("en", "en")]
    assert chat.labels() == [["Back"]]
    await chat.text("No water tomorrow.")
    texts = {"lv": TEXT, "en": "No water tomorrow."}
    assert chat.texts() == [draft_card("en", texts, audience("en"), 3)]

    await chat.press("Audience")
    assert chat.texts() == [en(WHO_SHOULD_GET_IT)]
    assert chat.labels() == [["Everyone"], ["Neighbourhoods", "Topics"], ["Back"]]
    await chat.press("Neighbourhoods")
    assert chat.texts() == [en(PICK_NEIGHBOURHOODS)]
    await chat.press("Centre")
    assert chat.texts() == [en(PICK_NEIGHBOURHOODS)] and chat.last[0].replace
    assert chat.labels() == [
        ["✓ Centre", "Jaunciems"],
        ["Across the river", "Rural parish"],
        ["Done", "Back"],
    ]
    await chat.press("Done")
    centre = audience("en", "neighbourhood", "Centre")
    assert chat.texts() == [draft_card("en", texts, centre, 2)]

    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(config.municipality.zone)
    at = tomorrow.replace(hour=10, minute=30, second=0, microsecond=0)
    goes = EN.moment(at, config.municipality.zone)
    await chat.press("Time")
    await chat.text(f"{tomorrow:%d.%m.%Y} 10:30")
    assert chat.texts() == [draft_card("en", texts, centre, 2, goes=goes)]

    await chat.press("Preview and send")
    assert chat.texts() == [TEXT, preview_summary("en", centre, 2, goes=goes)]
    assert chat.labels() == [["Send"], ["Edit", "Discard the draft"]]
    await chat.send_press("Send", message_id="m-preview")
    announcement = await Announcement.get()
    assert chat.texts() == [en(SCHEDULED_FOR, id=announcement.id, moment=goes)]
    assert chat.last[0].replace, "the summary turns into the report"
    assert await chat.dialog() == ("", {})

    assert announcement.state == "scheduled"
    assert announcement.texts == texts
    assert announcement.audience == {"kind": "neighbourhood", "keys": ["centrs"]}
    assert announcement.send_at == at
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
        assert chat.texts() == [en(UNKNOWN_COMMAND), en(MAIN_MENU)], command
    for payload in ("ann:preview:send", "ann:card:urgent", "staff:cancel:1:yes", "staff:approve:1"):
        await chat.press_payload(payload)
        assert chat.texts() == [en(UNKNOWN_COMMAND), en(MAIN_MENU)], payload
        assert await chat.dialog() == ("", {})
    assert await Announcement.all().count() == 0
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 6


async def test_a_revoked_role_stops_the_draft_at_the_next_step(config: Config) -> None:
    chat = await staff_chat(config, "communications")
    await compose(chat, 0)
    await staff.revoke("webchat", "staff-1", actor="test")
    await chat.press("Preview and send")
    question = en(LANGUAGE_QUESTION, municipality=MUNICIPALITY)
    # Not yet onboarded as a resident: the draft is gone, and onboarding begins.
    assert chat.texts() == [en(UNKNOWN_COMMAND), question]
    assert await chat.dialog() == ("onb:language", {})
    await chat.text("anything")
    assert chat.texts() == [en(PLEASE_USE_BUTTONS), question]
    assert await chat.dialog() == ("onb:language", {})
    assert await Announcement.all().count() == 0


async def test_bad_answers_in_the_draft_are_explained_and_asked_again(config: Config) -> None:
    zone = config.municipality.zone
    chat = await staff_chat(config, "communications")
    await compose(chat, 0)
    assert chat.labels() == CARD_LABELS
    await chat.press("Time")
    before = datetime.now(UTC)
    await chat.text("next Friday")
    asked = when_prompts("en", zone, before, datetime.now(UTC))
    assert chat.texts()[0] == en(UNREADABLE_TIME) and chat.texts()[1] in asked
    assert chat.labels() == [["As soon as I confirm", "Back"]]
    before = datetime.now(UTC)
    await chat.text("01.01.2020 10:00")
    asked = when_prompts("en", zone, before, datetime.now(UTC))
    assert chat.texts()[0] == en(TIME_PASSED) and chat.texts()[1] in asked
    assert (await chat.dialog())[0] == "ann:when"
    await chat.press("As soon as I confirm")
    assert chat.texts() == [draft_card("en", {"lv": TEXT}, audience("en"), 0)]
    assert chat.labels() == CARD_LABELS
    await chat.press("Audience")
    await chat.press("Topics")
    await chat.press("Done")
    assert chat.texts() == [en(CHOOSE_AT_LEAST_ONE), en(PICK_TOPICS)]
    assert (await chat.dialog())[0] == "ann:pick"
    await chat.press("Back")
    assert chat.texts() == [en(WHO_SHOULD_GET_IT)]
    await chat.press("Everyone")
    assert chat.texts() == [draft_card("en", {"lv": TEXT}, audience("en"), 0)]
    await chat.press("Discard")
    assert chat.texts() == [en(DISCARDED), en(MAIN_MENU)]
    assert await chat.dialog() == ("", {})
    assert await Announcement.all().count() == 0


async def test_an_urgent_announcement_waits_for_an_admin_who_confirms_it(config: Config) -> None:
    admin = await staff_chat(config, "admin", "admin-1")
    await admin.onboard()
    writer = await staff_chat(config, "communications")
    await writer.onboard()
    await compose(writer, 2)
    await writer.press("Mark urgent")
    assert writer.texts() == [draft_card("en", {"lv": TEXT}, audience("en"), 2, urgent=True)]
    assert writer.last[0].replace
    await writer.press("Preview and send")
    summary = preview_summary("en", audience("en"), 2, urgent=True)
    assert writer.texts() == [TEXT, summary]
    assert writer.labels() == [[en(SEND_FOR_APPROVAL)], ["Edit", "Discard the draft"]]
    await writer.send_press(en(SEND_FOR_APPROVAL), message_id="m-1")
    announcement = await Announcement.get()
    assert writer.texts() == [en(WAITS_FOR_ADMIN, id=announcement.id)]
    assert announcement.state == "pending"
    assert await deliveries.due_announcements() == [], "nothing goes out before the admin says so"
    note = await Delivery.get(external_id="admin-1")
    assert (note.priority, note.quiet_exempt) == (deliveries.PERSONAL, True)
    assert (await words(note)).text == en(  # type: ignore[union-attr]
        ADMIN_ASKED, id=announcement.id, author="webchat:staff-1"
    )

    waiting = listed(config, announcement, audience("en"), en("urgent"))
    waiting += "\n" + en(BY_AUTHOR, author="webchat:staff-1")
    listing = "\n".join([en(ANNOUNCEMENTS), "", en(WAITING_HEADER), waiting])
    await writer.command("announcements")
    assert writer.texts() == [listing]
    assert writer.labels() == [[f"Cancel #{announcement.id}"], ["Refresh"]], "only admins confirm"

    await admin.command("announcements")
    assert admin.texts() == [listing]
    assert admin.labels() == [
        [f"Confirm #{announcement.id}", f"Decline #{announcement.id}"],
        ["Refresh"],
    ]
    await admin.press(f"Confirm #{announcement.id}")
    announcement = await Announcement.get()
    scheduled = listed(config, announcement, audience("en"), en("urgent"))
    assert admin.texts() == [
        en(CONFIRMED, id=announcement.id),
        "\n".join([en(ANNOUNCEMENTS), "", en(SCHEDULED_HEADER), scheduled]),
    ]
    assert (announcement.state, announcement.approved_by) == ("scheduled", "webchat:admin-1")
    told = await Delivery.get(external_id="staff-1")
    assert (await words(told)).text == en(ADMIN_CONFIRMED, id=announcement.id)  # type: ignore[union-attr]

    await admin.press_payload(f"staff:decline:{announcement.id}")
    assert admin.texts() == [en(ALREADY_DECIDED, id=announcement.id, state=en("scheduled"))]
    assert (await Announcement.get()).state == "scheduled"


async def test_an_admins_own_urgent_announcement_needs_no_second_admin(config: Config) -> None:
    admin = await staff_chat(config, "admin", "admin-1")
    await compose(admin, 0)
    await admin.press("Mark urgent")
    await admin.press("Preview and send")
    summary = preview_summary("en", audience("en"), 0, urgent=True, admin=True)
    assert admin.texts() == [TEXT, summary]
    assert admin.labels()[0] == ["Send"]
    await admin.send_press("Send", message_id="m-1")
    announcement = await Announcement.get()
    assert admin.texts() == [en(GOING_OUT_NOW, id=announcement.id)]
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
    everyone = audience("en")
    await chat.command("announcements")
    assert chat.texts() == [
        "\n".join(
            [
                en(ANNOUNCEMENTS),
                "",
                en(SCHEDULED_HEADER),
                listed(config, first, everyone),
                listed(config, gone, everyone),
            ]
        )
    ]
    assert chat.labels() == [[f"Cancel #{first.id}"], [f"Cancel #{gone.id}"], ["Refresh"]]
    await chat.press(f"Cancel #{first.id}")
    assert chat.texts() == [f"{en(CANCEL_QUESTION)}\n\n{listed(config, first, everyone)}"]
    assert chat.labels() == [["Yes, cancel it", "No, keep it"]]
    await chat.press("Yes, cancel it")
    assert chat.texts() == [en(CANCELLED_NOBODY, id=first.id)] and chat.last[0].replace
    await chat.press_payload(f"staff:cancel:{first.id}:yes")
    assert chat.texts() == [en(ALREADY_CANCELLED, id=first.id)]
    assert (await Announcement.get(id=first.id)).cancelled_by == "webchat:staff-1"
    assert await AuditEntry.filter(action="announcement.cancel").count() == 1

    await deliveries.release(gone, datetime.now(UTC))
    await announcements.finish(gone.id)  # nobody left to send to: done
    await chat.press_payload(f"staff:cancel:{gone.id}:yes")
    assert chat.texts() == [en(TOO_LATE, id=gone.id)]
    assert (await Announcement.get(id=gone.id)).state == "done"
    await chat.press_payload("staff:cancel:999999:yes")
    assert chat.texts() == [en(NO_SUCH_ANNOUNCEMENT)]
    assert await AuditEntry.filter(action="announcement.cancel").count() == 1


async def test_help_lists_the_staff_commands_to_staff_only(config: Config) -> None:
    member = await staff_chat(config, "communications")
    await member.onboard()
    await member.command("help")
    help_ = en(HELP, municipality=MUNICIPALITY)
    assert member.texts() == [help_, en(STAFF_HELP), en(MAIN_MENU)]
    resident = Chat(Dispatcher(config), locale="en")
    await resident.onboard()
    await resident.command("help")
    assert resident.texts() == [help_, en(MAIN_MENU)]
    assert resident.labels() == MENU_LABELS


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
    figures = progress("en", going.id, 3, (GOING_OUT_ONE, GOING_OUT), sent=1, queued=2)
    assert chat.texts() == ["\n".join([en(ANNOUNCEMENTS), "", en(RECENT_HEADER), figures])]
    assert chat.labels() == [[f"Stop sending #{going.id}"], ["Refresh"]]
    await chat.press(f"Stop sending #{going.id}")
    going = await Announcement.get(id=going.id)
    everyone = audience("en")
    assert chat.texts() == [f"{en(STOP_QUESTION)}\n\n{listed(config, going, everyone)}"]
    await chat.press("Yes, stop it")
    stopped = progress("en", going.id, 3, STOPPED_BY_STAFF, sent=1, cancelled=2)
    assert chat.texts() == [stopped] and chat.last[0].replace
    assert await deliveries.claim("w", "webchat", 10) == [], "nothing left to send"
    entry = await AuditEntry.get(action="announcement.cancel")
    assert entry.detail == {"id": going.id, "stopped": 2}


async def test_the_author_hears_when_no_admin_can_be_asked(config: Config) -> None:
    await staff.grant("telegram", "555", "admin", actor="test")  # never wrote to the bot
    writer = await staff_chat(config, "communications")
    await compose(writer, 0)
    await writer.press("Mark urgent")
    await writer.press("Preview and send")
    await writer.send_press(en(SEND_FOR_APPROVAL), message_id="m-1")
    announcement = await Announcement.get()
    assert writer.texts() == [en(WAITS_FOR_ADMIN, id=announcement.id), en(NO_ADMIN_TOLD)]
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
    # A channel that can send a photo again by its id (as Telegram can), named "webchat" here.
    photos = {"webchat": Capabilities(takes_photos=True, resends_photo_ids=True)}
    dispatcher = Dispatcher(config, files={"webchat": source}, capabilities=photos)
    chat = Chat(dispatcher, user_id="staff-1", locale="en")
    await compose(chat, 0)
    assert chat.labels()[1] == ["Image", "Audience"]

    def card(image: str) -> str:
        return draft_card("en", {"lv": TEXT}, audience("en"), 0, image=image)

    await chat.press("Image")
    assert chat.texts() == [en(SEND_PHOTO)]
    assert chat.labels() == [["Back"]]
    await chat.text("here is the picture")
    assert chat.texts() == [en(PLEASE_SEND_PHOTO), en(SEND_PHOTO)]
    await chat.send(Kind.PHOTO, photo_id="not-an-image")
    assert chat.texts() == [en(PHOTO_ATTACHED), card(IMAGE_TEXT_ONLY)]
    await chat.press("Image")
    assert chat.labels() == [["Remove the image"], ["Back"]]
    await chat.send(Kind.PHOTO, photo_id="photo-1")
    assert chat.texts() == [en(PHOTO_ATTACHED), card(IMAGE_ATTACHED)]
    (_, data) = await chat.dialog()
    assert (data["image"], data["image_channel"]) == ("photo-1", "webchat")
    assert len(data["image_media"]) == 64
    await chat.press("Image")
    await chat.press("Remove the image")
    assert chat.texts() == [card("Image: none")]
