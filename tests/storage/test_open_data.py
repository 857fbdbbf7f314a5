"""The public view of proposals: what open data shows, filters and pages, and what it
never holds (hidden or withdrawn proposals, anyone's identity, comments)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from storage import open_data, proposals
from storage.models import Proposal, ProposalComment, ProposalPhoto, Resident
from storage.open_data import Filters
from storage.proposals import Draft
from storage.sessions import open_session

pytestmark = pytest.mark.usefixtures("database")


async def resident(user_id: str, language: str = "lv") -> Resident:
    async with open_session("telegram", user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        session.resident.language = language
        await session.resident.save()
        return session.resident


async def submit(author: Resident, text: str, category: str = "roads", **more: object) -> Proposal:
    values: dict[str, object] = {
        "category": category,
        "department": "municipality",
        "text": text,
        "language": "lv",
        "neighbourhood": "centrs",
    }
    values.update(more)
    return await proposals.submit(author, Draft(**values))  # type: ignore[arg-type]


async def test_hidden_and_withdrawn_proposals_are_not_public() -> None:
    author = await resident("1")
    shown = await submit(author, "Bedre pie skolas")
    hidden = await submit(author, "Aizskarošs teksts")
    withdrawn = await submit(author, "Pārdomāju")
    await Proposal.filter(id=hidden.id).update(hidden_at=datetime.now(UTC), hidden_reason="abuse")
    await proposals.withdraw(withdrawn, author)

    found = await open_data.requests(Filters())
    assert [r.reference for r in found] == [shown.reference]
    assert await open_data.request(hidden.reference) is None
    assert await open_data.request(withdrawn.reference) is None
    assert [r.reference for r in await open_data.every_request()] == [shown.reference]
    assert await open_data.requests(Filters(references=[hidden.reference])) == []


async def test_a_duplicate_stays_public_closed_and_names_what_it_was_merged_into() -> None:
    author = await resident("1")
    kept = await submit(author, "Bedre pie skolas")
    duplicate = await submit(author, "Bedre pie skolas vēlreiz")
    await Proposal.filter(id=duplicate.id).update(status="duplicate", duplicate_of_id=kept.id)

    found = await open_data.request(duplicate.reference)
    assert found is not None
    assert (found.closed, found.merged_into) == (True, kept.reference)
    kept_row = await open_data.request(kept.reference)
    assert kept_row is not None and (kept_row.closed, kept_row.merged_into) == (False, "")


async def test_only_approved_photos_are_listed_oldest_first() -> None:
    proposal = await submit(await resident("1"), "Salauzts sols")
    await ProposalPhoto.create(proposal_id=proposal.id, key="a" * 64, approved=False)
    await ProposalPhoto.create(proposal_id=proposal.id, key="b" * 64, approved=True)
    await ProposalPhoto.create(
        proposal_id=proposal.id, key="c" * 64, approved=True, kind="completed"
    )
    found = await open_data.request(proposal.reference)
    assert found is not None and found.photo_keys == ("b" * 64, "c" * 64)


async def test_no_field_of_the_public_view_names_a_person_or_holds_a_comment() -> None:
    author = await resident("4242", "ru")
    proposal = await submit(author, "Нет света на улице", category="lighting")
    await ProposalComment.create(proposal_id=proposal.id, resident_id=author.id, text="SECRET")
    found = await open_data.request(proposal.reference)
    assert found is not None
    names = {f.name for f in dataclasses.fields(found)}
    assert not names & {"author", "author_id", "resident", "comments", "hidden_reason"}
    assert "SECRET" not in repr(found) and "4242" not in repr(found)


async def test_filters_by_status_service_code_dates_and_references() -> None:
    author = await resident("1")
    road = await submit(author, "Bedre")
    light = await submit(author, "Nedeg laterna", category="lighting")
    old = await submit(author, "Sena bedre")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await Proposal.filter(id=old.id).update(created_at=long_ago)
    await proposals.change_status(light.id, "implemented", actor="cli", explanation="Salabots.")

    async def refs(**given: object) -> list[str]:
        return [r.reference for r in await open_data.requests(Filters(**given))]  # type: ignore[arg-type]

    assert await refs(closed=True) == [light.reference]
    assert await refs(closed=False) == [road.reference, old.reference]
    assert await refs(service_codes=["lighting"]) == [light.reference]
    assert await refs(service_codes=["roads", "lighting"]) == [
        light.reference,
        road.reference,
        old.reference,
    ]
    month_ago = datetime.now(UTC) - timedelta(days=30)
    assert await refs(start=month_ago) == [light.reference, road.reference]
    assert await refs(end=month_ago) == [old.reference]
    # The references override every other filter, as GeoReport says.
    assert await refs(references=[old.reference, light.reference], closed=False) == [
        light.reference,
        old.reference,
    ]


async def test_pages_cover_every_request_once_newest_first() -> None:
    author = await resident("1")
    made = [await submit(author, f"Priekšlikums {n}") for n in range(7)]
    pages = [await open_data.requests(Filters(page=n, page_size=3)) for n in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    seen = [r.reference for page in pages for r in page]
    assert seen == [p.reference for p in reversed(made)]


async def test_personal_details_are_kept_apart_for_an_admins_export() -> None:
    author = await resident("1", "en")
    proposal = await submit(author, "Bedre")
    await ProposalComment.create(proposal_id=proposal.id, resident_id=author.id, text="Still there")
    await ProposalComment.create(proposal_id=proposal.id, staff="telegram:9", text="On it")
    details = (await open_data.personal_details())[proposal.id]
    assert (details.author, details.author_language) == (author.id, "en")
    assert [(who, text) for _, who, text in details.comments] == [
        ("resident", "Still there"),
        ("telegram:9", "On it"),
    ]
