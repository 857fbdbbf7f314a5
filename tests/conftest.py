"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on this machine (127.0.0.1:5432, user postgres) or
whatever ``IESAISTE_TEST_POSTGRES`` names. Without it the PostgreSQL half is
skipped with a message saying what went wrong, except under CI=true, where a
missing part fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from bot.app import Runtime
from bot.core.config import Config, demo_municipality, load, masked_url
from storage import catalog, db
from storage.catalog import Entry

ADMIN_URL = os.environ.get("IESAISTE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> NoReturn:
    """Skip on a developer's machine; fail in CI, where everything must be there."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: nothing may be skipped; .ci/run installs and starts it)")
    pytest.skip(what)


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(
        db.normalise_url(ADMIN_URL).replace("postgres://", "postgresql://")
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@dataclass(frozen=True, slots=True)
class Postgres:
    """The test server: the URL of this run's database, or what stopped us making one."""

    url: str | None
    unavailable: str = ""


def _unavailable(error: BaseException) -> str:
    """What happened, for the skip (or CI failure) line: the error as raised, no password."""
    text = f"{type(error).__name__}: {error}"
    password = ADMIN_URL.partition("://")[2].rpartition("@")[0].partition(":")[2]
    if password:
        text = text.replace(password, "…")
    return (
        f"no test database on PostgreSQL at {masked_url(ADMIN_URL)} "
        f"(IESAISTE_TEST_POSTGRES): {text}"
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A fresh database for this test run, migrated once; or why the server gave us none."""
    import asyncpg

    name = f"iesaiste_test_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:  # no server, or it refused us
        # Anything else (a bug in the test set-up) fails: never a silent skip.
        yield Postgres(None, _unavailable(error))
        return
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(db.migrate(url))
    yield Postgres(url)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres: Postgres) -> str:
    """This run's migrated PostgreSQL database; skipped (in CI: failed) with the reason."""
    if postgres.url is None:
        missing(postgres.unavailable)
    return postgres.url


async def _truncate_all() -> None:
    from tortoise import Tortoise, connections

    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    quoted = ", ".join(f'"{table}"' for table in tables)
    await connections.get("default").execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


def _forget_cached_sql() -> None:
    # Tortoise caches SQL per connection name ("default"), whatever the
    # backend: forget it, since the next test may use the other backend.
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()


@pytest.fixture(params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres: Postgres
) -> AsyncIterator[str]:
    """The URL of an empty, migrated database, not opened: for tests that start the bot."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/test.sqlite3"
        await db.migrate(url)
    else:
        if postgres.url is None:
            missing(postgres.unavailable)
        url = postgres.url
        await db.open_database(url)
        await _truncate_all()
        await db.close_database()
    _forget_cached_sql()
    yield url
    _forget_cached_sql()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """An open, empty, migrated database with the demo catalog; yields its URL."""
    await db.open_database(database_url)
    m = demo_municipality()
    await catalog.sync(
        [Entry(n.id, n.names) for n in m.neighbourhoods], [Entry(t.id, t.names) for t in m.topics]
    )
    yield database_url
    await db.close_database()


@pytest.fixture
def config(database: str) -> Config:
    return Config(municipality=demo_municipality(), database_url=database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


RuntimeFactory = Callable[..., Awaitable[Runtime]]


@pytest.fixture
async def start_bot(database_url: str) -> AsyncIterator[RuntimeFactory]:
    """Start the whole bot (HTTP server, channels, database) as ``iesaiste run`` would.

    ``await start_bot(IESAISTE_TELEGRAM_API_URL=..., ...)`` takes environment
    variables, read exactly as in production; the database and a free port are
    filled in. Call it again after ``await runtime.stop()`` to restart.
    Everything still running is stopped at the end of the test.
    """
    running: list[Runtime] = []
    port = free_port()

    async def start(config_path: str | None = None, **environ: str) -> Runtime:
        env = {
            "IESAISTE_DATABASE_URL": database_url,
            "IESAISTE_HTTP_PORT": str(port),
            "IESAISTE_HTTP_HOST": "127.0.0.1",
            **environ,
        }
        runtime = Runtime(load(config_path, env))
        await runtime.start()
        running.append(runtime)
        return runtime

    yield start
    for runtime in running:
        await runtime.stop()
    _forget_cached_sql()
