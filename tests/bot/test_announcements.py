"""Announcements from the command line, delivered by the running bot."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli import announcement_request
from bot.core.config import ConfigError, load
from storage import residents
from storage.models import Announcement, AuditEntry, Delivery
from storage.sessions import open_session
from tests.bot.channels.telegram_helpers import eventually
from tests.conftest import RuntimeFactory
from tests.standins.telegram_api import BotApiStandIn


def config_without_quiet_hours(tmp_path: Path, extra: str = "") -> str:
    """The example configuration with quiet hours off, so the test passes at any hour;
    ``extra`` TOML is appended (the keys right under its ``[proposals]`` join the
    example's table, which TOML would not let it declare twice)."""
    text = Path("config.example.toml").read_text(encoding="utf-8")
    header = "\n[proposals]\n"
    if header in extra:
        before, _, rest = extra.partition(header)
        lines = rest.splitlines(keepends=True)
        count = next((i for i, line in enumerate(lines) if line.startswith("[")), len(lines))
        keys, after = "".join(lines[:count]), "".join(lines[count:])
        head, _, tail = text.partition(header)
        table, nxt, others = tail.partition("\n[")
        for line in keys.splitlines():
            name = line.partition("=")[0].strip()
            if name:  # the example's own value of that key gives way
                table = re.sub(rf"(?m)^{re.escape(name)}\s*=.*$", "", table)
        text = head + header + keys + table + nxt + others
        extra = before + "\n" + after
    text += extra
    text = text.replace('quiet_start = "21:00"', 'quiet_start = "00:00"')
    text = text.replace('quiet_end = "09:00"', 'quiet_end = "00:00"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def request(**flags: object):  # type: ignore[no-untyped-def]
    args = argparse.Namespace(
        **{
            "text": "Sveiki",
            "text_en": "",
            "text_ru": "",
            "audience": "all",
            "at": "",
            "urgent": False,
            **flags,
        }
    )
    return announcement_request(load(None, {}), args)


def test_an_announcement_for_chosen_neighbourhoods_is_checked_against_the_catalog() -> None:
    made = request(audience="neighbourhood:centrs,lauki", text_en="Hello")
    assert made.audience == {"kind": "neighbourhood", "keys": ["centrs", "lauki"]}
    assert made.texts == {"lv": "Sveiki", "en": "Hello"}


def test_a_local_time_is_read_in_the_municipalitys_zone() -> None:
    riga = ZoneInfo("Europe/Riga")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).astimezone(riga).date()
    made = request(at=f"{tomorrow:%Y-%m-%d}T10:00")
    assert made.send_at.tzinfo == UTC
    # 07:00 or 08:00 UTC, as summer time has it that day.
    assert made.send_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=riga)
    assert made.send_at.astimezone(riga).hour == 10


AUDIENCES = (
    "all, neighbourhood:ID[,ID…] or topic:ID[,ID…] (neighbourhood: centrs, jaunciems, lauki, "
    "parupe; topic: culture, education, environment, social, transport)"
)


@pytest.mark.parametrize(
    ("flags", "flag", "value", "expected"),
    [
        ({"text": "  "}, "--text", "  ", "the announcement's text in Latvian"),
        ({"text": "x" * 5000}, "--text", "x" * 20 + "…", "at most 4096 characters"),
        ({"audience": "neighbourhood:atlantis"}, "--audience", "neighbourhood:atlantis", AUDIENCES),
        ({"audience": "topic:"}, "--audience", "topic:", AUDIENCES),
        ({"audience": "everyone"}, "--audience", "everyone", AUDIENCES),
        ({"at": "tomorrow"}, "--at", "tomorrow", "a local time such as 2026-12-01T10:00"),
        ({"at": "2001-01-01T10:00"}, "--at", "2001-01-01T10:00", "a time that has not passed yet"),
    ],
)
def test_a_bad_announcement_names_the_flag(
    flags: dict[str, object], flag: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        request(**flags)
    assert (raised.value.key, raised.value.value, raised.value.expected) == (flag, value, expected)
    assert str(raised.value) == f"{flag} = {value!r}: expected {expected}"


async def onboarded(user_id: str, language: str, hood: str, channel: str = "telegram") -> None:
    async with open_session(channel, user_id, "") as session:
        await residents.set_language(session.resident, language)
        await residents.set_neighbourhood(session.resident, hood)
        await residents.mark_onboarded(session.resident)


async def test_an_announcement_queued_from_the_command_line_reaches_its_audience(
    start_bot: RuntimeFactory, database_url: str, tmp_path: Path
) -> None:
    config = config_without_quiet_hours(tmp_path)
    async with BotApiStandIn() as api:
        api.add_user(1001, "Anna", language_code="en")
        api.add_user(1002, "Jānis", language_code="lv")
        api.add_user(1003, "Oļegs", language_code="ru")
        runtime = await start_bot(
            config, IESAISTE_TELEGRAM_API_URL=api.url, IESAISTE_TELEGRAM_TOKEN=api.token
        )
        await onboarded("1001", "en", "centrs")
        await onboarded("1002", "lv", "centrs")
        await onboarded("1003", "ru", "jaunciems")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            "announce",
            "--text",
            "Rīt Brīvības ielā nebūs ūdens.",
            "--text-en",
            "No water on Brīvības street tomorrow.",
            "--audience",
            "neighbourhood:centrs",
            env={**os.environ, "IESAISTE_DATABASE_URL": database_url},
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0
        assert out.decode().strip() == "announcement 1 queued for 2 recipients"

        await api.wait_until(lambda: api.messages(1001) and api.messages(1002), timeout=15)
        assert api.last_message(1001).text == "No water on Brīvības street tomorrow."
        assert api.last_message(1002).text == "Rīt Brīvības ielā nebūs ūdens."
        assert api.messages(1003) == []
        announcement = await Announcement.get()
        assert (announcement.state, announcement.recipients) == ("released", 2)

        async def both_reported_sent() -> bool:  # the report follows the send by a moment
            return await Delivery.filter(state="sent").count() == 2

        await eventually(both_reported_sent, what="both deliveries reported sent")
        sent = await Delivery.all().values_list("external_id", "state")
        assert sorted(sent) == [("1001", "sent"), ("1002", "sent")]
        assert [m.text for m in api.messages(1001)] == ["No water on Brīvības street tomorrow."]
        assert [m.text for m in api.messages(1002)] == ["Rīt Brīvības ielā nebūs ūdens."]
        assert await AuditEntry.filter(actor="cli", action="announcement.queue").count() == 1
        await runtime.stop()
