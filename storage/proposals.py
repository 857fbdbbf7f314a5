"""Proposals: submitted, followed, supported, and every change of status told.

The core every other part builds on: the resident's side (submit, follow, support,
withdraw, their list, a neighbourhood's list) and the one function through which
a status changes (``change_status``), used alike by the review queue in chat and
the command line. It records the change in the history and queues a push to the
author and every follower in the same transaction, one per change (its dedupe key
names the event), so a repeated call or a retried request cannot tell anyone twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import cast

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from storage import deliveries, similar
from storage.models import (
    Proposal,
    ProposalCounter,
    ProposalEvent,
    ProposalFollow,
    ProposalSupport,
    Resident,
)
from storage.proposal_states import (
    CLOSED,
    DUPLICATE,
    IMPLEMENTED,
    NEEDS_EXPLANATION,
    NOT_OURS,
    RECEIVED,
    STATUSES,
    WITHDRAWN,
)

# The source and template of the push that tells a status change.
STATUS_PUSH = "proposal_status"


def _now() -> datetime:
    return datetime.now(UTC)


class ProposalError(Exception):
    """A change that cannot be made, with the reason as a short code for the caller to
    put in words: "explanation", "closed", "reviewed", "not_author", "gone"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Draft:
    """What a resident composed, ready to submit."""

    category: str
    department: str
    text: str
    language: str
    neighbourhood: str = ""
    latitude: float | None = None
    longitude: float | None = None
    address: str = ""


async def next_reference(year: int) -> str:
    """P-2026-0042: the next number of the year, one atomic upsert, so two workers
    submitting at once get two numbers (in the caller's transaction)."""
    client = connections.get("default")
    table = ProposalCounter._meta.db_table
    placeholder = "$1" if client.capabilities.dialect == "postgres" else "?"
    rows = await client.execute_query_dict(
        f'INSERT INTO "{table}" ("year", "number") VALUES ({placeholder}, 1) '
        f'ON CONFLICT ("year") DO UPDATE SET "number" = "{table}"."number" + 1 '
        'RETURNING "number"',
        [year],
    )
    return f"P-{year}-{int(rows[0]['number']):04d}"


async def submitted_since(resident: Resident, since: datetime) -> int:
    return await Proposal.filter(author_id=resident.id, created_at__gte=since).count()


async def submitted_today(resident: Resident) -> int:
    """New proposals of this resident in the last 24 hours (the daily limit)."""
    return await submitted_since(resident, _now() - timedelta(days=1))


async def submit(resident: Resident, draft: Draft) -> Proposal:
    """Create the proposal: its author follows and supports it from the start."""
    async with in_transaction():
        reference = await next_reference(_now().year)
        proposal = await Proposal.create(
            reference=reference,
            author_id=resident.id,
            category=draft.category,
            department=draft.department,
            neighbourhood=draft.neighbourhood,
            text=draft.text,
            language=draft.language,
            latitude=draft.latitude,
            longitude=draft.longitude,
            address=draft.address,
            supporters=1,
        )
        await ProposalFollow.create(proposal_id=proposal.id, resident_id=resident.id)
        await ProposalSupport.create(proposal_id=proposal.id, resident_id=resident.id)
        await ProposalEvent.create(
            proposal_id=proposal.id, kind="status", actor="resident", to_value=RECEIVED
        )
        await similar.index(proposal)
    return proposal


async def get(proposal_id: int) -> Proposal | None:
    return await Proposal.get_or_none(id=proposal_id)


def normalise_reference(text: str) -> str:
    """'p-2026-42', 'P 2026 0042' or '2026-42' as the reference it names."""
    digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
    if len(digits) != 2 or len(digits[0]) != 4 or len(digits[1]) > 6:
        return ""
    return f"P-{digits[0]}-{int(digits[1]):04d}"


async def by_reference(text: str) -> Proposal | None:
    reference = normalise_reference(text)
    return await Proposal.get_or_none(reference=reference) if reference else None


def is_public(proposal: Proposal) -> bool:
    """Shown to other residents and in open data: not hidden, not withdrawn."""
    return not proposal.hidden_at and proposal.status != WITHDRAWN


async def follow(proposal: Proposal, resident: Resident) -> bool:
    """The resident hears of its changes; False when they already did."""
    _, created = await ProposalFollow.get_or_create(
        proposal_id=proposal.id, resident_id=resident.id
    )
    return created


async def unfollow(proposal: Proposal, resident: Resident) -> bool:
    """Stop hearing of it; the author cannot (they are told of their own proposal)."""
    if proposal.author_id == resident.id:  # type: ignore[attr-defined]
        return False
    mine = ProposalFollow.filter(proposal_id=proposal.id, resident_id=resident.id)
    return bool(await mine.delete())


async def support(proposal: Proposal, resident: Resident) -> bool:
    """A +1, counted once per resident; False when they had supported it already."""
    async with in_transaction():
        _, created = await ProposalSupport.get_or_create(
            proposal_id=proposal.id, resident_id=resident.id
        )
        if created:
            await Proposal.filter(id=proposal.id).update(supporters=F("supporters") + 1)
    return created


async def follow_and_support(proposal: Proposal, resident: Resident) -> tuple[bool, bool]:
    """ "This is the same": one tap follows the proposal and adds the resident's support."""
    async with in_transaction():
        return await follow(proposal, resident), await support(proposal, resident)


async def withdraw(proposal: Proposal, resident: Resident) -> None:
    """The author takes it back while nobody on the staff has looked at it."""
    async with in_transaction():
        row = await Proposal.select_for_update().get_or_none(id=proposal.id)
        if row is None:
            raise ProposalError("gone")
        if row.author_id != resident.id:  # type: ignore[attr-defined]
            raise ProposalError("not_author")
        if row.reviewed_at is not None or row.status != RECEIVED:
            raise ProposalError("reviewed")
        now = _now()
        await Proposal.filter(id=row.id).update(
            status=WITHDRAWN, updated_at=now, resolved_at=now, ask_fixed_at=None
        )
        await ProposalEvent.create(
            proposal_id=row.id,
            kind="status",
            actor="resident",
            from_value=row.status,
            to_value=WITHDRAWN,
        )
        await similar.drop(row.id)


async def mine(resident: Resident, limit: int = 50) -> list[tuple[Proposal, bool]]:
    """The resident's own proposals and those they follow, newest change first, with
    whether each is their own."""
    followed = ProposalFollow.filter(resident_id=resident.id).values_list("proposal_id", flat=True)
    # Not .exclude(status=…, author_id=…): Tortoise negates each condition apart
    # (NOT a AND NOT b), which would drop every one of the resident's own.
    own_withdrawn = Q(status=WITHDRAWN) & Q(author_id=resident.id)
    rows = (
        await Proposal.filter(Q(id__in=await followed) & ~own_withdrawn)
        .order_by("-updated_at", "-id")
        .limit(limit)
    )
    return [(row, row.author_id == resident.id) for row in rows]  # type: ignore[attr-defined]


async def public_page(
    neighbourhood: str, offset: int = 0, limit: int = 5
) -> tuple[list[Proposal], int]:
    """A neighbourhood's public proposals, newest first, a page at a time, and how many
    there are in all."""
    query = Proposal.filter(hidden_at__isnull=True, duplicate_of_id__isnull=True).exclude(
        status=WITHDRAWN
    )
    if neighbourhood:
        query = query.filter(neighbourhood=neighbourhood)
    total = await query.count()
    rows = await query.order_by("-created_at", "-id").offset(offset).limit(limit)
    return list(rows), total


async def is_following(proposal: Proposal, resident: Resident) -> bool:
    return await ProposalFollow.exists(proposal_id=proposal.id, resident_id=resident.id)


async def has_supported(proposal: Proposal, resident: Resident) -> bool:
    return await ProposalSupport.exists(proposal_id=proposal.id, resident_id=resident.id)


async def followers(proposal_id: int) -> list[deliveries.Recipient]:
    """Every reachable account of the author and followers: where a push about it goes."""
    residents = ProposalFollow.filter(proposal_id=proposal_id).values_list("resident_id", flat=True)
    return await deliveries.accounts_of(cast(list[int], await residents))


async def tell_followers(
    proposal_id: int, event_id: int, template: str = STATUS_PUSH, *, exclude: Iterable[int] = ()
) -> int:
    """Queue the push about one event of the proposal to its author and followers, in the
    caller's transaction: one per event and account, however often it is called.

    Two pushes under one dedupe key: the author's says "your proposal" (param ``own``),
    the followers' "a proposal you follow". A hidden proposal is told to its author only:
    it is in no public view, so nobody else hears of it any more.
    """
    row = await Proposal.get_or_none(id=proposal_id).values("author_id", "hidden_at")
    if row is None:
        return 0
    skip = set(exclude)
    recipients = [r for r in await followers(proposal_id) if r[0] not in skip]
    author = row["author_id"]
    written = 0
    for own in (True, False):
        told = [r for r in recipients if (r[0] == author) is own]
        if not own and row["hidden_at"] is not None:
            told = []
        push = deliveries.Push(
            STATUS_PUSH,
            proposal_id,
            f"proposal:{proposal_id}:event:{event_id}",
            template,
            {"proposal": proposal_id, "event": event_id, "own": own},
            priority=deliveries.PERSONAL,
        )
        written += await deliveries.queue(push, told) if told else 0
    return written


async def change_status(
    proposal_id: int,
    status: str,
    *,
    actor: str,
    explanation: str = "",
    expected_on: date | None = None,
    passed_to: str = "",
    department: str = "",
    ask_fixed_after: timedelta = timedelta(days=3),
) -> ProposalEvent:
    """Set a proposal's status, record why, and tell the author and followers.

    Statuses that decide something need a public explanation ("explanation");
    "planned" may carry the promised date; ``department`` moves it to another one
    (recorded as its own event, told to nobody). Marking it implemented schedules the
    "Is it fixed?" question, once per time it is marked so. The staff's first
    action closes the door to withdrawal. Row-locked: two staff members at once
    get two changes in order, not a lost one.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    explanation = explanation.strip()
    if status in NEEDS_EXPLANATION and not explanation:
        raise ProposalError("explanation")
    async with in_transaction():
        row = await Proposal.select_for_update().get_or_none(id=proposal_id)
        if row is None:
            raise ProposalError("gone")
        if row.status in (DUPLICATE, WITHDRAWN):
            raise ProposalError("closed")
        now = _now()
        changes: dict[str, object] = {
            "status": status,
            "updated_at": now,
            "reviewed_at": row.reviewed_at or now,
        }
        if explanation:
            changes["explanation"] = explanation
        if expected_on is not None:
            changes["expected_on"] = expected_on
            changes["reminded"] = ""
        if status == NOT_OURS:
            changes["passed_to"] = passed_to.strip()
        if department and department != row.department:
            changes["department"] = department
            await ProposalEvent.create(
                proposal_id=row.id,
                kind="department",
                actor=actor,
                from_value=row.department,
                to_value=department,
            )
        if row.first_answer_at is None and status != RECEIVED:
            changes["first_answer_at"] = now
        if status in CLOSED:
            changes["resolved_at"] = row.resolved_at or now
        else:
            changes["resolved_at"] = None
        if status == IMPLEMENTED:
            changes["ask_fixed_at"] = now + ask_fixed_after
            changes["fixed_round"] = row.fixed_round + 1
        else:
            changes["ask_fixed_at"] = None
        await Proposal.filter(id=row.id).update(**changes)
        event = await ProposalEvent.create(
            proposal_id=row.id,
            kind="status",
            actor=actor,
            from_value=row.status,
            to_value=status,
            explanation=explanation,
            expected_on=expected_on,
        )
        await tell_followers(row.id, event.id)
        if status in CLOSED:
            await similar.drop(row.id)
    return event


async def history(proposal_id: int) -> Sequence[ProposalEvent]:
    return await ProposalEvent.filter(proposal_id=proposal_id).order_by("created_at", "id")


async def event(event_id: int) -> ProposalEvent | None:
    return await ProposalEvent.get_or_none(id=event_id)
