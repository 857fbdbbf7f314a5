"""The dialog engine: declared steps, state kept in the database.

A dialog is a set of named steps; each step renders a prompt and handles
what the resident sends while it is current. The state is the string
``"dialog:step"`` plus a small JSON dict, saved with the resident's row, so
a restart or another worker resumes the conversation where it was.

Buttons carry ``"dialog:step:value"``: a press on a button of a step that is
no longer current is recognised as stale and answered plainly, so an old
message can never act twice or out of turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.i18n import N_
from bot.core.messages import Button, Incoming, Kind, Reply
from dialogs.context import Ctx

Render = Callable[[Ctx], Awaitable[Reply]]
OnButton = Callable[[Ctx, str], Awaitable[None]]
OnText = Callable[[Ctx, str], Awaitable[None]]
OnPhoto = Callable[[Ctx, str], Awaitable[None]]  # the platform's file id

EXPIRED = N_(
    "That button belongs to an earlier question and has expired. Here is where we are now:"
)
USE_BUTTONS = N_("Please choose one of the buttons below.")
CANNOT_READ = N_("I can only read text and buttons here. Please choose one of the buttons below.")
RESTARTED = N_("Sorry, I lost track of our conversation. Let's continue from here.")


@dataclass(frozen=True, slots=True)
class Step:
    state: str  # "dialog:step"
    render: Render
    on_button: OnButton | None = None
    on_text: OnText | None = None
    on_photo: OnPhoto | None = None

    def button(self, label: str, value: str) -> Button:
        return Button(label, f"{self.state}:{value}")


@dataclass(slots=True)
class Dialog:
    name: str
    # A staff dialog names the roles that may use it; every update to it is
    # checked on the server, so a forged button or a revoked role stops here.
    roles: frozenset[str] | None = None
    steps: dict[str, Step] = field(default_factory=dict)

    def step(
        self,
        name: str,
        render: Render,
        *,
        on_button: OnButton | None = None,
        on_text: OnText | None = None,
        on_photo: OnPhoto | None = None,
    ) -> Step:
        step = Step(f"{self.name}:{name}", render, on_button, on_text, on_photo)
        self.steps[step.state] = step
        return step


@dataclass(frozen=True, slots=True)
class Registry:
    """Every dialog of the bot, looked up by state or button payload."""

    dialogs: tuple[Dialog, ...]

    def step(self, state: str) -> Step | None:
        name = state.split(":", 1)[0]
        for dialog in self.dialogs:
            if dialog.name == name:
                return dialog.steps.get(state)
        return None

    def owns(self, payload: str) -> bool:
        return self.dialog(payload) is not None

    def dialog(self, state_or_payload: str) -> Dialog | None:
        name = state_or_payload.split(":", 1)[0]
        return next((dialog for dialog in self.dialogs if dialog.name == name), None)

    def target(self, state: str, incoming: Incoming) -> Dialog | None:
        """The dialog an update goes to: a dialog button's own, else the current one."""
        if incoming.kind is Kind.BUTTON and (pressed := self.dialog(incoming.payload)):
            return pressed
        return self.dialog(state) if state else None


async def enter(
    ctx: Ctx, step: Step, data: dict[str, Any] | None = None, *, replace: bool = False
) -> None:
    """Make ``step`` current and show its prompt."""
    ctx.set_state(step.state, data)
    reply = await step.render(ctx)
    reply.replace = replace
    ctx.answer(reply)


async def ask_again(ctx: Ctx, step: Step, notice: str = USE_BUTTONS) -> None:
    """Say why the answer did not fit, then put the same question again."""
    ctx.answer(ctx._(notice))
    ctx.answer(await step.render(ctx))


async def show_current(ctx: Ctx, registry: Registry) -> bool:
    """Show the current step's prompt again; False when no dialog is active."""
    step = registry.step(ctx.state) if ctx.state else None
    if step is None:
        return False
    ctx.answer(await step.render(ctx))
    return True


def _split(payload: str) -> tuple[str, str]:
    state, _, value = payload.rpartition(":")
    return state, value


async def handle(ctx: Ctx, registry: Registry, on_lost: Callable[[Ctx], Awaitable[None]]) -> bool:
    """Give the update to the current step (or say why it cannot be).

    Returns False when the update is not for a dialog: no dialog is active
    and it is not a dialog button.
    """
    incoming = ctx.incoming
    is_dialog_button = incoming.kind is Kind.BUTTON and registry.owns(incoming.payload)
    if not ctx.state and not is_dialog_button:
        return False
    step = registry.step(ctx.state) if ctx.state else None
    if ctx.state and step is None:
        # A deploy renamed or removed the step this resident was on.
        ctx.clear_state()
        ctx.answer(ctx._(RESTARTED))
        await on_lost(ctx)
        return True
    if incoming.kind is Kind.BUTTON and is_dialog_button:
        state, value = _split(incoming.payload)
        if step is None or state != step.state or step.on_button is None:
            ctx.answer(ctx._(EXPIRED))
            if step is None or not await show_current(ctx, registry):
                await on_lost(ctx)
            return True
        await step.on_button(ctx, value)
        return True
    assert step is not None
    if incoming.kind is Kind.BUTTON:
        # A button of another kind of message (an old menu, say) while a
        # question is open: say so and ask the question again.
        ctx.answer(ctx._(EXPIRED))
        await show_current(ctx, registry)
        return True
    if incoming.kind is Kind.TEXT and step.on_text is not None:
        await step.on_text(ctx, incoming.text)
        return True
    if incoming.kind is Kind.PHOTO and step.on_photo is not None:
        await step.on_photo(ctx, incoming.photo_id)
        return True
    ctx.answer(ctx._(USE_BUTTONS if incoming.kind is Kind.TEXT else CANNOT_READ))
    await show_current(ctx, registry)
    return True
