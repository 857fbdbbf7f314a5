"""Buttons and typed-answer matching shared by onboarding and settings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bot.core.config import Named
from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_
from bot.core.messages import CHOSEN, Button
from dialogs.context import Ctx
from dialogs.engine import Step

# Values that can never be an id from the configuration (ids start with a
# letter or digit), so they never clash with a neighbourhood or topic.
DONE = "_done"
SKIP = "_skip"
BACK = "_back"
YES = "_yes"
NO = "_no"


def rows(buttons: Sequence[Button], per_row: int = 2) -> list[list[Button]]:
    return [list(buttons[i : i + per_row]) for i in range(0, len(buttons), per_row)]


def language_buttons(step: Step) -> list[list[Button]]:
    return [[step.button(LANGUAGE_NAMES[code], code) for code in LANGUAGES]]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def match_language(text: str) -> str | None:
    """A typed 'English', 'lv' or 'русский' picks that language."""
    wanted = _fold(text)
    for code, name in LANGUAGE_NAMES.items():
        if wanted in (code, _fold(name)):
            return code
    return None


def match_named(items: Iterable[Named], text: str) -> Named | None:
    """A typed name in any language (or the id) picks that item."""
    wanted = _fold(text)
    if not wanted:
        return None
    for item in items:
        names = [*item.names.values(), *item.short.values()]
        if wanted == item.id or any(wanted == _fold(name) for name in names):
            return item
    return None


def button_name(ctx: Ctx, item: Named) -> str:
    """A neighbourhood's or topic's name on a button of this channel: whole where it fits
    with the mark of a chosen one, else its short form (the configuration has one)."""
    return item.label(ctx.language, ctx.capabilities.label_length - len(CHOSEN))


def choice_buttons(
    ctx: Ctx, step: Step, items: Iterable[Named], chosen: Iterable[str] | None = None
) -> list[list[Button]]:
    """A button per item, two to a row; with ``chosen``, a toggle list marking those."""
    marked = set(chosen or ())
    return rows(
        [
            step.button((CHOSEN if item.id in marked else "") + button_name(ctx, item), item.id)
            for item in items
        ]
    )


def neighbourhood_buttons(ctx: Ctx, step: Step) -> list[list[Button]]:
    return choice_buttons(ctx, step, ctx.config.municipality.neighbourhoods)


def topic_buttons(ctx: Ctx, step: Step, selected: Iterable[str]) -> list[list[Button]]:
    return choice_buttons(ctx, step, ctx.config.municipality.topics, selected)


def toggle(selected: list[str], key: str) -> list[str]:
    return [k for k in selected if k != key] if key in selected else [*selected, key]


def names_of(ctx: Ctx, items: Iterable[Named], keys: Iterable[str]) -> str:
    wanted = set(keys)
    return ", ".join(item.name(ctx.language) for item in items if item.id in wanted)


def find(items: Iterable[Named], key: str) -> Named | None:
    return next((item for item in items if item.id == key), None)


UNKNOWN_NEIGHBOURHOOD = N_(
    "I do not know that neighbourhood. Please choose one of the buttons below."
)

# TRANSLATORS: confirms the switch to THIS catalog's language: name your own
# language ("Labi, turpmāk rakstīšu latviski.").
LANGUAGE_SWITCHED = N_("Done: I will write to you in English.")


def neighbourhood_line(ctx: Ctx, key: str | None) -> str:
    hood = find(ctx.config.municipality.neighbourhoods, key) if key else None
    if hood is None:
        return ctx._("Neighbourhood: not chosen")
    return ctx._("Neighbourhood: {name}", name=hood.name(ctx.language))


def topics_line(ctx: Ctx, keys: Iterable[str]) -> str:
    names = names_of(ctx, ctx.config.municipality.topics, keys)
    return ctx._("Topics: {names}", names=names) if names else ctx._("Topics: none chosen")
