"""The two log formats ``iesaiste`` writes: text lines for a person, JSON lines for a log store."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.core import logs
from bot.core.logs import who
from tests.bot.test_log_privacy import restored_logging

__all__ = ["restored_logging"]  # the fixture

TOKEN = "123456:AAE-json_secret_part"
PSID = "27318845120963377"


@pytest.fixture
def log_to(
    request: pytest.FixtureRequest, restored_logging: None
) -> tuple[logging.Logger, io.StringIO]:
    """The root handler ``configure`` installs, in the format the test asks for, into a buffer."""
    logs.configure("DEBUG", [TOKEN], request.param)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)
    return logging.getLogger("iesaiste.test"), buffer


def fail_while_handling(logger: logging.Logger) -> None:
    with logs.about("messenger", PSID, "m_event-7781"):
        logger.info("answering %s", PSID)
        try:
            raise RuntimeError(f"POST /{TOKEN}/messages for {PSID} failed")
        except RuntimeError:
            logger.exception("send failed")
    logger.warning("outside any update")


@pytest.mark.parametrize("log_to", ["json"], indirect=True)
def test_json_lines_carry_time_level_logger_message_channel_event_and_the_exception(
    log_to: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = log_to
    before = datetime.now(UTC)
    fail_while_handling(logger)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    tag = who("messenger", PSID)
    assert [
        {k: v for k, v in line.items() if k not in ("time", "exception")} for line in lines
    ] == [
        {
            "level": "INFO",
            "logger": "iesaiste.test",
            "message": f"answering {tag}",
            "event": "m_event-7781",
            "channel": "messenger",
        },
        {
            "level": "ERROR",
            "logger": "iesaiste.test",
            "message": "send failed",
            "event": "m_event-7781",
            "channel": "messenger",
        },
        {"level": "WARNING", "logger": "iesaiste.test", "message": "outside any update"},
    ]
    exception = lines[1]["exception"]
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith(f"RuntimeError: POST /[redacted]/messages for {tag} failed")
    for line in lines:
        time = datetime.fromisoformat(line["time"])
        assert time.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= time <= datetime.now(UTC)
    assert PSID not in buffer.getvalue() and "json_secret_part" not in buffer.getvalue()


@pytest.mark.parametrize("log_to", ["text"], indirect=True)
def test_text_lines_stay_as_they_were(log_to: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = log_to
    fail_while_handling(logger)
    tag = who("messenger", PSID)
    output = buffer.getvalue()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    first, second, *traceback, last = output.splitlines()
    assert re.fullmatch(rf"{stamp} INFO iesaiste\.test: answering {re.escape(tag)}", first)
    assert re.fullmatch(rf"{stamp} ERROR iesaiste\.test: send failed", second)
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == f"RuntimeError: POST /[redacted]/messages for {tag} failed"
    assert re.fullmatch(rf"{stamp} WARNING iesaiste\.test: outside any update", last)
    assert PSID not in output and "json_secret_part" not in output
