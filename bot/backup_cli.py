"""``iesaiste backup PATH``: a consistent copy of the SQLite database, taken while the bot runs.

The copy is made with ``VACUUM INTO`` rather than the online backup API
(``sqlite3.Connection.backup``). Both read a consistent state, but the backup API
copies in steps and starts over whenever another connection writes between two
steps: against a bot that keeps writing it may never finish, unless it copies
everything in one step, which is then what ``VACUUM INTO`` does anyway. ``VACUUM
INTO`` is one statement in one read transaction: it sees the database as it was
when it began (every transaction committed before, none after), and since the bot
runs SQLite in WAL mode a reader never blocks its writers, so the bot goes on
while the copy is written. The copy is compact too, and holds no free pages (no
leftovers of deleted rows).

The copy is written under a temporary name in the target's folder, checked with
``PRAGMA integrity_check``, synced, and only then given its name, so a file with
that name is always a whole, checked backup. An existing file keeps its place
unless ``--force`` is given. PostgreSQL is backed up with ``pg_dump`` (README,
"Backups"). Every refusal is one line and exit code 2, and creates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.config import Config, masked_url

WAL_FILES = ("", "-wal", "-shm", "-journal")  # the database file and SQLite's beside it
BUSY_TIMEOUT = 30.0  # seconds to wait for a lock the bot holds (a checkpoint, a migration)


class BackupRefused(Exception):
    """What stops a backup, in one line naming the setting or the path."""


@dataclass(frozen=True, slots=True)
class Written:
    """What a backup holds, for the line printed after it."""

    path: Path
    size: int
    tables: int
    rows: int
    schema: str  # the newest migration applied, e.g. "0012_messenger"

    def line(self) -> str:
        return (
            f"backup written to {self.path}: {self.size} bytes, {self.tables} tables, "
            f"{self.rows} rows, schema {self.schema or 'none'}; integrity check ok"
        )


def add_parser(commands: Any) -> None:
    """The ``backup`` command, on the ``iesaiste`` parser's sub-parsers."""
    backup = commands.add_parser(
        "backup", help="copy the SQLite database, while the bot runs, to a new file"
    )
    backup.add_argument("path", metavar="PATH", help="the backup file to write (must not exist)")
    backup.add_argument("--force", action="store_true", help="replace an existing file at PATH")


def source_path(config: Config) -> Path:
    """The SQLite file of ``database.url``; PostgreSQL and in-memory databases refused."""
    from storage.db import is_sqlite, normalise_url

    url = normalise_url(config.database_url)
    if not is_sqlite(url):
        raise BackupRefused(
            f"database.url = {masked_url(config.database_url)} is PostgreSQL: back it up with "
            "pg_dump (README.md, section Backups)"
        )
    path = url.removeprefix("sqlite://").split("?", 1)[0]
    if path in ("", ":memory:"):
        raise BackupRefused(f"database.url = {url}: an in-memory database has nothing to copy")
    return Path(path)


def target_path(value: str, *, force: bool) -> Path:
    """Where the backup goes: in a folder that exists, and not over a file unless forced."""
    path = Path(value)
    if not value or path.is_dir():
        raise BackupRefused(f"PATH = {value!r}: a folder, not a file name")
    if not path.parent.is_dir():
        raise BackupRefused(f"PATH = {value!r}: the folder {str(path.parent)!r} does not exist")
    if path.exists() and not force:
        raise BackupRefused(f"PATH = {value!r}: a file is there already (--force replaces it)")
    return path


def back_up(source: Path, target: Path, *, force: bool = False) -> Written:
    """Copy ``source`` to ``target`` consistently; on any error nothing is left behind."""
    if not source.is_file():
        raise BackupRefused(f"database.url = sqlite://{source}: no database file there")
    if target.resolve() in {source.resolve().with_name(source.name + end) for end in WAL_FILES}:
        # Replacing it would cut the running bot off: it goes on writing to the old file.
        raise BackupRefused(f"PATH = {str(target)!r}: that is the database itself")
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        _vacuum_into(source, partial, target)
        # Residents' data: readable by whom the database is, not by the umask's choice.
        os.chmod(partial, stat.S_IMODE(source.stat().st_mode))
        written = _verify(partial, target)
        _sync(partial)
        _publish(partial, target, force=force)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    _sync(target.parent)
    return written


def _vacuum_into(source: Path, partial: Path, target: Path) -> None:
    # mode=rw: a missing database is an error, never a new empty file.
    connection = sqlite3.connect(
        f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=BUSY_TIMEOUT
    )
    try:
        connection.execute("VACUUM INTO ?", (str(partial),))
    except sqlite3.DatabaseError as error:  # either side: not a database, locked, no room
        raise BackupRefused(
            f"cannot copy database.url = sqlite://{source} to PATH = {str(target)!r} ({error})"
        ) from None
    finally:
        connection.close()


def _verify(partial: Path, target: Path) -> Written:
    connection = sqlite3.connect(f"{partial.resolve().as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupRefused(f"PATH = {str(target)!r}: the copy fails its integrity check")
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        rows = sum(
            connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables
        )
        schema = ""
        if "tortoise_migrations" in tables:
            (schema,) = connection.execute(
                "SELECT coalesce(max(name), '') FROM tortoise_migrations WHERE app = 'models'"
            ).fetchone()
    finally:
        connection.close()
    return Written(target, partial.stat().st_size, len(tables), rows, schema)


def _publish(partial: Path, target: Path, *, force: bool) -> None:
    """Give the checked copy its name in one step; never over a file unless forced."""
    if force:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # fails if the name is taken, even by a file made just now
    except FileExistsError:
        raise BackupRefused(
            f"PATH = {str(target)!r}: a file is there already (--force replaces it)"
        ) from None
    partial.unlink()


def _sync(path: Path) -> None:
    """The copy, then its folder's entry, on disk before we say it is written."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def run(config: Config, args: argparse.Namespace) -> int:
    source = source_path(config)
    target = target_path(args.path, force=args.force)
    try:
        written = back_up(source, target, force=args.force)
    except OSError as error:
        raise BackupRefused(f"PATH = {args.path!r}: cannot write it ({error.strerror})") from None
    print(written.line())
    return 0
