"""One resident's update, handled inside one transaction.

``open_session`` finds or creates the resident, takes the per-resident row
lock (PostgreSQL's ``SELECT … FOR UPDATE``; SQLite runs one writer at a time
anyway), records the event id (a duplicate raises DuplicateEvent) and loads
the dialog state. Everything the handlers write during the update commits or
rolls back together when the block ends.

It runs on every update, so it is kept to few statements: BEGIN, the locked
resident, the event insert, the dialog row, one UPDATE, COMMIT.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from storage import events, residents
from storage.errors import DuplicateEvent
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident

# Written by the session itself; every other change saves its own fields.
SESSION_FIELDS = [
    "last_seen_at",
    "throttle_window_start",
    "throttle_count",
    "throttle_warned",
    "pushes_held",
]


@dataclass(slots=True)
class Session:
    resident: Resident
    dialog: DialogState
    is_new: bool
    deleted: bool = False
    _saved_state: tuple[str, Any] = field(default=("", None))

    @property
    def state(self) -> str:
        return self.dialog.state

    @property
    def data(self) -> dict[str, Any]:
        return self.dialog.data


async def _record_event(channel: str, scope: int, event_id: str) -> None:
    """Insert the event id, or raise DuplicateEvent: one statement, no savepoint.

    ``ON CONFLICT DO NOTHING`` leaves the transaction usable on PostgreSQL,
    where a failed plain INSERT would abort it.
    """
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    marks = "$1, $2, $3, $4" if postgres else "?, ?, ?, ?"
    stamp = ProcessedEvent._meta.fields_map["processed_at"].to_db_value(
        datetime.now(UTC), ProcessedEvent
    )
    rows = await client.execute_query_dict(
        'INSERT INTO "processed_event" ("channel", "scope", "event_id", "processed_at") '
        f'VALUES ({marks}) ON CONFLICT DO NOTHING RETURNING "id"',
        [channel, scope, event_id[:64], stamp],
    )
    if not rows:
        raise DuplicateEvent(f"{channel}:{event_id}")


async def _locked_resident(channel: str, external_id: str) -> tuple[Resident, bool]:
    """The resident behind a platform account, row-locked; created on first contact."""
    query = Resident.select_for_update().filter(
        identities__channel=channel, identities__external_id=external_id
    )
    resident = await query.first()
    if resident is not None:
        return resident, False
    try:
        async with in_transaction():  # a savepoint: a lost race must not abort the update
            resident = await Resident.create()
            await ChannelIdentity.create(
                resident=resident, channel=channel, external_id=external_id
            )
        return resident, True
    except IntegrityError:
        # Another worker created this resident a moment ago: wait for theirs.
        return await query.get(), False


async def known_language(channel: str, external_id: str) -> str | None:
    """The language of the resident behind a platform account ("" if not chosen yet), or
    None when there is no such resident: a look-up that creates nobody."""
    rows = await Resident.filter(
        identities__channel=channel, identities__external_id=external_id
    ).values_list("language", flat=True)
    return str(rows[0]) if rows else None


async def current_state(channel: str, external_id: str) -> str | None:
    """The dialog state of the resident behind a platform account ("" when idle), or None
    when there is none: read with no lock and no transaction, as a hint before the
    update's own (whether a photo is worth fetching first)."""
    rows = await DialogState.filter(
        resident__identities__channel=channel, resident__identities__external_id=external_id
    ).values_list("state", flat=True)
    return str(rows[0]) if rows else None


@asynccontextmanager
async def open_session(channel: str, external_id: str, event_id: str) -> AsyncIterator[Session]:
    async with in_transaction():
        resident, is_new = await _locked_resident(channel, external_id)
        if event_id:
            # After the resident, whose id scopes the web chat's event ids; a duplicate
            # rolls back a resident it created, so it still has no effect.
            await _record_event(channel, events.scope(channel, resident.id), event_id)
        resident.last_seen_at = datetime.now(UTC)
        dialog = None if is_new else await DialogState.get_or_none(resident_id=resident.id)
        if dialog is None:
            dialog = await DialogState.create(resident=resident)
        session = Session(resident, dialog, is_new)
        session._saved_state = (dialog.state, _copy(dialog.data))
        yield session
        if not session.deleted:
            await resident.save(update_fields=SESSION_FIELDS)
            if (dialog.state, dialog.data) != session._saved_state:
                await dialog.save()
    if session.deleted:
        await residents.scrub_deleted()  # committed: now it can go from the disk too


def _copy(data: Any) -> Any:
    # Dialog data is small JSON; a deep copy by round trip is plain and safe.
    return json.loads(json.dumps(data))
