"""The buttons of the feedback loop's pushes: "Reply" (``pr:r:{id}``), the answer to
"Is it fixed?" (``pr:fx:{id}:{round}:{answer}``) and the rating after it
(``pr:rt:{id}:{round}:{n}``).

They come from pushes, not from a dialog step, so each is checked on the server here:
the proposal exists and the resident is its author or a follower (``storage.feedback``).
A malformed or forged payload does nothing, is answered plainly and logged.
"""

from __future__ import annotations

import logging
import re

from bot.core.i18n import N_
from bot.core.logs import who
from bot.core.messages import Reply
from dialogs import menu, proposal_reply
from dialogs.context import Ctx
from dialogs.engine import show_current
from dialogs.proposal_pushes import FIXED, RATE, REPLY, rating_buttons
from dialogs.registry import REGISTRY
from handlers.router import Router
from storage import feedback

log = logging.getLogger(__name__)

router = Router()

EXPIRED = N_("That button has expired.")
QUESTION_EXPIRED = N_("This question has expired: the proposal has changed since it was asked.")
ALREADY_ANSWERED = N_("You have already answered this question. Thank you!")
GLAD = N_("Thank you! We are glad it is fixed.")
REOPENED = N_(
    "Thank you for telling us. {reference} has been reopened, and the department has been "
    "told it is not done yet."
)
ALREADY_REOPENED = N_(
    "Thank you for telling us. {reference} has already been reopened: the department is "
    "working on it again."
)
RATE_QUESTION = N_("How would you rate the way {reference} was handled? 1 is poor, 5 is very good.")
RATED = N_("Thank you for your rating.")


# What each button's payload must look like; anything else was never sent by us.
REPLY_PAYLOAD = re.compile(rf"{REPLY}:(\d{{1,18}})")
FIXED_PAYLOAD = re.compile(rf"{FIXED}:(\d{{1,18}}):(\d{{1,9}}):(yes|partly|no)")
RATE_PAYLOAD = re.compile(rf"{RATE}:(\d{{1,18}}):(\d{{1,9}}):([1-5])")


def _parsed(ctx: Ctx, pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """The payload's fields, or None (answered and logged) when it is malformed."""
    match = pattern.fullmatch(ctx.incoming.payload)
    if match is None:
        log.warning(
            "malformed proposal button %r from %s",
            ctx.incoming.payload,
            who(ctx.incoming.channel, ctx.incoming.user_id),
        )
        ctx.answer(ctx._(EXPIRED))
        return None
    return match.groups()


async def _go_on(ctx: Ctx) -> None:
    """Back to the question that was open, or the menu."""
    if not await show_current(ctx, REGISTRY):
        await menu.show(ctx)


@router.button(REPLY)
async def reply(ctx: Ctx) -> None:
    parts = _parsed(ctx, REPLY_PAYLOAD)
    if parts is None:
        await _go_on(ctx)
        return
    await proposal_reply.start(ctx, int(parts[0]))


@router.button(FIXED)
async def is_it_fixed(ctx: Ctx) -> None:
    parts = _parsed(ctx, FIXED_PAYLOAD)
    if parts is None:
        await _go_on(ctx)
        return
    proposal_id, round_, answer = int(parts[0]), int(parts[1]), parts[2]
    try:
        proposal = await feedback.may_write(proposal_id, ctx.resident)
        staff = proposal_reply.staff_accounts(ctx, proposal)
        answered = await feedback.answer_fixed(proposal_id, ctx.resident, round_, answer, staff)
    except feedback.FeedbackError as error:
        if error.reason == "expired":
            ctx.answer(ctx._(QUESTION_EXPIRED))
        elif error.reason == "answered":
            ctx.answer(ctx._(ALREADY_ANSWERED))
        else:
            proposal_reply.refuse(ctx, error.reason, f"an answer on proposal {proposal_id}")
        await _go_on(ctx)
        return
    reference = answered.proposal.reference
    if answer not in feedback.REOPENING:
        ctx.answer(ctx._(GLAD))
    elif answered.reopened:
        ctx.answer(ctx._(REOPENED, reference=reference))
    else:
        ctx.answer(ctx._(ALREADY_REOPENED, reference=reference))
    ctx.answer(
        Reply(ctx._(RATE_QUESTION, reference=reference), rating_buttons(proposal_id, round_))
    )
    if answer in feedback.REOPENING:
        await proposal_reply.start(ctx, proposal_id, after_fixed=True)
    else:
        await _go_on(ctx)


@router.button(RATE)
async def rate(ctx: Ctx) -> None:
    parts = _parsed(ctx, RATE_PAYLOAD)
    if parts is None:
        await _go_on(ctx)
        return
    proposal_id, round_, rating = (int(part) for part in parts)
    try:
        await feedback.may_write(proposal_id, ctx.resident)
        await feedback.rate(proposal_id, ctx.resident, round_, rating)
    except feedback.FeedbackError as error:
        if error.reason == "answered":
            ctx.answer(ctx._(ALREADY_ANSWERED))
        elif error.reason == "expired":
            ctx.answer(ctx._(QUESTION_EXPIRED))
        else:
            proposal_reply.refuse(ctx, error.reason, f"a rating on proposal {proposal_id}")
        await _go_on(ctx)
        return
    ctx.answer(ctx._(RATED))
    await _go_on(ctx)
