"""Writing back to the department about a proposal: after a push's "Reply", or after
answering that it is not (or only partly) fixed. What the resident writes is kept as a
comment on the proposal and pushed to the department's staff, never into a void.

Only the author or a follower may write: checked when the dialog starts and again when
the text is saved (``storage.feedback``), so a forged start or a follow dropped meanwhile
stops there, plainly.
"""

from __future__ import annotations

import logging

from bot.core.i18n import N_
from bot.core.logs import who
from bot.core.messages import Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, show
from dialogs.proposal_words import category_name, department_name, snippet
from storage import feedback, proposals
from storage.models import Proposal

log = logging.getLogger(__name__)

dialog = Dialog("prep")

PROPOSAL = "proposal"  # the proposal's row id, in the dialog's data
AFTER_FIXED = "after_fixed"  # True when it follows a "not fixed" answer

WRITE = N_(
    "Write your reply to the department about {reference} ({category}: {text}) in one "
    "message. It goes to the staff who handle it."
)
WRITE_AFTER_FIXED = N_(
    "If you like, write in one message what is still not right with {reference}: it goes "
    "to the staff who handle it."
)
EMPTY = N_("Please write a few words: an empty message cannot be sent.")
TOO_LONG = N_("That is too long: at most {n} characters, please. Try to say it shorter.")
SENT = N_("Thank you: your reply about {reference} has reached {department}.")
NOT_NOW = N_("All right, nothing was sent.")
NOT_YOURS = N_("You can only write about a proposal you submitted or follow.")
GONE = N_("That proposal is no longer available.")

REFUSED = {"not_following": NOT_YOURS, "gone": GONE}


def staff_accounts(ctx: Ctx, proposal: Proposal) -> tuple[tuple[str, str], ...]:
    """The accounts of the department that handles the proposal now."""
    department = ctx.config.proposals.department(proposal.department)
    return department.staff if department else ()


def refuse(ctx: Ctx, reason: str, what: str) -> None:
    """Say plainly why not, and log it: a resident does not press what they were not sent."""
    log.warning(
        "%s refused to %s: %s", what, who(ctx.incoming.channel, ctx.incoming.user_id), reason
    )
    ctx.answer(ctx._(REFUSED.get(reason, GONE)))


async def start(ctx: Ctx, proposal_id: int, *, after_fixed: bool = False) -> None:
    """Ask for the reply, if this resident may write about the proposal."""
    try:
        await feedback.may_write(proposal_id, ctx.resident)
    except feedback.FeedbackError as error:
        refuse(ctx, error.reason, f"a reply on proposal {proposal_id}")
        await menu.show(ctx)
        return
    await begin(ctx, write, {PROPOSAL: proposal_id, AFTER_FIXED: after_fixed})


async def render_write(ctx: Ctx) -> Reply:
    proposal = await proposals.get(int(ctx.data[PROPOSAL]))
    if proposal is None:
        text = ctx._(GONE)
    elif ctx.data.get(AFTER_FIXED):
        text = ctx._(WRITE_AFTER_FIXED, reference=proposal.reference)
    else:
        text = ctx._(
            WRITE,
            reference=proposal.reference,
            category=category_name(ctx.config, proposal.category, ctx.language),
            text=snippet(proposal.text),
        )
    # TRANSLATORS: a button label, at most 20 characters: write nothing after all.
    return Reply(text, [[write.button(ctx._("Not now"), "_cancel")]])


async def on_write_text(ctx: Ctx, text: str) -> None:
    proposal_id = int(ctx.data[PROPOSAL])
    proposal = await proposals.get(proposal_id)
    try:
        feedback.checked_text(text)
        if proposal is None:
            raise feedback.FeedbackError("gone")
        await feedback.comment(proposal_id, ctx.resident, text, staff_accounts(ctx, proposal))
    except feedback.FeedbackError as error:
        if error.reason == "empty":
            await ask_again(ctx, write, EMPTY)
        elif error.reason == "too_long":
            ctx.answer(ctx._(TOO_LONG, n=feedback.COMMENT_MAX))
            await show(ctx, write)
        else:
            refuse(ctx, error.reason, f"a reply on proposal {proposal_id}")
            await menu.show(ctx)
        return
    assert proposal is not None
    department = department_name(ctx.config, proposal.department, ctx.language)
    ctx.answer(ctx._(SENT, reference=proposal.reference, department=department))
    await menu.show(ctx)


async def on_write_button(ctx: Ctx, value: str) -> None:
    ctx.answer(ctx._(NOT_NOW))
    await menu.show(ctx)


write = dialog.step("write", render_write, on_button=on_write_button, on_text=on_write_text)
