"""The pushes of the feedback loop, worded at send time in the reader's language: a status
change told to the author and every follower, "Is it fixed?", and a resident's reply
told to the department's staff.

Each renders from what the database holds when it goes: a proposal deleted meanwhile
cancels it (None). Whether the reader is the author is in the parameters (``own``),
since a template may depend on its ``RenderRequest`` only. A hidden proposal is told to
its author alone: a push queued to a follower before it was hidden is cancelled.
"""

from __future__ import annotations

from bot.core.i18n import N_, Translator
from bot.core.messages import Button, RenderRequest, Reply
from dialogs.proposal_words import category_name, snippet, status_name
from dialogs.pushes import Pushes, template
from storage import feedback, photos, proposals
from storage.models import Proposal, ProposalEvent
from storage.proposal_states import IMPLEMENTED, NOT_OURS

REPLY = "pr:r"  # pr:r:{id}: write to the department about the proposal
FIXED = "pr:fx"  # pr:fx:{id}:{round}:{yes|partly|no}
RATE = "pr:rt"  # pr:rt:{id}:{round}:{1-5}

STATUS_OWN = N_("Your proposal {reference} ({category}: {text}) is now: {status}.")
STATUS_FOLLOWED = N_("A proposal you follow, {reference} ({category}: {text}), is now: {status}.")
EXPECTED_OWN = N_(
    "The promised date of your proposal {reference} ({category}: {text}) has moved to {date}."
)
EXPECTED_FOLLOWED = N_(
    "The promised date of a proposal you follow, {reference} ({category}: {text}), "
    "has moved to {date}."
)
REOPENED_OWN = N_(
    "Your proposal {reference} ({category}: {text}) has been reopened: residents said it "
    "is not fixed yet. The department is working on it again."
)
REOPENED_FOLLOWED = N_(
    "A proposal you follow, {reference} ({category}: {text}), has been reopened: residents "
    "said it is not fixed yet. The department is working on it again."
)
EXPLANATION = N_("How it was taken into account: {explanation}")
REASON = N_("Why: {explanation}")
PROMISED = N_("Promised by: {date}")
PASSED_TO = N_("Passed to: {body}")
REPLY_HINT = N_("Press “Reply” to write to the department about it.")

FIXED_QUESTION = N_(
    "Is it fixed? {reference} ({category}: {text}) was marked as implemented. "
    "Please tell us whether the problem is solved."
)
FROM_AUTHOR = N_("The author of {reference} ({category}: {text}) wrote:\n\n{comment}")
FROM_FOLLOWER = N_("A follower of {reference} ({category}: {text}) wrote:\n\n{comment}")
REOPENED_BY = {
    "no": N_(
        "{reference} ({category}: {text}) was reopened: a resident answered that it is not "
        "fixed. It is in progress again."
    ),
    "partly": N_(
        "{reference} ({category}: {text}) was reopened: a resident answered that it is only "
        "partly fixed. It is in progress again."
    ),
}


def reply_button(tr: Translator, proposal_id: int) -> Button:
    # TRANSLATORS: a button label, at most 20 characters: write back to the department.
    return Button(tr.gettext("Reply"), f"{REPLY}:{proposal_id}")


def fixed_buttons(tr: Translator, proposal_id: int, round_: int) -> list[list[Button]]:
    prefix = f"{FIXED}:{proposal_id}:{round_}"
    return [
        [
            # TRANSLATORS: a button label, at most 20 characters: "Is it fixed?" — yes.
            Button(tr.gettext("Yes, fixed"), f"{prefix}:yes"),
            # TRANSLATORS: a button label, at most 20 characters: "Is it fixed?" — partly.
            Button(tr.gettext("Partly"), f"{prefix}:partly"),
            # TRANSLATORS: a button label, at most 20 characters: "Is it fixed?" — no.
            Button(tr.gettext("No, not fixed"), f"{prefix}:no"),
        ]
    ]


def rating_buttons(proposal_id: int, round_: int) -> list[list[Button]]:
    """One tap: 1 to 5 (digits read alike in every language)."""
    return [[Button(str(n), f"{RATE}:{proposal_id}:{round_}:{n}") for n in feedback.RATINGS]]


def _about(pushes: Pushes, tr: Translator, proposal: Proposal) -> dict[str, str]:
    """The placeholders naming a proposal in every text here."""
    return {
        "reference": proposal.reference,
        "category": category_name(pushes.config, proposal.category, tr.language),
        "text": snippet(proposal.text),
    }


def event_text(
    tr: Translator, event: ProposalEvent, about: dict[str, str], *, own: bool, passed_to: str = ""
) -> str | None:
    """The paragraphs telling one event; None for a kind this template does not tell."""
    lines: list[str] = []
    if event.kind == "status":
        message = STATUS_OWN if own else STATUS_FOLLOWED
        lines.append(tr.gettext(message, status=status_name(tr, event.to_value), **about))
        if event.explanation:
            lines.append(tr.gettext(EXPLANATION, explanation=event.explanation))
        if event.expected_on is not None:
            lines.append(tr.gettext(PROMISED, date=tr.day(event.expected_on)))
        if event.to_value == NOT_OURS and passed_to:
            lines.append(tr.gettext(PASSED_TO, body=passed_to))
    elif event.kind == "expected" and event.expected_on is not None:
        message = EXPECTED_OWN if own else EXPECTED_FOLLOWED
        lines.append(tr.gettext(message, date=tr.day(event.expected_on), **about))
        if event.explanation:
            lines.append(tr.gettext(REASON, explanation=event.explanation))
    elif event.kind == "reopened":
        lines.append(tr.gettext(REOPENED_OWN if own else REOPENED_FOLLOWED, **about))
    else:
        return None
    lines.append(tr.gettext(REPLY_HINT))
    return "\n\n".join(lines)


@template(proposals.STATUS_PUSH)
async def proposal_status(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """A status change, a promised date moved, or a reopening, with "Reply"."""
    proposal = await proposals.get(int(request.params["proposal"]))
    event = await proposals.event(int(request.params["event"]))
    own = bool(request.params.get("own", False))
    if proposal is None or event is None or event.proposal_id != proposal.id:  # type: ignore[attr-defined]
        return None
    if proposal.hidden_at is not None and not own:
        return None
    tr = pushes.translator(request)
    text = event_text(
        tr, event, _about(pushes, tr, proposal), own=own, passed_to=proposal.passed_to
    )
    if text is None:
        return None
    # A status explained in a staff member's words is their answer to the resident.
    return Reply(text, [[reply_button(tr, proposal.id)]], human=bool(event.explanation))


@template(feedback.FIXED_PUSH)
async def proposal_fixed(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """ "Is it fixed?" with Yes / Partly / No, and the photo of the completed work if staff
    gave one. Cancelled once the question no longer stands (marked otherwise since)."""
    proposal = await proposals.get(int(request.params["proposal"]))
    round_ = int(request.params["round"])
    if proposal is None or proposal.status != IMPLEMENTED or proposal.fixed_round != round_:
        return None
    tr = pushes.translator(request)
    lines = [tr.gettext(FIXED_QUESTION, **_about(pushes, tr, proposal))]
    if proposal.explanation:
        lines.append(tr.gettext(EXPLANATION, explanation=proposal.explanation))
    completed = [p for p in await photos.of(proposal.id) if p.kind == "completed"]
    image = f"/photos/{completed[-1].key}.jpg" if completed else ""
    return Reply("\n\n".join(lines), fixed_buttons(tr, proposal.id, round_), image=image)


@template(feedback.COMMENT_PUSH)
async def proposal_comment(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """To the department's staff: what a resident wrote back, or that a resident's answer
    reopened the proposal. The resident is named only as the author or a follower."""
    params = request.params
    proposal = await proposals.get(int(params["proposal"]))
    if proposal is None:
        return None
    tr = pushes.translator(request)
    about = _about(pushes, tr, proposal)
    if "comment" in params:
        row = await feedback.comment_of(int(params["comment"]))
        if row is None:
            return None
        message = FROM_AUTHOR if params.get("author") else FROM_FOLLOWER
        return Reply(tr.gettext(message, comment=row.text, **about))
    reopened = REOPENED_BY.get(str(params.get("answer", "")))
    return Reply(tr.gettext(reopened, **about)) if reopened else None
