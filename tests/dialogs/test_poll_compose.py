"""Staff make a quick poll in the chat: question and options per language, the settings,
a preview as residents see it with the audience size, then Create; a bad draft goes back
to the step at fault; residents cannot reach it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.core.config import Config, LimitsConfig
from bot.core.i18n import translator
from handlers.dispatcher import UNKNOWN_COMMAND, Dispatcher
from storage import polls, staff
from storage.models import AuditEntry, Poll, PollReminder
from tests.chat import Chat
from tests.phrases import MAIN_MENU, tr

EN = translator("en")


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


async def staff_chat(config: Config, role: str = "communications") -> Chat:
    await staff.grant("webchat", "staff-1", role, actor="test")
    # A composer presses faster than a person would.
    fast = replace(config, limits=LimitsConfig(throttle_messages=10_000))
    return Chat(Dispatcher(fast), user_id="staff-1", locale="en")


async def residents(config: Config, count: int) -> None:
    for index in range(count):
        chat = Chat(Dispatcher(config), user_id=f"resident-{index}", locale="en")
        await chat.onboard()


async def question_and_two_options(chat: Chat) -> None:
    await chat.command("newpoll")
    assert (await chat.dialog())[0] == "pc:question"
    await chat.text("Kur stādīt kokus?")
    assert (await chat.dialog())[0] == "pc:card"
    await chat.press("Options")
    for latvian, english in (("Parkā", "In the park"), ("Pie skolas", "")):
        await chat.press("Add an option")
        await chat.text(latvian)
        assert (await chat.dialog())[0] == "pc:option"
        if english:
            await chat.text(english)
        else:
            await chat.press("Skip")
        await chat.press("Skip")  # Russian
    assert (await chat.dialog())[0] == "pc:options"
    assert chat.texts()[0].splitlines()[1:] == ["1. Parkā (English)", "2. Pie skolas"]
    await chat.press("Back")


async def test_a_staff_member_composes_previews_and_creates_a_poll(config: Config) -> None:
    await residents(config, 3)
    chat = await staff_chat(config)
    await question_and_two_options(chat)
    card = chat.texts()[0]
    assert "Audience: everyone (3 residents now)" in card
    assert "Closes: 7 days after it opens" in card

    await chat.press("Settings")
    assert chat.labels()[:4] == [
        ["✓ One answer", "Several answers"],
        ["✓ Results at once", "Results at closing"],
        ["✓ All channels", "Platform accounts"],
        ["Tell voters", "✓ Only staff told"],
    ]
    await chat.press("Several answers")
    assert chat.last[0].replace and chat.labels()[0] == ["One answer", "✓ Several answers"]
    await chat.press("Results at closing")
    await chat.press("Tell voters")
    await chat.press("Done")

    await chat.press("Closing")
    await chat.press("3 days after")
    await chat.press("Reminders")
    await chat.press("24 h before")
    assert chat.last[0].replace
    await chat.text("90m")
    assert "Reminders before closing: 1 day, 90 min" in chat.texts()[0]
    assert chat.labels() == [["2 h before"], ["Remove 1 day", "Remove 90 min"], ["Back"]]
    await chat.press("Back")

    await chat.press("Preview and create")
    sample, summary = chat.texts()
    assert sample.startswith("Kur stādīt kokus?") and "Tap every answer" in sample
    assert [row[0].label for row in chat.last[0].buttons] == ["In the park", "Pie skolas", "Done"]
    assert "Audience: everyone (3 residents now)" in summary
    assert "Several answers allowed" in summary
    assert chat.labels() == [["Create the poll"], ["Edit", "Discard the draft"]]

    await chat.press("In the park")  # a tap on the sample records nothing
    assert chat.texts()[0] == en("That is the preview: taps count once the poll is open.")
    before = datetime.now(UTC)
    await chat.press("Create the poll")
    poll = await Poll.get()
    assert chat.texts()[0].startswith(f"Poll #{poll.id} is made and opens now")
    assert await chat.dialog() == ("", {})
    assert poll.question == {"lv": "Kur stādīt kokus?"}
    assert poll.multiple and poll.results == "at_close" and poll.tell_voters
    assert poll.channels == [] and poll.author == "webchat:staff-1"
    assert before - timedelta(seconds=5) <= poll.opens_at <= datetime.now(UTC)
    assert poll.closes_at - poll.opens_at == timedelta(days=3)
    labels = [option.labels for option in await polls.options_of(poll.id)]
    assert labels == [{"lv": "Parkā", "en": "In the park"}, {"lv": "Pie skolas"}]
    sent = sorted(r.before_seconds for r in await PollReminder.filter(poll_id=poll.id))
    assert sent == [90 * 60, 24 * 3600]
    assert await AuditEntry.filter(action="poll.create").count() == 1


async def test_platform_accounts_only_counts_no_web_chat_resident(config: Config) -> None:
    await residents(config, 2)  # on the web chat
    chat = await staff_chat(config)
    await question_and_two_options(chat)
    await chat.press("Settings")
    await chat.press("Platform accounts")
    await chat.press("Done")
    assert "Audience: everyone (0 residents now)" in chat.texts()[0]
    await chat.press("Preview and create")
    await chat.press("Create the poll")
    assert (await Poll.get()).channels == ["telegram", "messenger"]


async def test_a_draft_missing_an_option_goes_back_to_the_options(config: Config) -> None:
    chat = await staff_chat(config)
    await chat.command("newpoll")
    await chat.text("Vai?")
    await chat.press("Preview and create")
    assert chat.texts()[0] == en("A poll needs at least {n} options.", n=2)
    assert (await chat.dialog())[0] == "pc:options"
    await chat.press("Add an option")
    await chat.text("Jā")
    await chat.press("Skip")
    await chat.press("Skip")
    await chat.press("Add an option")
    await chat.text("jā")
    assert chat.texts()[0] == en("There is already an option with that text.")
    assert (await chat.dialog())[0] == "pc:option"
    assert await Poll.all().count() == 0


async def test_bad_times_and_reminders_are_explained_and_asked_again(config: Config) -> None:
    chat = await staff_chat(config)
    await question_and_two_options(chat)
    await chat.press("Opening")
    await chat.text("next Friday")
    assert chat.texts()[0] == en(
        "I could not read that time. Please write it like 1.12.2026 10:00."
    )
    await chat.text("01.01.2020 10:00")
    assert chat.texts()[0] == en("That time has passed. Please give a time still to come.")
    assert (await chat.dialog())[0] == "pc:opens"
    zone = config.municipality.zone
    later = (datetime.now(UTC) + timedelta(days=2)).astimezone(zone)
    later = later.replace(hour=10, minute=0, second=0, microsecond=0)
    await chat.text(f"{later:%d.%m.%Y} 10:00")
    assert f"Opens: {EN.moment(later, zone)}" in chat.texts()[0]
    await chat.press("Closing")
    await chat.text(f"{later - timedelta(days=1):%d.%m.%Y} 10:00")
    assert chat.texts()[0] == en("The poll must close after it opens.")
    await chat.press("1 day after opening")
    await chat.press("Reminders")
    await chat.text("soon")
    assert chat.texts()[0] == en("I could not read that. Please write it like 12h, 90m or 3d.")
    await chat.text("2d")
    assert chat.texts()[0] == en("That reminder would come before the poll opens.")
    await chat.press("24 h before")  # exactly the poll's span: still not after it opens
    assert chat.texts()[0] == en("That reminder would come before the poll opens.")
    await chat.press("Back")
    await chat.press("Preview and create")
    await chat.press("Create the poll")
    poll = await Poll.get()
    assert poll.state == "scheduled" and poll.opens_at == later
    assert poll.closes_at == later + timedelta(days=1)
    assert chat.texts()[0].startswith(f"Poll #{poll.id} is made: it opens at")


async def test_discarding_makes_no_poll(config: Config) -> None:
    chat = await staff_chat(config)
    await chat.onboard()
    await question_and_two_options(chat)
    await chat.press("Discard the draft")
    assert chat.texts() == [en("The draft is discarded; no poll was made."), en(MAIN_MENU)]
    assert await Poll.all().count() == 0


async def test_a_resident_cannot_compose_a_poll(config: Config) -> None:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()
    await chat.command("newpoll")
    assert chat.texts() == [en(UNKNOWN_COMMAND), en(MAIN_MENU)]
    await chat.press_payload("pc:preview:create")
    assert chat.texts() == [en(UNKNOWN_COMMAND), en(MAIN_MENU)]
    assert await Poll.all().count() == 0
