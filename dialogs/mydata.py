"""What the municipality holds about a resident, and deleting it."""

from __future__ import annotations

from datetime import datetime

from bot.core.i18n import LANGUAGE_NAMES, N_
from bot.core.messages import Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, enter
from dialogs.pickers import BACK, NO, YES, neighbourhood_line, topics_line
from storage import residents

dialog = Dialog("data")

CHANNEL_NAMES = {"telegram": "Telegram", "webchat": N_("Web chat"), "messenger": "Messenger"}


async def start(ctx: Ctx) -> None:
    await begin(ctx, overview, {})


def _when(ctx: Ctx, moment: datetime | None) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(ctx.config.municipality.zone)
    return local.strftime("%Y-%m-%d %H:%M")


async def render_overview(ctx: Ctx) -> Reply:
    held = await residents.personal_data(ctx.resident)
    lines = [
        ctx._("This is everything we hold about you:"),
        "",
        ctx._("Language: {name}", name=LANGUAGE_NAMES.get(held.language, "—")),
        neighbourhood_line(ctx, held.neighbourhood),
        topics_line(ctx, held.topics),
    ]
    for account in held.accounts:
        lines.append(
            ctx._(
                "Account: {channel} {id}, since {since}",
                channel=ctx._(CHANNEL_NAMES.get(account.channel, account.channel)),
                id=account.external_id,
                since=_when(ctx, account.since),
            )
        )
    lines += [
        ctx._("Privacy notice accepted: {when}", when=_when(ctx, held.privacy_accepted_at)),
        ctx._("Last message: {when}", when=_when(ctx, held.last_seen_at)),
    ]
    if held.proposals or held.following or held.supported or held.comments:
        lines.append(
            ctx._(
                "Proposals: {own} submitted, {followed} followed, {supported} supported, "
                "{comments} replies written",
                own=held.proposals,
                followed=held.following,
                supported=held.supported,
                comments=held.comments,
            )
        )
    if held.polls_answered:
        lines.append(
            ctx.ngettext(
                "Polls answered: {n} (the answers stay counted, without your name, if you "
                "delete your data)",
                "Polls answered: {n} (the answers stay counted, without your name, if you "
                "delete your data)",
                held.polls_answered,
            )
        )
    # TRANSLATORS: a button label, at most 20 characters.
    delete = ctx._("Delete my data")
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back to the menu")
    buttons = [[overview.button(delete, "delete")], [overview.button(back, BACK)]]
    return Reply("\n".join(lines), buttons)


async def overview_choice(ctx: Ctx, value: str) -> None:
    if value == "delete":
        await enter(ctx, confirm)
    elif value == BACK:
        await menu.show(ctx)
    else:
        await ask_again(ctx, overview)


overview = dialog.step("overview", render_overview, on_button=overview_choice)


async def render_confirm(ctx: Ctx) -> Reply:
    text = ctx._(
        "Delete everything we hold about you? Your settings and chat accounts will be erased. "
        "This cannot be undone."
    )
    text += "\n\n" + ctx._(
        "Proposals you submitted and replies you wrote stay for the municipality's work, "
        "with nothing that links them to you."
    )
    # TRANSLATORS: a button label, at most 20 characters.
    yes = ctx._("Yes, delete")
    # TRANSLATORS: a button label, at most 20 characters.
    no = ctx._("No, keep it")
    buttons = [[confirm.button(yes, YES), confirm.button(no, NO)]]
    return Reply(text, buttons)


async def confirm_choice(ctx: Ctx, value: str) -> None:
    if value == YES:
        await residents.forget(ctx.resident)
        ctx.session.deleted = True
        ctx.answer(
            ctx._(
                "Your data has been deleted. If you write again, we will start afresh with /start."
            )
        )
    elif value == NO:
        ctx.answer(ctx._("Nothing was deleted."))
        await menu.show(ctx)
    else:
        await ask_again(ctx, confirm)


confirm = dialog.step("confirm", render_confirm, on_button=confirm_choice)
