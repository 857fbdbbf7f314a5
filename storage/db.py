"""Opening, migrating and closing the database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tortoise import Tortoise, connections
from tortoise.exceptions import DBConnectionError
from tortoise.migrations.api import migrate as run_migrations
from tortoise.migrations.executor import PlanStep

log = logging.getLogger(__name__)


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
    return {
        "connections": {"default": url},
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


def is_connection_error(error: BaseException) -> bool:
    """Whether an error means the database could not be reached (for operators' messages)."""
    return isinstance(error, DBConnectionError | ConnectionError | OSError)


async def ping() -> bool:
    """True when the database answers a trivial query."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # any failure means "not healthy", whatever the driver raised
        log.warning("database ping failed", exc_info=True)
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
