"""The staff's progress report: one message, edited in place while an
announcement goes out, ending with the final figures.

A scheduler job refreshes every announcement that is going out. Each is
claimed in the database first (``announcements.reports_due``), so with
several workers one edits at a time; the message is edited only when its
text changed, so an idle report costs one count query and no API call.
When nothing is queued or being sent any more the announcement is done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from bot.core.channel import Channel
from bot.core.i18n import translator
from bot.core.messages import Reply
from dialogs.announce import progress_text, status_text
from storage import announcements, deliveries

log = logging.getLogger(__name__)

REFRESH_EVERY = timedelta(seconds=3)


async def refresh_reports(
    channels: Mapping[str, Channel], zone: ZoneInfo, every: timedelta = REFRESH_EVERY
) -> int:
    """Refresh what is due; returns how many reports were edited."""
    edited = 0
    for row in await announcements.reports_due(every):
        counts = await deliveries.counts(row.id)
        finished = row.state != "released" or counts["queued"] + counts["sending"] == 0
        if finished and await announcements.finish(row.id):
            log.info("announcement %d: every delivery has an outcome", row.id)
        report = row.report
        channel = channels.get(report.get("channel", ""))
        if channel is None or not report.get("message"):
            continue
        tr = translator(report.get("language", "lv"))
        if row.released_at is None:  # cancelled or declined before it went out
            text = status_text(tr, row, zone)
        else:
            text = progress_text(tr, row, counts, finished)
        if text == report.get("shown"):
            continue
        try:
            ok = await channel.edit(report["chat"], report["message"], Reply(text))
        except Exception as error:  # the platform is down: the next round tries again
            log.warning("announcement %d: the report could not be edited: %s", row.id, error)
            continue
        # A report the platform will not edit any more is given up, not retried forever.
        await announcements.save_report(
            row.id, {**report, "shown": text} if ok else {**report, "message": ""}
        )
        edited += ok
    return edited
