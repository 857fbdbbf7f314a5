"""The resident's "Polls": the open polls they may answer, each a line with a button that
sends the poll message, and their answers to polls that have closed.

No dialog state: the list is read anew on every press, so a button of an old list is as
good as a new one (the poll button it sends is checked when pressed). Where the open
polls do not fit one message's buttons, the buttons are paged (``pl:list:{page}``).
"""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.messages import Button, Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import paged
from dialogs.poll_vote import OPEN
from dialogs.poll_words import POLL, label, payload, question
from storage import polls

LIST = f"{POLL}:list"  # pl:list:{page}

NONE_OPEN = N_("There are no open polls for you right now.")
OPEN_HEAD = N_("Open polls — press a number to answer:")
ANSWERED = N_("answered")
NOT_ANSWERED = N_("not answered yet")
OPEN_LINE = N_("{number}. {question} (until {time}; {answer})")
PAST_HEAD = N_("Your answers to closed polls:")
PAST_LINE = N_("{question} — you answered: {answer}")


async def show(ctx: Ctx, page: int = 0) -> None:
    """Answer with the resident's list of polls (page ``page`` of its buttons)."""
    mine = await polls.polls_for(ctx.resident, ctx.incoming.channel)
    zone = ctx.config.municipality.zone
    lines: list[str] = []
    buttons: list[list[Button]] = []
    if mine.open:
        lines.append(ctx._(OPEN_HEAD))
        row: list[Button] = []
        for number, (poll, state) in enumerate(mine.open, start=1):
            answer = ctx._(ANSWERED if state.answered else NOT_ANSWERED)
            lines.append(
                ctx._(
                    OPEN_LINE,
                    number=number,
                    question=question(poll, ctx.language),
                    time=ctx.tr.moment(poll.closes_at, zone),
                    answer=answer,
                )
            )
            row.append(Button(str(number), payload(poll.id, OPEN)))
            if len(row) == 4:
                buttons.append(row)
                row = []
        if row:
            buttons.append(row)
    else:
        lines.append(ctx._(NONE_OPEN))
    if mine.answered:
        lines.append("")
        lines.append(ctx._(PAST_HEAD))
        for poll, state in mine.answered:
            options = await polls.options_of(poll.id)
            chosen = [label(o, ctx.language) for o in options if state.chosen(o.position)]
            lines.append(
                ctx._(PAST_LINE, question=question(poll, ctx.language), answer=", ".join(chosen))
            )
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([Button(ctx._("Main menu"), menu.MENU)])
    reply = Reply("\n".join(lines), buttons, pinned_rows=1)
    ctx.answer(paged(ctx, reply, page, lambda n: f"{LIST}:{n}"))


def page_of(payload: str) -> int:
    """The page a ``pl:list[:n]`` payload asks for; 0 for anything unexpected."""
    digits = payload.removeprefix(LIST).removeprefix(":")
    return int(digits) if digits.isdigit() and len(digits) < 4 else 0
