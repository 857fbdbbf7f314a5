"""The resident's polls: ``/polls`` and the menu's "Polls", the list's pages, and every
tap on a poll message (``pl:…``, checked on the server by ``dialogs.poll_vote``)."""

from __future__ import annotations

from dialogs import menu, poll_list, poll_vote
from dialogs.context import Ctx
from dialogs.poll_words import POLL
from handlers import staff
from handlers.middlewares import has_role
from handlers.router import Router

router = Router()


@router.command("polls")
async def polls_command(ctx: Ctx) -> None:
    """``/polls``: the staff's own list for an account whose role runs polls (the staff
    router's ``polls``, found after this one), else the resident's list."""
    staff_route = staff.router.find_command("polls")
    if staff_route is not None and staff_route.roles and await has_role(ctx, staff_route.roles):
        await staff_route.handler(ctx)
        return
    await polls(ctx)


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
