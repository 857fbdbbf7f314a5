"""Reading a date and time a staff member typed, in the municipality's zone.

People write "1.12.2026 10:00" in Latvia, "2026-12-01 10:00" from a
calendar, or just "10:00" for later today; all of these are taken. A time
with no date that has passed today means tomorrow; a date with no year that
has passed this year means next year.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_TIME = r"(?P<hour>\d{1,2})[:.](?P<minute>\d{2})"
_FORMS = (
    re.compile(rf"^(?P<year>\d{{4}})-(?P<month>\d{{1,2}})-(?P<day>\d{{1,2}})(?:\s+|T){_TIME}$"),
    re.compile(rf"^(?P<day>\d{{1,2}})\.(?P<month>\d{{1,2}})\.(?P<year>\d{{4}})?\.?\s+{_TIME}$"),
    re.compile(rf"^{_TIME}$"),
)


class UnreadableTime(ValueError):
    """Not a date and time in a form we know, or not a real one (31.02., 25:00)."""


def parse_local(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment ``text`` names, in UTC; raises UnreadableTime."""
    cleaned = " ".join(text.strip().split())
    local_now = now.astimezone(zone)
    for form in _FORMS:
        match = form.match(cleaned)
        if match is None:
            continue
        parts = match.groupdict()
        try:
            clock = time(int(parts["hour"]), int(parts["minute"]))
            if parts.get("day") is None:
                day = local_now.date()
                if datetime.combine(day, clock, zone) <= local_now:
                    day += timedelta(days=1)
            else:
                year = int(parts["year"]) if parts.get("year") else local_now.year
                day = date(year, int(parts["month"]), int(parts["day"]))
                if parts.get("year") is None and datetime.combine(day, clock, zone) <= local_now:
                    day = date(year + 1, day.month, day.day)
        except ValueError as error:
            raise UnreadableTime(cleaned) from error
        return datetime.combine(day, clock, zone).astimezone(UTC)
    raise UnreadableTime(cleaned)
