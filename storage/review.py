"""The staff's side of proposals: the review queue, the actions on one proposal, the
notices to a department's staff, and the summary.

Every action locks the proposal's row, records what happened in its history, writes
the audit entry and queues its pushes in one transaction: a change is never made
without its audit line or told without being made. Who may act is decided above
(``dialogs.review.may_handle``); the command line has every right.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from storage import deliveries, proposals, similar, staff
from storage.models import (
    Proposal,
    ProposalComment,
    ProposalEvent,
    ProposalFollow,
    ProposalPhoto,
    ProposalRating,
    ProposalSupport,
    Setting,
)
from storage.proposal_states import CLOSED, DUPLICATE, OPEN, RECEIVED, UNDER_REVIEW, WITHDRAWN
from storage.proposals import ProposalError

# Push templates (rendered by dialogs.review_pushes) and their sources.
NEW_PUSH = "proposal_new"
DUE_PUSH = "proposal_due"
ANSWER_PUSH = "proposal_answer"
MERGED_PUSH = "proposal_merged"
HIDDEN_PUSH = "proposal_hidden"

# The last proposal id whose department's staff were told of it (a ``Setting`` row).
NOTICE_MARKER = "proposals.new_notice_id"
# A proposal is told only once this old: a submission still being committed on another
# worker (a lower id) is not passed over by the marker.
SETTLE = timedelta(seconds=5)

BEFORE, OVERDUE = "before", "overdue"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Queue:
    """The next proposals waiting for a first look, and the open ones by status."""

    waiting: list[Proposal]
    counts: dict[str, int]


def _scope(departments: Collection[str] | None) -> dict[str, object]:
    return {} if departments is None else {"department__in": list(departments)}


async def queue_for(
    departments: Collection[str] | None, *, after: int = 0, limit: int = 1
) -> Queue:
    """Unreviewed proposals (received, not hidden) of these departments (None: all), oldest
    first, from the one after ``after``; and the open, visible proposals counted by status."""
    scope = _scope(departments)
    waiting = Proposal.filter(status=RECEIVED, hidden_at__isnull=True, **scope)
    rows = await waiting.filter(id__gt=after).order_by("id").limit(limit)
    statuses = await Proposal.filter(status__in=OPEN, hidden_at__isnull=True, **scope).values_list(
        "status", flat=True
    )
    return Queue(list(rows), dict(Counter(str(s) for s in statuses)))


async def _locked(proposal_id: int) -> Proposal:
    row = await Proposal.select_for_update().get_or_none(id=proposal_id)
    if row is None:
        raise ProposalError("gone")
    return row


async def _author_accounts(proposal: Proposal) -> list[deliveries.Recipient]:
    author = proposal.author_id  # type: ignore[attr-defined]
    if author is None:
        return []
    return await deliveries.accounts_of([author])


def _push(template: str, proposal_id: int, key: str, **params: object) -> deliveries.Push:
    return deliveries.Push(
        template,
        proposal_id,
        f"proposal:{proposal_id}:{key}",
        template,
        {"proposal": proposal_id, **params},
        priority=deliveries.PERSONAL,
    )


async def accept_for_review(proposal_id: int, actor: str) -> ProposalEvent:
    """Under review: the author and followers hear that someone looks at it."""
    async with in_transaction():
        event = await proposals.change_status(proposal_id, UNDER_REVIEW, actor=actor)
        await staff.record(actor, "proposal.review", {"proposal": proposal_id})
    return event


async def set_status(
    proposal_id: int,
    status: str,
    actor: str,
    *,
    explanation: str = "",
    expected_on: date | None = None,
    passed_to: str = "",
    ask_fixed_after: timedelta = timedelta(days=3),
) -> ProposalEvent:
    """``proposals.change_status`` with its audit line, for the chat's "Set status"."""
    async with in_transaction():
        event = await proposals.change_status(
            proposal_id,
            status,
            actor=actor,
            explanation=explanation,
            expected_on=expected_on,
            passed_to=passed_to,
            ask_fixed_after=ask_fixed_after,
        )
        detail = {"proposal": proposal_id, "status": status}
        await staff.record(actor, "proposal.status", detail)
    return event


async def answer_privately(proposal_id: int, actor: str, text: str) -> ProposalComment:
    """A staff member's answer to the author alone, kept with the proposal's comments; the
    author can reply to it. Refused ("no_author") when the author is forgotten."""
    text = text.strip()
    if not text:
        raise ProposalError("empty")
    async with in_transaction():
        row = await _locked(proposal_id)
        recipients = await _author_accounts(row)
        if row.author_id is None:  # type: ignore[attr-defined]
            raise ProposalError("no_author")
        comment = await ProposalComment.create(proposal_id=row.id, staff=actor, text=text)
        await ProposalEvent.create(
            proposal_id=row.id, kind="answered", actor=actor, to_value=str(comment.id)
        )
        if row.reviewed_at is None:
            await Proposal.filter(id=row.id).update(reviewed_at=_now())
        push = _push(ANSWER_PUSH, row.id, f"answer:{comment.id}", comment=comment.id)
        await deliveries.queue(push, recipients)
        await staff.record(actor, "proposal.answer", {"proposal": row.id, "comment": comment.id})
    return comment


async def move_department(proposal_id: int, department: str, actor: str) -> bool:
    """Hand it to another department (the caller checks the id against the configuration);
    False when it is there already."""
    async with in_transaction():
        row = await _locked(proposal_id)
        if row.department == department:
            return False
        await Proposal.filter(id=row.id).update(department=department, updated_at=_now())
        await ProposalEvent.create(
            proposal_id=row.id,
            kind="department",
            actor=actor,
            from_value=row.department,
            to_value=department,
        )
        detail = {"proposal": row.id, "from": row.department, "to": department}
        await staff.record(actor, "proposal.department", detail)
    return True


async def set_expected(proposal_id: int, when: date, reason: str, actor: str) -> ProposalEvent:
    """A new promised date, with the reason the author and followers read."""
    reason = reason.strip()
    if not reason:
        raise ProposalError("explanation")
    async with in_transaction():
        row = await _locked(proposal_id)
        if row.status in CLOSED:
            raise ProposalError("closed")
        now = _now()
        await Proposal.filter(id=row.id).update(
            expected_on=when, reminded="", updated_at=now, reviewed_at=row.reviewed_at or now
        )
        event = await ProposalEvent.create(
            proposal_id=row.id,
            kind="expected",
            actor=actor,
            from_value=row.expected_on.isoformat() if row.expected_on else "",
            to_value=when.isoformat(),
            explanation=reason,
            expected_on=when,
        )
        await proposals.tell_followers(row.id, event.id)
        detail = {"proposal": row.id, "expected_on": when.isoformat()}
        await staff.record(actor, "proposal.expected", detail)
    return event


async def merge(duplicate_id: int, original_id: int, actor: str, explanation: str = "") -> int:
    """Close the duplicate into the original: its followers and supporters move over
    (each resident once), both counts are recounted, and its followers are told once
    which proposal they follow now. Returns the original's supporters."""
    if duplicate_id == original_id:
        raise ProposalError("self")
    async with in_transaction():
        # Both rows locked, the lower id first: two merges at once cannot deadlock.
        locked = {p: await _locked(p) for p in sorted((duplicate_id, original_id))}
        duplicate, original = locked[duplicate_id], locked[original_id]
        if original.status == DUPLICATE:
            raise ProposalError("into_duplicate")
        if original.hidden_at is not None:
            raise ProposalError("into_hidden")
        if original.status == WITHDRAWN:
            raise ProposalError("into_closed")
        if duplicate.status in (DUPLICATE, WITHDRAWN):
            raise ProposalError("closed")
        told = await proposals.followers(duplicate.id)
        await _move(ProposalFollow, duplicate.id, original.id)
        await _move(ProposalSupport, duplicate.id, original.id)
        counts = {}
        for row in (duplicate, original):
            counts[row.id] = await ProposalSupport.filter(proposal_id=row.id).count()
            await Proposal.filter(id=row.id).update(supporters=counts[row.id])
        now = _now()
        await Proposal.filter(id=duplicate.id).update(
            status=DUPLICATE,
            duplicate_of_id=original.id,
            updated_at=now,
            reviewed_at=duplicate.reviewed_at or now,
            first_answer_at=duplicate.first_answer_at or now,
            resolved_at=now,
            ask_fixed_at=None,
        )
        await ProposalEvent.create(
            proposal_id=duplicate.id,
            kind="duplicate",
            actor=actor,
            from_value=duplicate.status,
            to_value=original.reference,
            explanation=explanation.strip(),
        )
        await ProposalEvent.create(
            proposal_id=original.id, kind="merged", actor=actor, from_value=duplicate.reference
        )
        await similar.drop(duplicate.id)
        push = _push(MERGED_PUSH, duplicate.id, "merged", original=original.id)
        await deliveries.queue(push, told)
        detail = {"proposal": duplicate.id, "into": original.id}
        await staff.record(actor, "proposal.merge", detail)
    return counts[original.id]


async def _move(model: type[ProposalFollow] | type[ProposalSupport], old: int, new: int) -> None:
    """Rows of ``old`` go to ``new``; a resident already there keeps one row."""
    there = set(await model.filter(proposal_id=new).values_list("resident_id", flat=True))
    await model.filter(proposal_id=old, resident_id__in=there).delete()
    await model.filter(proposal_id=old).update(proposal_id=new)


async def hide(proposal_id: int, actor: str, reason: str) -> bool:
    """Take abusive content out of every public view; the author is told why. False when
    it was hidden already."""
    reason = reason.strip()
    if not reason:
        raise ProposalError("explanation")
    async with in_transaction():
        row = await _locked(proposal_id)
        if row.hidden_at is not None:
            return False
        now = _now()
        await Proposal.filter(id=row.id).update(
            hidden_at=now,
            hidden_reason=reason[:256],
            updated_at=now,
            reviewed_at=row.reviewed_at or now,
        )
        event = await ProposalEvent.create(
            proposal_id=row.id, kind="hidden", actor=actor, explanation=reason
        )
        await similar.drop(row.id)
        push = _push(HIDDEN_PUSH, row.id, f"hidden:{event.id}")
        await deliveries.queue(push, await _author_accounts(row))
        await staff.record(actor, "proposal.hide", {"proposal": row.id, "reason": reason})
    return True


async def approve_photos(proposal_id: int, actor: str) -> int:
    """A moderator lets the public see a proposal's photos; how many were approved."""
    async with in_transaction():
        row = await _locked(proposal_id)
        count = await ProposalPhoto.filter(proposal_id=row.id, approved=False).update(approved=True)
        if count:
            await staff.record(actor, "proposal.photos", {"proposal": row.id, "approved": count})
    return int(count)


async def comments(proposal_id: int, limit: int = 3) -> list[ProposalComment]:
    """The latest comments on a proposal, oldest of them first."""
    rows = await ProposalComment.filter(proposal_id=proposal_id).order_by("-id").limit(limit)
    return list(reversed(rows))


async def photos(proposal_id: int) -> list[ProposalPhoto]:
    return list(await ProposalPhoto.filter(proposal_id=proposal_id).order_by("id"))


# --- notices to the department's staff ---------------------------------------------------
async def _marker() -> int:
    row = await Setting.get_or_none(key=NOTICE_MARKER)
    if row is None:
        # The first run tells of nothing older than itself: a deployment's backlog is in
        # the review queue, not in one long push.
        last = await Proposal.all().order_by("-id").first()
        try:
            row = await Setting.create(key=NOTICE_MARKER, value=str(last.id if last else 0))
        except IntegrityError:  # another worker made it first
            row = await Setting.get(key=NOTICE_MARKER)
    return int(row.value)


async def notify_new(
    staff_of: Mapping[str, Sequence[tuple[str, str]]], now: datetime | None = None
) -> int:
    """One push per staff account of each department listing its proposals that arrived
    since the last notice; ``staff_of`` maps a department to its accounts. The marker
    moves by compare-and-set, so of two workers only one tells. Returns pushes queued."""
    now = now or _now()
    async with in_transaction():
        start = await _marker()
        rows = (
            await Proposal.filter(id__gt=start, created_at__lte=now - SETTLE)
            .order_by("id")
            .values_list("id", "department", "status")
        )
        if not rows:
            return 0
        last = max(int(r[0]) for r in rows)
        moved = await Setting.filter(key=NOTICE_MARKER, value=str(start)).update(value=str(last))
        if not moved:
            return 0  # another worker took this batch
        by_department: dict[str, list[int]] = {}
        for proposal_id, department, status in rows:
            if status != WITHDRAWN:
                by_department.setdefault(str(department), []).append(int(proposal_id))
        queued = 0
        for department, ids in by_department.items():
            recipients = await deliveries.staff_accounts(staff_of.get(department, ()))
            push = deliveries.Push(
                NEW_PUSH,
                ids[-1],
                f"proposal:new:{department}:{ids[0]}-{ids[-1]}",
                NEW_PUSH,
                {"proposals": ids, "department": department},
                priority=deliveries.PERSONAL,
            )
            queued += await deliveries.queue(push, recipients)
    return queued


async def remind_due(staff_of: Mapping[str, Sequence[tuple[str, str]]], today: date) -> int:
    """Remind a department's staff of a promised date: on the day before it (or on the day,
    if that was missed) and once it has passed. ``today`` is the municipality's date.
    Each reminder is claimed on its row (the ``reminded`` column), so it goes once."""
    candidates = await Proposal.filter(
        status__in=OPEN,
        hidden_at__isnull=True,
        expected_on__isnull=False,
        expected_on__lte=today + timedelta(days=1),
    ).exclude(reminded=OVERDUE)
    queued = 0
    for row in candidates:
        assert row.expected_on is not None
        if row.expected_on < today:
            kind = OVERDUE
        elif row.reminded == "":
            kind = BEFORE
        else:
            continue
        async with in_transaction():
            claimed = await Proposal.filter(id=row.id, reminded=row.reminded).update(reminded=kind)
            if not claimed:
                continue
            recipients = await deliveries.staff_accounts(staff_of.get(row.department, ()))
            key = f"due:{kind}:{row.expected_on.isoformat()}"
            push = _push(DUE_PUSH, row.id, key, kind=kind)
            queued += await deliveries.queue(push, recipients)
    return queued


# --- the summary ----------------------------------------------------------------------------
WINDOWS = (30, 365)


@dataclass(slots=True)
class DepartmentSummary:
    """What a department's figures are now: the open work and how fast it was answered."""

    department: str
    open_by_status: dict[str, int] = field(default_factory=dict)
    overdue: int = 0
    # days → the median time, None where nothing happened in that window
    first_answer: dict[int, timedelta | None] = field(default_factory=dict)
    resolution: dict[int, timedelta | None] = field(default_factory=dict)
    rating: float | None = None
    ratings: int = 0
    reopened: int = 0


def _median(spans: Iterable[timedelta]) -> timedelta | None:
    seconds = [span.total_seconds() for span in spans]
    return timedelta(seconds=statistics.median(seconds)) if seconds else None


async def summary(
    departments: Collection[str] | None, today: date, now: datetime | None = None
) -> list[DepartmentSummary]:
    """Per department (None: every one with proposals), ordered by id: open proposals by
    status, the overdue ones, the median time to the first answer and to resolution of
    what was answered or resolved in the last 30 and 365 days, the average rating and
    how often proposals were reopened. Hidden proposals count nowhere."""
    now = now or _now()
    rows = await Proposal.filter(hidden_at__isnull=True, **_scope(departments)).values_list(
        "id",
        "department",
        "status",
        "expected_on",
        "created_at",
        "first_answer_at",
        "resolved_at",
        "reopened",
    )
    result: dict[str, DepartmentSummary] = {
        d: DepartmentSummary(d) for d in sorted(departments or ())
    }
    answered: dict[str, list[tuple[datetime, timedelta]]] = {}
    resolved: dict[str, list[tuple[datetime, timedelta]]] = {}
    owner: dict[int, str] = {}
    for pid, department, status, expected, created, first, done, reopened in rows:
        dept = str(department)
        owner[int(pid)] = dept
        item = result.setdefault(dept, DepartmentSummary(dept))
        item.reopened += int(reopened)
        if status in OPEN:
            item.open_by_status[status] = item.open_by_status.get(status, 0) + 1
            if expected is not None and expected < today:
                item.overdue += 1
        if first is not None:
            answered.setdefault(dept, []).append((first, first - created))
        if done is not None and status not in (WITHDRAWN, DUPLICATE):
            resolved.setdefault(dept, []).append((done, done - created))
    for dept, item in result.items():
        for days in WINDOWS:
            since = now - timedelta(days=days)
            item.first_answer[days] = _median(s for at, s in answered.get(dept, []) if at >= since)
            item.resolution[days] = _median(s for at, s in resolved.get(dept, []) if at >= since)
    ratings = await ProposalRating.filter(
        proposal_id__in=list(owner), rating__isnull=False
    ).values_list("proposal_id", "rating")
    scores: dict[str, list[int]] = {}
    for pid, rating in ratings:
        scores.setdefault(owner[int(pid)], []).append(int(rating))
    for dept, values in scores.items():
        result[dept].rating = sum(values) / len(values)
        result[dept].ratings = len(values)
    return [result[d] for d in sorted(result)]
