"""The ``iesaiste`` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp

from tests.conftest import ADMIN_URL, _admin, free_port, missing


async def iesaiste(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={**os.environ, "IESAISTE_LOG_LEVEL": "INFO", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_a_bad_setting_stops_start_up_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    code, _, err = await iesaiste(env={"IESAISTE_HTTP_PORT": "eighty"})
    assert code == 2
    assert err.strip().count("\n") == 0, err
    assert "IESAISTE_HTTP_PORT" in err and "'eighty'" in err and "whole number" in err
    assert "Traceback" not in err


async def test_a_bad_timezone_in_the_file_is_named_with_its_key(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[municipality]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    code, _, err = await iesaiste("--config", str(config))
    assert code == 2
    assert "municipality.timezone = 'Mars/Olympus'" in err and "Traceback" not in err


async def test_an_unreachable_database_is_named_without_a_traceback() -> None:
    code, _, err = await iesaiste(
        "migrate", env={"IESAISTE_DATABASE_URL": "postgres://postgres@127.0.0.1:1/none"}
    )
    assert code == 2
    assert "database.url" in err and "Traceback" not in err


async def test_staff_are_added_listed_and_removed_from_the_command_line(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    code, out, _ = await iesaiste("staff", "add", "telegram:123456", "--role", "admin", env=env)
    assert (code, out.strip()) == (0, "telegram:123456 is admin")
    code, out, _ = await iesaiste("staff", "list", env=env)
    assert code == 0 and out.startswith("telegram:123456\tadmin")
    code, out, _ = await iesaiste("staff", "remove", "telegram:123456", env=env)
    assert (code, out.strip()) == (0, "telegram:123456 is no longer staff")
    code, out, _ = await iesaiste("staff", "list", env=env)
    assert out.strip() == "no staff accounts"
    code, _, err = await iesaiste("staff", "remove", "telegram:123456", env=env)
    assert code == 1 and "is not a staff account" in err


async def test_a_staff_reference_without_a_channel_is_refused(database_url: str) -> None:
    code, _, err = await iesaiste(
        "staff", "add", "123456", "--role", "admin", env={"IESAISTE_DATABASE_URL": database_url}
    )
    assert code == 2 and "CHANNEL:USER_ID" in err


async def test_migrate_brings_a_new_database_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/fresh.sqlite3"
    code, out, _ = await iesaiste("migrate", env={"IESAISTE_DATABASE_URL": url})
    assert code == 0 and "up to date" in out
    assert (tmp_path / "fresh.sqlite3").exists()


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
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the bot did not come up")
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), timeout=20)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0
    log = err.decode()
    assert "stopping: finishing the work in flight" in log and "stopped" in log
    assert "Traceback" not in log


async def test_run_refuses_a_postgresql_database_that_was_not_migrated(
    postgres_url: str | None,
) -> None:
    if postgres_url is None:
        missing("PostgreSQL is not running on 127.0.0.1:5432 (set IESAISTE_TEST_POSTGRES)")
    name = f"iesaiste_unmigrated_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        code, _, err = await iesaiste(
            "run", env={"IESAISTE_DATABASE_URL": url, "IESAISTE_HTTP_PORT": str(free_port())}
        )
        assert code == 2
        assert "run `iesaiste migrate` first" in err and "Traceback" not in err
        code, _, _ = await iesaiste("migrate", env={"IESAISTE_DATABASE_URL": url})
        assert code == 0
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
