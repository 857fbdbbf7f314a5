"""Announcements as staff handle them: schedule, confirm, cancel, follow.

Delivery itself (release, claim, send) is ``storage.deliveries``; this module
is the staff side of the same rows. Every change a staff member makes is
written to the audit log in the same transaction, and each is row-locked, so
two staff members pressing at once get one effect and a plain answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from storage import deliveries, staff
from storage.models import Announcement, ChannelIdentity, Delivery, StaffMember

Outcome = Literal["done", "already", "gone", "missing"]

# Sources (and templates) of the pushes about an announcement other than its own rows.
REPORT = "announcement_report"  # the staff's progress report, edited in place
NOTE = "announcement_note"  # a note to staff: confirm it, or it was decided


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Draft:
    """What a staff member composed, ready to schedule."""

    texts: dict[str, str]
    audience: dict[str, Any]
    send_at: datetime
    urgent: bool = False
    image: str = ""
    image_channel: str = ""
    image_media: str = ""


async def schedule(
    draft: Draft, *, author: str, approved_by: str = "", report: dict[str, Any] | None = None
) -> Announcement:
    """Save a confirmed announcement; an urgent one without an admin's approval waits."""
    pending = draft.urgent and not approved_by
    async with in_transaction():
        announcement = await Announcement.create(
            author=author,
            texts=draft.texts,
            audience=draft.audience,
            send_at=draft.send_at,
            urgent=draft.urgent,
            image=draft.image,
            image_channel=draft.image_channel,
            image_media=draft.image_media,
            state="pending" if pending else "scheduled",
            approved_by=approved_by,
            report=report or {},
        )
        await staff.record(
            author,
            "announcement.create",
            {
                "id": announcement.id,
                "audience": draft.audience,
                "urgent": draft.urgent,
                "send_at": draft.send_at.isoformat(),
                "state": announcement.state,
            },
        )
    return announcement


async def get(announcement_id: int) -> Announcement | None:
    return await Announcement.get_or_none(id=announcement_id)


async def _decide(
    announcement_id: int, actor: str, *, approve: bool
) -> tuple[Outcome, Announcement | None]:
    """An admin's verdict on a pending urgent announcement; the first verdict wins."""
    async with in_transaction():
        row = await Announcement.select_for_update().get_or_none(id=announcement_id)
        if row is None:
            return "missing", None
        if row.state != "pending":
            return "already", row
        if approve:
            row.state, row.approved_by = "scheduled", actor
        else:
            row.state, row.cancelled_by = "cancelled", actor
        row.report_at = None  # the author's report says so once more (bot.progress)
        await row.save(update_fields=["state", "approved_by", "cancelled_by", "report_at"])
        action = "announcement.approve" if approve else "announcement.decline"
        await staff.record(actor, action, {"id": row.id})
        return "done", row


async def approve(announcement_id: int, actor: str) -> tuple[Outcome, Announcement | None]:
    """An admin confirms an urgent announcement: it goes out at its time, quiet hours or not."""
    return await _decide(announcement_id, actor, approve=True)


async def decline(announcement_id: int, actor: str) -> tuple[Outcome, Announcement | None]:
    return await _decide(announcement_id, actor, approve=False)


async def cancel(announcement_id: int, actor: str) -> tuple[Outcome, Announcement | None]:
    """Cancel one before it goes out, or stop one going out: whoever has not got it yet
    will not (a send already on the wire completes). Once done it is too late ("gone")."""
    async with in_transaction():
        row = await Announcement.select_for_update().get_or_none(id=announcement_id)
        if row is None:
            return "missing", None
        if row.state == "cancelled":
            return "already", row
        if row.state not in ("pending", "scheduled", "released"):
            return "gone", row
        stopped = 0
        if row.state == "released":
            stopped = await Delivery.filter(
                source_kind=deliveries.ANNOUNCEMENT,
                source_id=row.id,
                state__in=("queued", "sending", "waiting", "digested"),
            ).update(state="cancelled", error="stopped by staff")
        row.state, row.cancelled_by, row.report_at = "cancelled", actor, None
        await row.save(update_fields=["state", "cancelled_by", "report_at"])
        await staff.record(actor, "announcement.cancel", {"id": row.id, "stopped": stopped})
        return "done", row


@dataclass(frozen=True, slots=True)
class Overview:
    pending: list[Announcement]
    scheduled: list[Announcement]
    recent: list[tuple[Announcement, dict[str, int]]]  # with their delivery figures


async def overview(recent: int = 5, limit: int = 20) -> Overview:
    """What staff see in the list: waiting for an admin, scheduled, recently sent."""
    pending = await Announcement.filter(state="pending").order_by("send_at", "id").limit(limit)
    scheduled = await Announcement.filter(state="scheduled").order_by("send_at", "id").limit(limit)
    latest = (
        await Announcement.filter(released_at__isnull=False)
        .order_by("-released_at", "-id")
        .limit(recent)
    )
    figures = [(row, await deliveries.counts(deliveries.ANNOUNCEMENT, row.id)) for row in latest]
    return Overview(list(pending), list(scheduled), figures)


async def admin_accounts() -> list[tuple[str, str]]:
    rows = await StaffMember.filter(role="admin").values_list("channel", "external_id")
    return [(str(channel), str(external_id)) for channel, external_id in rows]


async def notify(
    accounts: Iterable[tuple[str, str]], announcement_id: int, template: str, **params: Any
) -> int:
    """Queue a short note about an announcement to staff accounts (an admin asked to
    confirm it, its author told of the verdict); returns how many were queued.

    It goes through the outbox like any push (so a blocked or closed chat
    waits, and nothing is lost), rendered in each one's language when it is
    sent; personal and past quiet hours, because a decision is waited on. One
    note of a kind per announcement and account, however often this is called.
    """
    recipients = await deliveries.staff_accounts(accounts)
    if not recipients:
        return 0
    push = deliveries.Push(
        NOTE,
        announcement_id,
        f"announcement:{announcement_id}:{template}",
        template,
        {"announcement": announcement_id, **params},
        priority=deliveries.PERSONAL,
        quiet_exempt=True,
    )
    return await deliveries.queue(push, recipients)


async def reports_due(every: timedelta, now: datetime | None = None) -> list[Announcement]:
    """Announcements whose report this worker should refresh now: those going out,
    and, once, those just cancelled or stopped (``cancel`` clears ``report_at``).

    Each is claimed by moving ``report_at`` forward only if it was older than
    ``every``, so with several workers one of them refreshes at a time.
    """
    moment = now or _now()
    claimed: list[Announcement] = []
    due = Announcement.filter(
        Q(state="released") | Q(state="cancelled", report_at__isnull=True)
    ).order_by("id")
    for row in await due:
        stale = (
            Announcement.filter(id=row.id, report_at__isnull=True)
            if row.report_at is None
            else Announcement.filter(id=row.id, report_at__lte=moment - every)
        )
        if await stale.update(report_at=moment):
            claimed.append(row)
    return claimed


async def queue_report(row: Announcement) -> bool:
    """Queue an edit of the staff's report message, to show the figures as they are when
    it is sent; False when one is queued already, or there is no report to edit.

    Through the outbox like every push: paced, and skipped by the worker when
    the text has not changed. Personal (it goes before a broadcast's rows)
    and past quiet hours; a report the platform will not edit any more is
    given up ("drop"), not sent anew.
    """
    report = row.report
    channel, chat, message = report.get("channel"), report.get("chat"), report.get("message")
    if not (channel and chat and message):
        return False
    identity = await ChannelIdentity.get_or_none(channel=channel, external_id=chat)
    if identity is None:
        return False
    push = deliveries.Push(
        REPORT,
        row.id,
        f"announcement:{row.id}:report",
        REPORT,
        # The language the staff member composed in: the report's, if they chose none.
        {"announcement": row.id, "language": report.get("language", "")},
        priority=deliveries.PERSONAL,
        quiet_exempt=True,
        if_edit_refused="drop",
    )
    recipient = (identity.resident_id, channel, chat)  # type: ignore[attr-defined]
    return await deliveries.queue_edit(push, recipient, message)


async def finish(announcement_id: int) -> bool:
    """Every delivery of a released announcement has an outcome: call it done."""
    return bool(
        await Announcement.filter(id=announcement_id, state="released").update(state="done")
    )
