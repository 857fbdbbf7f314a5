"""The staff's progress report: one message, edited in place while an
announcement goes out, ending with the final figures.

A scheduler job looks at every announcement that is going out. Each is
claimed in the database first (``announcements.reports_due``), so with
several workers one looks at a time; it queues an edit of the report
through the outbox (``announcements.queue_report``), like every push: paced
with the rest, and rendered when it is sent, with the figures of that
moment, in the staff member's language (``dialogs.pushes``). An edit that
would not change the text is skipped by the delivery worker without a call
to the platform, so an idle report costs a count query and no API call.
When nothing is queued or being sent any more the announcement is done.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from storage import announcements, deliveries

log = logging.getLogger(__name__)

REFRESH_EVERY = timedelta(seconds=3)


async def refresh_reports(every: timedelta = REFRESH_EVERY) -> int:
    """Queue the report edits that are due; returns how many were queued."""
    queued = 0
    for row in await announcements.reports_due(every):
        counts = await deliveries.counts(deliveries.ANNOUNCEMENT, row.id)
        finished = row.state != "released" or counts["queued"] + counts["sending"] == 0
        if finished and await announcements.finish(row.id):
            log.info("announcement %d: every delivery has an outcome", row.id)
        queued += await announcements.queue_report(row)
    return queued
