"""The feedback loop as residents and staff read it: each status change worded for the
author and for every follower in their own language, "Reply" reaching the department,
"Is it fixed?" with its answer, reopening, rating and comment, and the buttons a
resident was never sent doing nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.config import Config, LimitsConfig
from bot.core.i18n import translator
from bot.core.messages import RenderRequest, Reply
from bot.core.proposals_config import Department
from dialogs.pushes import Pushes
from handlers.dispatcher import Dispatcher
from storage import feedback, photos, proposals
from storage.models import (
    ChannelIdentity,
    Delivery,
    Proposal,
    ProposalComment,
    ProposalEvent,
    ProposalRating,
    Resident,
)
from storage.proposals import Draft
from tests.chat import Chat
from tests.phrases import EMPTY, tr

TEXT = "A deep pothole on Brīvības iela by the school"
LATER = timedelta(days=30)

STATUS_OWN = "Your proposal {reference} ({category}: {text}) is now: {status}."
STATUS_FOLLOWED = "A proposal you follow, {reference} ({category}: {text}), is now: {status}."
EXPLANATION = "How it was taken into account: {explanation}"
PROMISED = "Promised by: {date}"
PASSED_TO = "Passed to: {body}"
REPLY_HINT = "Press “Reply” to write to the department about it."
EXPECTED_FOLLOWED = (
    "The promised date of a proposal you follow, {reference} ({category}: {text}), "
    "has moved to {date}."
)
REASON = "Why: {explanation}"
REOPENED_OWN = (
    "Your proposal {reference} ({category}: {text}) has been reopened: residents said it "
    "is not fixed yet. The department is working on it again."
)
WRITE = (
    "Write your reply to the department about {reference} ({category}: {text}) in one "
    "message. It goes to the staff who handle it."
)
WRITE_AFTER_FIXED = (
    "If you like, write in one message what is still not right with {reference}: it goes "
    "to the staff who handle it."
)
TOO_LONG = "That is too long: at most {n} characters, please. Try to say it shorter."
SENT = "Thank you: your reply about {reference} has reached {department}."
NOT_YOURS = "You can only write about a proposal you submitted or follow."
FROM_AUTHOR = "The author of {reference} ({category}: {text}) wrote:\n\n{comment}"
FROM_FOLLOWER = "A follower of {reference} ({category}: {text}) wrote:\n\n{comment}"
FIXED_QUESTION = (
    "Is it fixed? {reference} ({category}: {text}) was marked as implemented. "
    "Please tell us whether the problem is solved."
)
REOPENED = (
    "Thank you for telling us. {reference} has been reopened, and the department has been "
    "told it is not done yet."
)
REOPENED_BY_NO = (
    "{reference} ({category}: {text}) was reopened: a resident answered that it is not "
    "fixed. It is in progress again."
)
RATE_QUESTION = "How would you rate the way {reference} was handled? 1 is poor, 5 is very good."
RATED = "Thank you for your rating."
GLAD = "Thank you! We are glad it is fixed."
QUESTION_EXPIRED = "This question has expired: the proposal has changed since it was asked."
ALREADY_ANSWERED = "You have already answered this question. Thank you!"
BUTTON_EXPIRED = "That button has expired."
MAIN_MENU = "Main menu — what would you like to do?"
CATEGORY = {"lv": "Ceļi un ietves", "en": "Roads, pavements", "ru": "Дороги и тротуары"}
DEPARTMENT = {"lv": "Ceļu nodaļa", "en": "Roads department", "ru": "Дорожный отдел"}


@pytest.fixture
def roads(config: Config, tmp_path: Path) -> Config:
    """The demo municipality with its one department staffed by the web-chat account
    "staff-1", and room for texts longer than a reply may be."""
    department = Department("municipality", DEPARTMENT, staff=(("webchat", "staff-1"),))
    return replace(
        config,
        proposals=replace(
            config.proposals, departments=(department,), photo_dir=str(tmp_path / "photos")
        ),
        limits=LimitsConfig(max_text_length=5000),
    )


async def person(dispatcher: Dispatcher, user_id: str, language: str) -> Chat:
    chat = Chat(dispatcher, user_id=user_id, locale=language)
    await chat.onboard(language)
    return chat


async def resident_of(chat: Chat) -> Resident:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


async def submitted(author: Chat) -> Proposal:
    draft = Draft("roads", "municipality", TEXT, author.locale, "centrs")
    return await proposals.submit(await resident_of(author), draft)


async def rendered(config: Config, template: str) -> dict[str, Reply | None]:
    """Account → what the delivery worker would send of each queued push of ``template``."""
    pushes = Pushes(config.municipality.zone, config=config)
    out: dict[str, Reply | None] = {}
    for row in await Delivery.filter(template=template).order_by("id"):
        language = (await Resident.get(id=row.resident_id)).language  # type: ignore[attr-defined]
        request = RenderRequest(row.template, json.loads(row.params), language, row.channel)
        out[row.external_id] = await pushes(request)
    return out


async def staff_texts(config: Config) -> list[str]:
    """What the staff account "staff-1" is sent of the comment pushes, in queue order."""
    pushes = Pushes(config.municipality.zone, config=config)
    texts = []
    for row in await Delivery.filter(template=feedback.COMMENT_PUSH).order_by("id"):
        assert row.external_id == "staff-1"
        language = (await Resident.get(id=row.resident_id)).language  # type: ignore[attr-defined]
        request = RenderRequest(row.template, json.loads(row.params), language, row.channel)
        reply = await pushes(request)
        assert reply is not None
        texts.append(reply.text)
    return texts


def about(language: str, proposal: Proposal) -> dict[str, str]:
    return {"reference": proposal.reference, "category": CATEGORY[language], "text": TEXT}


async def test_each_status_change_reaches_author_and_followers_once_in_their_languages(
    roads: Config,
) -> None:
    dispatcher = Dispatcher(roads)
    author = await person(dispatcher, "anna", "lv")
    english, russian = await person(dispatcher, "ben", "en"), await person(dispatcher, "oleg", "ru")
    proposal = await submitted(author)
    for follower in (english, russian):
        await proposals.follow(proposal, await resident_of(follower))
    promised = date(2027, 5, 1)
    await proposals.change_status(
        proposal.id, "planned", actor="cli", explanation="Asfaltēs maijā.", expected_on=promised
    )
    got = await rendered(roads, proposals.STATUS_PUSH)
    assert sorted(got) == ["anna", "ben", "oleg"], "each once"
    for chat, message in (
        (author, STATUS_OWN),
        (english, STATUS_FOLLOWED),
        (russian, STATUS_FOLLOWED),
    ):
        lang = chat.locale
        reply = got[chat.user_id]
        assert reply is not None
        status = tr(lang, "planned")
        assert reply.text == "\n\n".join(
            [
                tr(lang, message, status=status, **about(lang, proposal)),
                tr(lang, EXPLANATION, explanation="Asfaltēs maijā."),
                tr(lang, PROMISED, date=translator(lang).day(promised)),
                tr(lang, REPLY_HINT),
            ]
        )
        assert reply.buttons[0][0].payload == f"pr:r:{proposal.id}"
        assert reply.buttons[0][0].label == tr(lang, "Reply")


async def test_passed_on_a_moved_date_and_a_reopening_are_worded_too(roads: Config) -> None:
    dispatcher = Dispatcher(roads)
    author, follower = await person(dispatcher, "anna", "en"), await person(dispatcher, "ben", "en")
    proposal = await submitted(author)
    await proposals.follow(proposal, await resident_of(follower))
    await proposals.change_status(
        proposal.id,
        "not_ours",
        actor="cli",
        explanation="A state road.",
        passed_to="Latvijas Valsts ceļi",
    )
    reply = (await rendered(roads, proposals.STATUS_PUSH))["ben"]
    assert reply is not None
    assert tr("en", PASSED_TO, body="Latvijas Valsts ceļi") in reply.text.split("\n\n")

    await Delivery.all().delete()
    expected = await ProposalEvent.create(
        proposal_id=proposal.id, kind="expected", actor="cli", explanation="Frost.",
        expected_on=date(2027, 6, 1),
    )  # fmt: skip
    await proposals.tell_followers(proposal.id, expected.id)
    reply = (await rendered(roads, proposals.STATUS_PUSH))["ben"]
    assert reply is not None
    assert reply.text == "\n\n".join(
        [
            tr("en", EXPECTED_FOLLOWED, date="June 1, 2027", **about("en", proposal)),
            tr("en", REASON, explanation="Frost."),
            tr("en", REPLY_HINT),
        ]
    )


async def test_a_push_about_a_proposal_gone_or_hidden_since_is_cancelled(roads: Config) -> None:
    dispatcher = Dispatcher(roads)
    author, follower = await person(dispatcher, "anna", "en"), await person(dispatcher, "ben", "en")
    proposal = await submitted(author)
    await proposals.follow(proposal, await resident_of(follower))
    await proposals.change_status(proposal.id, "under_review", actor="cli")
    await Proposal.filter(id=proposal.id).update(hidden_at=datetime.now(UTC))
    got = await rendered(roads, proposals.STATUS_PUSH)
    assert got["ben"] is None and got["anna"] is not None  # queued before it was hidden
    await Proposal.filter(id=proposal.id).delete()
    assert await rendered(roads, proposals.STATUS_PUSH) == {"anna": None, "ben": None}


async def test_reply_reaches_the_department_and_refuses_empty_and_overlong_texts(
    roads: Config,
) -> None:
    dispatcher = Dispatcher(roads)
    await person(dispatcher, "staff-1", "lv")
    author, follower = await person(dispatcher, "anna", "en"), await person(dispatcher, "ben", "ru")
    proposal = await submitted(author)
    await proposals.follow(proposal, await resident_of(follower))

    await author.press_payload(f"pr:r:{proposal.id}")
    assert author.texts() == [tr("en", WRITE, **about("en", proposal))]
    await author.text("   ")  # the bot's own check of every message answers first
    assert author.texts() == [tr("en", EMPTY), tr("en", WRITE, **about("en", proposal))]
    await author.text("x" * 2001)
    assert author.texts() == [tr("en", TOO_LONG, n=2000), tr("en", WRITE, **about("en", proposal))]
    assert await ProposalComment.all().count() == 0
    await author.text("It is deeper every day.")
    assert author.texts() == [
        tr("en", SENT, reference=proposal.reference, department=DEPARTMENT["en"]),
        tr("en", MAIN_MENU),
    ]
    await follower.press_payload(f"pr:r:{proposal.id}")
    await follower.text("Согласен.")
    assert follower.texts()[0] == tr(
        "ru", SENT, reference=proposal.reference, department=DEPARTMENT["ru"]
    )

    comments = await ProposalComment.filter(proposal_id=proposal.id).order_by("id")
    assert [c.text for c in comments] == ["It is deeper every day.", "Согласен."]
    # To the department's staff in their language, the resident named by their part only.
    assert await staff_texts(roads) == [
        tr("lv", FROM_AUTHOR, comment="It is deeper every day.", **about("lv", proposal)),
        tr("lv", FROM_FOLLOWER, comment="Согласен.", **about("lv", proposal)),
    ]


async def test_a_reply_or_an_answer_on_a_proposal_not_followed_does_nothing_and_is_logged(
    roads: Config, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher(roads)
    author, stranger = await person(dispatcher, "anna", "en"), await person(dispatcher, "eve", "en")
    proposal = await submitted(author)
    await proposals.change_status(proposal.id, "implemented", actor="cli", explanation="Done.")
    with caplog.at_level(logging.WARNING):
        await stranger.press_payload(f"pr:r:{proposal.id}")
        assert stranger.texts() == [tr("en", NOT_YOURS), tr("en", MAIN_MENU)]
        assert (await stranger.dialog())[0] == ""
        await stranger.press_payload(f"pr:fx:{proposal.id}:1:no")
        assert stranger.texts() == [tr("en", NOT_YOURS), tr("en", MAIN_MENU)]
        await stranger.press_payload(f"pr:rt:{proposal.id}:1:1")
        assert stranger.texts() == [tr("en", NOT_YOURS), tr("en", MAIN_MENU)]
        for malformed in ("pr:fx:12:x:maybe", f"pr:rt:{proposal.id}:1:9", "pr:r:yes"):
            await stranger.press_payload(malformed)
            assert stranger.texts() == [tr("en", BUTTON_EXPIRED), tr("en", MAIN_MENU)]
    assert (await Proposal.get(id=proposal.id)).status == "implemented"
    assert await ProposalRating.all().count() == 0
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refused) == 6, refused
    assert all("eve" not in line for line in refused), "accounts are logged by their tag"


async def test_is_it_fixed_no_reopens_then_one_tap_rates_and_a_comment_follows(
    roads: Config,
) -> None:
    dispatcher = Dispatcher(roads)
    await person(dispatcher, "staff-1", "en")
    author, follower = await person(dispatcher, "anna", "en"), await person(dispatcher, "ben", "lv")
    proposal = await submitted(author)
    await proposals.follow(proposal, await resident_of(follower))
    await proposals.change_status(
        proposal.id,
        "implemented",
        actor="cli",
        explanation="Patched.",
        ask_fixed_after=timedelta(seconds=90),
    )
    kept = await photos.keep(roads.proposals.photo_dir, jpeg())
    await photos.attach(proposal.id, [kept], "completed")
    assert await feedback.due_fixed_questions(datetime.now(UTC) + LATER) == 1
    questions = await rendered(roads, feedback.FIXED_PUSH)
    question = questions["anna"]
    assert question is not None
    assert question.text == "\n\n".join(
        [
            tr("en", FIXED_QUESTION, **about("en", proposal)),
            tr("en", EXPLANATION, explanation="Patched."),
        ]
    )
    assert question.image == f"/photos/{kept.key}.jpg"
    assert [b.payload for b in question.all_buttons()] == [
        f"pr:fx:{proposal.id}:1:{answer}" for answer in ("yes", "partly", "no")
    ]
    lv_question = questions["ben"]
    assert lv_question is not None and lv_question.buttons[0][2].label == tr("lv", "No, not fixed")

    author.shown.append(question)
    await author.press("No, not fixed")
    reference = proposal.reference
    assert author.texts() == [
        tr("en", REOPENED, reference=reference),
        tr("en", RATE_QUESTION, reference=reference),
        tr("en", WRITE_AFTER_FIXED, reference=reference),
    ]
    assert [b.label for b in author.last[1].all_buttons()] == ["1", "2", "3", "4", "5"]
    assert (await Proposal.get(id=proposal.id)).status == "in_progress"
    await author.press("2")
    assert author.texts() == [tr("en", RATED), tr("en", WRITE_AFTER_FIXED, reference=reference)]
    await author.text("The hole is only half filled.")
    assert author.texts()[0] == tr("en", SENT, reference=reference, department=DEPARTMENT["en"])
    rating = await ProposalRating.get()
    assert (rating.answer, rating.rating, rating.round) == ("no", 2, 1)

    # The follower is told it was reopened; the department hears of it and of the comment.
    told = await rendered(roads, proposals.STATUS_PUSH)
    reopened = told["ben"]
    assert reopened is not None and reopened.text.startswith(
        tr("lv", "A proposal you follow, {reference} ({category}: {text}), has been reopened: "
           "residents said it is not fixed yet. The department is working on it again.",
           **about("lv", proposal))
    )  # fmt: skip
    assert await staff_texts(roads) == [
        tr("en", REOPENED_BY_NO, **about("en", proposal)),
        tr("en", FROM_AUTHOR, comment="The hole is only half filled.", **about("en", proposal)),
    ]

    # The question of this round is answered; pressing again says so.
    await author.press_payload(f"pr:fx:{proposal.id}:1:yes")
    assert author.texts() == [tr("en", ALREADY_ANSWERED), tr("en", MAIN_MENU)]


async def test_yes_thanks_and_an_old_question_has_expired(roads: Config) -> None:
    dispatcher = Dispatcher(roads)
    author = await person(dispatcher, "anna", "en")
    proposal = await submitted(author)
    await proposals.change_status(proposal.id, "implemented", actor="cli", explanation="Done.")
    await author.press_payload(f"pr:fx:{proposal.id}:1:yes")
    assert author.texts() == [
        tr("en", GLAD),
        tr("en", RATE_QUESTION, reference=proposal.reference),
        tr("en", MAIN_MENU),
    ]
    await author.press_payload(f"pr:rt:{proposal.id}:1:5")
    assert author.texts() == [tr("en", RATED), tr("en", MAIN_MENU)]
    await author.press_payload(f"pr:rt:{proposal.id}:1:4")
    assert author.texts() == [tr("en", ALREADY_ANSWERED), tr("en", MAIN_MENU)]

    await proposals.change_status(proposal.id, "in_progress", actor="cli")
    await proposals.change_status(proposal.id, "implemented", actor="cli", explanation="Again.")
    await author.press_payload(f"pr:fx:{proposal.id}:1:no")  # the first round's question
    assert author.texts() == [tr("en", QUESTION_EXPIRED), tr("en", MAIN_MENU)]
    assert (await Proposal.get(id=proposal.id)).status == "implemented"
    # And once staff move it on, the question of the present round is gone from the outbox.
    assert await feedback.due_fixed_questions(datetime.now(UTC) + LATER) == 1
    await proposals.change_status(proposal.id, "in_progress", actor="cli")
    assert await rendered(roads, feedback.FIXED_PUSH) == {"anna": None}


def jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 90, 60)).save(out, "JPEG")
    return out.getvalue()
