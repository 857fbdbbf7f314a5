"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on this machine (127.0.0.1:5432, user postgres) or
whatever ``IESAISTE_TEST_POSTGRES`` names. Without it the PostgreSQL half is
skipped with a message, except under CI=true, where a missing part fails.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.config import Config, demo_municipality
from storage import catalog, db
from storage.catalog import Entry

ADMIN_URL = os.environ.get("IESAISTE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(what: str) -> None:
    """Skip on a developer's machine; fail in CI, where everything must be there."""
    if IN_CI:
        pytest.fail(f"{what} (CI=true: nothing may be skipped; .ci/run installs and starts it)")
    pytest.skip(what)


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(db.normalise_url(ADMIN_URL).replace("postgres://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A fresh database for this test run, migrated once; None when no server answers."""
    name = f"iesaiste_test_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as error:  # asyncpg raises many kinds; any means "not here"
        yield None
        print(f"PostgreSQL unavailable: {error}")
        return
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(db.migrate(url))
    yield url
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _truncate_all() -> None:
    from tortoise import Tortoise, connections

    tables = [model._meta.db_table for model in Tortoise.apps["models"].values()]
    quoted = ", ".join(f'"{table}"' for table in tables)
    await connections.get("default").execute_script(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path, postgres_url: str | None) -> AsyncIterator[str]:
    """An open, empty, migrated database with the demo catalog; yields its URL."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/test.sqlite3"
        await db.open_database(url, migrate_first=True)
    else:
        if postgres_url is None:
            missing("PostgreSQL is not running on 127.0.0.1:5432 (set IESAISTE_TEST_POSTGRES)")
        assert postgres_url is not None
        url = postgres_url
        await db.open_database(url)
        await _truncate_all()
    m = demo_municipality()
    await catalog.sync(
        [Entry(n.id, n.names) for n in m.neighbourhoods], [Entry(t.id, t.names) for t in m.topics]
    )
    yield url
    await db.close_database()
    # Tortoise caches SQL per connection name ("default"), whatever the
    # backend: forget it, since the next test may use the other backend.
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()


@pytest.fixture
def config(database: str) -> Config:
    return Config(municipality=demo_municipality(), database_url=database)
