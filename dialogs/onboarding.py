"""First contact: language, neighbourhood, topics, privacy notice, then the menu.

Neighbourhood and topics are kept in the dialog's data until the resident
accepts the privacy notice; declining forgets everything.
"""

from __future__ import annotations

from bot.core.i18n import LANGUAGES
from bot.core.messages import Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, Step, ask_again, begin, enter
from dialogs.pickers import (
    DONE,
    NO,
    SKIP,
    UNKNOWN_NEIGHBOURHOOD,
    YES,
    find,
    language_buttons,
    match_language,
    match_named,
    names_of,
    neighbourhood_buttons,
    toggle,
    topic_buttons,
)
from storage import residents

dialog = Dialog("onb")


async def start(ctx: Ctx) -> None:
    await begin(ctx, language, {})


# --- language ---------------------------------------------------------------
async def render_language(ctx: Ctx) -> Reply:
    text = ctx._(
        "Hello! I am the residents' assistant of {municipality}. Here you can follow what "
        "happens in your neighbourhood and have your say.\n\nPlease choose your language:",
        municipality=ctx.config.municipality.name,
    )
    return Reply(text, language_buttons(language))


async def choose_language(ctx: Ctx, code: str) -> None:
    if code not in LANGUAGES:
        await ask_again(ctx, language)
        return
    await residents.set_language(ctx.resident, code)
    ctx.use_language(code)
    await enter(ctx, _after_language(ctx), ctx.data)


async def type_language(ctx: Ctx, text: str) -> None:
    await choose_language(ctx, match_language(text) or "")


def _after_language(ctx: Ctx) -> Step:
    if ctx.config.municipality.neighbourhoods:
        return neighbourhood
    return _after_neighbourhood(ctx)


# The first question is shown to someone not stored yet (the web chat's greeting), and a
# language button does the same from any message: its buttons name no instance.
language = dialog.step(
    "language", render_language, on_button=choose_language, on_text=type_language, nonce=False
)


# --- neighbourhood ----------------------------------------------------------
async def render_neighbourhood(ctx: Ctx) -> Reply:
    text = ctx._(
        "Which neighbourhood do you live in, or care about most? "
        "You will get the news and questions that concern it.\n\n"
        "Choose below, or type its name."
    )
    buttons = neighbourhood_buttons(ctx, neighbourhood)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([neighbourhood.button(ctx._("Skip"), SKIP)])
    return Reply(text, buttons, pinned_rows=1)


async def choose_neighbourhood(ctx: Ctx, key: str) -> None:
    if key != SKIP and find(ctx.config.municipality.neighbourhoods, key) is None:
        await ask_again(ctx, neighbourhood, UNKNOWN_NEIGHBOURHOOD)
        return
    ctx.data["neighbourhood"] = None if key == SKIP else key
    await enter(ctx, _after_neighbourhood(ctx), ctx.data)


async def type_neighbourhood(ctx: Ctx, text: str) -> None:
    found = match_named(ctx.config.municipality.neighbourhoods, text)
    await choose_neighbourhood(ctx, found.id if found else "")


def _after_neighbourhood(ctx: Ctx) -> Step:
    return topics if ctx.config.municipality.topics else privacy


neighbourhood = dialog.step(
    "neighbourhood",
    render_neighbourhood,
    on_button=choose_neighbourhood,
    on_text=type_neighbourhood,
)


# --- topics -----------------------------------------------------------------
async def render_topics(ctx: Ctx) -> Reply:
    selected = ctx.data.get("topics", [])
    text = ctx._(
        "Which topics interest you? Tap a topic to choose it, tap again to remove it, "
        "then press Done."
    )
    if selected:
        text += "\n\n" + ctx.ngettext(
            "{n} topic chosen: {names}",
            "{n} topics chosen: {names}",
            len(selected),
            names=names_of(ctx, ctx.config.municipality.topics, selected),
        )
    buttons = topic_buttons(ctx, topics, selected)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([topics.button(ctx._("Done"), DONE)])
    return Reply(text, buttons, keep_apart=True, pinned_rows=1)


async def choose_topic(ctx: Ctx, key: str) -> None:
    if key == DONE:
        await enter(ctx, privacy, ctx.data)
        return
    if find(ctx.config.municipality.topics, key) is None:
        await ask_again(ctx, topics)
        return
    ctx.data["topics"] = toggle(ctx.data.get("topics", []), key)
    await enter(ctx, topics, ctx.data, replace=True)


topics = dialog.step("topics", render_topics, on_button=choose_topic)


# --- privacy ----------------------------------------------------------------
async def render_privacy(ctx: Ctx) -> Reply:
    text = ctx._(
        "Before we start, how we treat your data:\n\n"
        "• We keep only your language, neighbourhood, topics and the id of your chat account, "
        "so that we can answer you and send you what you asked for.\n"
        "• We do not share them with anyone and never show them publicly.\n"
        "• /mydata shows everything we hold about you, and there you can delete it at any time.\n\n"
        "Do you agree?"
    )
    # TRANSLATORS: a button label, at most 20 characters.
    agree = ctx._("I agree")
    # TRANSLATORS: a button label, at most 20 characters.
    decline = ctx._("No, thanks")
    return Reply(text, [[privacy.button(agree, YES), privacy.button(decline, NO)]])


async def answer_privacy(ctx: Ctx, value: str) -> None:
    if value == NO:
        await residents.forget(ctx.resident)
        ctx.session.deleted = True
        ctx.answer(
            ctx._(
                "Understood. We have not kept anything about you. "
                "Send /start whenever you change your mind."
            )
        )
        return
    if value != YES:
        await ask_again(ctx, privacy)
        return
    resident = ctx.resident
    await residents.set_neighbourhood(resident, ctx.data.get("neighbourhood"))
    await residents.set_topics(resident, ctx.data.get("topics", []))
    await residents.accept_privacy(resident)
    await residents.mark_onboarded(resident)
    ctx.clear_state()
    ctx.answer(
        ctx._("Thank you, you are all set! You can change these choices any time in Settings.")
    )
    await menu.show(ctx)


privacy = dialog.step("privacy", render_privacy, on_button=answer_privacy)
