"""Staff commands and buttons. Each route names its roles: the role is checked
on the server for every update, and anyone else gets the ordinary "unknown
command" answer (the attempt is logged by the dispatcher)."""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.messages import CommandList
from dialogs import announce, announcement_list, poll_compose, poll_list, poll_staff
from dialogs.announce import APPROVERS, COMPOSERS
from dialogs.context import Ctx
from dialogs.review import REVIEWERS
from handlers import review
from handlers.middlewares import has_role
from handlers.router import Router

router = Router()
router.include(review.router)  # /review, /summary and the review queue's buttons

# Added to the command menu of staff accounts who may use them: by role, and the review
# queue's also for a department's staff (who need no role for their own department).
STAFF_COMMANDS = (
    ("announce", N_("Write an announcement"), COMPOSERS),
    ("announcements", N_("Scheduled and recent announcements"), COMPOSERS),
    ("newpoll", N_("Make a quick poll"), COMPOSERS),
    ("polls", N_("Polls: results, close, cancel"), COMPOSERS),
    ("review", N_("Proposals to review"), REVIEWERS),
    ("summary", N_("Proposals by department: figures"), REVIEWERS),
)
STAFF_MENU_ROLES = COMPOSERS | REVIEWERS


def staff_commands(role: str | None, *, in_a_department: bool = False) -> CommandList:
    """The staff commands an account may use, for its command menu and its /help."""
    return tuple(
        (name, text)
        for name, text, roles in STAFF_COMMANDS
        if role in roles or (in_a_department and roles is REVIEWERS)
    )


@router.command("announce", roles=set(COMPOSERS), anytime=True)
async def compose(ctx: Ctx) -> None:
    await announce.start(ctx)


@router.command("announcements", roles=set(COMPOSERS), anytime=True)
async def list_announcements(ctx: Ctx) -> None:
    ctx.clear_state()
    await announcement_list.show(ctx)


@router.button(announcement_list.LIST, roles=set(COMPOSERS), anytime=True)
async def refresh(ctx: Ctx) -> None:
    await announcement_list.show(ctx, replace=True, page=announcement_list.page_of(ctx))


@router.button(announcement_list.CANCEL, roles=set(COMPOSERS), anytime=True)
async def cancel(ctx: Ctx) -> None:
    await announcement_list.ask_cancel(ctx)


@router.button(announcement_list.APPROVE, roles=set(APPROVERS), anytime=True)
async def approve(ctx: Ctx) -> None:
    await announcement_list.decide(ctx, "approve")


@router.button(announcement_list.DECLINE, roles=set(APPROVERS), anytime=True)
async def decline(ctx: Ctx) -> None:
    await announcement_list.decide(ctx, "decline")


async def resident_polls(ctx: Ctx) -> None:
    """The polls open for this account as a resident, and its past answers."""
    ctx.clear_state()
    await poll_list.show(ctx)


@router.command("newpoll", roles=set(COMPOSERS), anytime=True)
async def new_poll(ctx: Ctx) -> None:
    await poll_compose.start(ctx)


@router.command("polls", anytime=True)
async def list_polls(ctx: Ctx) -> None:
    """Staff who run polls get their list (with a button to answer polls themselves);
    anyone else the polls open for them."""
    if await has_role(ctx, COMPOSERS):
        ctx.clear_state()
        await poll_staff.show(ctx)
    else:
        await resident_polls(ctx)


@router.button(poll_staff.LIST, roles=set(COMPOSERS), anytime=True)
async def refresh_polls(ctx: Ctx) -> None:
    await poll_staff.show(ctx, replace=True, page=poll_staff.page_of(ctx))


@router.button(poll_staff.ANSWER, roles=set(COMPOSERS), anytime=True)
async def answer_polls(ctx: Ctx) -> None:
    await resident_polls(ctx)


@router.button(poll_staff.RESULTS, roles=set(COMPOSERS), anytime=True)
async def poll_results(ctx: Ctx) -> None:
    await poll_staff.results(ctx)


@router.button(poll_staff.CLOSE, roles=set(COMPOSERS), anytime=True)
async def close_poll(ctx: Ctx) -> None:
    await poll_staff.ask_close(ctx)


@router.button(poll_staff.CANCEL, roles=set(COMPOSERS), anytime=True)
async def cancel_poll(ctx: Ctx) -> None:
    await poll_staff.ask_cancel(ctx)


@router.button(poll_staff.MOVE, roles=set(COMPOSERS), anytime=True)
async def move_closing(ctx: Ctx) -> None:
    await poll_staff.ask_move(ctx)
