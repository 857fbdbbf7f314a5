"""The review queue in chat, on both databases: who reaches it, the order of the queue per
department, each action with its pushes, the explanation a decision needs, a department's
staff kept to their own proposals (forged buttons too), and the staff's push templates."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.config import Config
from bot.core.messages import Capabilities, Kind, RenderRequest, Reply
from bot.core.proposals_config import Category, Department, ProposalsConfig
from dialogs.pushes import Pushes
from dialogs.review import parse_day
from handlers.dispatcher import Dispatcher
from storage import feedback, photos, proposals, review, staff
from storage.models import Delivery, Proposal, ProposalPhoto, Resident
from storage.proposals import Draft
from storage.sessions import open_session
from tests.chat import Chat
from tests.dialogs.test_proposal_submit import NOT_IMAGE, Photos, jpeg_with_gps
from tests.phrases import ntr, tr

EXPIRED = "That button belongs to an earlier question and has expired. Here is where we are now:"
UNKNOWN_COMMAND = "Sorry, I do not know that command. /help lists what I can do."
NOT_YOURS = "That proposal belongs to another department: you cannot act on it."
NO_DATE = (
    "I could not read that date. Please write it like 15.06.2027 or 2027-06-15, "
    "a day still to come."
)
EXPLAIN = (
    "Write the public explanation for “{status}”: how the proposal was taken "
    "into account. The author and followers read it."
)
NEEDS_EXPLANATION = "This status needs a public explanation. Please write one."
NOTHING_WAITS = "No proposal waits for review."
USE_BUTTONS = "Please choose one of the buttons below."
NO_OTHER = "No other proposal waits for review."

ROADS = {"lv": "Satiksmes nodaļa", "en": "Roads office", "ru": "Отдел дорог"}
PARKS = {"lv": "Parku nodaļa", "en": "Parks office", "ru": "Отдел парков"}


@pytest.fixture
def reviewing(config: Config) -> Config:
    return replace(
        config,
        proposals=ProposalsConfig(
            categories=(
                Category("roads", ROADS, department="roads"),
                Category("parks", PARKS, department="parks"),
            ),
            departments=(
                Department("roads", ROADS, staff=(("webchat", "roads-1"),)),
                Department("parks", PARKS, staff=(("webchat", "parks-1"),)),
            ),
        ),
    )


async def author(user_id: str = "author-1") -> Resident:
    async with open_session("webchat", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        session.resident.language = "lv"
        await session.resident.save()
        return session.resident


async def submit(
    who: Resident, category: str = "roads", text: str = "Bedre pie skolas"
) -> Proposal:
    return await proposals.submit(who, Draft(category, category, text, "lv", "centrs"))


async def staff_chat(config: Config, user_id: str) -> Chat:
    chat = Chat(Dispatcher(config), user_id=user_id, locale="en")
    await chat.onboard()
    return chat


async def review_of(chat: Chat, reference: str) -> None:
    await chat.send(Kind.COMMAND, command="review", args=reference, text=f"/review {reference}")


async def card_of(chat: Chat) -> str:
    return chat.last[-1].text.splitlines()[0]


async def test_a_resident_cannot_reach_the_review_queue_nor_a_forged_button_of_it(
    reviewing: Config, caplog: pytest.LogCaptureFixture
) -> None:
    proposal = await submit(await author())
    resident = await staff_chat(reviewing, "resident-9")
    with caplog.at_level(logging.WARNING):
        for command in ("review", "summary"):
            await resident.command(command)
            assert resident.texts()[0] == tr("en", UNKNOWN_COMMAND)
        await resident.press_payload("rv:card~abcdef:accept")
        assert resident.texts()[0] == tr("en", UNKNOWN_COMMAND)
    assert (await Proposal.get(id=proposal.id)).status == "received"
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3


async def test_each_department_sees_its_own_queue_oldest_first_and_a_moderator_all(
    reviewing: Config,
) -> None:
    who = await author()
    first, park, second = (
        await submit(who),
        await submit(who, "parks", "Nopļaut zāli"),
        await submit(who),
    )
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    assert (await card_of(roads)).startswith(first.reference)
    await roads.choose("rv:card", "next")
    assert (await card_of(roads)).startswith(second.reference)
    await roads.choose("rv:card", "next")  # the end of the queue: back to its start
    assert (await card_of(roads)).startswith(first.reference)

    parks = await staff_chat(reviewing, "parks-1")
    await parks.command("review")
    assert (await card_of(parks)).startswith(park.reference)
    await parks.choose("rv:card", "next")
    assert parks.texts()[0] == tr("en", NO_OTHER)
    assert (await card_of(parks)).startswith(park.reference)

    await staff.grant("webchat", "mod-1", "moderator", actor="test")
    moderator = await staff_chat(reviewing, "mod-1")
    await moderator.command("review")
    assert (await card_of(moderator)).startswith(first.reference)
    await review_of(moderator, park.reference)
    assert (await card_of(moderator)).startswith(park.reference)


async def test_accepting_for_review_tells_the_author_and_is_shown_on_the_card(
    reviewing: Config,
) -> None:
    proposal = await submit(await author())
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    accept = roads.button_for("rv:card", "accept").payload
    await roads.press_payload(accept)
    assert (await Proposal.get(id=proposal.id)).status == "under_review"
    await roads.press_payload(accept)  # the old card, tapped again
    assert roads.texts()[0] == tr("en", EXPIRED)
    assert [e.to_value for e in await proposals.history(proposal.id)] == [
        "received",
        "under_review",
    ]
    assert await Delivery.filter(template="proposal_status", external_id="author-1").count() == 1
    assert tr("en", "under review") in roads.last[-1].text.splitlines()[0]


async def test_a_decision_needs_its_public_explanation_and_a_forged_skip_does_nothing(
    reviewing: Config,
) -> None:
    proposal = await submit(await author())
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    await roads.choose("rv:card", "status")
    await roads.choose("rv:status", "rejected")
    assert roads.texts() == [tr("en", EXPLAIN, status=tr("en", "rejected"))]
    back = roads.button_for("rv:explain", "_back").payload
    assert [b.payload.rsplit(":", 1)[1] for b in roads.last[0].all_buttons()] == ["_back"]
    await roads.press_payload(back.rsplit(":", 1)[0] + ":_skip")  # no Skip was offered
    assert roads.texts()[0] == tr("en", USE_BUTTONS)
    assert (await Proposal.get(id=proposal.id)).status == "received"
    await roads.text("Šeit nav bedres: iela ir jauna.")
    row = await Proposal.get(id=proposal.id)
    assert (row.status, row.explanation) == ("rejected", "Šeit nav bedres: iela ir jauna.")


async def test_planned_asks_for_a_date_to_come_and_not_ours_for_the_body(
    reviewing: Config,
) -> None:
    who = await author()
    planned, passed = await submit(who), await submit(who)
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    await roads.choose("rv:card", "status")
    await roads.choose("rv:status", "planned")
    await roads.text("1.1.2020")
    assert roads.texts()[0] == tr("en", NO_DATE)
    await roads.text("15.06.2099")
    await roads.choose("rv:explain", "_skip")
    row = await Proposal.get(id=planned.id)
    assert (row.status, row.expected_on) == ("planned", date(2099, 6, 15))

    await roads.command("review")  # the planned one is reviewed: the other is next
    assert (await card_of(roads)).startswith(passed.reference)
    await roads.choose("rv:card", "status")
    await roads.choose("rv:status", "not_ours")
    await roads.text("Latvijas Valsts ceļi")
    await roads.text("Tas ir valsts ceļš; nodots tā pārvaldītājam.")
    row = await Proposal.get(id=passed.id)
    assert (row.status, row.passed_to) == ("not_ours", "Latvijas Valsts ceļi")


def test_a_promised_date_is_read_as_people_write_it_and_must_be_to_come() -> None:
    today = date(2026, 12, 1)
    assert parse_day("15.06.2027", today) == date(2027, 6, 15)
    assert parse_day("2027-06-15", today) == date(2027, 6, 15)
    assert parse_day("15.6.", today) == date(2027, 6, 15)
    assert parse_day("2.12.", today) == date(2026, 12, 2)
    for typed in ("1.12.2026", "30.11.2026", "31.02.2027", "soon", ""):
        assert parse_day(typed, today) is None


async def test_staff_of_one_department_cannot_act_on_another_s_proposal(
    reviewing: Config, caplog: pytest.LogCaptureFixture
) -> None:
    who = await author()
    road, park = await submit(who), await submit(who, "parks", "Zāle")
    roads = await staff_chat(reviewing, "roads-1")
    await review_of(roads, park.reference)
    assert roads.texts() == [tr("en", NOT_YOURS)]
    await roads.command("review")
    accept = roads.button_for("rv:card", "accept").payload
    await review.move_department(road.id, "parks", "cli")  # meanwhile, moved away
    with caplog.at_level(logging.WARNING):
        await roads.press_payload(accept)
    assert roads.texts() == [tr("en", NOT_YOURS)]
    assert (await Proposal.get(id=road.id)).status == "received"
    assert any("refused" in r.getMessage() for r in caplog.records)


async def test_marking_a_duplicate_moves_its_supporters_and_tells_its_followers(
    reviewing: Config,
) -> None:
    first_author, second_author = await author(), await author("author-2")
    original = await submit(first_author)
    duplicate = await submit(second_author, text="Bedre pie skolas vārtiem")
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    await roads.choose("rv:card", "next")
    await roads.choose("rv:card", "duplicate")
    await roads.text("P-1999-0001")
    assert roads.texts()[0] == tr("en", "I know no proposal {reference}.", reference="P-1999-0001")
    await roads.text(original.reference.lower())
    row = await Proposal.get(id=duplicate.id)
    assert (row.status, row.duplicate_of_id) == ("duplicate", original.id)  # type: ignore[attr-defined]
    assert (await Proposal.get(id=original.id)).supporters == 2
    told = await Delivery.filter(template="proposal_merged").values_list("external_id", flat=True)
    assert told == ["author-2"]


async def test_hiding_and_a_private_answer_reach_the_author_only(reviewing: Config) -> None:
    who, neighbour = await author(), await author("neighbour-1")
    proposal = await submit(who)
    await proposals.follow(proposal, neighbour)
    await staff.grant("webchat", "mod-1", "moderator", actor="test")
    moderator = await staff_chat(reviewing, "mod-1")
    await moderator.command("review")
    await moderator.choose("rv:card", "answer")
    await moderator.text("Lūdzu, atsūtiet precīzu adresi.")
    await moderator.choose("rv:card", "hide")
    await moderator.text("Aizskaroši vārdi")
    assert (await Proposal.get(id=proposal.id)).hidden_reason == "Aizskaroši vārdi"
    assert await proposals.public_page("centrs") == ([], 0)
    for template in ("proposal_answer", "proposal_hidden"):
        rows = await Delivery.filter(template=template).values_list("external_id", flat=True)
        assert rows == ["author-1"], template


async def test_photos_are_shown_and_only_moderators_approve_them(reviewing: Config) -> None:
    proposal = await submit(await author())
    await ProposalPhoto.create(proposal_id=proposal.id, key="k" * 64)
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("review")
    assert roads.last[0].image == f"/photos/{'k' * 64}.jpg"
    assert all(b.payload.rsplit(":", 1)[1] != "photos" for b in roads.last[-1].all_buttons())
    await staff.grant("webchat", "mod-1", "moderator", actor="test")
    moderator = await staff_chat(reviewing, "mod-1")
    await moderator.command("review")
    await moderator.choose("rv:card", "photos")
    assert await ProposalPhoto.filter(approved=True).count() == 1


async def test_the_summary_shows_a_department_its_own_and_a_moderator_every_one(
    reviewing: Config,
) -> None:
    who = await author()
    await submit(who)
    await submit(who, "parks")
    roads = await staff_chat(reviewing, "roads-1")
    await roads.command("summary")
    [text] = roads.texts()
    assert "Roads office" in text and "Parks office" not in text
    await staff.grant("webchat", "mod-1", "moderator", actor="test")
    moderator = await staff_chat(reviewing, "mod-1")
    await moderator.command("summary")
    [text] = moderator.texts()
    assert "Roads office" in text and "Parks office" in text


PUSHES = Pushes(ZoneInfo("Europe/Riga"))


async def words(template: str) -> list[Reply | None]:
    rows = await Delivery.filter(template=template).order_by("id")
    return [
        await PUSHES(RenderRequest(row.template, json.loads(row.params), "lv", row.channel))
        for row in rows
    ]


async def test_the_staff_s_pushes_read_in_the_recipient_s_language(database: str) -> None:
    who = await author()
    await author("roads-1")
    await review.notify_new({})  # the marker: nothing before it
    original, duplicate = await submit(who), await submit(who, text="Otra bedre")
    later = datetime.now(UTC) + timedelta(minutes=1)
    await review.notify_new({"roads": (("webchat", "roads-1"),)}, later)
    [new] = await words("proposal_new")
    assert new is not None and new.text.splitlines()[1:3] == [
        f"{original.reference}: Bedre pie skolas",
        f"{duplicate.reference}: Otra bedre",
    ]
    assert new.text.startswith(ntr("lv", "{n} new proposal for your department:", NEW_PLURAL, 2))
    await review.set_status(original.id, "planned", "cli", expected_on=date(2027, 3, 10))
    await review.remind_due({"roads": (("webchat", "roads-1"),)}, date(2027, 3, 11))
    [due] = await words("proposal_due")
    assert due is not None and due.text.startswith(f"Nokavēts: {original.reference}")
    await review.answer_privately(original.id, "webchat:mod-1", "Paldies!")
    [answer] = await words("proposal_answer")
    assert answer is not None and "Paldies!" in answer.text
    assert answer.buttons[0][0].payload == f"pr:r:{original.id}"
    await review.merge(duplicate.id, original.id, "webchat:mod-1")
    [merged] = await words("proposal_merged")
    assert merged is not None and f"Tagad Jūs sekojat {original.reference}" in merged.text
    await review.hide(original.id, "webchat:mod-1", "Aizskaroši vārdi")
    [hidden] = await words("proposal_hidden")
    assert hidden is not None and hidden.text == tr(
        "lv",
        "Your proposal {reference} is no longer shown publicly. The reason: {reason}",
        reference=original.reference,
        reason="Aizskaroši vārdi",
    )
    # A notice of new proposals no longer lists one hidden since.
    [new] = await words("proposal_new")
    assert new is not None and original.reference not in new.text


NEW_PLURAL = "{n} new proposals for your department:"


REVIEW_HELP = (
    "For reviewing proposals:\n"
    "/review – the next proposal to review; /review P-2026-0042 opens that one\n"
    "/summary – open and overdue proposals and answer times, by department"
)


async def test_help_names_the_review_queue_to_a_department_s_staff_and_to_nobody_else(
    reviewing: Config,
) -> None:
    clerk = await staff_chat(reviewing, "roads-1")  # in a department, with no role
    await clerk.command("help")
    assert REVIEW_HELP in clerk.texts()
    resident = await staff_chat(reviewing, "resident-9")
    await resident.command("help")
    assert REVIEW_HELP not in resident.texts()


async def test_implemented_takes_a_photo_of_the_completed_work_that_is_it_fixed_shows(
    reviewing: Config, tmp_path: Path
) -> None:
    config = replace(
        reviewing, proposals=replace(reviewing.proposals, photo_dir=str(tmp_path / "photos"))
    )
    proposal = await submit(await author())
    source = Photos({"done-1": jpeg_with_gps("gray"), "a-pdf": b"%PDF-1.7"})
    dispatcher = Dispatcher(
        config,
        files={"webchat": source},  # type: ignore[dict-item]
        capabilities={"webchat": Capabilities(takes_photos=True)},
    )
    roads = Chat(dispatcher, user_id="roads-1", locale="en")
    await roads.onboard()
    await roads.command("review")
    await roads.choose("rv:card", "status")
    await roads.choose("rv:status", "implemented")
    await roads.send(Kind.PHOTO, photo_id="a-pdf")  # not a photo: asked again
    assert roads.texts()[0] == tr("en", NOT_IMAGE)
    await roads.send(Kind.PHOTO, photo_id="done-1")
    await roads.text("The pothole is filled and the road resurfaced.")
    (done,) = await ProposalPhoto.filter(proposal_id=proposal.id)
    assert (done.kind, done.approved) == ("completed", True)
    stored = photos.read(config.proposals.photo_dir, done.key)
    assert stored is not None and b"Phone" not in stored  # EXIF gone

    later = datetime.now(UTC) + config.proposals.ask_fixed_after + timedelta(seconds=1)
    assert await feedback.due_fixed_questions(later) == 1
    (question,) = await Delivery.filter(template="proposal_fixed")
    reply = await Pushes(ZoneInfo("Europe/Riga"), config=config)(
        RenderRequest(question.template, json.loads(question.params), "en", "webchat")
    )
    assert reply is not None and reply.image == photos.url(done.key)
