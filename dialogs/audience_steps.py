"""Whom a staff message is for: everyone, some neighbourhoods or some topics.

Two steps that an announcement's and a poll's composer add to themselves: "audience"
(everyone, or which kind) and "pick" (the neighbourhoods or topics, toggled, then Done).
The choice is kept in the dialog's data as ``audience`` ({"kind": "all"|"neighbourhood"|
"topic", "keys": [...]}), the one being made as ``choosing``; both steps go back to the
composer's card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.core.i18n import N_
from bot.core.messages import Reply
from dialogs.context import Ctx
from dialogs.engine import Dialog, Step, ask_again, enter
from dialogs.pickers import BACK, DONE, choice_buttons, find, toggle

CHOOSE_ONE = N_("Choose at least one, or press Back.")


def _items(ctx: Ctx) -> tuple[Any, ...]:
    m = ctx.config.municipality
    return m.neighbourhoods if ctx.data["choosing"]["kind"] == "neighbourhood" else m.topics


def add_audience_steps(
    dialog: Dialog, question: str, card: Callable[[], Step]
) -> tuple[Step, Step]:
    """Add the "audience" and "pick" steps to ``dialog``; ``question`` (marked with N_) is
    the first step's prompt, ``card()`` the step both return to. Returns the two steps."""

    async def render_audience(ctx: Ctx) -> Reply:
        m = ctx.config.municipality
        # TRANSLATORS: a button label, at most 20 characters.
        buttons = [[audience.button(ctx._("Everyone"), "all")]]
        choices = []
        if m.neighbourhoods:
            # TRANSLATORS: a button label, at most 20 characters.
            choices.append(audience.button(ctx._("Neighbourhoods"), "neighbourhood"))
        if m.topics:
            # TRANSLATORS: a button label, at most 20 characters.
            choices.append(audience.button(ctx._("Topics"), "topic"))
        if choices:
            buttons.append(choices)
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([audience.button(ctx._("Back"), BACK)])
        return Reply(ctx._(question), buttons)

    async def on_audience(ctx: Ctx, value: str) -> None:
        if value == "all":
            ctx.data["audience"] = {"kind": "all", "keys": []}
            await enter(ctx, card())
        elif value in ("neighbourhood", "topic"):
            current = ctx.data.get("audience", {})
            keys = current.get("keys", []) if current.get("kind") == value else []
            ctx.data["choosing"] = {"kind": value, "keys": keys}
            await enter(ctx, pick)
        elif value == BACK:
            await enter(ctx, card())
        else:
            await ask_again(ctx, audience)

    async def render_pick(ctx: Ctx) -> Reply:
        choosing = ctx.data.get("choosing") or {"kind": "topic", "keys": []}
        ctx.data["choosing"] = choosing
        buttons = choice_buttons(ctx, pick, _items(ctx), set(choosing["keys"]))
        # TRANSLATORS: a button label, at most 20 characters.
        done = ctx._("Done")
        # TRANSLATORS: a button label, at most 20 characters.
        back = ctx._("Back")
        buttons.append([pick.button(done, DONE), pick.button(back, BACK)])
        if choosing["kind"] == "neighbourhood":
            prompt = ctx._("Tap the neighbourhoods to include, then press Done.")
        else:
            prompt = ctx._("Tap the topics to include, then press Done.")
        return Reply(prompt, buttons, keep_apart=True, pinned_rows=1)

    async def on_pick(ctx: Ctx, value: str) -> None:
        choosing = ctx.data.get("choosing")
        if not choosing or value == BACK:
            ctx.data.pop("choosing", None)
            await enter(ctx, audience)
        elif value == DONE:
            if not choosing["keys"]:
                await ask_again(ctx, pick, CHOOSE_ONE)
                return
            ctx.data["audience"] = ctx.data.pop("choosing")
            await enter(ctx, card())
        elif find(_items(ctx), value) is not None:
            choosing["keys"] = toggle(list(choosing["keys"]), value)
            await enter(ctx, pick, replace=True)
        else:
            await ask_again(ctx, pick)

    audience = dialog.step("audience", render_audience, on_button=on_audience)
    pick = dialog.step("pick", render_pick, on_button=on_pick)
    return audience, pick
