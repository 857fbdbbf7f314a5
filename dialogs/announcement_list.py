"""The staff's list of announcements: waiting for an admin, scheduled, recently
sent with their figures; cancel one not yet gone, confirm or decline an
urgent one.

Buttons carry the announcement's id and are stateless: the storage call
decides under a row lock, so an old button or two staff pressing at once
get a plain answer ("already cancelled", "too late"), never a double effect.
A long list is paged by the engine; a page button carries its page
(``staff:list:2``), so it too works from any message.
"""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.messages import Button, Reply
from dialogs.announce import (
    APPROVERS,
    actor,
    audience_label,
    progress_text,
    role,
    snippet,
    status_text,
)
from dialogs.context import Ctx
from dialogs.engine import paged
from storage import announcements, deliveries
from storage.models import Announcement

LIST = "staff:list"
CANCEL = "staff:cancel"
APPROVE = "staff:approve"
DECLINE = "staff:decline"

# The push that tells the author (rendered by dialogs.pushes); params: verdict.
DECIDED_NOTE = "announcement_decided"
DECIDED = {
    "approve": N_(
        "An admin confirmed your urgent announcement #{id}: it will go out as scheduled."
    ),
    "decline": N_("An admin declined your urgent announcement #{id}: it will not be sent."),
}


def _line(ctx: Ctx, row: Announcement) -> str:
    zone = ctx.config.municipality.zone
    parts = [
        f"#{row.id}",
        ctx.tr.moment(row.send_at, zone),
        audience_label(ctx, row.audience),
    ]
    if row.urgent:
        parts.append(ctx._("urgent"))
    return " · ".join(parts) + "\n" + snippet(row.texts.get("lv", ""))


async def show(ctx: Ctx, *, replace: bool = False, page: int = 0) -> None:
    seen = await announcements.overview()
    admin = await role(ctx) in APPROVERS
    lines: list[str] = []
    buttons: list[list[Button]] = []
    if seen.pending:
        lines += ["", ctx._("Waiting for an admin's confirmation:")]
        for row in seen.pending:
            lines.append(_line(ctx, row) + "\n" + ctx._("by {author}", author=row.author))
            if admin:
                # TRANSLATORS: a button label, at most 20 characters with the number.
                confirm = ctx._("Confirm #{id}", id=row.id)
                # TRANSLATORS: a button label, at most 20 characters with the number.
                decline = ctx._("Decline #{id}", id=row.id)
                buttons.append(
                    [Button(confirm, f"{APPROVE}:{row.id}"), Button(decline, f"{DECLINE}:{row.id}")]
                )
            else:
                # TRANSLATORS: a button label, at most 20 characters with the number.
                buttons.append([Button(ctx._("Cancel #{id}", id=row.id), f"{CANCEL}:{row.id}")])
    if seen.scheduled:
        lines += ["", ctx._("Scheduled:")]
        for row in seen.scheduled:
            lines.append(_line(ctx, row))
            # TRANSLATORS: a button label, at most 20 characters with the number.
            buttons.append([Button(ctx._("Cancel #{id}", id=row.id), f"{CANCEL}:{row.id}")])
    if seen.recent:
        lines += ["", ctx._("Recently sent:")]
        for row, counts in seen.recent:
            lines.append(progress_text(ctx.tr, row, counts, finished=row.state != "released"))
            if row.state == "released":
                # TRANSLATORS: a button label, at most 20 characters with the number.
                stop = ctx._("Stop sending #{id}", id=row.id)
                buttons.append([Button(stop, f"{CANCEL}:{row.id}")])
    if not lines:
        lines = ["", ctx._("There are no announcements yet. Use /announce to write one.")]
    head = ctx._("Announcements")
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([Button(ctx._("Refresh"), LIST)])
    reply = Reply("\n".join([head, *lines]), buttons, replace=replace, pinned_rows=1)
    ctx.answer(paged(ctx, reply, page, lambda n: f"{LIST}:{n}"))


def page_of(ctx: Ctx) -> int:
    """The page a list button asks for: ``staff:list:2``; the first one for ``staff:list``."""
    asked = ctx.incoming.payload.split(":")[2:3]
    return int(asked[0]) if asked and asked[0].isdigit() else 0


def _id(ctx: Ctx) -> tuple[int | None, str]:
    """The announcement id and what follows it in a staff button's payload."""
    parts = ctx.incoming.payload.split(":")
    if len(parts) < 3 or not parts[2].isdigit():
        return None, ""
    return int(parts[2]), ":".join(parts[3:])


async def ask_cancel(ctx: Ctx) -> None:
    announcement_id, confirmed = _id(ctx)
    row = await announcements.get(announcement_id) if announcement_id else None
    if row is None:
        ctx.answer(ctx._("There is no such announcement."))
        return
    going_out = row.state == "released"
    if confirmed != "yes":
        if going_out:
            question = ctx._(
                "Stop sending this announcement? Residents who already got it keep it."
            )
            # TRANSLATORS: a button label, at most 20 characters.
            yes = ctx._("Yes, stop it")
        else:
            question = ctx._("Cancel this announcement?")
            # TRANSLATORS: a button label, at most 20 characters.
            yes = ctx._("Yes, cancel it")
        # TRANSLATORS: a button label, at most 20 characters.
        keep = ctx._("No, keep it")
        buttons = [[Button(yes, f"{CANCEL}:{row.id}:yes"), Button(keep, LIST)]]
        ctx.answer(Reply(f"{question}\n\n{_line(ctx, row)}", buttons, replace=True))
        return
    outcome, row = await announcements.cancel(row.id, actor(ctx))
    assert row is not None
    if outcome == "gone":
        ctx.answer(ctx._("Too late: announcement #{id} has already gone out.", id=row.id))
    elif outcome == "already":
        ctx.answer(ctx._("Announcement #{id} was already cancelled.", id=row.id))
    elif going_out:
        figures = await deliveries.counts(deliveries.ANNOUNCEMENT, row.id)
        ctx.answer(Reply(progress_text(ctx.tr, row, figures, finished=True), replace=True))
    else:
        ctx.answer(Reply(status_text(ctx.tr, row, ctx.config.municipality.zone), replace=True))


async def decide(ctx: Ctx, verdict: str) -> None:
    """An admin confirms or declines an urgent announcement; its author is told."""
    announcement_id, _ = _id(ctx)
    if announcement_id is None:
        ctx.answer(ctx._("There is no such announcement."))
        return
    decision = announcements.approve if verdict == "approve" else announcements.decline
    outcome, row = await decision(announcement_id, actor(ctx))
    if row is None:
        ctx.answer(ctx._("There is no such announcement."))
        return
    if outcome in ("gone", "already"):
        ctx.answer(
            ctx._(
                "Someone else has already decided on announcement #{id}; it is now {state}.",
                id=row.id,
                state=_state_name(ctx, row.state),
            )
        )
        return
    if verdict == "approve":
        ctx.answer(ctx._("Confirmed: announcement #{id} goes out at its time.", id=row.id))
    else:
        ctx.answer(ctx._("Declined: announcement #{id} will not be sent.", id=row.id))
    author = tuple(row.author.split(":", 1))
    if len(author) == 2 and author != (ctx.incoming.channel, ctx.incoming.user_id):
        await announcements.notify([(author[0], author[1])], row.id, DECIDED_NOTE, verdict=verdict)
    await show(ctx)


def _state_name(ctx: Ctx, state: str) -> str:
    names = {
        "pending": ctx._("waiting for an admin"),
        "scheduled": ctx._("scheduled"),
        "released": ctx._("going out"),
        "done": ctx._("sent"),
        "cancelled": ctx._("cancelled"),
    }
    return names.get(state, state)
