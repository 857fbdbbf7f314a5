"""A throw-away PostgreSQL database for one benchmark run: shared by the benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

ADMIN_URL = os.environ.get("IESAISTE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


async def admin(statement: str) -> None:
    """Run one statement on the server's maintenance database (CREATE / DROP DATABASE)."""
    import asyncpg

    from storage import db

    url = db.normalise_url(ADMIN_URL).replace("postgres://", "postgresql://", 1)
    connection = await asyncio.wait_for(asyncpg.connect(url), 10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def scratch_postgres() -> AsyncIterator[tuple[str, str]]:
    """A new, empty database: yields its URL and name; dropped afterwards, even if in use."""
    name = f"iesaiste_bench_{uuid.uuid4().hex[:10]}"
    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name, name
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
