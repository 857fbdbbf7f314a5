"""The resident's proposal commands and buttons: submit, their list, browse, one proposal.

Buttons name a proposal by its row id (``pr:v:42``); each handler looks it up again and
checks that this resident may see it (``dialogs.my_proposals.proposal_from_button``),
so a forged or stale id answers plainly, is logged, and changes nothing.
"""

from __future__ import annotations

from dialogs import menu, my_proposals, proposal_submit
from dialogs.context import Ctx
from handlers.router import Router

router = Router()


def _number(ctx: Ctx, position: int) -> int:
    parts = ctx.incoming.payload.split(":")
    value = parts[position] if len(parts) > position else ""
    # ASCII digits, few enough for the database: "²" passes isdigit() but not int().
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else 0


@router.command("propose")
@router.button(menu.PROPOSE)
async def propose(ctx: Ctx) -> None:
    await proposal_submit.start(ctx)


@router.command("myproposals")
@router.button(menu.MY_PROPOSALS)
async def mine(ctx: Ctx) -> None:
    ctx.clear_state()
    await my_proposals.show_mine(ctx)


@router.button(my_proposals.MINE)
async def mine_page(ctx: Ctx) -> None:
    ctx.clear_state()
    await my_proposals.show_mine(ctx, _number(ctx, 2))


@router.command("proposals")
@router.button(menu.NEARBY)
async def nearby(ctx: Ctx) -> None:
    ctx.clear_state()
    if ctx.incoming.args.strip():
        await my_proposals.show_reference(ctx, ctx.incoming.args)
    else:
        await my_proposals.browse(ctx)


@router.button(my_proposals.BROWSE)
async def browse_page(ctx: Ctx) -> None:
    ctx.clear_state()
    parts = ctx.incoming.payload.split(":")
    hood = parts[2] if len(parts) > 2 and parts[2] != "-" else ""
    await my_proposals.browse(ctx, hood, _number(ctx, 3))


@router.button(my_proposals.HOODS)
async def choose_neighbourhood(ctx: Ctx) -> None:
    ctx.clear_state()
    await my_proposals.choose_neighbourhood(ctx, _number(ctx, 2))


@router.button(my_proposals.FIND)
async def find(ctx: Ctx) -> None:
    await my_proposals.start_find(ctx)


@router.button(my_proposals.VIEW)
async def view(ctx: Ctx) -> None:
    if proposal := await my_proposals.proposal_from_button(ctx):
        ctx.clear_state()
        await my_proposals.show_one(ctx, proposal)


@router.button(my_proposals.FOLLOW)
async def follow(ctx: Ctx) -> None:
    if proposal := await my_proposals.proposal_from_button(ctx):
        ctx.clear_state()
        await my_proposals.follow(ctx, proposal)


@router.button(my_proposals.SUPPORT)
async def support(ctx: Ctx) -> None:
    if proposal := await my_proposals.proposal_from_button(ctx):
        ctx.clear_state()
        await my_proposals.support(ctx, proposal)


@router.button(my_proposals.UNFOLLOW)
async def unfollow(ctx: Ctx) -> None:
    if proposal := await my_proposals.proposal_from_button(ctx):
        ctx.clear_state()
        await my_proposals.unfollow(ctx, proposal)


@router.button(my_proposals.WITHDRAW)
async def withdraw(ctx: Ctx) -> None:
    if proposal := await my_proposals.proposal_from_button(ctx):
        ctx.clear_state()
        if ctx.incoming.payload.endswith(":yes"):
            await my_proposals.withdraw(ctx, proposal)
        else:
            await my_proposals.ask_withdraw(ctx, proposal)
