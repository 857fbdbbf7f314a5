"""Backups as an operator takes and restores them, against a bot that keeps working.

SQLite: ``iesaiste backup PATH`` (a real process) copies the file while the bot, in this
process, keeps onboarding new residents; the bot then starts on the copy. PostgreSQL: the
README's own ``pg_dump`` and ``pg_restore`` lines, read out of README.md so that the
instructions cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shlex
import sqlite3
import uuid
from pathlib import Path

import pytest

from storage.models import ChannelIdentity, Resident
from tests.bot.channels.telegram_helpers import Chat, must_be_stored, telegram_env
from tests.bot.test_cli import iesaiste
from tests.conftest import ADMIN_URL, RuntimeFactory, _admin
from tests.standins.telegram_api import BotApiStandIn

ONBOARDED = (7301000001, 7301000002, 7301000003)  # residents before the backup began
NEWCOMERS = itertools.count(7302000001)  # residents the bot keeps adding meanwhile

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def readme_commands(*programs: str) -> list[str]:
    """The lines of the README's Backups section that run one of ``programs``."""
    text = Path("README.md").read_text(encoding="utf-8")
    section = text.partition("\n## Backups\n")[2].partition("\n## ")[0]
    lines = [line.strip() for line in section.splitlines()]
    return [line for line in lines if line.split(" ", 1)[0] in programs]


async def onboard_everyone(api: BotApiStandIn) -> None:
    for user_id in ONBOARDED:
        api.add_user(user_id, "Anna", language_code="en")
        await Chat(api, user_id).onboard(topics=())


async def keep_adding_residents(api: BotApiStandIn, stop: asyncio.Event) -> int:
    """New residents one after another (each a row written when they pick a language)."""
    added = 0
    while not stop.is_set():
        chat = Chat(api, next(NEWCOMERS))
        api.add_user(chat.user_id, "Jānis", language_code="en")
        (question,) = await chat.send("/start")
        await chat.press(question, "English")
        added += 1
    return added


def files(folder: Path) -> list[str]:
    """Every file and folder under ``folder``: what a command left there."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def mode(path: Path) -> int:
    return path.stat().st_mode


def content(path: Path) -> bytes:
    return path.read_bytes()


def read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


@sqlite_only
@pytest.mark.storage
async def test_a_backup_taken_while_the_bot_writes_is_whole_and_the_bot_starts_on_it(
    start_bot: RuntimeFactory, database_url: str, tmp_path: Path
) -> None:
    copy = tmp_path / "backups" / "iesaiste.sqlite3"
    copy.parent.mkdir()
    async with BotApiStandIn() as api:
        runtime = await start_bot(**telegram_env(api))
        await onboard_everyone(api)
        stop = asyncio.Event()
        writer = asyncio.create_task(keep_adding_residents(api, stop))
        await asyncio.sleep(0)  # the first newcomer is on the way before the backup starts
        code, out, err = await iesaiste(
            "backup", str(copy), env={"IESAISTE_DATABASE_URL": database_url}
        )
        stop.set()
        added = await writer
        live = await Resident.all().count()
        await runtime.stop()

        assert (code, err) == (0, ""), err
        size = copy.stat().st_size
        assert re.fullmatch(
            rf"backup written to {re.escape(str(copy))}: {size} bytes, \d+ tables, \d+ rows, "
            r"schema 0\d{3}_\w+; integrity check ok\n",
            out,
        ), out
        assert files(copy.parent) == [copy.name]  # no partial file left behind
        assert added >= 1
        with read_only(copy) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            (copied,) = connection.execute("SELECT count(*) FROM resident").fetchone()
            # Whole transactions only: no resident without the account that made them.
            (orphans,) = connection.execute(
                "SELECT count(*) FROM resident r WHERE NOT EXISTS "
                "(SELECT 1 FROM channel_identity i WHERE i.resident_id = r.id)"
            ).fetchone()
        assert len(ONBOARDED) <= copied <= live
        assert orphans == 0

        copy_url = f"sqlite://{copy}"
        assert await iesaiste("migrate", env={"IESAISTE_DATABASE_URL": copy_url}) == (
            0,
            "iesaiste: the database schema is up to date\n",
            "",
        )
        restored = await start_bot(IESAISTE_DATABASE_URL=copy_url, **telegram_env(api))
        assert restored.config.database_url == copy_url
        for user_id in ONBOARDED:
            assert (await must_be_stored(user_id)).onboarded
        (answer,) = await Chat(api, ONBOARDED[0]).send("/help")
        assert answer.text
        assert await Resident.all().count() == copied


async def one_line(*args: str, env: dict[str, str]) -> str:
    """The single line ``iesaiste`` printed on stderr, after checking exit code 2."""
    code, out, err = await iesaiste(*args, env=env)
    assert (code, out) == (2, ""), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.removesuffix("\n")


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Path:
    """A small SQLite database to copy: one table, one row."""
    path = tmp_path / "live.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE resident (id INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO resident VALUES (1)")
    connection.close()
    path.chmod(0o600)
    return path


async def test_a_backup_never_replaces_a_file_unless_forced(
    sqlite_database: Path, tmp_path: Path
) -> None:
    env = {"IESAISTE_DATABASE_URL": f"sqlite://{sqlite_database}"}
    there = tmp_path / "there.sqlite3"
    there.write_bytes(b"last week's backup")
    before = files(tmp_path)
    assert await one_line("backup", str(there), env=env) == (
        f"iesaiste: backup: PATH = '{there}': a file is there already (--force replaces it)"
    )
    assert files(tmp_path) == before
    assert there.read_bytes() == b"last week's backup"

    code, out, err = await iesaiste("backup", "--force", str(there), env=env)
    assert (code, err) == (0, "")
    assert out.startswith(f"backup written to {there}: ") and "1 rows" in out
    assert files(tmp_path) == before
    with read_only(there) as connection:
        assert connection.execute("SELECT id FROM resident").fetchall() == [(1,)]
    assert mode(there) == mode(sqlite_database)  # as private as the database itself


async def test_a_backup_never_replaces_the_database_itself(sqlite_database: Path) -> None:
    env = {"IESAISTE_DATABASE_URL": f"sqlite://{sqlite_database}"}
    before = content(sqlite_database)
    for path in (sqlite_database, sqlite_database.parent / f"{sqlite_database.name}-wal"):
        assert await one_line("backup", "--force", str(path), env=env) == (
            f"iesaiste: backup: PATH = '{path}': that is the database itself"
        )
    assert content(sqlite_database) == before


async def test_a_backup_into_a_missing_folder_or_of_no_database_creates_nothing(
    sqlite_database: Path, tmp_path: Path
) -> None:
    before = files(tmp_path)
    missing_folder = tmp_path / "no" / "such" / "backup.sqlite3"
    assert await one_line(
        "backup", str(missing_folder), env={"IESAISTE_DATABASE_URL": f"sqlite://{sqlite_database}"}
    ) == (
        f"iesaiste: backup: PATH = '{missing_folder}': "
        f"the folder '{missing_folder.parent}' does not exist"
    )
    gone = tmp_path / "data" / "gone.sqlite3"
    assert await one_line(
        "backup", str(tmp_path / "b.sqlite3"), env={"IESAISTE_DATABASE_URL": f"sqlite://{gone}"}
    ) == (f"iesaiste: backup: database.url = sqlite://{gone}: no database file there")
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database")
    before = files(tmp_path)
    target = tmp_path / "j.sqlite3"
    assert await one_line(
        "backup", str(target), env={"IESAISTE_DATABASE_URL": f"sqlite://{junk}"}
    ) == (
        f"iesaiste: backup: cannot copy database.url = sqlite://{junk} "
        f"to PATH = '{target}' (file is not a database)"
    )
    assert files(tmp_path) == before


async def test_a_postgresql_database_is_pointed_to_pg_dump_and_nothing_is_made(
    tmp_path: Path,
) -> None:
    url = "postgres://iesaiste:Pa55-not-shown@127.0.0.1:5432/iesaiste"
    assert await one_line(
        "backup", str(tmp_path / "b.sqlite3"), env={"IESAISTE_DATABASE_URL": url}
    ) == (
        "iesaiste: backup: database.url = postgres://iesaiste:…@127.0.0.1:5432/iesaiste "
        "is PostgreSQL: back it up with pg_dump (README.md, section Backups)"
    )
    assert files(tmp_path) == []


@postgres_only
@pytest.mark.storage
async def test_the_readmes_pg_dump_and_pg_restore_bring_the_residents_to_a_new_database(
    start_bot: RuntimeFactory, database_url: str, tmp_path: Path
) -> None:
    dump, restore = readme_commands("pg_dump"), readme_commands("pg_restore")
    assert len(dump) == len(restore) == 1, (dump, restore)
    assert "-Fc" in shlex.split(dump[0]) and "--no-owner" in shlex.split(restore[0])
    scratch = f"iesaiste_restored_{uuid.uuid4().hex[:8]}"
    scratch_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + scratch
    async with BotApiStandIn() as api:
        runtime = await start_bot(**telegram_env(api))
        await onboard_everyone(api)
        await _admin(f'CREATE DATABASE "{scratch}"')  # new and empty, as the README says
        try:
            env = {**os.environ, "IESAISTE_DATABASE_URL": database_url, "RESTORED_URL": scratch_url}
            for command in (*dump, *restore):  # the dump while the bot runs, as in production
                process = await asyncio.create_subprocess_shell(
                    command,
                    cwd=tmp_path,
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await asyncio.wait_for(process.communicate(), timeout=60)
                assert process.returncode == 0, f"{command}: {err.decode()}"
            await runtime.stop()

            restored = await start_bot(IESAISTE_DATABASE_URL=scratch_url, **telegram_env(api))
            assert restored.config.database_url == scratch_url
            for user_id in ONBOARDED:
                assert (await must_be_stored(user_id)).onboarded
            assert await ChannelIdentity.filter(channel="telegram").count() == len(ONBOARDED)
            (answer,) = await Chat(api, ONBOARDED[0]).send("/help")
            assert answer.text
            await restored.stop()
        finally:
            await _admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
