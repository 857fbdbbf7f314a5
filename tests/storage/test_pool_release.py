"""A PostgreSQL connection goes back to the pool without asyncpg's reset query,
and still without an open transaction or a lock left on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from storage import db


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    await db.open_database(postgres_url)
    yield postgres_url
    await db.close_database()


async def _backend_state() -> tuple[str, int]:
    """This connection as the server sees it: its state and the advisory locks it holds."""
    rows = await connections.get("default").execute_query_dict(
        "SELECT a.state, (SELECT count(*) FROM pg_locks l"
        " WHERE l.pid = a.pid AND l.locktype = 'advisory') AS locks"
        " FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()"
    )
    return rows[0]["state"], rows[0]["locks"]


async def test_releasing_a_connection_sends_no_reset_query(postgres_database: str) -> None:
    client = connections.get("default")
    seen: list[str] = []
    async with client.acquire_connection() as connection:
        connection.add_query_logger(lambda record: seen.append(record.query))
        backend = await connection.fetchval("SELECT pg_backend_pid()")
    # Released: asyncpg's default would have sent "… UNLISTEN *; RESET ALL;" now.
    async with client.acquire_connection() as again:
        assert await again.fetchval("SELECT pg_backend_pid()") == backend  # the idle one
    assert seen == ["SELECT pg_backend_pid()", "SELECT pg_backend_pid()"]


async def test_a_transaction_lock_ends_with_its_transaction_before_the_release(
    postgres_database: str,
) -> None:
    async with db.one_worker_at_a_time("catalog"):
        pass
    async with in_transaction():
        state, locks = await _backend_state()
    assert (state, locks) == ("active", 0)


async def test_a_connection_released_inside_a_transaction_is_rolled_back(
    postgres_database: str,
) -> None:
    client = connections.get("default")
    async with client.acquire_connection() as connection:
        await connection.execute("BEGIN")
        await connection.execute("CREATE TEMPORARY TABLE left_open (x int)")
        await connection.execute("INSERT INTO left_open VALUES (1)")
    # asyncpg rolls back what was left open before our (empty) reset runs.
    async with client.acquire_connection() as connection:
        assert not connection.is_in_transaction()
        exists = await connection.fetchval("SELECT to_regclass('pg_temp.left_open') IS NOT NULL")
    assert exists is False
