"""The [delivery] answer wait: how long, in all, an answer may wait for Telegram."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import ConfigError, load


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_an_answer_waits_a_minute_at_most_unless_set(tmp_path: Path) -> None:
    assert load(None, {}).delivery.answer_wait_seconds == 60
    configured = load(write(tmp_path, "[delivery]\nanswer_wait_seconds = 15\n"), {})
    assert configured.delivery.answer_wait_seconds == 15
    assert load("config.example.toml", {}).delivery.answer_wait_seconds == 60


@pytest.mark.parametrize(
    ("value", "read"),
    [("0", 0), ("601", 601), ('"a minute"', "a minute"), ("true", True), ("1.5", 1.5)],
)
def test_an_answer_wait_outside_a_second_to_ten_minutes_is_refused(
    tmp_path: Path, value: str, read: object
) -> None:
    """Longer than ten minutes, an update would hold one of the bot's concurrent slots
    for that long; a whole number of seconds, as the other settings."""
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, f"[delivery]\nanswer_wait_seconds = {value}\n"), {})
    error = raised.value
    assert (error.key, error.value, error.expected) == (
        "delivery.answer_wait_seconds",
        read,
        "a whole number from 1 to 600",
    )
