"""The resident's side of the feedback loop: a reply that reaches the department, and the
"Is it fixed?" question after a proposal is marked implemented, which reopens it on "no".

Nothing here is closed without the residents being asked: ``due_fixed_questions`` asks
the author and every follower once per time staff mark a proposal implemented (its
``fixed_round``), each proposal claimed by one atomic update so that two workers never
ask twice. An answer counts once per resident and round; "no" or "partly" sends the
proposal back to the department, in progress, and tells the others who follow it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage import deliveries, proposals, similar
from storage.models import (
    Proposal,
    ProposalComment,
    ProposalEvent,
    ProposalFollow,
    ProposalRating,
    Resident,
)
from storage.proposal_states import IMPLEMENTED, IN_PROGRESS

# Templates (and sources) of the pushes this module queues.
COMMENT_PUSH = "proposal_comment"  # to the department's staff: a resident wrote back
FIXED_PUSH = "proposal_fixed"  # to the author and followers: "Is it fixed?"

COMMENT_MAX = 2000  # characters of a reply to the department
ANSWERS = ("yes", "partly", "no")
REOPENING = frozenset({"partly", "no"})
RATINGS = range(1, 6)
# Proposals claimed per round of the job: the rest wait for its next run.
FIXED_BATCH = 200

Accounts = Iterable[tuple[str, str]]  # staff accounts: (channel, platform user id)


def _now() -> datetime:
    return datetime.now(UTC)


class FeedbackError(Exception):
    """A reply or an answer that cannot be taken, with the reason as a short code for the
    caller to put in words: "empty", "too_long", "gone", "not_following", "expired",
    "answered", "rating"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Answered:
    """What an answer to "Is it fixed?" did: the proposal, and whether it reopened it."""

    proposal: Proposal
    reopened: bool


async def may_write(proposal_id: int, resident: Resident) -> Proposal:
    """The proposal, if this resident hears of it (its author or a follower): only they
    may reply on it or answer its questions. A hidden proposal is its author's alone, as
    it is in no public view. Raises "gone" or "not_following"."""
    proposal = await Proposal.get_or_none(id=proposal_id)
    if proposal is None:
        raise FeedbackError("gone")
    if proposal.hidden_at is not None and proposal.author_id != resident.id:  # type: ignore[attr-defined]
        raise FeedbackError("gone")
    if not await ProposalFollow.exists(proposal_id=proposal_id, resident_id=resident.id):
        raise FeedbackError("not_following")
    return proposal


def checked_text(text: str) -> str:
    """The reply as it is kept; raises "empty" or "too_long"."""
    text = text.strip()
    if not text:
        raise FeedbackError("empty")
    if len(text) > COMMENT_MAX:
        raise FeedbackError("too_long")
    return text


async def _tell_staff(
    proposal: Proposal, accounts: Accounts, key: str, params: dict[str, object]
) -> int:
    push = deliveries.Push(
        COMMENT_PUSH,
        proposal.id,
        f"proposal:{proposal.id}:{key}",
        COMMENT_PUSH,
        {"proposal": proposal.id, **params},
        priority=deliveries.PERSONAL,
    )
    return await deliveries.queue(push, await deliveries.staff_accounts(accounts))


async def comment(
    proposal_id: int, resident: Resident, text: str, staff: Accounts
) -> ProposalComment:
    """Keep what the resident wrote on the proposal and queue it to the department's staff
    accounts (``staff``), in one transaction: a reply never goes into a void. The staff
    read "the author" or "a follower", never who."""
    text = checked_text(text)
    async with in_transaction():
        proposal = await may_write(proposal_id, resident)
        row = await ProposalComment.create(
            proposal_id=proposal.id, resident_id=resident.id, text=text
        )
        author = proposal.author_id == resident.id  # type: ignore[attr-defined]
        await _tell_staff(
            proposal, staff, f"comment:{row.id}", {"comment": row.id, "author": author}
        )
    return row


async def due_fixed_questions(now: datetime | None = None) -> int:
    """Ask "Is it fixed?" about every implemented proposal whose time has come; returns how
    many proposals were asked about.

    Each is claimed by clearing its ``ask_fixed_at`` in one update that only one worker
    can win, in the transaction that queues the question (one dedupe key per round), so
    it is asked once. A hidden proposal is asked of its author only.
    """
    now = now or _now()
    due = (
        await Proposal.filter(ask_fixed_at__lte=now, status=IMPLEMENTED)
        .order_by("ask_fixed_at", "id")
        .limit(FIXED_BATCH)
        .values_list("id", flat=True)
    )
    asked = 0
    for proposal_id in due:
        async with in_transaction():
            claimed = await Proposal.filter(
                id=proposal_id, ask_fixed_at__lte=now, status=IMPLEMENTED
            ).update(ask_fixed_at=None)
            if not claimed:
                continue  # another worker asked, or staff changed it meanwhile
            row = await Proposal.get(id=proposal_id)
            recipients = await proposals.followers(row.id)
            if row.hidden_at is not None:
                recipients = [r for r in recipients if r[0] == row.author_id]  # type: ignore[attr-defined]
            push = deliveries.Push(
                FIXED_PUSH,
                row.id,
                f"proposal:{row.id}:fixed:{row.fixed_round}",
                FIXED_PUSH,
                {"proposal": row.id, "round": row.fixed_round},
                priority=deliveries.PERSONAL,
            )
            await deliveries.queue(push, recipients)
            asked += 1
    return asked


async def _reopened_in(proposal_id: int, round_: int) -> bool:
    return await ProposalRating.exists(
        proposal_id=proposal_id, round=round_, answer__in=tuple(REOPENING)
    )


async def answer_fixed(
    proposal_id: int, resident: Resident, round_: int, answer: str, staff: Accounts
) -> Answered:
    """Record one resident's answer to "Is it fixed?" for ``round_``.

    "no" or "partly" reopens the proposal: back in progress, a "reopened" event told to
    the others who follow it (the resident who answered is told in their chat), and the
    department's staff told. A later "no" of the same round, once it was reopened, is
    recorded and reopens nothing more. Raises "expired" for an earlier round or a
    proposal no longer implemented, "answered" for a second answer of the same round.
    """
    if answer not in ANSWERS:
        raise FeedbackError("expired")
    async with in_transaction():
        await may_write(proposal_id, resident)
        row = await Proposal.select_for_update().get(id=proposal_id)
        if row.fixed_round != round_ or not (
            row.status == IMPLEMENTED
            or (row.status == IN_PROGRESS and await _reopened_in(row.id, round_))
        ):
            raise FeedbackError("expired")
        _, created = await ProposalRating.get_or_create(
            proposal_id=row.id, resident_id=resident.id, round=round_, defaults={"answer": answer}
        )
        if not created:
            raise FeedbackError("answered")
        if answer not in REOPENING or row.status != IMPLEMENTED:
            return Answered(row, reopened=False)
        now = _now()
        await Proposal.filter(id=row.id).update(
            status=IN_PROGRESS,
            updated_at=now,
            resolved_at=None,
            ask_fixed_at=None,
            reopened=F("reopened") + 1,
        )
        event = await ProposalEvent.create(
            proposal_id=row.id,
            kind="reopened",
            actor="resident",
            from_value=IMPLEMENTED,
            to_value=IN_PROGRESS,
        )
        await row.refresh_from_db()
        await similar.index(row)
        await proposals.tell_followers(row.id, event.id, exclude=[resident.id])
        await _tell_staff(row, staff, f"event:{event.id}", {"event": event.id, "answer": answer})
    return Answered(row, reopened=True)


async def rate(proposal_id: int, resident: Resident, round_: int, rating: int) -> None:
    """The 1–5 rating after an answer to "Is it fixed?", given once. Raises "rating" for a
    number out of range, "expired" with no answer of that round, "answered" when rated."""
    if rating not in RATINGS:
        raise FeedbackError("rating")
    mine = ProposalRating.filter(proposal_id=proposal_id, resident_id=resident.id, round=round_)
    if await mine.filter(rating__isnull=True).update(rating=rating):
        return
    raise FeedbackError("answered" if await mine.exists() else "expired")


async def comment_of(comment_id: int) -> ProposalComment | None:
    return await ProposalComment.get_or_none(id=comment_id)
