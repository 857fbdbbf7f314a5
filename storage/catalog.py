"""Neighbourhoods and topics: configured in TOML, mirrored into the database.

Rows are never deleted when the configuration drops an id: residents may
point at them. They are marked inactive instead, and come back if the id does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from storage.db import one_worker_at_a_time
from storage.models import Neighbourhood, Topic


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    names: Mapping[str, str]


async def _sync(model: type[Neighbourhood] | type[Topic], entries: Iterable[Entry]) -> None:
    wanted = {entry.key: dict(entry.names) for entry in entries}
    existing = {row.key: row for row in await model.all()}
    for key, names in wanted.items():
        row = existing.get(key)
        if row is None:
            await model.create(key=key, names=names, active=True)
        elif row.names != names or not row.active:
            row.names, row.active = names, True
            await row.save(update_fields=["names", "active"])
    for key, row in existing.items():
        if key not in wanted and row.active:
            row.active = False
            await row.save(update_fields=["active"])


async def sync(neighbourhoods: Iterable[Entry], topics: Iterable[Entry]) -> None:
    async with one_worker_at_a_time("catalog"):
        await _sync(Neighbourhood, neighbourhoods)
        await _sync(Topic, topics)
