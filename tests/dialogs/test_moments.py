"""Dates and times as staff type them, read in the municipality's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dialogs.moments import UnreadableTime, parse_local

RIGA = ZoneInfo("Europe/Riga")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 14:00 in Riga


@pytest.mark.parametrize(
    ("typed", "expected_local"),
    [
        ("1.12.2026 10:00", datetime(2026, 12, 1, 10, 0)),
        ("01.12.2026. 10.00", datetime(2026, 12, 1, 10, 0)),
        ("2026-12-01 10:00", datetime(2026, 12, 1, 10, 0)),
        ("2026-12-01T10:00", datetime(2026, 12, 1, 10, 0)),
        ("  1.12.  9:05 ", datetime(2026, 12, 1, 9, 5)),
        ("15:30", datetime(2026, 11, 25, 15, 30)),  # still to come today
        ("10:00", datetime(2026, 11, 26, 10, 0)),  # passed today: tomorrow
        ("1.11. 10:00", datetime(2027, 11, 1, 10, 0)),  # passed this year: next year
        (
            "29.3.2026 3:30",
            datetime(2026, 3, 29, 4, 30),
        ),  # the spring-forward gap, as Python reads it
    ],
)
def test_typed_moments_are_read_in_the_municipalitys_zone(
    typed: str, expected_local: datetime
) -> None:
    moment = parse_local(typed, NOW, RIGA)
    assert moment.tzinfo == UTC
    assert moment.astimezone(RIGA).replace(tzinfo=None) == expected_local


@pytest.mark.parametrize(
    "typed", ["tomorrow", "31.02.2027 10:00", "1.12.2026 25:00", "10:61", "2026-13-01 10:00", ""]
)
def test_what_is_not_a_moment_is_refused(typed: str) -> None:
    with pytest.raises(UnreadableTime):
        parse_local(typed, NOW, RIGA)
