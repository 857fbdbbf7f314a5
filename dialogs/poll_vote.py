"""A resident's tap on a poll message: ``pl:{poll}:{position}``, ``pl:{poll}:done``,
``pl:{poll}:results`` and ``pl:{poll}:open`` (from the list of polls).

The buttons come with pushes, not from a dialog step, so each tap is checked on the
server here: the payload's form, that the poll exists and has that option, and then
``storage.polls.refusal`` (closed, cancelled, not open yet, another channel, not in the
audience). The answer is the poll message itself, edited in place where the channel can
(``replace``), so one tap shows the resident their answer at once. A tap never touches
the resident's conversation: a question open in a dialog stays where it was.
"""

from __future__ import annotations

import logging
import re

from bot.core.i18n import N_
from bot.core.logs import who
from bot.core.messages import Reply
from dialogs.context import Ctx
from dialogs.poll_words import (
    CHANNEL_NAMES,
    DONE,
    POLL,
    RESULTS,
    poll_reply,
    question,
    results_lines,
)
from storage import polls
from storage.models import Poll, PollOption
from storage.polls import BallotState, PollError

log = logging.getLogger(__name__)

OPEN = "open"  # show the poll message (a button of the resident's list of polls)
# What a poll button's payload must look like; anything else was never sent by us.
PAYLOAD = re.compile(rf"{POLL}:(\d{{1,18}}):(\d|{DONE}|{RESULTS}|{OPEN})")

EXPIRED = N_("That button has expired.")
CLOSED = N_("This poll is closed.")
CANCELLED = N_("This poll was cancelled.")
NOT_OPEN = N_("This poll has not opened yet. It opens on {time}.")
NOT_IN_AUDIENCE = N_(
    "Sorry, this poll is meant for another group of residents (a neighbourhood or a topic), "
    "so I cannot take your answer to it."
)
OTHER_CHANNEL = N_("Answers to this poll are taken only on: {channels}.")
TICK_FIRST = N_("Tick at least one option, then press “Done”.")
RESULTS_AT_CLOSE = N_("The results will be shown when the poll closes, on {time}.")
RESULTS_AFTER_ANSWER = N_("The results are shown once you have answered.")


async def message(
    ctx: Ctx, poll: Poll, options: list[PollOption], state: BallotState, *, results: bool
) -> Reply:
    """The poll message for this resident, on this channel; with the results when they
    may see them (``results``)."""
    tally = await polls.results_now(poll) if results else None
    return poll_reply(
        ctx.tr,
        poll,
        options,
        state,
        zone=ctx.config.municipality.zone,
        label_length=ctx.capabilities.label_length,
        tally=tally,
    )


def sees_results(poll: Poll, state: BallotState) -> bool:
    """Closed: everyone; open: those who answered, when the poll shows them after answering."""
    return poll.state == "closed" or (poll.results == "after_answer" and state.answered)


def _expired(ctx: Ctx, why: str) -> None:
    log.warning(
        "poll button %r refused (%s) from %s",
        ctx.incoming.payload,
        why,
        who(ctx.incoming.channel, ctx.incoming.user_id),
    )
    ctx.answer(ctx._(EXPIRED))


async def on_tap(ctx: Ctx) -> None:
    """Handle one press of a poll button (see the module's docstring)."""
    match = PAYLOAD.fullmatch(ctx.incoming.payload)
    if match is None:
        _expired(ctx, "malformed")
        return
    poll = await polls.get(int(match[1]))
    if poll is None:
        _expired(ctx, "no such poll")
        return
    action = match[2]
    options = await polls.options_of(poll.id)
    if action.isdigit() and int(action) >= len(options):
        _expired(ctx, "no such option")
        return
    if action in (RESULTS, OPEN):
        await _show(ctx, poll, options, results_asked=action == RESULTS)
        return
    if await _refused(ctx, poll, options):
        return
    try:
        if action == DONE:
            if not poll.multiple:
                _expired(ctx, "done on a single-choice poll")
                return
            state = await polls.done(poll, ctx.resident, ctx.incoming.channel)
        else:
            state = await polls.tap(poll, ctx.resident, ctx.incoming.channel, int(action))
    except PollError as error:
        if error.reason == "empty":
            ctx.answer(ctx._(TICK_FIRST))
            state = await polls.ballot_of(poll.id, ctx.resident.id)
            ctx.answer(await message(ctx, poll, options, state, results=False))
        elif error.reason == "closed":  # it closed between the check and the tap
            await _closed(ctx, await polls.get(poll.id) or poll, options)
        else:
            _expired(ctx, error.reason)
        return
    # A multiple choice's ticks are not an answer until "Done": no results on a tick.
    reply = await message(ctx, poll, options, state, results=sees_results(poll, state))
    reply.replace = True
    ctx.answer(reply)


async def _refused(ctx: Ctx, poll: Poll, options: list[PollOption]) -> bool:
    """Answer why this resident may not answer now; False when they may."""
    reason = await polls.refusal(poll, ctx.resident, ctx.incoming.channel)
    if reason is None:
        return False
    zone = ctx.config.municipality.zone
    if reason == "closed":
        await _closed(ctx, poll, options)
    elif reason == "cancelled":
        ctx.answer(ctx._(CANCELLED))
    elif reason == "not_open":
        ctx.answer(ctx._(NOT_OPEN, time=ctx.tr.moment(poll.opens_at, zone)))
    elif reason == "channel":
        names = ", ".join(ctx._(CHANNEL_NAMES.get(c, c)) for c in poll.channels)
        ctx.answer(ctx._(OTHER_CHANNEL, channels=names))
    else:  # "audience"
        log.info("poll %s: a tap from %s outside its audience", poll.id, ctx.incoming.channel)
        ctx.answer(ctx._(NOT_IN_AUDIENCE))
    return True


async def _closed(ctx: Ctx, poll: Poll, options: list[PollOption]) -> None:
    """A tap on a closed poll: the poll message says so and shows the results, in place of
    the one pressed on (its buttons go where the channel can edit)."""
    if poll.state != "closed":  # its time has passed; the clock has not closed it yet
        lines = [ctx._(CLOSED), *await _results_text(ctx, poll, options)]
        ctx.answer(Reply("\n\n".join(lines)))
        return
    state = await polls.ballot_of(poll.id, ctx.resident.id)
    reply = await message(ctx, poll, options, state, results=True)
    reply.replace = True
    ctx.answer(reply)


async def _results_text(ctx: Ctx, poll: Poll, options: list[PollOption]) -> list[str]:
    tally = await polls.tally(poll)
    return [question(poll, ctx.language), *results_lines(ctx.tr, poll, options, tally)]


async def _show(ctx: Ctx, poll: Poll, options: list[PollOption], *, results_asked: bool) -> None:
    """The poll message sent anew (from the list), or with the results when asked for them
    and the resident may see them."""
    if poll.state == "closed":
        state = await polls.ballot_of(poll.id, ctx.resident.id)
        ctx.answer(await message(ctx, poll, options, state, results=True))
        return
    if await _refused(ctx, poll, options):
        return
    state = await polls.ballot_of(poll.id, ctx.resident.id)
    visible = sees_results(poll, state)
    if results_asked and not visible:
        zone = ctx.config.municipality.zone
        if poll.results == "at_close":
            ctx.answer(ctx._(RESULTS_AT_CLOSE, time=ctx.tr.moment(poll.closes_at, zone)))
        else:
            ctx.answer(ctx._(RESULTS_AFTER_ANSWER))
    ctx.answer(await message(ctx, poll, options, state, results=visible))
