"""The resident's polls: the menu's "Polls", the list's pages, and every tap on a poll
message (``pl:…``, checked on the server by ``dialogs.poll_vote``). ``/polls`` is in
``handlers.staff``: the staff's list for an account whose role runs polls, this list for
anyone else."""

from __future__ import annotations

from dialogs import menu, poll_list, poll_vote
from dialogs.context import Ctx
from dialogs.poll_words import POLL
from handlers.router import Router

router = Router()


@router.button(menu.POLLS)
async def polls(ctx: Ctx) -> None:
    ctx.clear_state()
    await poll_list.show(ctx)


@router.button(POLL)
async def poll_button(ctx: Ctx) -> None:
    """A tap on a poll message, or a page of the list. A tap leaves the conversation where
    it was: a question open in a dialog is still open after it."""
    payload = ctx.incoming.payload
    if payload == poll_list.LIST or payload.startswith(poll_list.LIST + ":"):
        await poll_list.show(ctx, poll_list.page_of(payload))
    else:
        await poll_vote.on_tap(ctx)
