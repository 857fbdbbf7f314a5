"""The commands and menu buttons every resident has, wherever they are."""

from __future__ import annotations

from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_
from bot.core.messages import Button, Reply
from dialogs import menu, mydata, onboarding, settings
from dialogs.announce import COMPOSERS
from dialogs.context import Ctx
from dialogs.engine import show_current
from dialogs.pickers import LANGUAGE_SWITCHED
from dialogs.registry import REGISTRY
from dialogs.review import may_review
from handlers import feedback, polls, proposals, staff
from handlers.middlewares import has_role
from handlers.router import Router
from storage import residents

router = Router()

# The commands a resident may pick from a platform's command menu, with what
# each does; Telegram shows them when the resident types "/".
MENU_COMMANDS = (
    ("menu", N_("Main menu")),
    ("propose", N_("Submit an idea or report a problem")),
    ("myproposals", N_("Your proposals and those you follow")),
    ("proposals", N_("Recent proposals of a neighbourhood")),
    ("polls", N_("Open polls and your answers")),
    ("settings", N_("Language, neighbourhood and topics")),
    ("language", N_("Change the language")),
    ("mydata", N_("See or delete your data")),
    ("stop", N_("Stop announcements")),
    ("cancel", N_("Stop what we are doing")),
    ("help", N_("Help")),
)

LANGUAGE_PREFIX = "lang"


async def resume_or_menu(ctx: Ctx) -> None:
    """After a side question (/help, /language), show where the resident stands."""
    if await show_current(ctx, REGISTRY):
        return
    if ctx.onboarded:
        await menu.show(ctx)
    else:
        await onboarding.start(ctx)


@router.command("start", anytime=True)
async def start(ctx: Ctx) -> None:
    if ctx.onboarded:
        if await residents.mute_announcements(ctx.resident, False):
            ctx.answer(ctx._("Welcome back: you will get announcements again."))
        await menu.show(ctx)
    elif ctx.state.startswith("onb:"):
        await show_current(ctx, REGISTRY)
    else:
        await onboarding.start(ctx)


@router.command("help", anytime=True)
async def help_(ctx: Ctx) -> None:
    ctx.answer(menu.help_text(ctx))
    if await has_role(ctx, COMPOSERS):
        ctx.answer(
            ctx._(
                "For staff:\n"
                "/announce – write an announcement\n"
                "/announcements – scheduled and recent announcements; cancel or confirm\n"
                "/newpoll – make a quick poll\n"
                "/polls – polls with their results; close, move the closing or cancel"
            )
        )
    if await may_review(ctx):
        ctx.answer(
            ctx._(
                "For reviewing proposals:\n"
                "/review – the next proposal to review; /review P-2026-0042 opens that one\n"
                "/summary – open and overdue proposals and answer times, by department"
            )
        )
    await resume_or_menu(ctx)


@router.button(menu.HELP)
async def help_button(ctx: Ctx) -> None:
    ctx.answer(menu.help_text(ctx))
    await menu.show(ctx)


@router.command("cancel", anytime=True)
async def cancel(ctx: Ctx) -> None:
    was_busy = bool(ctx.state)
    ctx.clear_state()
    if not ctx.onboarded:
        ctx.answer(ctx._("Stopped. Send /start whenever you want to begin."))
        return
    ctx.answer(ctx._("Cancelled.") if was_busy else ctx._("There was nothing to cancel."))
    await menu.show(ctx)


@router.command("stop")
@router.button(menu.MUTE)
async def stop_announcements(ctx: Ctx) -> None:
    if await residents.mute_announcements(ctx.resident, True):
        ctx.answer(
            ctx._(
                "Done: you will get no more announcements. You can still write to me "
                "any time; /start turns announcements on again."
            )
        )
    else:
        ctx.answer(ctx._("Announcements are already off. /start turns them on again."))
    await menu.show(ctx)


@router.button(menu.UNMUTE)
async def resume_announcements(ctx: Ctx) -> None:
    await residents.mute_announcements(ctx.resident, False)
    ctx.answer(ctx._("Welcome back: you will get announcements again."))
    await menu.show(ctx)


@router.command("menu")
@router.button(menu.MENU)
async def show_menu(ctx: Ctx) -> None:
    await menu.show(ctx)


@router.command("settings")
@router.button(menu.SETTINGS)
async def open_settings(ctx: Ctx) -> None:
    await settings.start(ctx)


@router.command("mydata", anytime=True)
@router.button(menu.MY_DATA, anytime=True)
async def open_my_data(ctx: Ctx) -> None:
    await mydata.start(ctx)


@router.command("language", anytime=True)
async def language(ctx: Ctx) -> None:
    buttons = [[Button(LANGUAGE_NAMES[code], f"{LANGUAGE_PREFIX}:{code}") for code in LANGUAGES]]
    ctx.answer(Reply(ctx._("Choose your language:"), buttons))


@router.button(LANGUAGE_PREFIX, anytime=True)
async def choose_language(ctx: Ctx) -> None:
    code = ctx.incoming.payload.partition(":")[2]
    if code not in LANGUAGES:
        ctx.answer(ctx._("That button has expired."))
    else:
        await residents.set_language(ctx.resident, code)
        ctx.use_language(code)
        ctx.answer(ctx._(LANGUAGE_SWITCHED))
    await resume_or_menu(ctx)


router.include(proposals.router)  # the resident's proposals (pr:v|f|s|u|w, /propose…)
router.include(feedback.router)  # the feedback loop's push buttons: pr:r, pr:fx, pr:rt
router.include(polls.router)  # /polls, the menu's Polls, and taps on polls (pl:…)

# Staff routes last: a resident's command never reaches them by accident, and
# their role check answers a resident exactly as an unknown command would.
router.include(staff.router)
