"""The ``iesaiste`` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from tests.bot.channels.telegram_helpers import eventually
from tests.conftest import ADMIN_URL, _admin, free_port


async def iesaiste(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,  # noqa: ASYNC109 - a test helper's deadline
) -> tuple[int, str, str]:
    """Run the command; a process still running after ``timeout`` seconds is killed and fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**os.environ, "IESAISTE_LOG_LEVEL": "INFO", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"iesaiste {' '.join(args)} still ran after {timeout:g} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def without_times(log: str) -> list[str]:
    """The lines of a log, each without its leading time, the one part that varies."""
    return [
        re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", "", line) for line in log.splitlines()
    ]


async def test_a_bad_setting_stops_start_up_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    assert await iesaiste(env={"IESAISTE_HTTP_PORT": "eighty"}) == (
        2,
        "",
        "iesaiste: configuration error: IESAISTE_HTTP_PORT = 'eighty': "
        "expected a whole number from 1 to 65535\n",
    )


async def test_a_bad_timezone_in_the_file_is_named_with_its_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[municipality]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    assert await iesaiste("--config", str(config)) == (
        2,
        "",
        "iesaiste: configuration error: municipality.timezone = 'Mars/Olympus': "
        "expected an IANA time zone such as Europe/Riga\n",
    )


async def test_an_unreachable_database_is_named_without_a_traceback() -> None:
    url = "postgres://postgres@127.0.0.1:1/none"  # port 1: nothing listens there
    assert await iesaiste("migrate", env={"IESAISTE_DATABASE_URL": url}) == (
        2,
        "",
        f"iesaiste: database.url = {url}: cannot connect to 127.0.0.1:1 "
        "([Errno 111] Connect call failed ('127.0.0.1', 1))\n",
    )


async def test_staff_are_added_listed_and_removed_from_the_command_line(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    before = datetime.now(UTC)
    added = await iesaiste("staff", "add", "telegram:123456", "--role", "admin", env=env)
    assert added == (0, "telegram:123456 is admin\n", "")
    days = {f"{moment:%Y-%m-%d}" for moment in (before, datetime.now(UTC))}  # past midnight?
    code, out, err = await iesaiste("staff", "list", env=env)
    assert (code, err) == (0, "")
    assert out in {f"telegram:123456\tadmin\tsince {day}\n" for day in days}
    removed = await iesaiste("staff", "remove", "telegram:123456", env=env)
    assert removed == (0, "telegram:123456 is no longer staff\n", "")
    assert await iesaiste("staff", "list", env=env) == (0, "no staff accounts\n", "")
    assert await iesaiste("staff", "remove", "telegram:123456", env=env) == (
        1,
        "",
        "iesaiste: telegram:123456 is not a staff account\n",
    )


async def test_a_staff_reference_without_a_channel_is_refused(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    assert await iesaiste("staff", "add", "123456", "--role", "admin", env=env) == (
        2,
        "",
        "iesaiste: user = '123456': "
        "expected CHANNEL:USER_ID with CHANNEL one of telegram, webchat, messenger\n",
    )
    assert await iesaiste("staff", "list", env=env) == (0, "no staff accounts\n", "")


async def test_migrate_brings_a_new_database_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/fresh.sqlite3"
    assert await iesaiste("migrate", env={"IESAISTE_DATABASE_URL": url}) == (
        0,
        "iesaiste: the database schema is up to date\n",
        "",
    )
    assert (tmp_path / "fresh.sqlite3").is_file()
    assert await iesaiste("staff", "list", env={"IESAISTE_DATABASE_URL": url}) == (
        0,
        "no staff accounts\n",
        "",
    )


async def test_sigterm_stops_the_running_bot_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env={
            **os.environ,
            "IESAISTE_DATABASE_URL": f"sqlite://{tmp_path}/bot.sqlite3",
            "IESAISTE_HTTP_PORT": str(port),
            "IESAISTE_LOG_LEVEL": "INFO",
        },
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                assert process.returncode is None, "the bot exited before it came up"
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        return (response.status, await response.text()) == (200, '{"status": "ok"}')
                except aiohttp.ClientConnectionError:
                    return False  # not listening yet

            await eventually(healthy, timeout=20, what="GET /healthz to answer 200")
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0
    assert without_times(err.decode()) == [
        f"INFO bot.app: listening on http://127.0.0.1:{port}/",
        f"INFO bot.app: web chat: open http://127.0.0.1:{port}/ in a browser",
        "INFO bot.app: no Telegram token configured: serving the web chat only",
        "INFO bot.app: stopping: finishing the work in flight",
        "INFO bot.app: stopped",
    ]


async def test_run_refuses_a_postgresql_database_that_was_not_migrated(postgres_url: str) -> None:
    name = f"iesaiste_unmigrated_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        env = {"IESAISTE_DATABASE_URL": url, "IESAISTE_HTTP_PORT": str(free_port())}
        assert await iesaiste("run", env=env) == (
            2,
            "",
            "iesaiste: cannot start: the database schema is older than this version: "
            "run `iesaiste migrate` first\n",
        )
        assert await iesaiste("migrate", env=env) == (
            0,
            "iesaiste: the database schema is up to date\n",
            "",
        )
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
