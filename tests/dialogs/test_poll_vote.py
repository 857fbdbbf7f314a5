"""A resident answering a poll with one tap, on both databases: the answer recorded and the
pressed message edited to show it, changed by another tap, ticks toggled then Done; a tap
on a closed, cancelled or unopened poll, from outside the audience or another channel, or
with a forged payload, answered plainly and recorded nowhere; the resident's list of
polls; the invitation, reminder and results pushes; and a thousand taps at once through
the dispatcher giving one ballot on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.core.config import Config, LimitsConfig
from bot.core.i18n import translator
from bot.core.messages import CHOSEN, STRICTEST, Incoming, Kind, RenderRequest
from dialogs.poll_words import poll_reply, results_lines
from dialogs.pushes import Pushes
from handlers.dispatcher import Dispatcher
from storage import media, polls
from storage.models import Ballot, ChannelIdentity, Delivery, Poll, Resident
from storage.polls import BallotState, PollDraft
from tests.chat import Chat
from tests.phrases import tr

NOW = datetime.now(UTC)
OPTIONS = [{"lv": "Parkā", "en": "In the park"}, {"lv": "Pie skolas", "en": "By the school"}]


def draft(**more: object) -> PollDraft:
    values: dict[str, object] = {
        "question": {"lv": "Kur likt soliņus?", "en": "Where should the benches go?"},
        "options": [*OPTIONS, {"lv": "Krastā"}],
        "opens_at": NOW - timedelta(minutes=1),
        "closes_at": NOW + timedelta(days=2),
    }
    values.update(more)
    return PollDraft(**values)  # type: ignore[arg-type]


async def open_poll(**more: object) -> Poll:
    poll = await polls.create(draft(**more), author="cli")
    await polls.open_due(NOW)
    opened = await polls.get(poll.id)
    assert opened is not None and opened.state == "open"
    return opened


async def resident_of(chat: Chat) -> Resident:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


async def ballot(poll: Poll, chat: Chat) -> BallotState:
    return await polls.ballot_of(poll.id, (await resident_of(chat)).id)


async def expected(
    chat: Chat, poll: Poll, state: BallotState, *, results: bool, language: str = "en"
) -> str:
    """The poll message as the resident should see it now."""
    fresh = await polls.get(poll.id)
    assert fresh is not None
    options = await polls.options_of(poll.id)
    tally = await polls.tally(fresh) if results else None
    zone = chat.dispatcher.config.municipality.zone
    return poll_reply(translator(language), fresh, options, state, zone=zone, tally=tally).text


@pytest.fixture
async def chat(config: Config) -> Chat:
    chat = Chat(Dispatcher(config), locale="en")
    await chat.onboard()  # in "centrs", in English
    return chat


async def test_one_tap_records_the_answer_and_edits_the_message_to_show_it(chat: Chat) -> None:
    poll = await open_poll()
    await chat.press_payload(f"pl:{poll.id}:1")
    [reply] = chat.last
    assert reply.replace, "the pressed message is edited in place"
    assert await ballot(poll, chat) == BallotState(choices=0b10, draft=0b10)
    # Results are shown after answering (the default): the count includes this answer.
    assert reply.text == await expected(chat, poll, BallotState(0b10, 0b10), results=True)
    assert tr("en", "Your answer: {answer}", answer="By the school") in reply.text
    assert [b.label for b in reply.all_buttons()] == [
        "In the park",
        CHOSEN + "By the school",
        "Krastā",  # no English label: the Latvian one
    ]

    # Another tap changes it: still one ballot.
    await chat.press_payload(f"pl:{poll.id}:0")
    assert await ballot(poll, chat) == BallotState(0b01, 0b01)
    assert await Ballot.filter(poll_id=poll.id).count() == 1
    assert chat.last[0].all_buttons()[0].label == CHOSEN + "In the park"
    assert (await polls.tally(poll)).counts == [1, 0, 0]


async def test_multiple_choice_ticks_toggle_and_only_done_makes_them_count(chat: Chat) -> None:
    poll = await open_poll(multiple=True)
    await chat.press_payload(f"pl:{poll.id}:done")
    assert chat.texts() == [
        tr("en", "Tick at least one option, then press “Done”."),
        await expected(chat, poll, BallotState(), results=False),
    ]
    assert await Ballot.filter(poll_id=poll.id, choices__gt=0).count() == 0

    for position in (0, 2, 1, 2):  # the second tap on 2 unticks it
        await chat.press_payload(f"pl:{poll.id}:{position}")
        assert chat.last[0].replace
    assert await ballot(poll, chat) == BallotState(choices=0, draft=0b011)
    labels = [b.label for b in chat.last[0].all_buttons()]
    assert labels == [CHOSEN + "In the park", CHOSEN + "By the school", "Krastā", "Done"]
    assert (await polls.tally(poll)).ballots == 0, "ticks are not an answer"
    assert tr("en", "Your answer: {answer}", answer="") not in chat.last[0].text

    await chat.press_payload(f"pl:{poll.id}:done")
    assert await ballot(poll, chat) == BallotState(choices=0b011, draft=0b011)
    assert chat.last[0].text == await expected(chat, poll, BallotState(3, 3), results=True)
    assert (await polls.tally(poll)).counts == [1, 1, 0]


async def test_results_at_close_are_not_shown_after_answering(chat: Chat) -> None:
    poll = await open_poll(results="at_close")
    await chat.press_payload(f"pl:{poll.id}:0")
    assert chat.last[0].text == await expected(chat, poll, BallotState(1, 1), results=False)
    await chat.press_payload(f"pl:{poll.id}:results")
    zone = chat.dispatcher.config.municipality.zone
    assert chat.texts() == [
        tr(
            "en",
            "The results will be shown when the poll closes, on {time}.",
            time=translator("en").moment(poll.closes_at, zone),
        ),
        await expected(chat, poll, BallotState(1, 1), results=False),
    ]


async def test_a_tap_on_a_closed_poll_says_so_shows_the_results_and_records_nothing(
    chat: Chat, config: Config
) -> None:
    poll = await open_poll()
    other = Chat(chat.dispatcher, user_id="resident-2", locale="en")
    await other.onboard()
    await other.press_payload(f"pl:{poll.id}:2")
    await polls.close(poll.id, actor="cli")

    await chat.press_payload(f"pl:{poll.id}:0")
    [reply] = chat.last
    assert tr("en", "This poll is closed.") in reply.text
    assert reply.all_buttons() == [], "no option to tap any more"
    assert reply.replace, "the pressed message loses its buttons"
    closed = await polls.get(poll.id)
    assert closed is not None
    options = await polls.options_of(poll.id)
    for line in results_lines(translator("en"), closed, options, await polls.tally(closed)):
        assert line in reply.text
    assert await Ballot.filter(poll_id=poll.id).count() == 1


async def test_a_poll_whose_time_has_passed_takes_no_answer_before_the_clock_closes_it(
    chat: Chat,
) -> None:
    poll = await open_poll()
    await Poll.filter(id=poll.id).update(closes_at=datetime.now(UTC) - timedelta(seconds=1))
    await chat.press_payload(f"pl:{poll.id}:0")
    assert chat.texts()[0].startswith(tr("en", "This poll is closed."))
    assert not chat.last[0].all_buttons()
    assert await Ballot.filter(poll_id=poll.id).count() == 0


async def test_cancelled_and_unopened_polls_take_no_answer(chat: Chat) -> None:
    later = await polls.create(
        draft(opens_at=NOW + timedelta(hours=3), closes_at=NOW + timedelta(days=1)), author="cli"
    )
    await chat.press_payload(f"pl:{later.id}:0")
    zone = chat.dispatcher.config.municipality.zone
    assert chat.texts() == [
        tr(
            "en",
            "This poll has not opened yet. It opens on {time}.",
            time=translator("en").moment(later.opens_at, zone),
        )
    ]
    await polls.cancel(later.id, actor="cli")
    await chat.press_payload(f"pl:{later.id}:0")
    assert chat.texts() == [tr("en", "This poll was cancelled.")]
    assert await Ballot.all().count() == 0


async def test_a_resident_outside_the_audience_is_refused_politely(chat: Chat) -> None:
    poll = await open_poll(audience={"kind": "neighbourhood", "keys": ["jaunciems"]})
    await chat.press_payload(f"pl:{poll.id}:0")
    assert chat.texts() == [
        tr(
            "en",
            "Sorry, this poll is meant for another group of residents (a neighbourhood or a "
            "topic), so I cannot take your answer to it.",
        )
    ]
    assert await Ballot.all().count() == 0


async def test_a_poll_limited_to_platform_accounts_names_where_answers_are_taken(
    chat: Chat,
) -> None:
    poll = await open_poll(channels=("telegram", "messenger"))
    await chat.press_payload(f"pl:{poll.id}:0")  # the Chat is on the web chat
    assert chat.texts() == [
        tr(
            "en",
            "Answers to this poll are taken only on: {channels}.",
            channels="Telegram, Messenger",
        )
    ]
    assert await Ballot.all().count() == 0


@pytest.mark.parametrize(
    "forged",
    ["pl:{id}:3", "pl:{id}:9", "pl:999999:0", "pl:{id}:x", "pl:{id}:0:1", "pl:{id}", "pl:{id}:-1",
     "pl:{id}:done", "pl:0{id}1:0", "pl: {id}:0"],
)  # fmt: skip
async def test_a_forged_or_stale_payload_does_nothing_and_says_the_button_expired(
    chat: Chat, forged: str, caplog: pytest.LogCaptureFixture
) -> None:
    poll = await open_poll()  # single choice, three options: "done" is not one of its buttons
    await chat.text("Labdien")  # any message: the menu is shown
    before = await chat.stored()
    with caplog.at_level(logging.WARNING, logger="dialogs.poll_vote"):
        await chat.press_payload(forged.format(id=poll.id))
    assert chat.texts() == [tr("en", "That button has expired.")]
    assert "poll button" in caplog.text and "refused" in caplog.text
    assert await Ballot.all().count() == 0
    assert await chat.stored() == before


async def test_a_tap_leaves_an_open_question_of_a_dialog_where_it_was(chat: Chat) -> None:
    poll = await open_poll()
    await chat.command("settings")
    before = await chat.stored()
    await chat.press_payload(f"pl:{poll.id}:0")
    assert await chat.stored() == before
    assert (await ballot(poll, chat)).answered


async def test_where_the_channel_cannot_edit_the_answer_comes_as_a_new_message(
    config: Config,
) -> None:
    chat = Chat(Dispatcher(config, capabilities={"webchat": STRICTEST}), locale="en")
    await chat.onboard()
    long_option = {"lv": "Pie jaunās skolas stadiona vārtiem"}
    poll = await open_poll(options=[*OPTIONS, long_option])
    await chat.press_payload(f"pl:{poll.id}:2")
    [reply] = chat.last
    assert not reply.replace
    # A label longer than a button shows whole: the options are numbered in the text.
    assert "3. Pie jaunās skolas stadiona vārtiem" in reply.text
    assert [b.label for b in reply.all_buttons()] == ["1", "2", CHOSEN + "3"]
    assert all(len(b.payload.encode()) <= 64 for b in reply.all_buttons())


# --- the resident's list --------------------------------------------------------------------
async def test_the_list_shows_open_polls_with_a_button_each_and_past_answers(
    chat: Chat,
) -> None:
    await chat.command("polls")
    assert chat.texts() == [tr("en", "There are no open polls for you right now.")]

    first = await open_poll()
    second = await open_poll(
        question={"lv": "Vai vajag skrejceliņu?"}, closes_at=NOW + timedelta(days=5)
    )
    elsewhere = await open_poll(audience={"kind": "neighbourhood", "keys": ["lauki"]})
    past = await open_poll(question={"lv": "Kāda krāsa?"}, options=[{"lv": "Zaļa"}, {"lv": "Zila"}])
    await chat.press_payload(f"pl:{first.id}:0")
    await chat.press_payload(f"pl:{past.id}:1")
    await polls.close(past.id, actor="cli")

    await chat.press(tr("en", "Main menu"))
    await chat.press(tr("en", "Polls"))
    [listing] = chat.last
    zone = chat.dispatcher.config.municipality.zone
    en = translator("en")
    assert listing.text.split("\n") == [
        tr("en", "Open polls — press a number to answer:"),
        tr(
            "en",
            "{number}. {question} (until {time}; {answer})",
            number=1,
            question="Where should the benches go?",
            time=en.moment(first.closes_at, zone),
            answer=tr("en", "answered"),
        ),
        tr(
            "en",
            "{number}. {question} (until {time}; {answer})",
            number=2,
            question="Vai vajag skrejceliņu?",
            time=en.moment(second.closes_at, zone),
            answer=tr("en", "not answered yet"),
        ),
        "",
        tr("en", "Your answers to closed polls:"),
        tr("en", "{question} — you answered: {answer}", question="Kāda krāsa?", answer="Zila"),
    ]
    payloads = [b.payload for b in listing.all_buttons()]
    assert payloads == [f"pl:{first.id}:open", f"pl:{second.id}:open", "menu:main"]
    assert f"pl:{elsewhere.id}:open" not in payloads

    await chat.press("2")
    assert chat.texts() == [await expected(chat, second, BallotState(), results=False)]
    assert not chat.last[0].replace, "sent as a message of its own"
    await chat.press_payload(f"pl:{second.id}:1")
    assert (await ballot(second, chat)).chosen(1)


async def test_many_open_polls_are_paged_under_the_strictest_channel(config: Config) -> None:
    config = replace(config, limits=LimitsConfig(throttle_messages=10_000))
    chat = Chat(Dispatcher(config, capabilities={"webchat": STRICTEST}), locale="en")
    await chat.onboard()
    made = [await open_poll(question={"lv": f"Jautājums {n}"}) for n in range(15)]
    await chat.command("polls")
    seen: list[str] = []
    for _ in range(5):
        buttons = chat.last[0].all_buttons()
        assert len(buttons) <= STRICTEST.buttons_per_message
        assert "menu:main" in [b.payload for b in buttons], "the menu on every page"
        seen += [b.payload for b in buttons if b.payload.endswith(":open")]
        more = [b for b in buttons if b.label == tr("en", "More…")]
        if not more:
            break
        await chat.press_payload(more[0].payload)
    assert seen == [f"pl:{p.id}:open" for p in made]


# --- the pushes -----------------------------------------------------------------------------
async def rendered(config: Config, template: str, poll: Poll, language: str = "en"):  # type: ignore[no-untyped-def]
    pushes = Pushes(config.municipality.zone, config=config)
    return await pushes(RenderRequest(template, {"poll": poll.id}, language, "webchat"))


async def test_the_invitation_is_the_poll_and_is_dropped_once_the_poll_closed(
    config: Config,
) -> None:
    poll = await open_poll()
    invite = await rendered(config, polls.INVITE, poll)
    options = await polls.options_of(poll.id)
    zone = config.municipality.zone
    assert invite == poll_reply(translator("en"), poll, options, BallotState(), zone=zone)
    assert [b.payload for b in invite.all_buttons()] == [f"pl:{poll.id}:{n}" for n in range(3)]
    await polls.close(poll.id, actor="cli")
    assert await rendered(config, polls.INVITE, poll) is None
    assert await rendered(config, polls.REMINDER, poll) is None


async def test_an_invitation_shows_the_labels_where_the_channel_s_buttons_fit_them(
    config: Config,
) -> None:
    """As the answer to a tap does: the message keeps its look after the first tap."""
    poll = await open_poll(options=[{"lv": "Parkā pie lielā dīķa ar strūklaku"}, {"lv": "Nekur"}])
    request = RenderRequest(polls.INVITE, {"poll": poll.id}, "lv", "telegram")
    wide = Pushes(config.municipality.zone, config=config, label_lengths={"telegram": 64})
    narrow = Pushes(config.municipality.zone, config=config)  # a channel that told none: 20
    assert [b.label for b in (await wide(request)).all_buttons()] == [  # type: ignore[union-attr]
        "Parkā pie lielā dīķa ar strūklaku",
        "Nekur",
    ]
    assert [b.label for b in (await narrow(request)).all_buttons()] == ["1", "2"]  # type: ignore[union-attr]


async def test_the_reminder_says_when_the_poll_closes_above_the_poll(config: Config) -> None:
    poll = await open_poll()
    reminder = await rendered(config, polls.REMINDER, poll, "lv")
    zone = config.municipality.zone
    line = tr(
        "lv",
        "Reminder: this poll closes on {time}. You have not answered it yet.",
        time=translator("lv").moment(poll.closes_at, zone),
    )
    options = await polls.options_of(poll.id)
    message = poll_reply(translator("lv"), poll, options, BallotState(), zone=zone)
    assert reminder.text == f"{line}\n\n{message.text}"
    assert reminder.buttons == message.buttons


async def test_the_final_results_come_with_the_chart(config: Config, chat: Chat) -> None:
    poll = await open_poll(tell_voters=True)
    assert await rendered(config, polls.RESULTS_PUSH, poll) is None, "not closed yet"
    await chat.press_payload(f"pl:{poll.id}:1")
    await polls.close(poll.id, actor="cli")
    closed = await polls.get(poll.id)
    assert closed is not None
    push = await rendered(config, polls.RESULTS_PUSH, closed)
    options = await polls.options_of(poll.id)
    lines = results_lines(translator("en"), closed, options, await polls.tally(closed))
    assert push.text == "\n\n".join(
        [tr("en", "The poll has closed. Its results:"), "Where should the benches go?", *lines]
    )
    assert push.image.startswith("/media/")
    kept = await media.image(push.image.removeprefix("/media/"))
    assert kept is not None
    with Image.open(io.BytesIO(kept[0])) as image:
        assert image.format == "PNG" and image.width == 800
    # Queued at closing to the voter (tell_voters), who gets it in their language.
    voter = await resident_of(chat)
    row = await Delivery.get(template=polls.RESULTS_PUSH, resident_id=voter.id)
    assert json.loads(row.params) == {"poll": poll.id}


# --- a thousand taps at once ----------------------------------------------------------------
async def test_a_thousand_concurrent_taps_by_one_resident_record_one_ballot(
    config: Config, database: str
) -> None:
    # On PostgreSQL the row locks and the concurrent upserts are what is tested; on
    # SQLite, with its one writer, the same taps must give the same one ballot.
    config = replace(config, limits=LimitsConfig(throttle_messages=100_000))
    workers = [Dispatcher(config) for _ in range(4)]  # four workers sharing the database
    chat = Chat(workers[0], user_id="tapper", locale="en")
    await chat.onboard()
    poll = await open_poll()

    async def tap(n: int) -> list[str]:
        incoming = Incoming(
            "webchat", "tapper", f"tap-{n}", Kind.BUTTON, payload=f"pl:{poll.id}:{n % 3}"
        )
        outcome = await workers[n % 4].feed(incoming)
        return [reply.text for reply in outcome.replies]

    answers = await asyncio.gather(*(tap(n) for n in range(1000)))
    assert await Ballot.filter(poll_id=poll.id).count() == 1
    state = await ballot(poll, chat)
    assert len(polls.positions(state.choices)) == 1
    # Every tap was answered with the poll message showing an answer, never an apology.
    said = tr("en", "Your answer: {answer}", answer="")
    assert all(len(texts) == 1 and said in texts[0] for texts in answers)
    assert (await polls.tally(poll)).ballots == 1


async def test_a_staff_polls_command_offers_the_residents_list_too(config: Config) -> None:
    """/polls of an account whose role runs polls is the staff's list, with a button to
    answer polls as a resident; anyone else's /polls is the resident's list."""
    from dialogs import poll_staff
    from storage import staff

    await open_poll()
    await staff.grant("webchat", "writer", "communications", actor="test")
    writer = Chat(Dispatcher(config), user_id="writer", locale="en")
    await writer.onboard()
    await writer.command("polls")
    assert poll_staff.ANSWER in [b.payload for b in writer.last[-1].all_buttons()]
    await writer.press_payload(poll_staff.ANSWER)
    mine = writer.texts()
    resident = Chat(Dispatcher(config), user_id="resident-9", locale="en")
    await resident.onboard()
    await resident.command("polls")
    assert resident.texts() == mine
    assert mine[0].startswith(tr("en", "Open polls — press a number to answer:"))
