"""Opening, migrating and closing the database."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import ConfigurationError
from tortoise.migrations.api import migrate as run_migrations
from tortoise.migrations.executor import PlanStep
from tortoise.transactions import in_transaction

from storage.errors import unavailable

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0  # seconds; asyncpg's own default is a minute


class DatabaseUnavailable(Exception):
    """The database cannot be used as configured; the message says why, with no secret."""


def normalise_url(url: str) -> str:
    """Tortoise spells PostgreSQL 'postgres://'; accept the usual 'postgresql://' too."""
    if url.startswith("postgresql://"):
        return "postgres://" + url.removeprefix("postgresql://")
    return url


def is_sqlite(url: str) -> bool:
    return urlsplit(url).scheme == "sqlite"


def tortoise_config(url: str) -> dict[str, Any]:
    url = normalise_url(url)
    if is_sqlite(url):
        path = url.removeprefix("sqlite://")
        if path not in ("", ":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Deleted rows are overwritten with zeros, not left in free pages: a
        # forgotten resident's ids are gone from the file (storage.residents.forget).
        url += ("&" if "?" in url else "?") + "secure_delete=ON"
        connection: str | dict[str, Any] = url
    else:
        connection = expand_db_url(url)
        connection["credentials"]["reset"] = _keep_session
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": ["storage.models"],
                "default_connection": "default",
                "migrations": "storage.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: asyncpg's reset, less its query.

    asyncpg rolls back an open transaction itself before this is called. Its
    default reset then sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, one round trip in ten of an update's, for state
    the bot never leaves on a session: its advisory locks are transaction-level
    (``pg_advisory_xact_lock``), it opens no cursor across a release, LISTENs to
    nothing and SETs nothing.
    """


async def migrate(url: str) -> None:
    """Bring the schema up to date with the migrations in ``storage/migrations``."""
    await run_migrations(config=tortoise_config(url))
    await close_database()


async def open_database(url: str, *, migrate_first: bool = False) -> None:
    if migrate_first:
        await migrate(url)
    # The global fallback lets tasks that PTB and aiohttp start find the
    # database whatever context they were created in.
    await Tortoise.init(config=tortoise_config(url), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()
    # Forget the models' binding too, so the next open may use another backend.
    await Tortoise._reset_apps()


async def check(url: str, *, migrated: bool = False) -> None:
    """Connect once, outside Tortoise, and say in one sentence why that fails.

    Tortoise's SQLite client keeps its connection lock when the connection
    fails (a directory, a file that is not a database), and the next query
    then waits on it forever: a command would hang instead of failing.
    ``migrated`` also refuses a database that lacks a migration of this version.
    """
    url = normalise_url(url)
    try:
        if is_sqlite(url):
            await asyncio.to_thread(_check_sqlite, url.removeprefix("sqlite://").split("?", 1)[0])
        else:
            await _check_postgres(expand_db_url(url)["credentials"])
        if migrated and await pending_migrations(url):
            raise DatabaseUnavailable(
                "the database lacks this version's schema: run `iesaiste migrate` first"
            )
    except ConfigurationError as error:  # what Tortoise cannot read in the URL
        raise DatabaseUnavailable(str(error)) from None
    except DatabaseUnavailable as error:
        raise DatabaseUnavailable(_without_password(str(error), url)) from None


def _check_sqlite(path: str) -> None:
    if path == ":memory:":
        return
    file = Path(path)
    if file.is_dir():
        raise DatabaseUnavailable("a directory, not a SQLite database file")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot create the directory {str(file.parent)!r} ({error.strerror})"
        ) from None
    try:
        connection = sqlite3.connect(file)
        try:
            connection.execute("PRAGMA schema_version").fetchone()  # reads the file's header
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise DatabaseUnavailable("the file is not a SQLite database") from None
        raise DatabaseUnavailable(f"cannot open the file ({error})") from None


async def _check_postgres(credentials: dict[str, Any]) -> None:
    where = f"{credentials.get('host') or 'localhost'}:{credentials.get('port')}"
    try:
        connection = await asyncpg.connect(
            host=credentials.get("host"),
            port=credentials.get("port"),
            user=credentials.get("user"),
            password=credentials.get("password"),
            database=credentials.get("database"),
            ssl=credentials.get("ssl"),
            timeout=CONNECT_TIMEOUT,
        )
    except asyncpg.InvalidAuthorizationSpecificationError as error:  # and a wrong password
        raise DatabaseUnavailable(f"the server refused the login ({error})") from None
    except asyncpg.PostgresError as error:  # no such database, too many connections, …
        raise DatabaseUnavailable(f"the server refused the connection ({error})") from None
    except TimeoutError:
        raise DatabaseUnavailable(
            f"no answer from {where} within {CONNECT_TIMEOUT:g} seconds"
        ) from None
    except OSError as error:
        raise DatabaseUnavailable(f"cannot connect to {where} ({error})") from None
    except (asyncpg.InterfaceError, ValueError) as error:  # a malformed URL, an SSL mismatch
        raise DatabaseUnavailable(f"cannot connect to {where} ({error})") from None
    await connection.close()


def _without_password(text: str, url: str) -> str:
    password = expand_db_url(url)["credentials"].get("password") if not is_sqlite(url) else None
    return text.replace(password, "…") if password else text


async def ping() -> bool:
    """True when the database answers a trivial query."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as error:  # any failure means "not healthy", whatever the driver raised
        # An outage is one line (it is said at every probe); anything else, with its trace.
        passing = unavailable(error)
        log.warning("database ping failed (%s)", type(error).__name__, exc_info=not passing)
        return False
    return True


async def pending_migrations(url: str) -> bool:
    """True when the database lacks a migration this version ships."""
    steps: list[PlanStep] = []

    def collect(_connection: str, planned: list[PlanStep], _fake: bool, _dry: bool) -> None:
        steps.extend(planned)

    await run_migrations(config=tortoise_config(url), dry_run=True, reporter=collect)
    await close_database()
    return bool(steps)


@asynccontextmanager
async def one_worker_at_a_time(name: str) -> AsyncIterator[None]:
    """A transaction that workers starting together enter one after the other.

    Workers started at the same moment would otherwise both find a row missing
    and both insert it (the catalog, staff from the configuration): the second
    stops on the unique key. PostgreSQL serialises them with an advisory lock
    held to the end of the transaction; SQLite has one writer anyway.
    """
    async with in_transaction() as client:
        if client.capabilities.dialect == "postgres":
            await client.execute_query("SELECT pg_advisory_xact_lock(hashtext($1))", [name])
        yield
