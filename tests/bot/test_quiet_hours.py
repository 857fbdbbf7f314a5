"""Quiet hours hold a push until morning in the municipality's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from bot.core.quiet_hours import next_allowed

RIGA = ZoneInfo("Europe/Riga")


def riga(*args: int) -> datetime:
    return datetime(*args, tzinfo=RIGA)


def test_a_push_in_the_day_goes_at_once() -> None:
    moment = riga(2026, 11, 25, 14, 30)
    assert next_allowed(moment, RIGA) == moment


def test_a_push_in_the_evening_waits_for_nine_next_morning() -> None:
    assert next_allowed(riga(2026, 11, 25, 21, 0), RIGA) == riga(2026, 11, 26, 9, 0)
    assert next_allowed(riga(2026, 11, 25, 23, 59), RIGA) == riga(2026, 11, 26, 9, 0)


def test_a_push_after_midnight_waits_for_nine_the_same_morning() -> None:
    assert next_allowed(riga(2026, 11, 26, 3, 15), RIGA) == riga(2026, 11, 26, 9, 0)
    assert next_allowed(riga(2026, 11, 26, 9, 0), RIGA) == riga(2026, 11, 26, 9, 0)


def test_the_answer_is_in_utc_and_respects_summer_time() -> None:
    held = next_allowed(datetime(2026, 7, 1, 20, 0, tzinfo=UTC), RIGA)  # 23:00 in Riga
    assert held == datetime(2026, 7, 2, 6, 0, tzinfo=UTC)  # 09:00 EEST
    assert held.tzinfo == UTC


def test_the_night_the_clocks_go_back_still_ends_at_nine_local() -> None:
    # 25 October 2026: Riga goes from EEST (+3) to EET (+2) at 04:00.
    held = next_allowed(riga(2026, 10, 24, 22, 0), RIGA)
    assert held == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_quiet_hours_may_lie_within_one_day() -> None:
    lunch = (time(13, 0), time(14, 0))
    assert next_allowed(riga(2026, 11, 25, 13, 30), RIGA, *lunch) == riga(2026, 11, 25, 14, 0)
    assert next_allowed(riga(2026, 11, 25, 12, 59), RIGA, *lunch) == riga(2026, 11, 25, 12, 59)
