"""``/summary``: how each department handles proposals, for those who handle them.

Moderators and admins see every department; a department's staff see their own
(``dialogs.review.handled_departments``). The figures are read when asked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dialogs.context import Ctx
from dialogs.proposal_words import department_name, status_name
from dialogs.review import handled_departments, local_today
from storage import proposal_states as states
from storage import review


def span(ctx: Ctx, value: timedelta | None) -> str:
    """A median time in hours under two days, else in days; "—" where there is none."""
    if value is None:
        return "—"
    hours = value.total_seconds() / 3600
    if hours < 48:
        n = max(1, round(hours))
        return ctx.ngettext("{n} hour", "{n} hours", n)
    n = round(hours / 24)
    return ctx.ngettext("{n} day", "{n} days", n)


def department_text(ctx: Ctx, item: review.DepartmentSummary) -> str:
    counts = ", ".join(
        f"{status_name(ctx.tr, status)} {ctx.tr.number(item.open_by_status[status])}"
        for status in states.STATUSES
        if item.open_by_status.get(status)
    )
    lines = [
        department_name(ctx.config, item.department, ctx.language),
        ctx._("Open: {counts}", counts=counts or "0"),
        ctx._("Overdue: {n}", n=ctx.tr.number(item.overdue)),
        ctx._(
            "Median time to the first answer: {month} (30 days), {year} (365 days)",
            month=span(ctx, item.first_answer.get(30)),
            year=span(ctx, item.first_answer.get(365)),
        ),
        ctx._(
            "Median time to resolution: {month} (30 days), {year} (365 days)",
            month=span(ctx, item.resolution.get(30)),
            year=span(ctx, item.resolution.get(365)),
        ),
    ]
    if item.rating is None:
        lines.append(ctx._("Rating: none yet"))
    else:
        lines.append(
            ctx.ngettext(
                "Rating: {rating} of 5 ({n} answer)",
                "Rating: {rating} of 5 ({n} answers)",
                item.ratings,
                rating=f"{item.rating:.1f}",
            )
        )
    lines.append(ctx._("Reopened: {n}", n=ctx.tr.number(item.reopened)))
    return "\n".join(lines)


async def show(ctx: Ctx) -> None:
    departments = await handled_departments(ctx)
    if departments is None:
        departments = frozenset(d.id for d in ctx.config.proposals.departments)
        wanted = None  # and any department a proposal still names
    else:
        wanted = departments
    rows = await review.summary(wanted, local_today(ctx), datetime.now(UTC))
    known = {row.department for row in rows}
    rows += [review.DepartmentSummary(d) for d in sorted(departments - known)]
    if not rows:
        ctx.answer(ctx._("No proposals yet."))
        return
    head = ctx._("Proposals by department:")
    ctx.answer("\n\n".join([head, *(department_text(ctx, row) for row in rows)]))
