"""The review queue in chat: staff see the next unreviewed proposal and act on it.

Who may review is not one role, so this dialog names no ``roles`` for the dispatcher
to check: moderators and admins act on every proposal, and the staff accounts a
department names in the configuration (``proposals.departments[].staff``) act on
their department's proposals, with or without a role. ``may_review`` lets someone
into the queue; ``may_handle`` is asked again of the proposal on every step, on the
server, so a forged or old button, or a proposal moved to another department
meanwhile, does nothing and is logged. ``handlers.review`` routes every ``rv:``
button through ``may_review`` first.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

from bot.core.i18n import N_
from bot.core.logs import who
from bot.core.messages import Reply
from dialogs import menu
from dialogs.announce import actor, role
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, enter, show
from dialogs.pickers import BACK, SKIP, rows
from dialogs.proposal_submit import keep_photo
from dialogs.proposal_words import (
    category_name,
    department_name,
    neighbourhood_name,
    snippet,
    status_name,
)
from storage import photos, proposals, review
from storage import proposal_states as states
from storage.models import Proposal, ProposalEvent
from storage.proposals import ProposalError

log = logging.getLogger(__name__)

REVIEWERS = frozenset({"moderator", "admin"})

dialog = Dialog("rv")

NOT_YOURS = N_("That proposal belongs to another department: you cannot act on it.")
GONE = N_("That proposal is no longer there.")
NOTHING_WAITS = N_("No proposal waits for review.")
NO_OTHER = N_("No other proposal waits for review.")
NO_DATE = N_(
    "I could not read that date. Please write it like 15.06.2027 or 2027-06-15, "
    "a day still to come."
)
EMPTY = N_("Please write a few words.")
REFUSED = {
    "explanation": N_("This status needs a public explanation. Please write one."),
    "closed": N_("That proposal is closed (merged or withdrawn); its status cannot change."),
    "gone": GONE,
    "no_author": N_("The author's data was deleted: there is nobody to answer privately."),
    "empty": EMPTY,
    "self": N_("A proposal cannot be merged into itself."),
    "into_duplicate": N_("That proposal is itself merged into another; name that one."),
    "into_hidden": N_("That proposal is hidden; a proposal cannot be merged into it."),
    "into_closed": N_("That proposal was withdrawn; a proposal cannot be merged into it."),
}
HISTORY_SHOWN = 5
COMMENTS_SHOWN = 3

# TRANSLATORS: a button label, at most 20 characters.
BACK_LABEL = N_("Back")


# --- who may do what ---------------------------------------------------------------------
def _departments_of(ctx: Ctx) -> frozenset[str]:
    return ctx.config.proposals.departments_of(ctx.incoming.channel, ctx.incoming.user_id)


async def handled_departments(ctx: Ctx) -> frozenset[str] | None:
    """The departments whose proposals this account handles; None: every one."""
    if await role(ctx) in REVIEWERS:
        return None
    return _departments_of(ctx)


async def may_review(ctx: Ctx) -> bool:
    """A moderator, an admin, or a department's staff account."""
    return await role(ctx) in REVIEWERS or bool(_departments_of(ctx))


async def may_handle(ctx: Ctx, proposal: Proposal) -> bool:
    """Moderators and admins act on every proposal; a department's staff on its own."""
    departments = await handled_departments(ctx)
    return departments is None or proposal.department in departments


async def _refuse(ctx: Ctx, proposal: Proposal) -> None:
    log.warning(
        "review of %s refused to %s (department %s)",
        proposal.reference,
        who(ctx.incoming.channel, ctx.incoming.user_id),
        proposal.department,
    )
    ctx.clear_state()
    ctx.answer(ctx._(NOT_YOURS))


async def _current(ctx: Ctx) -> Proposal | None:
    """The proposal this step is about, if it still is and this account may act on it;
    otherwise say why (and log a refusal) and leave the dialog."""
    proposal = await proposals.get(int(ctx.data.get("id", 0)))
    if proposal is None:
        ctx.clear_state()
        ctx.answer(ctx._(GONE))
        return None
    if not await may_handle(ctx, proposal):
        await _refuse(ctx, proposal)
        return None
    return proposal


Action = Callable[[Ctx, Proposal, str], Awaitable[None]]


def acting(action: Action) -> Callable[[Ctx, str], Awaitable[None]]:
    """A step's handler, run only for a proposal this account may act on."""

    async def checked(ctx: Ctx, value: str) -> None:
        proposal = await _current(ctx)
        if proposal is not None:
            await action(ctx, proposal, value)

    return checked


async def _refused(ctx: Ctx, error: ProposalError) -> None:
    ctx.answer(ctx._(REFUSED.get(error.reason, GONE)))


# --- entering ------------------------------------------------------------------------------
async def start(ctx: Ctx, reference: str = "") -> None:
    """``/review``: the next unreviewed proposal; ``/review P-2026-0042``: that one."""
    if reference.strip():
        proposal = await proposals.by_reference(reference)
        if proposal is None:
            ctx.answer(ctx._("I know no proposal {reference}.", reference=reference.strip()))
            return
        if not await may_handle(ctx, proposal):
            await _refuse(ctx, proposal)
            return
        await open_proposal(ctx, proposal)
        return
    await show_next(ctx, after=0)


async def show_next(ctx: Ctx, after: int) -> None:
    """The next unreviewed proposal after ``after`` (then from the start of the queue)."""
    departments = await handled_departments(ctx)
    queue = await review.queue_for(departments, after=after)
    if not queue.waiting and after:
        queue = await review.queue_for(departments)
        if queue.waiting and queue.waiting[0].id == after and ctx.data.get("id") == after:
            ctx.answer(ctx._(NO_OTHER))
            await enter(ctx, card)
            return
    if not queue.waiting:
        ctx.clear_state()
        lines = [ctx._(NOTHING_WAITS)]
        if queue.counts:
            lines.append(ctx._("Open now: {counts}", counts=_counts(ctx, queue.counts)))
        ctx.answer("\n".join(lines))
        return
    await open_proposal(ctx, queue.waiting[0])


def _counts(ctx: Ctx, counts: dict[str, int]) -> str:
    return ", ".join(
        f"{status_name(ctx.tr, status)} {ctx.tr.number(counts[status])}"
        for status in states.STATUSES
        if counts.get(status)
    )


async def open_proposal(ctx: Ctx, proposal: Proposal) -> None:
    """Its photos (one message each), then the card with the actions."""
    shown = await review.photos(proposal.id)
    for number, photo in enumerate(shown, 1):
        caption = ctx._(
            "{reference}: photo {n} of {count}",
            reference=proposal.reference,
            n=number,
            count=len(shown),
        )
        ctx.answer(Reply(caption, image=f"/photos/{photo.key}.jpg"))
    await begin(ctx, card, {"id": proposal.id})


async def acted(ctx: Ctx, proposal: Proposal) -> None:
    """The card again after an action, as a new instance: the buttons of the card acted
    on expire, so a second tap on an old message cannot do the same thing twice."""
    await begin(ctx, card, {"id": proposal.id})


# --- the card --------------------------------------------------------------------------------
def _place(ctx: Ctx, proposal: Proposal) -> str:
    if proposal.address:
        return ctx._("Place: {address}", address=proposal.address)
    if proposal.latitude is not None and proposal.longitude is not None:
        return ctx._(
            "Place: {lat}, {lon}",
            lat=f"{proposal.latitude:.5f}",
            lon=f"{proposal.longitude:.5f}",
        )
    return ctx._("Place: not given")


def _event_line(ctx: Ctx, event: ProposalEvent) -> str:
    when = ctx.tr.moment(event.created_at, ctx.config.municipality.zone)
    config, language = ctx.config, ctx.language
    if event.kind == "status":
        what = status_name(ctx.tr, event.to_value)
    elif event.kind == "department":
        what = ctx._(
            "moved to {department}", department=department_name(config, event.to_value, language)
        )
    elif event.kind == "expected" and event.expected_on:
        what = ctx._("promised date moved to {date}", date=ctx.tr.day(event.expected_on))
    elif event.kind == "duplicate":
        what = ctx._("merged into {reference}", reference=event.to_value)
    elif event.kind == "merged":
        what = ctx._("{reference} merged into it", reference=event.from_value)
    elif event.kind == "hidden":
        what = ctx._("hidden")
    elif event.kind == "answered":
        what = ctx._("answered privately")
    elif event.kind == "reopened":
        what = ctx._("reopened by a resident")
    else:
        what = event.kind
    who_did = ctx._("resident") if event.actor == "resident" else event.actor
    line = f"{when} · {what} ({who_did})"
    return f"{line}: {snippet(event.explanation)}" if event.explanation else line


async def render_card(ctx: Ctx) -> Reply:
    proposal = await proposals.get(int(ctx.data.get("id", 0)))
    if proposal is None:
        return Reply(ctx._(GONE))
    if not await may_handle(ctx, proposal):
        return Reply(ctx._(NOT_YOURS))
    config, language = ctx.config, ctx.language
    lines = [
        ctx._(
            "{reference} · {category} · {status}",
            reference=proposal.reference,
            category=category_name(config, proposal.category, language),
            status=status_name(ctx.tr, proposal.status),
        ),
        ctx._(
            "Department: {department}",
            department=department_name(config, proposal.department, language),
        ),
        ctx._(
            "Neighbourhood: {name}",
            name=neighbourhood_name(config, proposal.neighbourhood, language)
            if proposal.neighbourhood
            else "—",
        ),
        _place(ctx, proposal),
        ctx.ngettext("{n} supporter", "{n} supporters", proposal.supporters),
    ]
    if proposal.expected_on:
        lines.append(ctx._("Promised for {date}", date=ctx.tr.day(proposal.expected_on)))
    if proposal.passed_to:
        lines.append(ctx._("Passed to: {body}", body=proposal.passed_to))
    if proposal.hidden_at:
        lines.append(ctx._("Hidden from the public: {reason}", reason=proposal.hidden_reason))
    photos = await review.photos(proposal.id)
    waiting_photos = [p for p in photos if not p.approved]
    if photos:
        lines.append(
            ctx._(
                "Photos: {count}, of them approved for the public: {approved}",
                count=len(photos),
                approved=len(photos) - len(waiting_photos),
            )
        )
    lines += ["", proposal.text, ""]
    events = list(await proposals.history(proposal.id))[-HISTORY_SHOWN:]
    lines.append(ctx._("History:"))
    lines += [_event_line(ctx, event) for event in events]
    comments = await review.comments(proposal.id, COMMENTS_SHOWN)
    if comments:
        lines += ["", ctx._("Latest comments:")]
        for comment in comments:
            author = comment.staff or ctx._("resident")
            lines.append(f"{author}: {snippet(comment.text, 200)}")

    buttons = []
    first = []
    if proposal.status == states.RECEIVED:
        # TRANSLATORS: a button label, at most 20 characters.
        first.append(card.button(ctx._("Accept for review"), "accept"))
    if proposal.author_id is not None:  # type: ignore[attr-defined]
        # TRANSLATORS: a button label, at most 20 characters.
        first.append(card.button(ctx._("Answer privately"), "answer"))
    buttons.append(first)
    open_ = proposal.status not in (states.DUPLICATE, states.WITHDRAWN)
    if open_:
        buttons.append(
            [
                # TRANSLATORS: a button label, at most 20 characters.
                card.button(ctx._("Set status"), "status"),
                # TRANSLATORS: a button label, at most 20 characters.
                card.button(ctx._("Move department"), "move"),
            ]
        )
    third = []
    if open_:
        # TRANSLATORS: a button label, at most 20 characters.
        third.append(card.button(ctx._("Duplicate of…"), "duplicate"))
    if not proposal.hidden_at:
        # TRANSLATORS: a button label, at most 20 characters.
        third.append(card.button(ctx._("Hide"), "hide"))
    buttons.append(third)
    fourth = []
    if proposal.status not in states.CLOSED:
        # TRANSLATORS: a button label, at most 20 characters.
        fourth.append(card.button(ctx._("Promised date"), "expected"))
    if waiting_photos and await role(ctx) in REVIEWERS:
        # TRANSLATORS: a button label, at most 20 characters.
        fourth.append(card.button(ctx._("Approve photos"), "photos"))
    buttons.append(fourth)
    buttons.append(
        [
            # TRANSLATORS: a button label, at most 20 characters.
            card.button(ctx._("Next"), "next"),
            # TRANSLATORS: a button label, at most 20 characters.
            card.button(ctx._("Close"), "close"),
        ]
    )
    return Reply("\n".join(lines), [row for row in buttons if row])


@acting
async def on_card(ctx: Ctx, proposal: Proposal, value: str) -> None:
    if value == "accept" and proposal.status == states.RECEIVED:
        try:
            await review.accept_for_review(proposal.id, actor(ctx))
        except ProposalError as error:
            await _refused(ctx, error)
        else:
            ctx.answer(ctx._("Accepted for review; the author and followers are told."))
        await acted(ctx, proposal)
    elif value in TEXT_STEPS:
        await enter(ctx, TEXT_STEPS[value])
    elif value == "status":
        await enter(ctx, status)
    elif value == "move":
        await enter(ctx, move)
    elif value == "photos" and await role(ctx) in REVIEWERS:
        count = await review.approve_photos(proposal.id, actor(ctx))
        ctx.answer(ctx.ngettext("{n} photo approved.", "{n} photos approved.", count))
        await acted(ctx, proposal)
    elif value == "next":
        await show_next(ctx, after=proposal.id)
    elif value == "close":
        ctx.answer(ctx._("The review queue is closed. /review opens it again."))
        await menu.show(ctx)
    else:
        await ask_again(ctx, card)


card = dialog.step("card", render_card, on_button=on_card)


@acting
async def on_back(ctx: Ctx, proposal: Proposal, value: str) -> None:
    """The button of a step that waits for a text: Back to the card."""
    if value == BACK:
        await enter(ctx, card)
    else:
        await ask_again(ctx, dialog.steps[ctx.state])


# --- status --------------------------------------------------------------------------------
# TRANSLATORS: a button label, at most 20 characters: the status "passed to another body".
NOT_OURS_LABEL = N_("Not ours")


async def render_status(ctx: Ctx) -> Reply:
    proposal = await proposals.get(int(ctx.data.get("id", 0)))
    current = proposal.status if proposal else ""
    choices = [
        status.button(
            ctx._(NOT_OURS_LABEL) if key == states.NOT_OURS else status_name(ctx.tr, key), key
        )
        for key in states.STATUSES
        if key != current
    ]
    return Reply(
        ctx._("Which status? The author and every follower are told."),
        [*rows(choices), [status.button(ctx._(BACK_LABEL), BACK)]],
        pinned_rows=1,
    )


@acting
async def on_status(ctx: Ctx, proposal: Proposal, value: str) -> None:
    if value == BACK:
        await enter(ctx, card)
        return
    if value not in states.STATUSES:
        await ask_again(ctx, status)
        return
    ctx.data.update({"status": value, "expected": "", "passed": ""})
    ctx.data.pop("completed", None)
    if value == states.PLANNED:
        await enter(ctx, planned)
    elif value == states.NOT_OURS:
        await enter(ctx, passed)
    elif value == states.IMPLEMENTED and ctx.takes_photos:
        await enter(ctx, completed)
    else:
        await enter(ctx, explain)


status = dialog.step("status", render_status, on_button=on_status)


# --- implemented: a photo of the completed work ---------------------------------------------
async def render_completed(ctx: Ctx) -> Reply:
    """OneService closed cases when an agency merely replied: a photo of the work done is
    what residents trust. Optional (not every job leaves something to photograph)."""
    text = ctx._(
        "Send a photo of the completed work, if you have one: the author and followers "
        "see it when they are asked whether it is fixed."
    )
    # TRANSLATORS: a button label, at most 20 characters.
    skip = completed.button(ctx._("No photo"), SKIP)
    return Reply(text, [[skip, completed.button(ctx._(BACK_LABEL), BACK)]])


@acting
async def on_completed_photo(ctx: Ctx, proposal: Proposal, file_id: str) -> None:
    kept = await keep_photo(ctx)
    if kept is None:
        await show(ctx, completed)
        return
    ctx.data["completed"] = kept
    ctx.answer(ctx._("The photo of the completed work is attached."))
    await enter(ctx, explain)


@acting
async def on_completed_button(ctx: Ctx, proposal: Proposal, value: str) -> None:
    if value == SKIP:
        await enter(ctx, explain)
    elif value == BACK:
        await enter(ctx, card)
    else:
        await ask_again(ctx, completed)


async def on_completed_text(ctx: Ctx, text: str) -> None:
    await ask_again(ctx, completed, N_("Please send a photo, or press “No photo”."))


completed = dialog.step(
    "completed",
    render_completed,
    on_button=on_completed_button,
    on_text=on_completed_text,
    on_photo=on_completed_photo,
)


async def render_planned(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("By which date is it planned? For example 15.06.2027."),
        [[planned.button(ctx._(BACK_LABEL), BACK)]],
    )


DATE_FORMS = (
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{1,2})-(?P<day>\d{1,2})$"),
    re.compile(r"^(?P<day>\d{1,2})\.(?P<month>\d{1,2})\.(?P<year>\d{4})?\.?$"),
)


def parse_day(text: str, today: date) -> date | None:
    """15.06.2027, 15.6. (the next such day) or 2027-06-15; None unless it is after today."""
    cleaned = "".join(text.split())
    for form in DATE_FORMS:
        match = form.match(cleaned)
        if match is None:
            continue
        parts = match.groupdict()
        try:
            year = int(parts["year"]) if parts.get("year") else today.year
            day = date(year, int(parts["month"]), int(parts["day"]))
            if not parts.get("year") and day <= today:
                day = date(year + 1, day.month, day.day)
        except ValueError:
            return None
        return day if day > today else None
    return None


def local_today(ctx: Ctx) -> date:
    return datetime.now(UTC).astimezone(ctx.config.municipality.zone).date()


@acting
async def on_planned_date(ctx: Ctx, proposal: Proposal, text: str) -> None:
    day = parse_day(text, local_today(ctx))
    if day is None:
        await ask_again(ctx, planned, NO_DATE)
        return
    ctx.data["expected"] = day.isoformat()
    await enter(ctx, explain)


planned = dialog.step("planned", render_planned, on_button=on_back, on_text=on_planned_date)


async def render_passed(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("To whom was it passed? Write the name of the body."),
        [[passed.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_passed(ctx: Ctx, proposal: Proposal, text: str) -> None:
    ctx.data["passed"] = text.strip()[:128]
    await enter(ctx, explain)


passed = dialog.step("passed", render_passed, on_button=on_back, on_text=on_passed)


async def render_explain(ctx: Ctx) -> Reply:
    chosen = ctx.data.get("status", "")
    name = status_name(ctx.tr, chosen)
    buttons = []
    if chosen in states.NEEDS_EXPLANATION:
        text = ctx._(
            "Write the public explanation for “{status}”: how the proposal was taken "
            "into account. The author and followers read it.",
            status=name,
        )
    else:
        text = ctx._(
            "Write a public explanation for “{status}”, or skip it.",
            status=name,
        )
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append(explain.button(ctx._("Skip"), SKIP))
    buttons.append(explain.button(ctx._(BACK_LABEL), BACK))
    return Reply(text, [buttons])


async def _apply_status(ctx: Ctx, proposal: Proposal, explanation: str) -> None:
    chosen = ctx.data.get("status", "")
    expected = ctx.data.get("expected") or ""
    try:
        await review.set_status(
            proposal.id,
            chosen,
            actor(ctx),
            explanation=explanation,
            expected_on=date.fromisoformat(expected) if expected else None,
            passed_to=ctx.data.get("passed", ""),
            ask_fixed_after=ctx.config.proposals.ask_fixed_after,
        )
    except ProposalError as error:
        await _refused(ctx, error)
        if error.reason == "explanation":
            await enter(ctx, explain)
            return
    except ValueError:
        await ask_again(ctx, status)
        return
    else:
        if chosen == states.IMPLEMENTED and (done := ctx.data.get("completed")):
            # The municipality's own photo of public work: shown to residents and in open
            # data at once (a resident's photo waits for a moderator's approval).
            kept = photos.Kept(done["key"], int(done["width"]), int(done["height"]))
            await photos.attach(proposal.id, [kept], "completed", approved=True)
        ctx.answer(
            ctx._(
                "Status set: {status}. The author and followers are told.",
                status=status_name(ctx.tr, chosen),
            )
        )
    await acted(ctx, proposal)


@acting
async def on_explain_button(ctx: Ctx, proposal: Proposal, value: str) -> None:
    if value == BACK:
        await enter(ctx, card)
    elif value == SKIP and ctx.data.get("status") not in states.NEEDS_EXPLANATION:
        await _apply_status(ctx, proposal, "")
    else:
        await ask_again(ctx, explain)


@acting
async def on_explain(ctx: Ctx, proposal: Proposal, text: str) -> None:
    await _apply_status(ctx, proposal, text)


explain = dialog.step("explain", render_explain, on_button=on_explain_button, on_text=on_explain)


# --- move to another department -------------------------------------------------------------
async def render_move(ctx: Ctx) -> Reply:
    proposal = await proposals.get(int(ctx.data.get("id", 0)))
    current = proposal.department if proposal else ""
    choices = [
        move.button(department.named.label(ctx.language, ctx.capabilities.label_length), key)
        for department in ctx.config.proposals.departments
        if (key := department.id) != current
    ]
    return Reply(
        ctx._("To which department?"),
        [*rows(choices), [move.button(ctx._(BACK_LABEL), BACK)]],
        pinned_rows=1,
    )


@acting
async def on_move(ctx: Ctx, proposal: Proposal, value: str) -> None:
    if value == BACK:
        await enter(ctx, card)
        return
    if ctx.config.proposals.department(value) is None:
        await ask_again(ctx, move)
        return
    await review.move_department(proposal.id, value, actor(ctx))
    ctx.answer(
        ctx._(
            "Moved to {department}.",
            department=department_name(ctx.config, value, ctx.language),
        )
    )
    if await may_handle(ctx, await proposals.get(proposal.id) or proposal):
        await acted(ctx, proposal)
    else:
        await show_next(ctx, after=proposal.id)


move = dialog.step("move", render_move, on_button=on_move)


# --- steps that take a text ------------------------------------------------------------------
async def render_answer(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("Write your answer to the author. Only they read it, and they can reply."),
        [[answer.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_answer(ctx: Ctx, proposal: Proposal, text: str) -> None:
    try:
        await review.answer_privately(proposal.id, actor(ctx), text)
    except ProposalError as error:
        await _refused(ctx, error)
    else:
        ctx.answer(ctx._("Sent to the author."))
    await acted(ctx, proposal)


answer = dialog.step("answer", render_answer, on_button=on_back, on_text=on_answer)


async def render_duplicate(ctx: Ctx) -> Reply:
    return Reply(
        ctx._(
            "Which proposal is this the same as? Write its reference, like P-2026-0042. "
            "Its followers and supporters move there."
        ),
        [[duplicate.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_duplicate(ctx: Ctx, proposal: Proposal, text: str) -> None:
    original = await proposals.by_reference(text)
    if original is None:
        ctx.answer(ctx._("I know no proposal {reference}.", reference=text.strip()))
        await enter(ctx, duplicate)
        return
    # Staff may merge into another department's proposal: the original only gains
    # followers and supporters, and nothing of it is changed or shown.
    try:
        count = await review.merge(proposal.id, original.id, actor(ctx))
    except ProposalError as error:
        await _refused(ctx, error)
        await enter(ctx, duplicate)
        return
    ctx.answer(
        ctx.ngettext(
            "Merged into {original}: it has {n} supporter now; the followers are told.",
            "Merged into {original}: it has {n} supporters now; the followers are told.",
            count,
            original=original.reference,
        )
    )
    await acted(ctx, proposal)


duplicate = dialog.step("duplicate", render_duplicate, on_button=on_back, on_text=on_duplicate)


async def render_hide(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("Why is it hidden? The author is told this reason."),
        [[hide.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_hide(ctx: Ctx, proposal: Proposal, text: str) -> None:
    try:
        await review.hide(proposal.id, actor(ctx), text)
    except ProposalError as error:
        await _refused(ctx, error)
    else:
        ctx.answer(ctx._("Hidden from every public view; the author is told why."))
    await acted(ctx, proposal)


hide = dialog.step("hide", render_hide, on_button=on_back, on_text=on_hide)


async def render_expected(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("The new promised date? For example 15.06.2027."),
        [[expected.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_expected(ctx: Ctx, proposal: Proposal, text: str) -> None:
    day = parse_day(text, local_today(ctx))
    if day is None:
        await ask_again(ctx, expected, NO_DATE)
        return
    ctx.data["expected"] = day.isoformat()
    await enter(ctx, reason)


expected = dialog.step("expected", render_expected, on_button=on_back, on_text=on_expected)


async def render_reason(ctx: Ctx) -> Reply:
    return Reply(
        ctx._("Why does the date change? The author and followers read it with the new date."),
        [[reason.button(ctx._(BACK_LABEL), BACK)]],
    )


@acting
async def on_reason(ctx: Ctx, proposal: Proposal, text: str) -> None:
    day = date.fromisoformat(ctx.data.get("expected") or local_today(ctx).isoformat())
    try:
        await review.set_expected(proposal.id, day, text, actor(ctx))
    except ProposalError as error:
        await _refused(ctx, error)
    else:
        ctx.answer(ctx._("The new date is set; the author and followers are told."))
    await acted(ctx, proposal)


reason = dialog.step("reason", render_reason, on_button=on_back, on_text=on_reason)

TEXT_STEPS = {"answer": answer, "duplicate": duplicate, "hide": hide, "expected": expected}
