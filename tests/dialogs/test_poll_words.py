"""The poll message every channel shows, the results lines and the chart."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image

from bot.core.i18n import translator
from bot.core.messages import CHOSEN
from dialogs import poll_words
from storage.models import Poll, PollOption
from storage.polls import OTHER, BallotState, Tally

ZONE = ZoneInfo("Europe/Riga")


def poll(**more: object) -> tuple[Poll, list[PollOption]]:
    values: dict[str, object] = {
        "id": 7,
        "question": {"lv": "Kur likt soliņus?", "ru": "Где поставить скамейки?"},
        "state": "open",
        "multiple": False,
        "opens_at": datetime.now(UTC) - timedelta(hours=1),
        "closes_at": datetime.now(UTC) + timedelta(days=1),
        "audience_size": 0,
    }
    row = Poll(**{**values, **more})
    options = [
        PollOption(position=0, labels={"lv": "Parkā", "ru": "В парке"}),
        PollOption(position=1, labels={"lv": "Pie skolas"}),
    ]
    return row, options


def test_one_button_per_option_marks_the_answer_and_falls_back_to_latvian() -> None:
    row, options = poll()
    reply = poll_words.poll_reply(
        translator("ru"), row, options, BallotState(0b10, 0b10), zone=ZONE
    )
    assert reply.text.startswith("Где поставить скамейки?")
    labels = [b.label for b in reply.all_buttons()]
    assert labels == ["В парке", CHOSEN + "Pie skolas"]
    assert [b.payload for b in reply.all_buttons()] == ["pl:7:0", "pl:7:1"]


def test_labels_too_long_for_a_button_are_numbered_in_the_text() -> None:
    row, options = poll()
    options[1].labels = {"lv": "Pie skolas, kur bērni gaida autobusu"}
    reply = poll_words.poll_reply(translator("lv"), row, options, BallotState(), zone=ZONE)
    assert "1. Parkā" in reply.text and "2. Pie skolas, kur bērni gaida autobusu" in reply.text
    assert [b.label for b in reply.all_buttons()] == ["1", "2"]


def test_multiple_choice_shows_the_ticks_and_a_done_button_kept_on_every_page() -> None:
    row, options = poll(multiple=True)
    reply = poll_words.poll_reply(translator("en"), row, options, BallotState(0, 0b01), zone=ZONE)
    assert [b.label for b in reply.all_buttons()] == [CHOSEN + "Parkā", "Pie skolas", "Done"]
    assert reply.pinned_rows == 1
    assert "press Done" in reply.text


def test_a_closed_poll_has_no_option_buttons_and_shows_the_results() -> None:
    row, options = poll(state="closed")
    tally = Tally(4, 10, [3, 1], {OTHER: (4, [3, 1])}, {"telegram": (4, [3, 1])})
    reply = poll_words.poll_reply(
        translator("en"), row, options, BallotState(1, 1), zone=ZONE, tally=tally
    )
    assert reply.buttons == []
    assert "Parkā — 75% (3)" in reply.text
    assert "4 residents answered: 40% of the 10 invited." in reply.text


def test_the_chart_is_a_png_readable_on_a_phone_with_latvian_and_cyrillic() -> None:
    row, options = poll()
    tally = Tally(3, 0, [2, 1], {}, {})
    png = poll_words.chart_png(translator("ru"), row, options, tally)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.width == 800 and 300 < image.height < 1200
