"""A resident's proposals and the ones they follow; a neighbourhood's public proposals.

Lists and one proposal's view, answered to router buttons (``pr:…``) that carry the
proposal's id or the page: nothing is kept between two presses, so an old message's
button works as long as what it names does. Every press is checked again on the
server: a proposal that is hidden or withdrawn is shown to nobody but its author,
and only the author may withdraw it. An author's identity is never shown; supporters
are counted, not listed.
"""

from __future__ import annotations

import logging

from bot.core.i18n import N_
from bot.core.logs import who
from bot.core.messages import Button, Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, paged
from dialogs.pickers import button_name
from dialogs.proposal_words import (
    category_name,
    neighbourhood_name,
    snippet,
    status_name,
    summary_line,
)
from storage import proposals, residents
from storage.models import Proposal
from storage.proposal_states import OPEN

log = logging.getLogger(__name__)

PAGE = 5  # proposals per page of a list

# Router payloads (ids are proposal row ids; see the shared interfaces).
VIEW = "pr:v"
FOLLOW = "pr:f"
SUPPORT = "pr:s"
UNFOLLOW = "pr:u"
WITHDRAW = "pr:w"
MINE = "pr:m"  # pr:m:{offset}
BROWSE = "pr:b"  # pr:b:{neighbourhood or -}:{offset}
HOODS = "pr:n"  # choose the neighbourhood to browse
FIND = "pr:q"  # find a proposal by its reference

# One question: the reference of a proposal to show.
find_dialog = Dialog("pfind")

NOT_FOUND = N_("That proposal cannot be found.")
UNKNOWN_REFERENCE = N_(
    "There is no proposal {reference}. A reference looks like P-2026-0042; "
    '"My proposals" in the menu lists yours.'
)


def _id(ctx: Ctx, position: int = 2) -> int | None:
    parts = ctx.incoming.payload.split(":")
    value = parts[position] if len(parts) > position else ""
    # ASCII digits, few enough for the database: "²" passes isdigit() but not int(), and
    # twenty nines overflow the id's column.
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None


async def _resident_may_see(ctx: Ctx, proposal: Proposal) -> bool:
    """Anyone sees a public proposal; its author and followers see it whatever became of it."""
    if proposals.is_public(proposal):
        return True
    return proposal.author_id == ctx.resident.id or await proposals.is_following(  # type: ignore[attr-defined]
        proposal, ctx.resident
    )


async def proposal_from_button(ctx: Ctx) -> Proposal | None:
    """The proposal a button names, if this resident may see it; else said and logged."""
    pid = _id(ctx)
    proposal = await proposals.get(pid) if pid is not None else None
    if proposal is None or not await _resident_may_see(ctx, proposal):
        log.warning(
            "proposal button %r refused to %s",
            ctx.incoming.payload,
            who(ctx.incoming.channel, ctx.incoming.user_id),
        )
        ctx.answer(ctx._(NOT_FOUND))
        await menu.show(ctx)
        return None
    return proposal


def _page_buttons(ctx: Ctx, prefix: str, offset: int, total: int) -> list[Button]:
    nav = []
    if offset > 0:
        # TRANSLATORS: a button label, at most 20 characters: the previous page of a list.
        nav.append(Button(ctx._("‹ Previous"), f"{prefix}:{max(0, offset - PAGE)}"))
    if offset + PAGE < total:
        # TRANSLATORS: a button label, at most 20 characters: the next page of a list.
        nav.append(Button(ctx._("More…"), f"{prefix}:{offset + PAGE}"))
    return nav


def _menu_button(ctx: Ctx) -> Button:
    # TRANSLATORS: a button label, at most 20 characters.
    return Button(ctx._("Main menu"), menu.MENU)


def _details(ctx: Ctx, proposal: Proposal) -> list[str]:
    """The latest explanation and the promised date, where there are."""
    lines = []
    if proposal.explanation:
        lines.append(ctx._("Explanation: {text}", text=proposal.explanation))
    if proposal.expected_on is not None and proposal.status in OPEN:
        lines.append(ctx._("Promised by: {day}", day=ctx.tr.day(proposal.expected_on)))
    return lines


# --- My proposals ------------------------------------------------------------------------
async def show_mine(ctx: Ctx, offset: int = 0) -> None:
    rows = await proposals.mine(ctx.resident, limit=500)
    if not rows:
        ctx.answer(
            Reply(
                ctx._(
                    'You have no proposals yet and follow none. "Idea or problem" in the '
                    "menu submits one."
                ),
                [[_menu_button(ctx)]],
            )
        )
        return
    offset = min(max(offset, 0), (len(rows) - 1) // PAGE * PAGE)
    page = rows[offset : offset + PAGE]
    lines = [ctx._("Your proposals and those you follow:"), ""]
    buttons = []
    for number, (row, own) in enumerate(page, offset + 1):
        line = f"{number}. {summary_line(ctx.tr, ctx.config, row)}"
        if not own:
            line += " " + ctx._("(followed)")
        lines.append(line)
        lines += [f"   {detail}" for detail in _details(ctx, row)]
        buttons.append(Button(row.reference, f"{VIEW}:{row.id}"))
    rows_of_buttons = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = _page_buttons(ctx, MINE, offset, len(rows))
    if nav:
        rows_of_buttons.append(nav)
    rows_of_buttons.append([_menu_button(ctx)])
    ctx.answer(Reply("\n".join(lines), rows_of_buttons))


# --- one proposal ------------------------------------------------------------------------------
async def show_one(ctx: Ctx, proposal: Proposal) -> None:
    resident = ctx.resident
    own = proposal.author_id == resident.id  # type: ignore[attr-defined]
    following = await proposals.is_following(proposal, resident)
    supported = await proposals.has_supported(proposal, resident)
    lines = [
        ctx._(
            "{reference} · {category}",
            reference=proposal.reference,
            category=category_name(ctx.config, proposal.category, ctx.language),
        ),
        ctx._("Status: {status}", status=status_name(ctx.tr, proposal.status)),
    ]
    if proposal.neighbourhood:
        name = neighbourhood_name(ctx.config, proposal.neighbourhood, ctx.language)
        lines.append(ctx._("Neighbourhood: {name}", name=name))
    if proposal.address:
        lines.append(ctx._("Place: {address}", address=proposal.address))
    lines += ["", proposal.text, ""]
    lines += _details(ctx, proposal)
    lines.append(
        ctx.ngettext(
            "Supported by {n} resident.",
            "Supported by {n} residents.",
            proposal.supporters,
        )
    )
    if own:
        lines.append(ctx._("This is your proposal."))
    buttons: list[list[Button]] = []
    actions = []
    if proposals.is_public(proposal) and proposal.status in OPEN:
        if not supported:
            # TRANSLATORS: a button label, at most 20 characters: adds one's support (+1).
            actions.append(Button(ctx._("Support +1"), f"{SUPPORT}:{proposal.id}"))
        if not following:
            # TRANSLATORS: a button label, at most 20 characters.
            actions.append(Button(ctx._("Follow"), f"{FOLLOW}:{proposal.id}"))
    if following and not own:
        # TRANSLATORS: a button label, at most 20 characters.
        actions.append(Button(ctx._("Unfollow"), f"{UNFOLLOW}:{proposal.id}"))
    if own and proposal.reviewed_at is None and proposal.status == "received":
        # TRANSLATORS: a button label, at most 20 characters.
        actions.append(Button(ctx._("Withdraw"), f"{WITHDRAW}:{proposal.id}"))
    if actions:
        buttons.append(actions)
    back = f"{MINE}:0" if following else f"{BROWSE}:{proposal.neighbourhood or '-'}:0"
    # TRANSLATORS: a button label, at most 20 characters: back to the list.
    buttons.append([Button(ctx._("Back to the list"), back), _menu_button(ctx)])
    ctx.answer(Reply("\n".join(lines), buttons))


async def show_reference(ctx: Ctx, typed: str) -> None:
    """A reference typed after /proposals or asked for: that proposal, or plainly that
    there is none."""
    ctx.clear_state()
    proposal = await proposals.by_reference(typed)
    if proposal is None or not await _resident_may_see(ctx, proposal):
        reference = proposals.normalise_reference(typed) or snippet(typed, 20)
        ctx.answer(ctx._(UNKNOWN_REFERENCE, reference=reference))
        await menu.show(ctx)
        return
    await show_one(ctx, proposal)


async def follow(ctx: Ctx, proposal: Proposal) -> None:
    if not proposals.is_public(proposal) or proposal.status not in OPEN:
        ctx.answer(ctx._("That proposal is closed; it can no longer be followed."))
    else:
        await proposals.follow_and_support(proposal, ctx.resident)
        ctx.answer(
            ctx._(
                "You follow {reference} now and your support is counted. You will hear here "
                "of every change of its status.",
                reference=proposal.reference,
            )
        )
    await show_one(ctx, await proposals.get(proposal.id) or proposal)


async def support(ctx: Ctx, proposal: Proposal) -> None:
    if not proposals.is_public(proposal) or proposal.status not in OPEN:
        ctx.answer(ctx._("That proposal is closed; it can no longer be supported."))
    elif await proposals.support(proposal, ctx.resident):
        ctx.answer(ctx._("Thank you: your support is counted."))
    else:
        ctx.answer(ctx._("You have supported it already; each resident counts once."))
    await show_one(ctx, await proposals.get(proposal.id) or proposal)


async def unfollow(ctx: Ctx, proposal: Proposal) -> None:
    if proposal.author_id == ctx.resident.id:  # type: ignore[attr-defined]
        ctx.answer(ctx._("You are its author: you always hear how your own proposal goes."))
    elif await proposals.unfollow(proposal, ctx.resident):
        ctx.answer(ctx._("You no longer follow {reference}.", reference=proposal.reference))
    else:
        ctx.answer(ctx._("You do not follow {reference}.", reference=proposal.reference))
    await show_mine(ctx)


async def ask_withdraw(ctx: Ctx, proposal: Proposal) -> None:
    # TRANSLATORS: a button label, at most 20 characters.
    yes = ctx._("Yes, withdraw it")
    # TRANSLATORS: a button label, at most 20 characters.
    no = ctx._("No, keep it")
    ctx.answer(
        Reply(
            ctx._(
                "Withdraw {reference}? It will be closed and shown to nobody.",
                reference=proposal.reference,
            ),
            [[Button(yes, f"{WITHDRAW}:{proposal.id}:yes"), Button(no, f"{VIEW}:{proposal.id}")]],
        )
    )


async def withdraw(ctx: Ctx, proposal: Proposal) -> None:
    try:
        await proposals.withdraw(proposal, ctx.resident)
    except proposals.ProposalError as error:
        if error.reason == "not_author":
            log.warning(
                "withdrawal of proposal %s refused to %s, not its author",
                proposal.id,
                who(ctx.incoming.channel, ctx.incoming.user_id),
            )
            ctx.answer(ctx._(NOT_FOUND))
            await menu.show(ctx)
            return
        if error.reason == "reviewed":
            ctx.answer(
                ctx._(
                    "{reference} can no longer be withdrawn: the staff have already started on it.",
                    reference=proposal.reference,
                )
            )
        else:
            ctx.answer(ctx._(NOT_FOUND))
        await menu.show(ctx)
        return
    ctx.answer(ctx._("{reference} is withdrawn.", reference=proposal.reference))
    await show_mine(ctx)


# --- browse a neighbourhood ---------------------------------------------------------------
async def browse(ctx: Ctx, neighbourhood: str | None = None, offset: int = 0) -> None:
    """The recent public proposals of a neighbourhood (the resident's own by default)."""
    hoods = ctx.config.municipality.neighbourhoods
    if neighbourhood is None:
        neighbourhood = await residents.neighbourhood_key(ctx.resident) or ""
    if neighbourhood and not any(n.id == neighbourhood for n in hoods):
        neighbourhood = ""
    rows, total = await proposals.public_page(neighbourhood, max(offset, 0), PAGE)
    if neighbourhood:
        name = neighbourhood_name(ctx.config, neighbourhood, ctx.language)
        heading = ctx._("Recent proposals in {name}:", name=name)
    else:
        heading = ctx._("Recent proposals in the whole municipality:")
    lines = [heading, ""]
    buttons = []
    if not rows:
        lines.append(ctx._("None yet."))
    for number, row in enumerate(rows, offset + 1):
        lines.append(
            ctx.ngettext(
                "{number}. {summary} ({n} supporter)",
                "{number}. {summary} ({n} supporters)",
                row.supporters,
                number=number,
                summary=summary_line(ctx.tr, ctx.config, row),
            )
        )
        buttons.append(Button(row.reference, f"{VIEW}:{row.id}"))
    rows_of_buttons = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    nav = _page_buttons(ctx, f"{BROWSE}:{neighbourhood or '-'}", offset, total)
    if nav:
        rows_of_buttons.append(nav)
    if hoods:
        # TRANSLATORS: a button label, at most 20 characters: browse another neighbourhood.
        rows_of_buttons.append([Button(ctx._("Other neighbourhood"), HOODS)])
    # TRANSLATORS: a button label, at most 20 characters: find a proposal by its reference.
    rows_of_buttons.append([Button(ctx._("Find by number"), FIND), _menu_button(ctx)])
    ctx.answer(Reply("\n".join(lines), rows_of_buttons))


async def choose_neighbourhood(ctx: Ctx, page: int = 0) -> None:
    """Every neighbourhood (paged where a channel shows fewer buttons), and all of them."""
    hoods = ctx.config.municipality.neighbourhoods
    labels = [Button(button_name(ctx, n), f"{BROWSE}:{n.id}:0") for n in hoods]
    rows_of_buttons = [labels[i : i + 2] for i in range(0, len(labels), 2)]
    # TRANSLATORS: a button label, at most 20 characters: proposals of every neighbourhood.
    rows_of_buttons.append([Button(ctx._("All of them"), f"{BROWSE}:-:0")])
    reply = Reply(ctx._("Which neighbourhood's proposals?"), rows_of_buttons, pinned_rows=1)
    ctx.answer(paged(ctx, reply, page, lambda n: f"{HOODS}:{n}"))


# --- find by reference -------------------------------------------------------------------------
async def start_find(ctx: Ctx) -> None:
    await begin(ctx, find_step, {})


async def render_find(ctx: Ctx) -> Reply:
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back to the menu")
    return Reply(
        ctx._("Write the proposal's number, such as P-2026-0042."),
        [[find_step.button(back, "_back")]],
    )


async def on_find_text(ctx: Ctx, value: str) -> None:
    await show_reference(ctx, value)


async def on_find_button(ctx: Ctx, value: str) -> None:
    if value == "_back":
        await menu.show(ctx)
    else:
        await ask_again(ctx, find_step)


find_step = find_dialog.step("ref", render_find, on_button=on_find_button, on_text=on_find_text)
