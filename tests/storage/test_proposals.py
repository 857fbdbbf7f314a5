"""The core of proposals: references per year, following and support, the status change
that tells the author and every follower once, and the lookup of similar ones."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from storage import proposals, residents, similar
from storage.models import (
    Delivery,
    Proposal,
    ProposalEvent,
    ProposalFollow,
    ProposalSupport,
    Resident,
)
from storage.proposals import Draft, ProposalError
from storage.sessions import open_session

pytestmark = pytest.mark.usefixtures("database")

YEAR = datetime.now(UTC).year


async def resident(user_id: str) -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        return session.resident


def draft(text: str = "A deep pothole on Brīvības iela by the school", **more: object) -> Draft:
    values: dict[str, object] = {
        "category": "roads",
        "department": "municipality",
        "text": text,
        "language": "en",
        "neighbourhood": "centrs",
    }
    values.update(more)
    return Draft(**values)  # type: ignore[arg-type]


async def test_references_count_per_year_and_never_repeat_when_submitted_at_once() -> None:
    authors = [await resident(str(100 + n)) for n in range(6)]
    made = await asyncio.gather(*(proposals.submit(a, draft()) for a in authors))
    references = sorted(p.reference for p in made)
    assert references == [f"P-{YEAR}-{n:04d}" for n in range(1, 7)]


async def test_the_author_follows_and_supports_their_own_proposal() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await proposals.submit(author, draft())
    assert await proposals.is_following(proposal, author)
    assert await proposals.follow_and_support(proposal, neighbour) == (True, True)
    assert await proposals.follow_and_support(proposal, neighbour) == (False, False)
    assert (await Proposal.get(id=proposal.id)).supporters == 2
    assert not await proposals.unfollow(proposal, author)  # the author always hears
    assert await proposals.unfollow(proposal, neighbour)


async def test_a_status_change_is_told_to_the_author_and_each_follower_once() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await proposals.submit(author, draft())
    await proposals.follow(proposal, neighbour)
    event = await proposals.change_status(
        proposal.id, "planned", actor="cli", explanation="In May.", expected_on=date(2027, 5, 1)
    )
    await proposals.tell_followers(proposal.id, event.id)  # a retry: nothing more
    rows = await Delivery.filter(source_kind=proposals.STATUS_PUSH).values_list(
        "external_id", "dedupe_key"
    )
    assert sorted(rows) == [
        ("1", f"proposal:{proposal.id}:event:{event.id}"),
        ("2", f"proposal:{proposal.id}:event:{event.id}"),
    ]
    row = await Proposal.get(id=proposal.id)
    assert (row.status, row.expected_on, row.explanation) == (
        "planned",
        date(2027, 5, 1),
        "In May.",
    )
    assert row.reviewed_at is not None and row.first_answer_at is not None


async def test_a_decision_needs_a_public_explanation() -> None:
    proposal = await proposals.submit(await resident("1"), draft())
    with pytest.raises(ProposalError) as refused:
        await proposals.change_status(proposal.id, "rejected", actor="cli", explanation="  ")
    assert refused.value.reason == "explanation"
    assert await ProposalEvent.filter(proposal_id=proposal.id).count() == 1  # "received" only


async def test_implemented_asks_is_it_fixed_later_and_counts_the_round() -> None:
    proposal = await proposals.submit(await resident("1"), draft())
    await proposals.change_status(proposal.id, "implemented", actor="cli", explanation="Done.")
    row = await Proposal.get(id=proposal.id)
    assert row.fixed_round == 1 and row.ask_fixed_at is not None and row.resolved_at is not None


async def test_withdrawal_only_by_the_author_and_only_before_review() -> None:
    author, other = await resident("1"), await resident("2")
    first = await proposals.submit(author, draft())
    with pytest.raises(ProposalError, match="not_author"):
        await proposals.withdraw(first, other)
    await proposals.withdraw(first, author)
    second = await proposals.submit(author, draft())
    await proposals.change_status(second.id, "under_review", actor="cli")
    with pytest.raises(ProposalError, match="reviewed"):
        await proposals.withdraw(second, author)


def test_references_are_read_however_they_are_typed() -> None:
    for typed in ("P-2026-0042", "p-2026-42", "P 2026 0042", "2026-42", " p2026/42 "):
        assert proposals.normalise_reference(typed) == "P-2026-0042"
    for typed in ("", "42", "P-26-0042", "hello"):
        assert proposals.normalise_reference(typed) == ""


def test_stems_meet_across_inflections_and_alphabets() -> None:
    assert similar.terms("Bedre ceļā") == similar.terms("bedres celā")
    assert similar.terms("Яма на дороге") == similar.terms("яма на дорогах") == ["yama", "dorog"]


async def test_similar_open_proposals_nearby_or_reading_alike_are_found() -> None:
    author = await resident("1")
    near = await proposals.submit(
        author, draft("Broken bench", latitude=56.9500, longitude=24.1000)
    )
    far = await proposals.submit(
        author, draft("Broken bench", latitude=56.9600, longitude=24.1000, neighbourhood="x")
    )
    alike = await proposals.submit(author, draft("Pothole deep by the school gate on Brīvības"))
    found = await similar.find(
        category="roads",
        text="deep pothole near school",
        neighbourhood="centrs",
        latitude=56.9505,
        longitude=24.1003,
        distance=150,
    )
    assert [p.id for p in found] == [near.id, alike.id]
    assert far.id not in [p.id for p in found]
    await proposals.change_status(alike.id, "rejected", actor="cli", explanation="No.")
    found = await similar.find(
        category="roads", text="deep pothole near school", neighbourhood="centrs"
    )
    assert alike.id not in [p.id for p in found]


async def test_a_forgotten_resident_s_proposals_stay_detached_and_their_support_counts() -> None:
    author, neighbour = await resident("1"), await resident("2")
    proposal = await proposals.submit(author, draft())
    await proposals.follow_and_support(proposal, neighbour)
    await residents.forget(author)
    row = await Proposal.get(id=proposal.id)
    assert row.author_id is None and row.text == proposal.text  # type: ignore[attr-defined]
    assert row.supporters == 2
    assert await ProposalSupport.filter(proposal_id=proposal.id).count() == 2
    assert await ProposalFollow.filter(proposal_id=proposal.id).count() == 1  # the neighbour
    data = await residents.personal_data(neighbour)
    assert (data.proposals, data.following, data.supported) == (0, 1, 1)
