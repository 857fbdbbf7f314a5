"""The dialog engine: declared steps, state kept in the database.

A dialog is a set of named steps; each step renders a prompt and handles
what the resident sends while it is current. The state is the string
``"dialog:step"`` plus a small JSON dict, saved with the resident's row, so
a restart or another worker resumes the conversation where it was.

Buttons carry ``"dialog:step~nonce:value"``. The nonce names the dialog's
instance (a new one for each start), so a press on a button of a step that is
no longer current, or of an earlier instance of the same step (yesterday's
draft's "Send"), is recognised as stale and answered plainly: an old message
can never act twice, out of turn, or on another draft.

The engine, not each dialog, fits a step's prompt to the channel
(``ctx.capabilities``): where the channel cannot edit, a prompt meant to replace
the message is sent anew and the old message's buttons expire (a new nonce);
buttons that do not fit one message are paged with "More…" / "‹ Previous",
the page kept in the dialog's data, so no dialog ever drops a choice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replaced
from typing import Any

from bot.core.i18n import N_
from bot.core.messages import Button, Incoming, Kind, Reply
from dialogs.context import Ctx

log = logging.getLogger(__name__)

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
# TRANSLATORS: a button label, at most 20 characters: shows the next buttons of a long list.
MORE = N_("More…")
# TRANSLATORS: a button label, at most 20 characters: shows the buttons before, in a long list.
PREVIOUS = N_("‹ Previous")

# The engine's own keys in a dialog's data; a dialog's keys never start with "_".
NONCE = "_nonce"
PAGE = "_page"
PAGE_VALUE = "_p"  # a page button's value: "_p2" shows the third page


@dataclass(frozen=True, slots=True)
class Step:
    state: str  # "dialog:step"
    render: Render
    on_button: OnButton | None = None
    on_text: OnText | None = None
    on_photo: OnPhoto | None = None
    # False for a step whose buttons act alike from any instance and may be shown to
    # someone not stored yet (the first question), so there is no instance to name.
    nonce: bool = True

    def button(self, label: str, value: str) -> Button:
        """A button of this step; the engine adds the instance's nonce when it shows it."""
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
        nonce: bool = True,
    ) -> Step:
        step = Step(f"{self.name}:{name}", render, on_button, on_text, on_photo, nonce)
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


def _dialog_of(state: str) -> str:
    return state.split(":", 1)[0]


def _new_nonce(ctx: Ctx) -> str:
    """Six characters, never the current one: an old instance's buttons cannot match."""
    while (nonce := secrets.token_urlsafe(4)) == ctx.data.get(NONCE):
        pass
    return nonce


async def begin(ctx: Ctx, step: Step, data: dict[str, Any]) -> None:
    """Start a new instance of ``step``'s dialog: no button of an earlier one acts on it."""
    nonce = _new_nonce(ctx)
    ctx.set_state(step.state, {**data, NONCE: nonce})
    await show(ctx, step)


async def enter(
    ctx: Ctx, step: Step, data: dict[str, Any] | None = None, *, replace: bool = False
) -> None:
    """Make ``step`` current and show its prompt; ``replace`` edits the message pressed on.

    Within one dialog the instance (its nonce) goes on; entering another dialog's
    step starts a new instance. Re-entering the current step keeps its page.
    """
    before_state, before = ctx.state, ctx.data
    nonce = before.get(NONCE) if _dialog_of(before_state) == _dialog_of(step.state) else None
    page = before.get(PAGE) if before_state == step.state else None
    ctx.set_state(step.state, data)
    ctx.data.pop(PAGE, None)
    ctx.data[NONCE] = nonce or _new_nonce(ctx)
    if page:
        ctx.data[PAGE] = page
    await show(ctx, step, replace=replace)


async def show(ctx: Ctx, step: Step, *, replace: bool = False) -> None:
    """Render ``step`` (the current one) for this channel and answer with it."""
    reply = await step.render(ctx)
    if replace and not ctx.capabilities.can_edit:
        # Sent anew, the old message stays on screen with its buttons: a new nonce
        # makes them expire, so none of them acts on what the new message shows.
        ctx.data[NONCE] = _new_nonce(ctx)
    reply.replace = replace
    if step.nonce:
        reply = _stamp(reply, step.state, ctx.data.get(NONCE, ""))
    tag = f"{step.state}~{ctx.data.get(NONCE, '')}" if step.nonce else step.state
    page = ctx.data.get(PAGE, 0)
    ctx.answer(paged(ctx, reply, page, lambda n: f"{tag}:{PAGE_VALUE}{n}"))


def _stamp(reply: Reply, state: str, nonce: str) -> Reply:
    prefix = state + ":"
    rows = [
        [
            Button(b.label, f"{state}~{nonce}:{b.payload[len(prefix) :]}")
            if b.payload.startswith(prefix)
            else b
            for b in row
        ]
        for row in reply.buttons
    ]
    return replaced(reply, buttons=rows)


def paged(ctx: Ctx, reply: Reply, page: int, to_page: Callable[[int], str]) -> Reply:
    """``reply`` with only its ``page``-th page of buttons where they do not all fit the
    channel; ``to_page(n)`` is the payload of a button that shows page n."""
    caps = ctx.capabilities
    pages = paginate(reply.buttons, reply.pinned_rows, caps.buttons_per_message)
    for button in reply.all_buttons():
        # Neither can happen with a checked configuration and catalog (the tests render
        # every step under the strictest limits); if it does, say so rather than fail.
        if len(button.payload.encode()) > caps.payload_bytes:
            log.error("button payload over %s bytes: %r", caps.payload_bytes, button.payload)
        if len(button.label) > caps.label_length:
            log.warning("button label over %s characters: %r", caps.label_length, button.label)
    if len(pages) == 1:
        return reply
    page = min(max(page, 0), len(pages) - 1)
    choices, pinned = pages[page]
    nav = []
    if page > 0:
        nav.append(Button(ctx._(PREVIOUS), to_page(page - 1)))
    if page < len(pages) - 1:
        nav.append(Button(ctx._(MORE), to_page(page + 1)))
    return replaced(reply, buttons=[*choices, nav, *pinned], pinned_rows=0)


Rows = list[list[Button]]


def paginate(
    rows: Sequence[Sequence[Button]], pinned_rows: int, limit: int
) -> list[tuple[Rows, Rows]]:
    """Split button rows into pages of at most ``limit`` buttons, counting one or two
    page buttons (previous, more) on each page but the only one.

    Each page is (its rows of choices, the pinned rows): the last ``pinned_rows`` rows
    are on every page; the choices before them appear once each, in order, rows kept
    whole where they fit. Where the pinned rows leave no room, everything is paged.
    """
    all_rows = [list(row) for row in rows if row]
    if sum(len(row) for row in all_rows) <= limit:
        return [(all_rows, [])]
    split = len(all_rows) - min(max(pinned_rows, 0), len(all_rows))
    choices, pinned = all_rows[:split], all_rows[split:]
    if sum(len(row) for row in pinned) + 3 > limit:  # room for two page buttons and one choice
        choices, pinned = all_rows, []
    fixed = sum(len(row) for row in pinned)
    widest = max(1, limit - fixed - 2)
    units = [row[i : i + widest] for row in choices for i in range(0, len(row), widest)]
    pages: list[tuple[Rows, Rows]] = []
    index = 0
    while index < len(units):
        room = limit - fixed - (1 if pages else 0)
        rest = units[index:]
        if sum(len(unit) for unit in rest) <= room:
            pages.append((rest, pinned))
            break
        room -= 1  # the "More…" button
        page: Rows = []
        used = 0
        while index < len(units) and used + len(units[index]) <= room:
            page.append(units[index])
            used += len(units[index])
            index += 1
        pages.append((page, pinned))
    return pages


async def ask_again(ctx: Ctx, step: Step, notice: str = USE_BUTTONS) -> None:
    """Say why the answer did not fit, then put the same question again."""
    ctx.answer(ctx._(notice))
    await show(ctx, step)


async def show_current(ctx: Ctx, registry: Registry) -> bool:
    """Show the current step's prompt again; False when no dialog is active."""
    step = registry.step(ctx.state) if ctx.state else None
    if step is None:
        return False
    await show(ctx, step)
    return True


def _split(payload: str) -> tuple[str, str, str]:
    """A step button's payload as (state, nonce, value); the nonce is "" where none is."""
    tagged, _, value = payload.rpartition(":")
    state, _, nonce = tagged.partition("~")
    return state, nonce, value


def _page_of(value: str) -> int | None:
    digits = value.removeprefix(PAGE_VALUE)
    return int(digits) if value.startswith(PAGE_VALUE) and digits.isdigit() else None


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
        state, nonce, value = _split(incoming.payload)
        if (
            step is None
            or state != step.state
            or step.on_button is None
            or (step.nonce and nonce != ctx.data.get(NONCE, ""))
        ):
            ctx.answer(ctx._(EXPIRED))
            if step is None or not await show_current(ctx, registry):
                await on_lost(ctx)
            return True
        page = _page_of(value)
        if page is not None:
            ctx.data[PAGE] = page
            await show(ctx, step, replace=True)
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
