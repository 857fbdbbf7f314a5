"""Settings: language, neighbourhood and topics, changed any time after onboarding."""

from __future__ import annotations

from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.core.messages import Reply
from dialogs import menu
from dialogs.context import Ctx
from dialogs.engine import Dialog, ask_again, begin, enter
from dialogs.pickers import (
    BACK,
    DONE,
    LANGUAGE_SWITCHED,
    SKIP,
    UNKNOWN_NEIGHBOURHOOD,
    find,
    language_buttons,
    match_language,
    match_named,
    neighbourhood_buttons,
    neighbourhood_line,
    toggle,
    topic_buttons,
    topics_line,
)
from storage import residents

dialog = Dialog("set")


async def start(ctx: Ctx) -> None:
    await begin(ctx, home, {})


# --- overview ---------------------------------------------------------------
async def render_home(ctx: Ctx) -> Reply:
    m = ctx.config.municipality
    lines = [ctx._("Your settings:"), ctx._("Language: {name}", name=LANGUAGE_NAMES[ctx.language])]
    # TRANSLATORS: a button label, at most 20 characters.
    buttons = [[home.button(ctx._("Language"), "language")]]
    if m.neighbourhoods:
        lines.append(neighbourhood_line(ctx, await residents.neighbourhood_key(ctx.resident)))
        # TRANSLATORS: a button label, at most 20 characters.
        buttons[0].append(home.button(ctx._("Neighbourhood"), "neighbourhood"))
    if m.topics:
        lines.append(topics_line(ctx, await residents.topic_keys(ctx.resident)))
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([home.button(ctx._("Topics"), "topics")])
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([home.button(ctx._("Back to the menu"), BACK)])
    return Reply("\n".join(lines), buttons)


async def open_setting(ctx: Ctx, value: str) -> None:
    target = {"language": language, "neighbourhood": neighbourhood, "topics": topics}.get(value)
    if value == BACK:
        await menu.show(ctx)
    elif target is None:
        await ask_again(ctx, home)
    else:
        await enter(ctx, target, {})


home = dialog.step("home", render_home, on_button=open_setting)


# --- language ---------------------------------------------------------------
async def render_language(ctx: Ctx) -> Reply:
    buttons = language_buttons(language)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([language.button(ctx._("Back"), BACK)])
    return Reply(ctx._("Choose your language:"), buttons)


async def choose_language(ctx: Ctx, code: str) -> None:
    if code in LANGUAGES:
        await residents.set_language(ctx.resident, code)
        ctx.use_language(code)
        ctx.answer(ctx._(LANGUAGE_SWITCHED))
    elif code != BACK:
        await ask_again(ctx, language)
        return
    await enter(ctx, home)


async def type_language(ctx: Ctx, text: str) -> None:
    await choose_language(ctx, match_language(text) or "")


language = dialog.step(
    "language", render_language, on_button=choose_language, on_text=type_language
)


# --- neighbourhood ----------------------------------------------------------
async def render_neighbourhood(ctx: Ctx) -> Reply:
    buttons = neighbourhood_buttons(ctx, neighbourhood)
    # TRANSLATORS: a button label, at most 20 characters.
    none = ctx._("No neighbourhood")
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back")
    buttons.append([neighbourhood.button(none, SKIP), neighbourhood.button(back, BACK)])
    return Reply(ctx._("Choose your neighbourhood, or type its name:"), buttons, pinned_rows=1)


async def choose_neighbourhood(ctx: Ctx, key: str) -> None:
    if key == SKIP:
        await residents.set_neighbourhood(ctx.resident, None)
    elif key != BACK:
        if find(ctx.config.municipality.neighbourhoods, key) is None:
            await ask_again(ctx, neighbourhood, UNKNOWN_NEIGHBOURHOOD)
            return
        await residents.set_neighbourhood(ctx.resident, key)
    await enter(ctx, home)


async def type_neighbourhood(ctx: Ctx, text: str) -> None:
    found = match_named(ctx.config.municipality.neighbourhoods, text)
    await choose_neighbourhood(ctx, found.id if found else "")


neighbourhood = dialog.step(
    "neighbourhood",
    render_neighbourhood,
    on_button=choose_neighbourhood,
    on_text=type_neighbourhood,
)


# --- topics -----------------------------------------------------------------
async def render_topics(ctx: Ctx) -> Reply:
    selected = await residents.topic_keys(ctx.resident)
    buttons = topic_buttons(ctx, topics, selected)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([topics.button(ctx._("Done"), DONE)])
    text = ctx._("Tap a topic to choose it or remove it, then press Done.")
    return Reply(text, buttons, keep_apart=True, pinned_rows=1)


async def choose_topic(ctx: Ctx, key: str) -> None:
    if key == DONE:
        await enter(ctx, home)
        return
    if find(ctx.config.municipality.topics, key) is None:
        await ask_again(ctx, topics)
        return
    selected = toggle(await residents.topic_keys(ctx.resident), key)
    await residents.set_topics(ctx.resident, selected)
    await enter(ctx, topics, replace=True)


topics = dialog.step("topics", render_topics, on_button=choose_topic)
