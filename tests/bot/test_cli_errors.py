"""Every operator mistake the command line meets ends in one line and exit code 2.

Each test runs the real ``iesaiste`` process and checks the whole of stderr:
exactly one line, naming the setting or argument, no traceback, no secret,
and within a generous bound (several of these cases used to hang forever).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.cli import _parser
from tests.bot.test_cli import iesaiste as run_iesaiste
from tests.conftest import ADMIN_URL, _admin, free_port

FAST = 20  # seconds: far more than any of these needs, far less than "forever"
TOKEN = "123456:ABCdefGhIJKlmnOPQRstuVWXyz0123456789"


async def iesaiste(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the command; one still running after FAST seconds is killed and fails."""
    return await run_iesaiste(*args, env=env, timeout=FAST)


async def one_line(*args: str, env: dict[str, str] | None = None, code: int = 2) -> str:
    """The single line the command printed on stderr, after checking the exit code.

    Nothing else may be printed: stdout stays empty, stderr holds that one line.
    """
    returncode, out, err = await iesaiste(*args, env=env)
    assert (returncode, out) == (code, ""), err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.removesuffix("\n")


def sqlite_env(path: Path) -> dict[str, str]:
    return {"IESAISTE_DATABASE_URL": f"sqlite://{path}", "IESAISTE_HTTP_PORT": str(free_port())}


COMMANDS = [
    ("staff", "list"),
    ("migrate",),
    ("announce", "--text", "Sveiki"),
    ("proposals", "list"),
    ("run",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_a_sqlite_file_that_is_not_a_database_fails_fast(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Iepirkumu saraksts: piens, maize, sviests, olas, siers.\n" * 20)
    line = await one_line(*command, env=sqlite_env(path))
    assert line == f"iesaiste: database.url = sqlite://{path}: the file is not a SQLite database"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
async def test_a_sqlite_url_naming_a_directory_fails_fast(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    line = await one_line(*command, env=sqlite_env(tmp_path))
    assert line == (
        f"iesaiste: database.url = sqlite://{tmp_path}: a directory, not a SQLite database file"
    )


async def test_a_sqlite_file_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    line = await one_line("staff", "list", env=sqlite_env(tmp_path / "file" / "db.sqlite3"))
    assert line == (
        f"iesaiste: database.url = sqlite://{tmp_path}/file/db.sqlite3: "
        f"cannot create the directory '{tmp_path}/file' (File exists)"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "sqlite://",
            "iesaiste: configuration error: database.url = 'sqlite://': "
            "expected sqlite://PATH with a path, e.g. sqlite://data/iesaiste.sqlite3",
        ),
        (
            "postgres://postgres@127.0.0.1:notaport/iesaiste",
            "iesaiste: configuration error: database.url = "
            "'postgres://postgres@127.0.0.1:notaport/iesaiste': "
            "expected a port from 1 to 65535 after the host, e.g. :5432",
        ),
        (
            "mysql://root:hunter2-secret@db.example.lv/iesaiste",
            "iesaiste: configuration error: database.url = "
            "'mysql://root:…@db.example.lv/iesaiste': "
            "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
        ),
        (
            # urlsplit would end the password at '/', and asyncpg then names the rest
            "postgres://iesaiste:pa/ss-secret@127.0.0.1:5432/iesaiste",
            "iesaiste: configuration error: database.url = "
            "'postgres://iesaiste:…@127.0.0.1:5432/iesaiste': "
            "expected a password with '/', '?', '#' or '@' %-encoded (%2F, %3F, %23, %40)",
        ),
    ],
    ids=["sqlite-no-path", "port-notaport", "unsupported-scheme", "slash-in-password"],
)
async def test_a_database_url_tortoise_cannot_read_is_named_without_its_password(
    url: str, expected: str
) -> None:
    assert await one_line("staff", "list", env={"IESAISTE_DATABASE_URL": url}) == expected


async def test_postgresql_refusing_an_unknown_role_is_one_line(postgres_url: str) -> None:
    server = urlsplit(postgres_url).netloc.rpartition("@")[2]  # the test server's HOST:PORT
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    url = f"postgres://{role}:pw-secret-42@{server}/postgres"
    for command in (("staff", "list"), ("migrate",), ("run",)):
        line = await one_line(*command, env={"IESAISTE_DATABASE_URL": url})
        assert line == (
            f"iesaiste: database.url = postgres://{role}:…@{server}/postgres: "
            f'the server refused the login (role "{role}" does not exist)'
        )


@pytest.fixture
async def refusing_postgres() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A stand-in server that refuses the password as PostgreSQL does (SQLSTATE 28P01).

    The local server trusts every login from 127.0.0.1, so it never refuses a
    password: this speaks just enough of the protocol to ask for one and refuse it.
    Yields its port and the password messages it received.
    """
    received: list[bytes] = []

    async def message(reader: asyncio.StreamReader) -> bytes:
        length = int.from_bytes(await reader.readexactly(4), "big")
        return await reader.readexactly(length - 4)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            startup = await message(reader)
            if startup[:4] == (80877103).to_bytes(4, "big"):  # SSLRequest: no SSL here
                writer.write(b"N")
                startup = await message(reader)
            writer.write(b"R" + (8).to_bytes(4, "big") + (3).to_bytes(4, "big"))  # cleartext
            await writer.drain()
            assert await reader.readexactly(1) == b"p"
            received.append(await message(reader))
            fields = (
                b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "iesaiste"\0\0'
            )
            writer.write(b"E" + (len(fields) + 4).to_bytes(4, "big") + fields)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, received


async def test_a_refused_password_is_one_line_without_the_password(
    refusing_postgres: tuple[int, list[bytes]],
) -> None:
    port, received = refusing_postgres
    url = f"postgres://iesaiste:S3cret-Pa55@127.0.0.1:{port}/iesaiste"
    line = await one_line("migrate", env={"IESAISTE_DATABASE_URL": url})
    assert line == (
        f"iesaiste: database.url = postgres://iesaiste:…@127.0.0.1:{port}/iesaiste: "
        'the server refused the login (password authentication failed for user "iesaiste")'
    )
    assert received == [b"S3cret-Pa55\0"]  # the password was sent, and refused


@pytest.fixture
async def empty_postgres(postgres_url: str) -> AsyncIterator[str]:
    """A scratch PostgreSQL database with no schema at all; dropped afterwards."""
    name = f"iesaiste_empty_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(
    "command",
    [("staff", "list"), ("staff", "add", "telegram:42", "--role", "admin"), COMMANDS[2]],
    ids=["staff-list", "staff-add", "announce"],
)
async def test_a_postgresql_database_that_was_not_migrated_says_to_migrate(
    empty_postgres: str, command: tuple[str, ...]
) -> None:
    line = await one_line(*command, env={"IESAISTE_DATABASE_URL": empty_postgres})
    assert line == (
        f"iesaiste: database.url = {empty_postgres}: "
        "the database lacks this version's schema: run `iesaiste migrate` first"
    )


async def test_a_config_file_not_in_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    config = tmp_path / "ogre.toml"
    config.write_bytes(
        '[municipality]\nname = "Ogres novads"\n[[municipality.neighbourhoods]]\n'
        'id = "centrs"\nname = "Šķūņu iela"\n'.encode("cp1257")
    )
    line = await one_line("--config", str(config), "staff", "list")
    assert line == (
        f"iesaiste: configuration error: --config = '{config}': "
        "expected a file saved as UTF-8 (byte 0xd0 on line 5 is not UTF-8)"
    )


async def test_a_directory_as_config_is_named(tmp_path: Path) -> None:
    line = await one_line("--config", str(tmp_path), "run")
    assert line == (
        f"iesaiste: configuration error: --config = '{tmp_path}': "
        "expected a TOML file, not a directory"
    )


async def test_a_fifo_as_config_is_refused_instead_of_waiting_for_a_writer(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    line = await one_line("--config", str(fifo), "run")
    assert line == (
        f"iesaiste: configuration error: --config = '{fifo}': expected a regular TOML file"
    )


def unreadable_file(tmp_path: Path) -> Path:
    """A regular file this process may not read.

    chmod 000 binds everyone but root; root (as in CI) is refused by a write-only
    /proc/sys entry (mode 0200, checked for root too).
    """
    if os.geteuid() != 0:
        path = tmp_path / "secret.toml"
        path.write_text("[municipality]\n")
        path.chmod(0)
        return path
    path = Path("/proc/sys/vm/drop_caches")
    try:
        path.read_bytes()
    except PermissionError:
        return path
    except OSError:
        pass
    pytest.skip("no file here that this process cannot read")


async def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    path = unreadable_file(tmp_path)
    line = await one_line("--config", str(path), "staff", "list")
    assert line == (
        f"iesaiste: configuration error: --config = '{path}': "
        "expected a readable file (Permission denied)"
    )


async def test_a_deeply_nested_array_is_named(tmp_path: Path) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("[municipality]\nname = " + "[" * 2000 + "]" * 2000 + "\n")
    line = await one_line("--config", str(config), "run")
    assert line == (
        f"iesaiste: configuration error: --config = '{config}': expected TOML nested less deeply"
    )


TELEGRAM_ID = "a Telegram user id (a positive whole number, e.g. 123456789)"


@pytest.mark.parametrize(
    ("user", "shown", "expected"),
    [
        (
            "telegram:" + "9" * 65,
            "telegram:" + "9" * 31 + "…",
            f"telegram:ID with ID {TELEGRAM_ID}",
        ),
        ("telegram:abc", "telegram:abc", f"telegram:ID with ID {TELEGRAM_ID}"),
        ("telegram:-42", "telegram:-42", f"telegram:ID with ID {TELEGRAM_ID}"),
        ("telegram:0", "telegram:0", f"telegram:ID with ID {TELEGRAM_ID}"),
        ("telegram:12\n34", "telegram:12\\n34", f"telegram:ID with ID {TELEGRAM_ID}"),
        ("telegram:12\x1b[2J", "telegram:12\\x1b[2J", f"telegram:ID with ID {TELEGRAM_ID}"),
        (
            "webchat:hello",
            "webchat:hello",
            "webchat:ID with ID a web-chat id (the 32 hex digits the web chat issues)",
        ),
        (
            "messenger:abc",
            "messenger:abc",
            "messenger:ID with ID a Messenger id (PSID: digits only)",
        ),
    ],
    ids=["over-64", "letters", "negative", "zero", "newline", "control", "webchat", "messenger"],
)
async def test_staff_add_refuses_an_id_the_platform_never_sends(
    tmp_path: Path, user: str, shown: str, expected: str
) -> None:
    env = sqlite_env(tmp_path / "db.sqlite3")
    line = await one_line("staff", "add", user, "--role", "admin", env=env)
    assert line == f"iesaiste: user = '{shown}': expected {expected}"
    assert await iesaiste("staff", "list", env=env) == (0, "no staff accounts\n", "")


async def test_run_refuses_an_overlong_staff_id_in_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[staff]]\nuser = "telegram:{"1" * 65}"\nrole = "admin"\n')
    line = await one_line("--config", str(config), "run", env=sqlite_env(tmp_path / "db.sqlite3"))
    assert line == (
        "iesaiste: configuration error: staff[0].user = "
        f"'telegram:{'1' * 31}…': expected telegram:ID with ID {TELEGRAM_ID}"
    )


async def test_an_account_recorded_before_ids_were_checked_is_listed_and_removed(
    tmp_path: Path,
) -> None:
    env = sqlite_env(tmp_path / "db.sqlite3")
    before = datetime.now(UTC)
    added = await iesaiste("staff", "add", "telegram:42", "--role", "admin", env=env)
    assert added == (0, "telegram:42 is admin\n", "")
    days = {f"{moment:%Y-%m-%d}" for moment in (before, datetime.now(UTC))}  # past midnight?
    with sqlite3.connect(tmp_path / "db.sqlite3") as connection:
        connection.execute(
            "INSERT INTO staff_member (channel, external_id, role, granted_at)"
            " VALUES ('telegram', '12\n34', 'moderator', '2026-01-05 10:00:00+00:00')"
        )
    connection.close()
    code, out, err = await iesaiste("staff", "list", env=env)
    assert (code, err) == (0, "")
    assert out in {
        f"telegram:'12\\n34'\tmoderator\tsince 2026-01-05\ntelegram:42\tadmin\tsince {day}\n"
        for day in days
    }
    removed = await iesaiste("staff", "remove", "telegram:12\n34", env=env)
    assert removed == (0, "telegram:'12\\n34' is no longer staff\n", "")
    code, out, err = await iesaiste("staff", "list", env=env)
    assert (code, err) == (0, "")
    assert out in {f"telegram:42\tadmin\tsince {day}\n" for day in days}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("9999-12-31T23:59-05:00", "a time at most a year ahead"),
        ("9999-12-31T23:59+14:00", "a time at most a year ahead"),
        ("9999-12-31T23:59", "a time at most a year ahead"),
        ("0001-01-01T00:00+14:00", "a time that has not passed yet"),
        ("0001-01-01T00:00-14:00", "a time that has not passed yet"),
        ("2026-12-31T10:00+24:00", "a local time such as 2026-12-01T10:00"),
    ],
)
async def test_announce_at_an_extreme_time_is_one_line(
    tmp_path: Path, at: str, expected: str
) -> None:
    env = sqlite_env(tmp_path / "db.sqlite3")
    line = await one_line("announce", "--text", "Sveiki", "--at", at, env=env)
    assert line == f"iesaiste: --at = '{at}': expected {expected}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--bogus",),
            "iesaiste: unrecognized arguments: --bogus; try 'iesaiste --help'",
        ),
        (
            ("nope",),
            "iesaiste: argument COMMAND: invalid choice: 'nope' "
            "(choose from 'run', 'migrate', 'staff', 'announce', 'proposals', 'poll', "
            "'messenger', 'backup'); "
            "try 'iesaiste --help'",
        ),
        (
            ("--config",),
            "iesaiste: argument --config: expected one argument; try 'iesaiste --help'",
        ),
        (
            ("staff",),
            "iesaiste staff: the following arguments are required: {add,remove,list}; "
            "try 'iesaiste staff --help'",
        ),
        (
            ("staff", "add", "telegram:42"),
            "iesaiste staff add: the following arguments are required: --role; "
            "try 'iesaiste staff add --help'",
        ),
        (
            ("staff", "add", "telegram:42", "--role", "boss"),
            "iesaiste staff add: argument --role: invalid choice: 'boss' "
            "(choose from 'admin', 'moderator', 'communications'); "
            "try 'iesaiste staff add --help'",
        ),
    ],
    ids=["unknown-flag", "unknown-command", "missing-value", "no-subcommand", "missing", "choice"],
)
async def test_a_command_line_mistake_is_one_line_with_a_hint(
    args: tuple[str, ...], expected: str
) -> None:
    assert await one_line(*args) == expected


async def test_help_still_prints_the_whole_help(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help at the terminal's width
    assert await iesaiste("--help", env={"COLUMNS": "100"}) == (0, _parser().format_help(), "")


async def test_a_token_without_its_colon_is_not_printed() -> None:
    secret = "ABCdefGhIJKlmnOPQRstuVWXyz0123456789"
    line = await one_line("staff", "list", env={"IESAISTE_TELEGRAM_TOKEN": secret})
    assert line == (
        "iesaiste: configuration error: telegram.token = '…': "
        "expected a token from @BotFather, 123456:ABC…"
    )


async def test_a_misspelt_key_does_not_print_the_secret_it_holds(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[telegram]\ntokn = "{TOKEN}"\n')
    line = await one_line("--config", str(config), "run")
    assert line == (
        "iesaiste: configuration error: telegram.tokn = '…': "
        "expected a known key (api_url, mode, token, webhook_secret, webhook_url)"
    )


async def test_an_unexpected_error_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    migrated = await iesaiste("migrate", env=sqlite_env(path))
    assert migrated == (0, "iesaiste: the database schema is up to date\n", "")
    with sqlite3.connect(path) as connection:
        connection.execute("ALTER TABLE staff_member RENAME TO staff_member_old")
    connection.close()
    line = await one_line("staff", "list", env=sqlite_env(path), code=1)
    assert line == (
        "iesaiste: unexpected error: OperationalError: no such table: staff_member "
        "(IESAISTE_LOG_LEVEL=DEBUG shows where)"
    )
    code, out, err = await iesaiste(
        "staff", "list", env={**sqlite_env(path), "IESAISTE_LOG_LEVEL": "DEBUG"}
    )
    assert (code, out) == (1, "")
    # At DEBUG the traceback comes first (its frames vary with the installed
    # libraries), logged by the CLI, ending in the error it names; then the line.
    _, found, traceback = err.partition(
        " DEBUG iesaiste: unexpected error\nTraceback (most recent call last):\n"
    )
    assert found, err
    assert traceback.endswith(
        "tortoise.exceptions.OperationalError: no such table: staff_member\n"
        "iesaiste: unexpected error: OperationalError: no such table: staff_member "
        "(IESAISTE_LOG_LEVEL=DEBUG shows where)\n"
    )
