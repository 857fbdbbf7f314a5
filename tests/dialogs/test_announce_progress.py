"""The staff's progress report of an announcement tells apart those waiting for
Messenger's window from the rest, and says nothing of Messenger when none wait there."""

from __future__ import annotations

from bot.core.i18n import translator
from dialogs.announce import progress_text
from storage.models import Announcement
from tests.phrases import GOING_OUT, GOING_OUT_ONE, progress

FIGURES = {"sent": 5, "queued": 1, "sending": 0, "failed": 0, "blocked": 0, "waiting": 4}


def test_the_waiting_for_messenger_are_counted_apart() -> None:
    row = Announcement(id=7, state="released", recipients=10)
    text = progress_text(translator("en"), row, {**FIGURES, "waiting:messenger": 3}, False)
    assert text == progress(
        "en", 7, 10, (GOING_OUT_ONE, GOING_OUT), sent=5, queued=1, waiting=4, waiting_messenger=3
    )
    assert "Messenger" in text


def test_no_line_for_messenger_when_nobody_waits_there() -> None:
    row = Announcement(id=7, state="released", recipients=10)
    text = progress_text(translator("en"), row, {**FIGURES, "waiting:webchat": 4}, False)
    assert "Messenger" not in text
