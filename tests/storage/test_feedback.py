"""The feedback loop in storage: every status change queued once to the author and once to
each follower (told apart), a reply kept and queued to the department's staff, "Is it
fixed?" asked once per time a proposal is marked implemented, and "no" reopening it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from storage import feedback, proposals
from storage.feedback import FeedbackError
from storage.models import (
    Delivery,
    Proposal,
    ProposalComment,
    ProposalEvent,
    ProposalRating,
    ProposalTerm,
    Resident,
)
from tests.storage.test_proposals import draft, resident

pytestmark = pytest.mark.usefixtures("database")

STAFF = (("telegram", "900"),)  # the department's staff account
SOON = timedelta(seconds=90)


async def pushes(template: str) -> list[tuple[str, str, dict[str, object]]]:
    """(account, dedupe key, params) of every queued push of one template, sorted."""
    rows = await Delivery.filter(template=template).values_list(
        "external_id", "dedupe_key", "params"
    )
    return sorted((ext, key, json.loads(params)) for ext, key, params in rows)


async def proposal_with_follower() -> tuple[Proposal, Resident, Resident]:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await proposals.submit(author, draft())
    await proposals.follow(proposal, neighbour)
    return proposal, author, neighbour


async def implemented(proposal: Proposal) -> None:
    await proposals.change_status(
        proposal.id, "implemented", actor="cli", explanation="Patched.", ask_fixed_after=SOON
    )


async def test_the_author_and_a_follower_each_get_one_push_told_apart() -> None:
    proposal, _, _ = await proposal_with_follower()
    event = await proposals.change_status(proposal.id, "planned", actor="cli", explanation="May.")
    await proposals.tell_followers(proposal.id, event.id)  # a retry queues nothing more
    key = f"proposal:{proposal.id}:event:{event.id}"
    params = {"proposal": proposal.id, "event": event.id}
    assert await pushes(proposals.STATUS_PUSH) == [
        ("1", key, {**params, "own": True}),
        ("2", key, {**params, "own": False}),
    ]


async def test_a_hidden_proposal_is_told_to_its_author_only() -> None:
    proposal, author, neighbour = await proposal_with_follower()
    await Proposal.filter(id=proposal.id).update(hidden_at=datetime.now(UTC), hidden_reason="abuse")
    await proposals.change_status(proposal.id, "rejected", actor="cli", explanation="Abusive.")
    assert [ext for ext, _, _ in await pushes(proposals.STATUS_PUSH)] == ["1"]
    # Its followers' old buttons no longer act on it; its author may still write.
    with pytest.raises(FeedbackError, match="gone"):
        await feedback.comment(proposal.id, neighbour, "Why?", STAFF)
    await feedback.comment(proposal.id, author, "Why?", STAFF)


async def test_a_reply_is_kept_and_queued_to_the_departments_staff() -> None:
    proposal, author, neighbour = await proposal_with_follower()
    await resident("900")  # the staff member has written to the bot
    first = await feedback.comment(proposal.id, author, "  Still a hole there. ", STAFF)
    second = await feedback.comment(proposal.id, neighbour, "Deeper now.", STAFF)
    comments = await ProposalComment.filter(proposal_id=proposal.id).order_by("id")
    assert [(c.resident_id, c.text) for c in comments] == [  # type: ignore[attr-defined]
        (author.id, "Still a hole there."),
        (neighbour.id, "Deeper now."),
    ]
    assert await pushes(feedback.COMMENT_PUSH) == [
        ("900", f"proposal:{proposal.id}:comment:{first.id}", {
            "proposal": proposal.id, "comment": first.id, "author": True}),
        ("900", f"proposal:{proposal.id}:comment:{second.id}", {
            "proposal": proposal.id, "comment": second.id, "author": False}),
    ]  # fmt: skip


async def test_only_the_author_or_a_follower_may_reply_and_never_with_nothing() -> None:
    proposal, author, _ = await proposal_with_follower()
    stranger = await resident("3")
    for who, text, reason in (
        (stranger, "Hello", "not_following"),
        (author, "   ", "empty"),
        (author, "x" * (feedback.COMMENT_MAX + 1), "too_long"),
    ):
        with pytest.raises(FeedbackError) as refused:
            await feedback.comment(proposal.id, who, text, STAFF)
        assert refused.value.reason == reason
    with pytest.raises(FeedbackError, match="gone"):
        await feedback.comment(proposal.id + 100, author, "Hello", STAFF)
    assert await ProposalComment.all().count() == 0


async def test_is_it_fixed_is_asked_after_the_delay_once_and_again_after_a_new_implemented() -> (
    None
):
    proposal, _, _ = await proposal_with_follower()
    await implemented(proposal)
    now = datetime.now(UTC)
    assert await feedback.due_fixed_questions(now) == 0  # not yet: 90 s to go
    assert await feedback.due_fixed_questions(now + SOON + timedelta(seconds=1)) == 1
    assert await feedback.due_fixed_questions(now + timedelta(days=9)) == 0  # asked once
    params = {"proposal": proposal.id, "round": 1}
    key = f"proposal:{proposal.id}:fixed:1"
    assert await pushes(feedback.FIXED_PUSH) == [("1", key, params), ("2", key, params)]

    await proposals.change_status(proposal.id, "in_progress", actor="cli")
    await implemented(proposal)  # marked implemented again: a new round
    assert await feedback.due_fixed_questions(now + timedelta(days=9)) == 1
    rounds = [p["round"] for _, _, p in await pushes(feedback.FIXED_PUSH)]
    assert sorted(rounds) == [1, 1, 2, 2]


async def test_two_workers_asking_at_once_ask_once() -> None:
    proposal, _, _ = await proposal_with_follower()
    await implemented(proposal)
    later = datetime.now(UTC) + timedelta(days=1)
    asked = await asyncio.gather(*(feedback.due_fixed_questions(later) for _ in range(4)))
    assert sum(asked) == 1
    assert len(await pushes(feedback.FIXED_PUSH)) == 2


async def test_a_proposal_changed_before_the_question_is_not_asked_about() -> None:
    proposal, _, _ = await proposal_with_follower()
    await implemented(proposal)
    await proposals.change_status(proposal.id, "in_progress", actor="cli")
    assert await feedback.due_fixed_questions(datetime.now(UTC) + timedelta(days=1)) == 0


async def test_no_reopens_it_tells_the_others_and_the_department_and_counts_once() -> None:
    proposal, author, neighbour = await proposal_with_follower()
    await resident("900")
    await implemented(proposal)
    assert await ProposalTerm.filter(proposal_id=proposal.id).count() == 0  # closed: unindexed
    answered = await feedback.answer_fixed(proposal.id, neighbour, 1, "no", STAFF)
    assert answered.reopened
    row = await Proposal.get(id=proposal.id)
    assert (row.status, row.reopened, row.resolved_at) == ("in_progress", 1, None)
    assert await ProposalTerm.filter(proposal_id=proposal.id).count() > 0  # offered again
    event = await ProposalEvent.get(proposal_id=proposal.id, kind="reopened")
    assert (event.actor, event.from_value, event.to_value) == (
        "resident",
        "implemented",
        "in_progress",
    )
    told = [(ext, p) for ext, _, p in await pushes(proposals.STATUS_PUSH) if p["event"] == event.id]
    assert told == [("1", {"proposal": proposal.id, "event": event.id, "own": True})]
    assert await pushes(feedback.COMMENT_PUSH) == [
        ("900", f"proposal:{proposal.id}:event:{event.id}",
         {"proposal": proposal.id, "event": event.id, "answer": "no"}),
    ]  # fmt: skip

    await feedback.rate(proposal.id, neighbour, 1, 2)
    with pytest.raises(FeedbackError, match="answered"):
        await feedback.answer_fixed(proposal.id, neighbour, 1, "yes", STAFF)
    with pytest.raises(FeedbackError, match="answered"):
        await feedback.rate(proposal.id, neighbour, 1, 5)
    # The author says "partly" too: recorded, and it is not reopened a second time.
    again = await feedback.answer_fixed(proposal.id, author, 1, "partly", STAFF)
    assert not again.reopened
    assert (await Proposal.get(id=proposal.id)).reopened == 1
    ratings = await ProposalRating.filter(proposal_id=proposal.id).order_by("id")
    assert [(r.resident_id, r.round, r.answer, r.rating) for r in ratings] == [  # type: ignore[attr-defined]
        (neighbour.id, 1, "no", 2),
        (author.id, 1, "partly", None),
    ]


async def test_yes_leaves_it_implemented() -> None:
    proposal, author, _ = await proposal_with_follower()
    await implemented(proposal)
    answered = await feedback.answer_fixed(proposal.id, author, 1, "yes", STAFF)
    assert not answered.reopened
    assert (await Proposal.get(id=proposal.id)).status == "implemented"
    await feedback.rate(proposal.id, author, 1, 5)
    assert (await ProposalRating.get()).rating == 5


async def test_an_answer_of_an_old_round_or_a_changed_proposal_has_expired() -> None:
    proposal, author, neighbour = await proposal_with_follower()
    await implemented(proposal)
    await proposals.change_status(proposal.id, "in_progress", actor="cli")
    with pytest.raises(FeedbackError, match="expired"):  # no longer implemented
        await feedback.answer_fixed(proposal.id, author, 1, "no", STAFF)
    await implemented(proposal)  # round 2
    with pytest.raises(FeedbackError, match="expired"):
        await feedback.answer_fixed(proposal.id, author, 1, "no", STAFF)
    with pytest.raises(FeedbackError, match="expired"):  # never answered: nothing to rate
        await feedback.rate(proposal.id, neighbour, 2, 3)
    with pytest.raises(FeedbackError, match="rating"):
        await feedback.rate(proposal.id, neighbour, 2, 6)
    assert await ProposalRating.all().count() == 0


async def test_only_the_author_or_a_follower_may_answer() -> None:
    proposal, _, _ = await proposal_with_follower()
    await implemented(proposal)
    stranger = await resident("3")
    with pytest.raises(FeedbackError, match="not_following"):
        await feedback.answer_fixed(proposal.id, stranger, 1, "no", STAFF)
    assert (await Proposal.get(id=proposal.id)).status == "implemented"
    assert await ProposalRating.all().count() == 0
