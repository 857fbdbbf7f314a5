"""The main menu and help. The menu offers only what works today."""

from __future__ import annotations

from bot.core.messages import Button, Reply
from dialogs.context import Ctx

SETTINGS = "menu:settings"
MUTE = "menu:mute"
UNMUTE = "menu:unmute"
MY_DATA = "menu:data"
HELP = "menu:help"
MENU = "menu:main"
PROPOSE = "menu:propose"
MY_PROPOSALS = "menu:myproposals"
NEARBY = "menu:proposals"
POLLS = "menu:polls"


def main_menu(ctx: Ctx) -> Reply:
    if ctx.resident.announcements_muted:
        # TRANSLATORS: a button label, at most 20 characters.
        announcements = Button(ctx._("Resume announcements"), UNMUTE)
    else:
        # TRANSLATORS: a button label, at most 20 characters (also the /stop command's
        # description in Telegram's menu).
        announcements = Button(ctx._("Stop announcements"), MUTE)
    # TRANSLATORS: a button label, at most 20 characters.
    settings = ctx._("Settings")
    # TRANSLATORS: a button label, at most 20 characters.
    data = ctx._("My data")
    # TRANSLATORS: a button label, at most 20 characters.
    help_ = ctx._("Help")
    # TRANSLATORS: a button label, at most 20 characters: submit an idea or report a problem.
    propose = ctx._("Idea or problem")
    # TRANSLATORS: a button label, at most 20 characters.
    mine = ctx._("My proposals")
    # TRANSLATORS: a button label, at most 20 characters: recent proposals of a neighbourhood.
    nearby = ctx._("Proposals nearby")
    # TRANSLATORS: a button label, at most 20 characters: the open polls and your answers.
    polls = ctx._("Polls")
    return Reply(
        ctx._("Main menu — what would you like to do?"),
        [
            [Button(propose, PROPOSE), Button(polls, POLLS)],
            [Button(mine, MY_PROPOSALS), Button(nearby, NEARBY)],
            [Button(settings, SETTINGS), Button(data, MY_DATA)],
            [announcements, Button(help_, HELP)],
        ],
    )


async def show(ctx: Ctx) -> None:
    ctx.clear_state()
    ctx.answer(main_menu(ctx))


def help_text(ctx: Ctx) -> str:
    return ctx._(
        "I am the residents' assistant of {municipality}.\n\n"
        "/menu – the main menu\n"
        "/propose – submit an idea or report a problem\n"
        "/myproposals – your proposals and those you follow\n"
        "/proposals – recent proposals of your neighbourhood\n"
        "/polls – open polls and your answers\n"
        "/stop – no more announcements; /start brings them back\n"
        "/settings – language, neighbourhood and topics\n"
        "/language – change the language\n"
        "/mydata – see or delete what we hold about you\n"
        "/cancel – stop what we are doing now\n"
        "/help – this help",
        municipality=ctx.config.municipality.name,
    )
