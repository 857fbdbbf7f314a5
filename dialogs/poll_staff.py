"""The staff's list of polls: state, opening and closing, answers so far; per poll its
results (with the breakdowns and the chart), close it now, move its closing, or cancel
one not yet open.

The list's buttons carry the poll's id and are stateless, as the announcements' are:
storage decides under a compare-and-set, so an old button or two staff at once get a
plain answer ("already closed"), never a double effect. Only moving the closing asks a
typed time, so it is a small dialog ("ps") that keeps which poll it is about.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from bot.core.i18n import N_
from bot.core.messages import Button, Reply
from dialogs import poll_words
from dialogs.announce import actor, audience_label, snippet
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, paged
from dialogs.moments import UnreadableTime, parse_local
from dialogs.pickers import BACK
from storage import polls
from storage.models import Poll
from storage.polls import COMPOSERS, PollError

log = logging.getLogger(__name__)

LIST = "pst:list"
RESULTS = "pst:res"
CLOSE = "pst:close"
CANCEL = "pst:cancel"
MOVE = "pst:move"
ANSWER = "pst:answer"  # the staff member's own list as a resident

FAR_AHEAD = timedelta(days=366)
NO_SUCH_POLL = N_("There is no such poll.")

dialog = Dialog("ps", roles=frozenset(COMPOSERS))


def _state_name(ctx: Ctx, state: str) -> str:
    names = {
        "scheduled": ctx._("scheduled"),
        "open": ctx._("open"),
        "closed": ctx._("closed"),
        "cancelled": ctx._("cancelled"),
    }
    return names.get(state, state)


async def _line(ctx: Ctx, poll: Poll) -> str:
    zone = ctx.config.municipality.zone
    count = await polls.answers(poll.id)
    parts = [
        f"#{poll.id}",
        _state_name(ctx, poll.state),
        ctx._("opens {moment}", moment=ctx.tr.moment(poll.opens_at, zone)),
        ctx._("closes {moment}", moment=ctx.tr.moment(poll.closes_at, zone)),
        ctx.ngettext("{count} answer", "{count} answers", count, count=ctx.tr.number(count)),
        audience_label(ctx, poll.audience),
    ]
    return " · ".join(parts) + "\n" + snippet(poll_words.question(poll, "lv"))


async def show(ctx: Ctx, *, replace: bool = False, page: int = 0) -> None:
    lines = [ctx._("Polls")]
    buttons: list[list[Button]] = []
    for poll in await polls.listing(limit=30):
        lines += ["", await _line(ctx, poll)]
        # TRANSLATORS: a button label, at most 20 characters with the number.
        row = [Button(ctx._("Results #{id}", id=poll.id), f"{RESULTS}:{poll.id}")]
        if poll.state == "open":
            # TRANSLATORS: a button label, at most 20 characters with the number.
            row.append(Button(ctx._("Close #{id}", id=poll.id), f"{CLOSE}:{poll.id}"))
        if poll.state == "scheduled":
            # TRANSLATORS: a button label, at most 20 characters with the number.
            row.append(Button(ctx._("Cancel #{id}", id=poll.id), f"{CANCEL}:{poll.id}"))
        if poll.state in ("open", "scheduled"):
            # TRANSLATORS: a button label, at most 20 characters with the number: moves
            # the poll's closing time.
            row.append(Button(ctx._("Closing #{id}", id=poll.id), f"{MOVE}:{poll.id}"))
        buttons.append(row)
    if len(lines) == 1:
        lines += ["", ctx._("There are no polls yet. Use /newpoll to make one.")]
    # TRANSLATORS: a button label, at most 20 characters: the polls open for oneself.
    answer = ctx._("Answer polls")
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([Button(answer, ANSWER), Button(ctx._("Refresh"), LIST)])
    reply = Reply("\n".join(lines), buttons, replace=replace, pinned_rows=1)
    ctx.answer(paged(ctx, reply, page, lambda n: f"{LIST}:{n}"))


def page_of(ctx: Ctx) -> int:
    asked = ctx.incoming.payload.split(":")[2:3]
    return int(asked[0]) if asked and asked[0].isdigit() else 0


def _id(ctx: Ctx) -> tuple[int | None, str]:
    """The poll id in a list button's payload and what follows it."""
    parts = ctx.incoming.payload.split(":")
    if len(parts) < 3 or not parts[2].isdigit() or len(parts[2]) > 9:
        return None, ""
    return int(parts[2]), ":".join(parts[3:])


async def _poll(ctx: Ctx) -> tuple[Poll | None, str]:
    poll_id, rest = _id(ctx)
    poll = await polls.get(poll_id) if poll_id is not None else None
    if poll is None:
        ctx.answer(ctx._(NO_SUCH_POLL))
    return poll, rest


async def results(ctx: Ctx) -> None:
    """The results so far with the breakdowns, and the chart."""
    poll, _ = await _poll(ctx)
    if poll is None:
        return
    options = await polls.options_of(poll.id)
    tally = await polls.tally(poll)
    lines = [
        f"#{poll.id} · {_state_name(ctx, poll.state)}",
        poll_words.question(poll, ctx.language),
        "",
        *poll_words.results_lines(ctx.tr, poll, options, tally),
        "",
        *poll_words.breakdown_lines(
            ctx.tr, poll, options, tally, ctx.config.municipality.neighbourhoods
        ),
    ]
    image = await poll_words.chart_image(ctx.tr, poll, options, tally)
    ctx.answer(Reply("\n".join(lines), image=image))


def _why(ctx: Ctx, error: PollError) -> str:
    reasons = {
        "missing": ctx._(NO_SUCH_POLL),
        "not_open": ctx._("That poll has not opened yet; cancel it instead."),
        "open": ctx._("That poll is open already; close it instead."),
        "closed": ctx._("That poll is closed already."),
        "cancelled": ctx._("That poll was cancelled."),
        "time": ctx._("The closing time must be still to come and after the poll opens."),
    }
    return reasons.get(error.reason, ctx._("That could not be done."))


async def _ask_to_confirm(ctx: Ctx, poll: Poll, question: str, yes: Button, keep: str) -> None:
    """The question in place of the list, with the poll's line; "keep" goes back to it."""
    buttons = [[yes, Button(keep, LIST)]]
    ctx.answer(Reply(f"{question}\n\n{await _line(ctx, poll)}", buttons, replace=True))


async def ask_close(ctx: Ctx) -> None:
    poll, confirmed = await _poll(ctx)
    if poll is None:
        return
    if confirmed != "yes":
        question = ctx._("Close this poll now? Residents can no longer answer it.")
        # TRANSLATORS: a button label, at most 20 characters.
        yes = ctx._("Yes, close it")
        # TRANSLATORS: a button label, at most 20 characters.
        keep = ctx._("No, keep it open")
        await _ask_to_confirm(ctx, poll, question, Button(yes, f"{CLOSE}:{poll.id}:yes"), keep)
        return
    try:
        closed = await polls.close(poll.id, actor(ctx))
    except PollError as error:
        ctx.answer(_why(ctx, error))
        return
    if closed.tell_voters:
        text = ctx._(
            "Poll #{id} is closed. Its staff and its voters get the results.", id=closed.id
        )
    else:
        text = ctx._("Poll #{id} is closed. Its staff get the results.", id=closed.id)
    ctx.answer(Reply(text, replace=True))


async def ask_cancel(ctx: Ctx) -> None:
    poll, confirmed = await _poll(ctx)
    if poll is None:
        return
    if confirmed != "yes":
        question = ctx._("Cancel this poll? It will not open.")
        # TRANSLATORS: a button label, at most 20 characters.
        yes = ctx._("Yes, cancel it")
        # TRANSLATORS: a button label, at most 20 characters.
        keep = ctx._("No, keep it")
        await _ask_to_confirm(ctx, poll, question, Button(yes, f"{CANCEL}:{poll.id}:yes"), keep)
        return
    try:
        cancelled = await polls.cancel(poll.id, actor(ctx))
    except PollError as error:
        ctx.answer(_why(ctx, error))
        return
    ctx.answer(Reply(ctx._("Poll #{id} is cancelled.", id=cancelled.id), replace=True))


async def ask_move(ctx: Ctx) -> None:
    """Ask the new closing time of a poll (a step, as it is typed)."""
    poll, _ = await _poll(ctx)
    if poll is None:
        return
    if poll.state not in ("open", "scheduled"):
        ctx.answer(_why(ctx, PollError(poll.state, poll)))
        return
    await begin(ctx, until, {"poll": poll.id})


async def render_until(ctx: Ctx) -> Reply:
    zone = ctx.config.municipality.zone
    poll = await polls.get(int(ctx.data.get("poll", 0)))
    now = ctx.tr.moment(datetime.now(UTC), zone)
    closes = ctx.tr.moment(poll.closes_at, zone) if poll else ""
    prompt = ctx._(
        "Poll #{id} closes at {closes}. When should it close instead? Write a date and "
        "time such as 1.12.2026 10:00. Now it is {now}.",
        id=ctx.data.get("poll", 0),
        closes=closes,
        now=now,
    )
    # TRANSLATORS: a button label, at most 20 characters.
    return Reply(prompt, [[until.button(ctx._("Back"), BACK)]])


async def on_until_button(ctx: Ctx, value: str) -> None:
    if value != BACK:
        await ask_again(ctx, until)
        return
    ctx.clear_state()
    await show(ctx)


async def on_until_text(ctx: Ctx, value: str) -> None:
    now = datetime.now(UTC)
    try:
        moment = parse_local(value, now, ctx.config.municipality.zone)
    except UnreadableTime:
        await ask_again(
            ctx, until, N_("I could not read that time. Please write it like 1.12.2026 10:00.")
        )
        return
    if moment - now > FAR_AHEAD:
        await ask_again(
            ctx, until, N_("That is more than a year ahead. Please give an earlier time.")
        )
        return
    try:
        poll = await polls.extend(int(ctx.data.get("poll", 0)), moment, actor(ctx))
    except PollError as error:
        if error.reason == "time":
            await ask_again(
                ctx, until, N_("The closing time must be still to come and after the poll opens.")
            )
            return
        ctx.clear_state()
        ctx.answer(_why(ctx, error))
        return
    ctx.clear_state()
    ctx.answer(
        ctx._(
            "Poll #{id} now closes at {moment}.",
            id=poll.id,
            moment=ctx.tr.moment(poll.closes_at, ctx.config.municipality.zone),
        )
    )


until = dialog.step("until", render_until, on_button=on_until_button, on_text=on_until_text)
