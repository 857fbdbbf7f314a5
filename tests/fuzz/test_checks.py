"""The fuzzing's checks catch what they are there for: a check that cannot fail proves nothing."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from storage.models import Resident
from tests.fuzz.checks import LogWatch, row_changes, row_counts, untranslated
from tests.fuzz.webchat_target import frame_is_valid
from tests.phrases import EMPTY, MAIN_MENU, MUNICIPALITY, TOO_LONG, tr

MENU_LV = tr("lv", MAIN_MENU)


def test_english_shown_to_a_latvian_or_russian_resident_is_caught() -> None:
    assert untranslated("lv", [MAIN_MENU], set())
    assert untranslated("ru", [f"{tr('ru', EMPTY)}\n\n{MAIN_MENU}"], set())
    # A message with a placeholder filled in, and a button label.
    assert untranslated("lv", [TOO_LONG.format(n=2000)], set())
    assert untranslated("lv", ["Settings"], set())


def test_translated_text_and_what_the_resident_wrote_pass() -> None:
    assert untranslated("lv", [MENU_LV, tr("lv", EMPTY)], set()) == []
    assert untranslated("ru", [tr("ru", MAIN_MENU)], set()) == []
    assert untranslated("en", [MAIN_MENU], set()) == []  # English is English
    # The bot may quote the resident: their own words are not the bot's.
    assert untranslated("lv", [f"{MENU_LV}\n\nSettings"], {"Settings"}) == []
    assert untranslated("lv", [f"Demo: {MUNICIPALITY}"], set()) == []


def test_an_error_with_a_traceback_is_caught() -> None:
    with LogWatch() as watch:
        mark = watch.mark()
        logging.getLogger("bot.fuzzcheck").warning("only a warning")
        assert watch.since(mark) == []
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("bot.fuzzcheck").exception("update failed")
        (line,) = watch.since(mark)
    assert "update failed" in line and "traceback: ValueError: boom" in line


async def test_a_task_exception_nobody_retrieved_is_caught() -> None:
    async def fails() -> None:
        raise RuntimeError("lost")

    with LogWatch() as watch:
        task = asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del task
        found = watch.since(0, collect=True)
    gc.collect()
    assert any("never retrieved" in line and "RuntimeError" in line for line in found), found


@pytest.mark.storage
async def test_a_row_written_is_counted(database: str) -> None:
    before = await row_counts()
    assert row_changes(before, await row_counts()) == {}
    await Resident.create(language="lv")
    assert row_changes(before, await row_counts()) == {"resident": 1}


def test_the_frame_format_is_the_pages() -> None:
    assert frame_is_valid({"type": "text", "id": "1", "text": "hi"})
    assert frame_is_valid({"type": "button", "id": "1", "payload": "menu:main"})
    assert frame_is_valid({"type": "location", "id": "1", "latitude": 56.9, "longitude": 24.1})
    assert not frame_is_valid({"type": "text", "id": "1", "text": "a\x00b"})
    assert not frame_is_valid({"type": "text", "id": "", "text": "hi"})
    assert not frame_is_valid({"type": "location", "id": "1", "latitude": True, "longitude": 0})
    assert not frame_is_valid({"type": "button", "id": "1", "payload": "x" * 65})
