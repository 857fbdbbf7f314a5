"""The staff's side of proposals on both databases: the queue, each action with its audit
line and its pushes, merging that keeps every supporter once, hiding, the batched notice
of new proposals, the promised-date reminders and the summary's figures."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from storage import proposals, review
from storage.models import (
    AuditEntry,
    Delivery,
    Proposal,
    ProposalComment,
    ProposalFollow,
    ProposalPhoto,
    ProposalRating,
    ProposalSupport,
    ProposalTerm,
    Resident,
)
from storage.proposals import Draft, ProposalError
from storage.sessions import open_session

pytestmark = pytest.mark.usefixtures("database")

ROADS = (("telegram", "900"), ("telegram", "901"))
PARKS = (("telegram", "950"),)
STAFF_OF = {"roads": ROADS, "parks": PARKS}


async def resident(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


async def submit(
    author: Resident, text: str = "A pothole by the school", **more: object
) -> Proposal:
    values: dict[str, object] = {
        "category": "roads",
        "department": "roads",
        "text": text,
        "language": "en",
        "neighbourhood": "centrs",
    }
    values.update(more)
    return await proposals.submit(author, Draft(**values))  # type: ignore[arg-type]


async def pushes(template: str) -> list[tuple[str, str]]:
    rows = await Delivery.filter(template=template).values_list("external_id", "dedupe_key")
    return sorted((str(e), str(k)) for e, k in rows)


async def audited(action: str) -> int:
    return await AuditEntry.filter(action=action).count()


async def test_the_queue_is_oldest_first_and_only_of_the_departments_asked_for() -> None:
    author = await resident("1")
    first = await submit(author)
    park = await submit(author, "Cut the grass", department="parks")
    second = await submit(author)
    reviewed = await submit(author)
    await review.accept_for_review(reviewed.id, "telegram:900")
    hidden = await submit(author)
    await review.hide(hidden.id, "telegram:900", "Insults")

    roads = await review.queue_for({"roads"}, limit=5)
    assert [p.id for p in roads.waiting] == [first.id, second.id]
    assert roads.counts == {"received": 2, "under_review": 1}
    assert [p.id for p in (await review.queue_for(None, limit=5)).waiting] == [
        first.id,
        park.id,
        second.id,
    ]
    assert [p.id for p in (await review.queue_for({"roads"}, after=first.id)).waiting] == [
        second.id
    ]
    assert (await review.queue_for(set())).waiting == []


async def test_accepting_for_review_tells_the_followers_and_is_audited() -> None:
    author = await resident("1")
    proposal = await submit(author)
    event = await review.accept_for_review(proposal.id, "telegram:900")
    row = await Proposal.get(id=proposal.id)
    assert row.status == "under_review" and row.reviewed_at is not None
    assert await pushes("proposal_status") == [("1", f"proposal:{proposal.id}:event:{event.id}")]
    assert await audited("proposal.review") == 1


async def test_a_decision_set_in_chat_needs_its_explanation_and_is_audited() -> None:
    proposal = await submit(await resident("1"))
    with pytest.raises(ProposalError, match="explanation"):
        await review.set_status(proposal.id, "rejected", "telegram:900", explanation=" ")
    assert await audited("proposal.status") == 0
    await review.set_status(proposal.id, "rejected", "telegram:900", explanation="Not possible.")
    row = await Proposal.get(id=proposal.id)
    assert (row.status, row.explanation) == ("rejected", "Not possible.")
    assert await audited("proposal.status") == 1


async def test_a_private_answer_goes_to_the_author_alone_with_its_comment() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await submit(author)
    await proposals.follow(proposal, neighbour)
    comment = await review.answer_privately(proposal.id, "telegram:900", " Call us, please. ")
    assert (comment.staff, comment.text) == ("telegram:900", "Call us, please.")
    assert await pushes("proposal_answer") == [("1", f"proposal:{proposal.id}:answer:{comment.id}")]
    assert (await Proposal.get(id=proposal.id)).reviewed_at is not None
    with pytest.raises(ProposalError, match="empty"):
        await review.answer_privately(proposal.id, "telegram:900", "  ")
    await Proposal.filter(id=proposal.id).update(author_id=None)
    with pytest.raises(ProposalError, match="no_author"):
        await review.answer_privately(proposal.id, "telegram:900", "Hello?")
    assert await ProposalComment.filter(proposal_id=proposal.id).count() == 1


async def test_moving_to_another_department_is_recorded_once() -> None:
    proposal = await submit(await resident("1"))
    assert await review.move_department(proposal.id, "parks", "telegram:900")
    assert not await review.move_department(proposal.id, "parks", "telegram:900")
    assert (await Proposal.get(id=proposal.id)).department == "parks"
    assert [(e.kind, e.from_value, e.to_value) for e in await proposals.history(proposal.id)][
        -1
    ] == ("department", "roads", "parks")
    assert await audited("proposal.department") == 1


async def test_a_new_promised_date_needs_a_reason_and_is_told_to_every_follower() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await submit(author)
    await proposals.follow(proposal, neighbour)
    with pytest.raises(ProposalError, match="explanation"):
        await review.set_expected(proposal.id, date(2027, 6, 1), "", "telegram:900")
    event = await review.set_expected(proposal.id, date(2027, 6, 1), "Asphalt late", "cli")
    assert event.kind == "expected" and event.expected_on == date(2027, 6, 1)
    key = f"proposal:{proposal.id}:event:{event.id}"
    assert await pushes("proposal_status") == [("1", key), ("2", key)]
    row = await Proposal.get(id=proposal.id)
    assert (row.expected_on, row.reminded) == (date(2027, 6, 1), "")


async def test_merging_moves_followers_and_supporters_once_and_tells_them_once() -> None:
    a, b, c, d = [await resident(str(n)) for n in (1, 2, 3, 4)]
    original = await submit(a)  # a follows and supports
    await proposals.follow_and_support(original, c)
    duplicate = await submit(b)  # b follows and supports
    await proposals.follow_and_support(duplicate, c)  # c on both: counted once
    await proposals.follow_and_support(duplicate, d)
    supporters = await review.merge(duplicate.id, original.id, "telegram:900", "The same hole")
    assert supporters == 4  # a, c, b, d
    orig, dup = await Proposal.get(id=original.id), await Proposal.get(id=duplicate.id)
    assert (orig.supporters, dup.supporters) == (4, 0)
    assert await ProposalSupport.filter(proposal_id=original.id).count() == 4
    assert (dup.status, dup.duplicate_of_id) == ("duplicate", original.id)  # type: ignore[attr-defined]
    followers = await ProposalFollow.filter(proposal_id=original.id).values_list(
        "resident_id", flat=True
    )
    assert sorted(followers) == sorted([a.id, b.id, c.id, d.id])
    key = f"proposal:{duplicate.id}:merged"
    assert await pushes("proposal_merged") == [("2", key), ("3", key), ("4", key)]
    assert not await ProposalTerm.exists(proposal_id=duplicate.id)
    with pytest.raises(ProposalError, match="closed"):
        await review.merge(duplicate.id, original.id, "telegram:900")
    assert len(await pushes("proposal_merged")) == 3
    assert await audited("proposal.merge") == 1


async def test_a_proposal_is_merged_neither_into_itself_nor_a_duplicate_nor_a_hidden_one() -> None:
    author = await resident("1")
    first, second, third = [await submit(author) for _ in range(3)]
    with pytest.raises(ProposalError, match="self"):
        await review.merge(first.id, first.id, "cli")
    await review.merge(second.id, first.id, "cli")
    with pytest.raises(ProposalError, match="into_duplicate"):
        await review.merge(third.id, second.id, "cli")
    await review.hide(first.id, "cli", "Abuse")
    with pytest.raises(ProposalError, match="into_hidden"):
        await review.merge(third.id, first.id, "cli")
    assert (await Proposal.get(id=third.id)).status == "received"


async def test_hiding_tells_the_author_the_reason_and_takes_it_out_of_public_view() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await submit(author)
    await proposals.follow(proposal, neighbour)
    assert (await proposals.public_page("centrs"))[1] == 1
    with pytest.raises(ProposalError, match="explanation"):
        await review.hide(proposal.id, "telegram:900", "")
    assert await review.hide(proposal.id, "telegram:900", "Personal insults")
    assert not await review.hide(proposal.id, "telegram:900", "Again")
    row = await Proposal.get(id=proposal.id)
    assert row.hidden_reason == "Personal insults" and not proposals.is_public(row)
    assert await proposals.public_page("centrs") == ([], 0)
    [(who, key)] = await pushes("proposal_hidden")
    assert who == "1" and key.startswith(f"proposal:{proposal.id}:hidden:")
    assert not await ProposalTerm.exists(proposal_id=proposal.id)


async def test_approving_photos_counts_those_approved_now() -> None:
    proposal = await submit(await resident("1"))
    for key in ("a" * 64, "b" * 64):
        await ProposalPhoto.create(proposal_id=proposal.id, key=key)
    assert await review.approve_photos(proposal.id, "telegram:1") == 2
    assert await review.approve_photos(proposal.id, "telegram:1") == 0
    assert await ProposalPhoto.filter(approved=True).count() == 2


async def staff_accounts(*accounts: tuple[str, str]) -> None:
    for _, user_id in accounts:
        await resident(user_id)


async def test_three_new_proposals_within_a_minute_are_one_push_per_staff_account() -> None:
    await staff_accounts(*ROADS, *PARKS)
    author = await resident("1")
    assert await review.notify_new(STAFF_OF) == 0  # sets the marker: nothing before it
    made = [await submit(author, f"Pothole {n}") for n in range(3)]
    park = await submit(author, "Grass", department="parks")
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert await review.notify_new(STAFF_OF, later) == 3
    ids = [p.id for p in made]
    batch = f"proposal:new:roads:{ids[0]}-{ids[-1]}"
    assert await pushes("proposal_new") == sorted(
        [("900", batch), ("901", batch), ("950", f"proposal:new:parks:{park.id}-{park.id}")]
    )
    [params] = await Delivery.filter(external_id="900").values_list("params", flat=True)
    assert json.loads(params)["proposals"] == ids
    assert await review.notify_new(STAFF_OF, later + timedelta(minutes=1)) == 0
    assert len(await pushes("proposal_new")) == 3


async def test_a_proposal_just_submitted_waits_for_the_next_batch() -> None:
    await staff_accounts(*ROADS)
    author = await resident("1")
    await review.notify_new(STAFF_OF)
    await submit(author)
    assert await review.notify_new(STAFF_OF, datetime.now(UTC) - timedelta(seconds=1)) == 0
    assert await review.notify_new(STAFF_OF, datetime.now(UTC) + timedelta(minutes=1)) == 2


async def test_promised_date_reminders_go_the_day_before_and_when_overdue_once_each() -> None:
    await staff_accounts(*ROADS)
    author = await resident("1")
    proposal = await submit(author)
    done = await submit(author)
    due = date(2027, 3, 10)
    for row in (proposal, done):
        await review.set_status(row.id, "planned", "cli", expected_on=due)
    await review.set_status(done.id, "implemented", "cli", explanation="Fixed.")

    assert await review.remind_due(STAFF_OF, date(2027, 3, 8)) == 0
    assert await review.remind_due(STAFF_OF, date(2027, 3, 9)) == 2  # two staff accounts
    assert await review.remind_due(STAFF_OF, date(2027, 3, 9)) == 0
    assert await review.remind_due(STAFF_OF, date(2027, 3, 10)) == 0
    assert await review.remind_due(STAFF_OF, date(2027, 3, 11)) == 2
    assert await review.remind_due(STAFF_OF, date(2027, 3, 12)) == 0
    keys = {key for _, key in await pushes("proposal_due")}
    assert keys == {
        f"proposal:{proposal.id}:due:before:2027-03-10",
        f"proposal:{proposal.id}:due:overdue:2027-03-10",
    }
    # A new date starts its reminders afresh.
    await review.set_expected(proposal.id, date(2027, 4, 1), "Rain", "cli")
    assert await review.remind_due(STAFF_OF, date(2027, 3, 31)) == 2


async def test_the_summary_on_known_figures() -> None:
    author, other = await resident("1"), await resident("2")
    now = datetime(2027, 1, 31, 12, tzinfo=UTC)
    rows = [await submit(author) for _ in range(4)]
    park = await submit(author, department="parks")
    created = now - timedelta(days=10)
    for row in rows:
        await Proposal.filter(id=row.id).update(created_at=created)
    await Proposal.filter(id=rows[0].id).update(
        status="implemented",
        first_answer_at=created + timedelta(hours=2),
        resolved_at=created + timedelta(days=4),
        reopened=1,
    )
    await Proposal.filter(id=rows[1].id).update(
        status="planned",
        first_answer_at=created + timedelta(hours=4),
        expected_on=date(2027, 1, 20),
    )
    long_ago = now - timedelta(days=100)
    await Proposal.filter(id=rows[2].id).update(
        status="rejected",
        created_at=long_ago,
        first_answer_at=long_ago + timedelta(hours=6),
        resolved_at=long_ago + timedelta(days=2),
    )
    await review.hide(rows[3].id, "cli", "Abuse")
    for who, rating in ((author, 4), (other, 1)):
        await ProposalRating.create(
            proposal_id=rows[0].id, resident_id=who.id, round=1, answer="yes", rating=rating
        )
    await ProposalRating.create(proposal_id=park.id, resident_id=author.id, round=1, answer="no")

    parks, roads = await review.summary(None, date(2027, 1, 31), now)
    assert roads.department == "roads" and parks.department == "parks"
    assert roads.open_by_status == {"planned": 1}
    assert roads.overdue == 1
    assert roads.first_answer == {30: timedelta(hours=3), 365: timedelta(hours=4)}
    assert roads.resolution == {30: timedelta(days=4), 365: timedelta(days=3)}
    assert (roads.rating, roads.ratings, roads.reopened) == (2.5, 2, 1)
    assert parks.open_by_status == {"received": 1}
    assert (parks.rating, parks.ratings, parks.first_answer[30]) == (None, 0, None)
    [only] = await review.summary({"parks"}, date(2027, 1, 31), now)
    assert only.department == "parks"


async def test_an_unknown_proposal_is_gone_for_every_action() -> None:
    for action in (
        review.answer_privately(999, "cli", "Hi"),
        review.move_department(999, "parks", "cli"),
        review.hide(999, "cli", "Abuse"),
        review.set_expected(999, date(2027, 1, 1), "Why", "cli"),
    ):
        with pytest.raises(ProposalError, match="gone"):
            await action


async def test_two_crossed_merges_at_once_leave_one_original() -> None:
    """A into B and B into A at the same moment: the row locks let one of them through."""
    author = await resident("1")
    first, second = await submit(author), await submit(author)
    results = await asyncio.gather(
        review.merge(first.id, second.id, "telegram:900"),
        review.merge(second.id, first.id, "telegram:901"),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, ProposalError)]
    assert len(refused) == 1 and refused[0].reason in ("into_duplicate", "closed")
    statuses = sorted(await Proposal.all().values_list("status", flat=True))
    assert statuses == ["duplicate", "received"]
    assert await Proposal.filter(status="received").values_list("supporters", flat=True) == [1]
