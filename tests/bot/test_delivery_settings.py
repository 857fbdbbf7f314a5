"""The [delivery] lease: how long a claimed push stays a worker's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import ConfigError, load


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_lease_is_five_minutes_unless_set(tmp_path: Path) -> None:
    assert load(None, {}).delivery.lease_seconds == 300
    assert (
        load(write(tmp_path, "[delivery]\nlease_seconds = 120\n"), {}).delivery.lease_seconds == 120
    )
    assert load("config.example.toml", {}).delivery.lease_seconds == 300


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("10", 10),
        ("100000", 100_000),
        ('"five minutes"', "five minutes"),
        ("true", True),
        ("90.5", 90.5),
    ],
)
def test_a_lease_shorter_than_a_minute_or_not_whole_seconds_is_refused(
    tmp_path: Path, value: str, read: object
) -> None:
    """Shorter than a minute, a worker's rows could be taken from it while it still sends."""
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, f"[delivery]\nlease_seconds = {value}\n"), {})
    error = raised.value
    assert (error.key, error.value, error.expected) == (
        "delivery.lease_seconds",
        read,
        "a whole number from 60 to 86400",
    )
