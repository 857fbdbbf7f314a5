"""Quiet hours: no non-urgent push between evening and morning, local time."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

DEFAULT_START = time(21, 0)
DEFAULT_END = time(9, 0)


def next_allowed(
    moment: datetime, zone: ZoneInfo, start: time = DEFAULT_START, end: time = DEFAULT_END
) -> datetime:
    """``moment`` itself outside quiet hours, else the end of them (in UTC).

    Works across midnight (21:00–09:00) and within a day (13:00–14:00), and
    on the days clocks change, since the end is built as a local wall time.
    """
    local = moment.astimezone(zone)
    now = local.time()
    if start == end:
        return moment
    crosses_midnight = start > end
    quiet = (now >= start or now < end) if crosses_midnight else (start <= now < end)
    if not quiet:
        return moment
    day = local.date()
    if crosses_midnight and now >= start:
        day += timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
