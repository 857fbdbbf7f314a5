"""Staff routes of the review queue: ``/review``, ``/summary`` and every ``rv:`` button.

None of them names ``roles``: a department's staff may use them without a staff role
(see ``dialogs.review``). Each checks ``may_review`` on the server instead, and anyone
else is answered exactly as an unknown command is, and logged.
"""

from __future__ import annotations

import logging

from bot.core.i18n import N_
from bot.core.logs import who
from dialogs import menu, proposal_summary
from dialogs import review as review_dialog
from dialogs.context import Ctx
from dialogs.engine import handle, show_current
from dialogs.registry import REGISTRY
from handlers.router import Router

log = logging.getLogger(__name__)

router = Router()

# The dispatcher's answer to a command it does not know (the same words).
UNKNOWN_COMMAND = N_("Sorry, I do not know that command. /help lists what I can do.")


async def _resume(ctx: Ctx) -> None:
    if not await show_current(ctx, REGISTRY):
        await menu.show(ctx)


async def _refused(ctx: Ctx, what: str) -> None:
    log.warning("review %s refused to %s", what, who(ctx.incoming.channel, ctx.incoming.user_id))
    ctx.answer(ctx._(UNKNOWN_COMMAND))
    await _resume(ctx)


@router.command("review")
async def open_review(ctx: Ctx) -> None:
    if not await review_dialog.may_review(ctx):
        await _refused(ctx, "command /review")
        return
    await review_dialog.start(ctx, ctx.incoming.args)


@router.command("summary")
async def summary(ctx: Ctx) -> None:
    if not await review_dialog.may_review(ctx):
        await _refused(ctx, "command /summary")
        return
    await proposal_summary.show(ctx)


@router.button(review_dialog.dialog.name)
async def review_button(ctx: Ctx) -> None:
    """Every button of the review dialog: the account is checked before the step is."""
    if not await review_dialog.may_review(ctx):
        await _refused(ctx, f"button {ctx.incoming.payload!r}")
        return
    await handle(ctx, REGISTRY, on_lost=_resume)
