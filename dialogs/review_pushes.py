"""The pushes of the staff's side of proposals, rendered at send time in each recipient's
language: new proposals and promised dates to a department's staff; a private answer,
a merge and a hiding to residents. Registered in ``dialogs.pushes`` by importing this.

A push names what it is about by ids; the words are read now, so a proposal hidden
before the notice went is left out of it, and a push about one that is gone is
cancelled (None).
"""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.messages import Button, RenderRequest, Reply
from dialogs.proposal_words import snippet, status_name
from dialogs.pushes import Pushes, template
from storage import proposals, review
from storage.models import Proposal, ProposalComment

# TRANSLATORS: a button label, at most 20 characters: answers the staff's message.
REPLY = N_("Reply")
REPLY_PREFIX = "pr:r"  # FEEDBACK's "Reply": starts the comment dialog


def _line(proposal: Proposal) -> str:
    return f"{proposal.reference}: {snippet(proposal.text)}"


async def _proposal(request: RenderRequest) -> Proposal | None:
    return await proposals.get(int(request.params["proposal"]))


@template(review.NEW_PUSH)
async def new_proposals(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """ "2 new proposals for your department:" and a line each; /review opens them."""
    ids = [int(i) for i in request.params.get("proposals", [])]
    rows = await Proposal.filter(id__in=ids, hidden_at__isnull=True).order_by("id")
    if not rows:
        return None
    tr = pushes.translator(request)
    head = tr.ngettext(
        "{n} new proposal for your department:",
        "{n} new proposals for your department:",
        len(rows),
    )
    foot = tr.gettext("Send /review to look at them.")
    return Reply("\n".join([head, *(_line(row) for row in rows), "", foot]))


@template(review.DUE_PUSH)
async def due(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """The day before a promised date, and once it has passed (while still open)."""
    row = await _proposal(request)
    if row is None or row.expected_on is None or row.hidden_at is not None:
        return None
    tr = pushes.translator(request)
    values = {
        "reference": row.reference,
        "date": tr.day(row.expected_on),
        "status": status_name(tr, row.status),
        "text": snippet(row.text),
    }
    if request.params.get("kind") == review.OVERDUE:
        text = tr.gettext(
            "Overdue: {reference} ({status}) was promised for {date}. {text}\n"
            "Set a new date with a reason, or its status: /review {reference}",
            **values,
        )
    else:
        text = tr.gettext(
            "Due soon: {reference} ({status}) is promised for {date}. {text}\n/review {reference}",
            **values,
        )
    return Reply(text)


@template(review.ANSWER_PUSH)
async def answer(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """The staff's private answer to the author, with a Reply button."""
    row = await _proposal(request)
    comment = await ProposalComment.get_or_none(id=int(request.params.get("comment", 0)))
    if row is None or comment is None:
        return None
    tr = pushes.translator(request)
    text = tr.gettext(
        "About your proposal {reference}, the municipality writes to you:\n{answer}",
        reference=row.reference,
        answer=comment.text,
    )
    # A person's own words: Messenger may carry them past its 24-hour window.
    return Reply(text, [[Button(tr.gettext(REPLY), f"{REPLY_PREFIX}:{row.id}")]], human=True)


@template(review.MERGED_PUSH)
async def merged(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """To the followers of a duplicate: which proposal they follow and support now."""
    row = await _proposal(request)
    original = await proposals.get(int(request.params.get("original", 0)))
    if row is None or original is None:
        return None
    tr = pushes.translator(request)
    text = tr.gettext(
        "Proposal {reference} is the same as {original}, so the two were joined. "
        "You now follow {original} and your support counts there ({n} in all). {text}",
        reference=row.reference,
        original=original.reference,
        n=tr.number(original.supporters),
        text=snippet(original.text),
    )
    return Reply(text, [[Button(tr.gettext(REPLY), f"{REPLY_PREFIX}:{original.id}")]])


@template(review.HIDDEN_PUSH)
async def hidden(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """To the author: their proposal is out of public view, and why."""
    row = await _proposal(request)
    if row is None or row.hidden_at is None:
        return None
    tr = pushes.translator(request)
    text = tr.gettext(
        "Your proposal {reference} is no longer shown publicly. The reason: {reason}",
        reference=row.reference,
        reason=row.hidden_reason,
    )
    return Reply(text, [[Button(tr.gettext(REPLY), f"{REPLY_PREFIX}:{row.id}")]])
