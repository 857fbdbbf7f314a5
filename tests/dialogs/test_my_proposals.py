"""My proposals, one proposal's view, withdraw and unfollow, browsing a neighbourhood with
support and follow in one tap; forged and unknown ids answered plainly. Both databases."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from bot.core.config import Config
from bot.core.messages import Kind
from handlers.dispatcher import Dispatcher
from storage import proposals
from storage.models import ChannelIdentity, Proposal, Resident
from tests.chat import Chat
from tests.phrases import MAIN_MENU, ntr, tr

NOT_FOUND = "That proposal cannot be found."
UNKNOWN_REFERENCE = (
    "There is no proposal {reference}. A reference looks like P-2026-0042; "
    '"My proposals" in the menu lists yours.'
)
SUPPORTED_BY = ("Supported by {n} resident.", "Supported by {n} residents.")
LISTED = ("{number}. {summary} ({n} supporter)", "{number}. {summary} ({n} supporters)")
YEAR = datetime.now(UTC).year


def en(message: str, /, **values: object) -> str:
    return tr("en", message, **values)


async def resident_of(chat: Chat) -> Resident:
    identity = await ChannelIdentity.get(channel=chat.channel, external_id=chat.user_id)
    return await Resident.get(id=identity.resident_id)  # type: ignore[attr-defined]


async def onboarded(config: Config, user_id: str = "resident-1") -> Chat:
    chat = Chat(Dispatcher(config), user_id=user_id, locale="en")
    await chat.onboard()
    return chat


async def submitted(
    author: Resident, text: str, neighbourhood: str = "centrs", category: str = "roads"
) -> Proposal:
    return await proposals.submit(
        author,
        proposals.Draft(category, "municipality", text, "lv", neighbourhood=neighbourhood),
    )


async def look_up(chat: Chat, reference: str) -> None:
    """/proposals with a reference typed after it."""
    await chat.send(
        Kind.COMMAND, command="proposals", args=reference, text=f"/proposals {reference}"
    )


def summary(row: Proposal, status: str = "received", category: str = "Roads, pavements") -> str:
    return f"{row.reference} · {category} · {status}: {row.text}"


async def test_my_proposals_lists_mine_and_followed_with_explanation_and_promised_date(
    config: Config,
) -> None:
    chat = await onboarded(config)
    me = await resident_of(chat)
    mine = await submitted(me, "Bench by the pond is broken")
    neighbour = await Resident.create(language="lv")
    theirs = await submitted(neighbour, "Zebra crossing at the school")
    await proposals.follow(theirs, me)
    await proposals.change_status(
        theirs.id,
        "planned",
        actor="cli",
        explanation="In the 2027 plan",
        expected_on=date(2027, 5, 1),
    )
    await chat.press("My proposals")
    text = chat.texts()[0]
    assert text.splitlines() == [
        en("Your proposals and those you follow:"),
        "",
        f"1. {summary(theirs, 'planned')} {en('(followed)')}",
        "   " + en("Explanation: {text}", text="In the 2027 plan"),
        "   " + en("Promised by: {day}", day="May 1, 2027"),
        f"2. {summary(mine)}",
    ]
    assert chat.labels() == [[theirs.reference, mine.reference], ["Main menu"]]


async def test_the_author_withdraws_before_review_and_is_told_why_not_after(
    config: Config,
) -> None:
    chat = await onboarded(config)
    me = await resident_of(chat)
    first = await submitted(me, "Withdraw me")
    second = await submitted(me, "Reviewed already")
    await proposals.change_status(second.id, "under_review", actor="cli")

    await chat.press_payload(f"pr:v:{first.id}")
    assert en("This is your proposal.") in chat.texts()[0]
    await chat.press("Withdraw")
    assert chat.texts() == [
        en(
            "Withdraw {reference}? It will be closed and shown to nobody.",
            reference=first.reference,
        )
    ]
    await chat.press("Yes, withdraw it")
    assert chat.texts()[0] == en("{reference} is withdrawn.", reference=first.reference)
    assert (await Proposal.get(id=first.id)).status == "withdrawn"

    # No Withdraw button once the staff have looked at it; a stale one is answered.
    await chat.press_payload(f"pr:v:{second.id}")
    assert "Withdraw" not in [label for row in chat.labels() for label in row]
    await chat.press_payload(f"pr:w:{second.id}:yes")
    assert chat.texts() == [
        en(
            "{reference} can no longer be withdrawn: the staff have already started on it.",
            reference=second.reference,
        ),
        en(MAIN_MENU),
    ]
    assert (await Proposal.get(id=second.id)).status == "under_review"


async def test_a_forged_withdrawal_of_someone_elses_proposal_does_nothing_and_is_logged(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    chat = await onboarded(config)
    neighbour = await Resident.create(language="lv")
    theirs = await submitted(neighbour, "Not yours to withdraw")
    with caplog.at_level(logging.WARNING, logger="dialogs.my_proposals"):
        await chat.press_payload(f"pr:w:{theirs.id}:yes")
    assert chat.texts() == [en(NOT_FOUND), en(MAIN_MENU)]
    assert (await Proposal.get(id=theirs.id)).status == "received"
    assert any("not its author" in record.getMessage() for record in caplog.records)

    # An id that names nothing, and one that is not a number: answered and logged too.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dialogs.my_proposals"):
        await chat.press_payload("pr:v:999999")
        assert chat.texts() == [en(NOT_FOUND), en(MAIN_MENU)]
        await chat.press_payload("pr:s:abc")
        assert chat.texts() == [en(NOT_FOUND), en(MAIN_MENU)]
    assert len(caplog.records) == 2


async def test_unfollow_stops_following_and_the_author_cannot(config: Config) -> None:
    chat = await onboarded(config)
    me = await resident_of(chat)
    neighbour = await Resident.create(language="lv")
    theirs = await submitted(neighbour, "Someone else's idea")
    mine = await submitted(me, "My own idea")
    await proposals.follow(theirs, me)
    await chat.press_payload(f"pr:v:{theirs.id}")
    await chat.press("Unfollow")
    assert chat.texts()[0] == en("You no longer follow {reference}.", reference=theirs.reference)
    assert not await proposals.is_following(theirs, me)
    await chat.press_payload(f"pr:u:{mine.id}")
    assert chat.texts()[0] == en("You are its author: you always hear how your own proposal goes.")
    assert await proposals.is_following(mine, me)


async def test_browse_pages_through_a_neighbourhood_and_supports_and_follows_in_one_tap(
    config: Config,
) -> None:
    chat = await onboarded(config)  # lives in the centre
    me = await resident_of(chat)
    neighbour = await Resident.create(language="lv")
    rows = [await submitted(neighbour, f"Centre proposal {n}") for n in range(7)]
    elsewhere = await submitted(neighbour, "Across the river", neighbourhood="parupe")

    await chat.press("Proposals nearby")
    first = chat.texts()[0].splitlines()
    assert first[0] == en("Recent proposals in {name}:", name="Centre")
    newest_first = rows[::-1]
    assert first[2:] == [
        ntr("en", *LISTED, 1, number=n, summary=summary(row))
        for n, row in enumerate(newest_first[:5], 1)
    ]
    await chat.press("More…")
    second = chat.texts()[0].splitlines()
    assert second[2:] == [
        ntr("en", *LISTED, 1, number=n, summary=summary(row))
        for n, row in enumerate(newest_first[5:], 6)
    ]
    assert "More…" not in [label for row in chat.labels() for label in row]

    await chat.press(rows[0].reference)
    assert ntr("en", *SUPPORTED_BY, 1) in chat.texts()[0]
    await chat.press("Support +1")
    assert chat.texts()[0] == en("Thank you: your support is counted.")
    assert ntr("en", *SUPPORTED_BY, 2) in chat.texts()[1]
    await chat.press_payload(f"pr:s:{rows[0].id}")  # again: counted once
    assert chat.texts()[0] == en("You have supported it already; each resident counts once.")
    assert (await Proposal.get(id=rows[0].id)).supporters == 2

    await chat.press("Follow")
    assert await proposals.is_following(rows[0], me)

    # Another neighbourhood.
    await chat.press("Other neighbourhood")
    await chat.press("Across the river")
    assert chat.texts()[0].splitlines()[2:] == [
        ntr("en", *LISTED, 1, number=1, summary=summary(elsewhere))
    ]


async def test_hidden_and_withdrawn_proposals_are_shown_to_no_other_resident(
    config: Config,
) -> None:
    chat = await onboarded(config)
    neighbour = await Resident.create(language="lv")
    hidden = await submitted(neighbour, "Abusive words")
    await Proposal.filter(id=hidden.id).update(hidden_at=datetime.now(UTC), hidden_reason="abuse")
    await chat.press("Proposals nearby")
    assert chat.texts()[0].splitlines()[2:] == [en("None yet.")]
    for action in ("v", "f", "s"):
        await chat.press_payload(f"pr:{action}:{hidden.id}")
        assert chat.texts() == [en(NOT_FOUND), en(MAIN_MENU)]
    assert (await Proposal.get(id=hidden.id)).supporters == 1
    await chat.command("proposals")
    assert hidden.reference not in chat.texts()[0]


async def test_a_reference_is_looked_up_and_an_unknown_one_answered_plainly(
    config: Config,
) -> None:
    chat = await onboarded(config)
    neighbour = await Resident.create(language="lv")
    row = await submitted(neighbour, "A public one")
    await look_up(chat, row.reference.lower())
    assert chat.texts()[0].startswith(f"{row.reference} · Roads, pavements")
    # The author's identity is never shown.
    assert str(neighbour.id) not in chat.texts()[0].replace(row.reference, "")
    await look_up(chat, f"P-{YEAR}-9999")
    assert chat.texts() == [en(UNKNOWN_REFERENCE, reference=f"P-{YEAR}-9999"), en(MAIN_MENU)]


async def test_nothing_yet_in_my_proposals_points_to_the_menu(config: Config) -> None:
    chat = await onboarded(config)
    await chat.command("myproposals")
    assert chat.texts() == [
        en('You have no proposals yet and follow none. "Idea or problem" in the menu submits one.')
    ]


async def test_a_reference_typed_after_find_by_number_shows_the_proposal(config: Config) -> None:
    chat = await onboarded(config)
    neighbour = await Resident.create(language="lv")
    row = await submitted(neighbour, "Found by its number")
    await chat.press("Proposals nearby")
    await chat.press("Find by number")
    assert chat.texts() == [en("Write the proposal's number, such as P-2026-0042.")]
    await chat.text(f"p {YEAR} {int(row.reference[-4:])}")
    assert chat.texts()[0].startswith(f"{row.reference} · Roads, pavements")
    assert await chat.dialog() == ("", {})
    await chat.press("Back to the list")
    await chat.press("Find by number")
    await chat.text("P-1999-0001")
    assert chat.texts() == [en(UNKNOWN_REFERENCE, reference="P-1999-0001"), en(MAIN_MENU)]
