"""GET /healthz tells a load balancer whether this worker can reach its database."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import RuntimeFactory, _admin


async def health(port: int) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status


async def test_health_is_200_while_the_database_answers(start_bot: RuntimeFactory) -> None:
    runtime = await start_bot()
    assert await health(runtime.config.http_port) == 200


# An embedded SQLite file cannot become unreachable; a PostgreSQL server can.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_health_is_503_when_the_database_is_unreachable(
    start_bot: RuntimeFactory, database_url: str
) -> None:
    runtime = await start_bot()
    name = database_url.rsplit("/", 1)[1]
    await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await _admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        assert await health(runtime.config.http_port) == 503
    finally:
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert await health(runtime.config.http_port) == 200, "it recovers when the database is back"
