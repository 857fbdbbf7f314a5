"""One resident's update, handled inside one transaction.

``open_session`` finds or creates the resident, takes the per-resident row
lock (PostgreSQL's ``SELECT … FOR UPDATE``; SQLite runs one writer at a time
anyway), records the event id (a duplicate raises DuplicateEvent) and loads
the dialog state. Everything the handlers write during the update commits or
rolls back together when the block ends.

It runs on every update, so its own statements are few and written here once
rather than built by the ORM each time: BEGIN, the resident with its dialog row,
the event insert, one UPDATE of both (PostgreSQL; two on SQLite), COMMIT.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from tortoise import Model, connections
from tortoise.backends.base.client import BaseDBAsyncClient
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
DIALOG_FIELDS = ["state", "data", "updated_at"]
# Numbered once for both statements, so PostgreSQL can run them as one.
_UPDATE_RESIDENT = (
    'UPDATE "resident" SET '
    + ", ".join(f'"{name}" = ${n}' for n, name in enumerate(SESSION_FIELDS, 1))
    + f' WHERE "id" = ${len(SESSION_FIELDS) + 1}'
)
_UPDATE_DIALOG = (
    'UPDATE "dialog_state" SET '
    + ", ".join(f'"{name}" = ${n}' for n, name in enumerate(DIALOG_FIELDS, len(SESSION_FIELDS) + 2))
    + f' WHERE "resident_id" = ${len(SESSION_FIELDS) + 1}'
)


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
    stamp = ProcessedEvent._meta.fields_map["processed_at"].to_db_value(
        datetime.now(UTC), ProcessedEvent
    )
    client = connections.get("default")
    rows = await client.execute_query_dict(
        _sql(
            client,
            'INSERT INTO "processed_event" ("channel", "scope", "event_id", "processed_at") '
            'VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING "id"',
        ),
        [channel, scope, event_id[:64], stamp],
    )
    if not rows:
        raise DuplicateEvent(f"{channel}:{event_id}")


async def _locked_resident(
    channel: str, external_id: str
) -> tuple[Resident, DialogState | None, bool]:
    """The resident behind a platform account, row-locked, with its dialog row (None if
    it has none yet); created on first contact, which the bool says."""
    found = await _select_locked(channel, external_id)
    if found is not None:
        return *found, False
    try:
        async with in_transaction():  # a savepoint: a lost race must not abort the update
            resident = await Resident.create()
            await ChannelIdentity.create(
                resident=resident, channel=channel, external_id=external_id
            )
        return resident, None, True
    except IntegrityError:
        # Another worker created this resident a moment ago: wait for theirs.
        found = await _select_locked(channel, external_id)
        if found is None:
            raise
        return *found, False


async def _select_locked(
    channel: str, external_id: str
) -> tuple[Resident, DialogState | None] | None:
    """The identity, the locked resident and its dialog row, in one statement."""
    client = connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    rows = await client.execute_query_dict(_select_sql(postgres), [channel, external_id])
    if not rows:
        return None
    row = rows[0]
    resident = Resident._init_from_db(**{c: row[c] for c in _columns(Resident)})
    if row["d_resident_id"] is None:
        return resident, None
    dialog = DialogState._init_from_db(**{c: row[f"d_{c}"] for c in _columns(DialogState)})
    return resident, dialog


@cache
def _select_sql(postgres: bool) -> str:
    resident = ", ".join(f'r."{c}"' for c in _columns(Resident))
    dialog = ", ".join(f'd."{c}" AS "d_{c}"' for c in _columns(DialogState))
    sql = (
        f'SELECT {resident}, {dialog} FROM "channel_identity" i '
        'JOIN "resident" r ON r."id" = i."resident_id" '
        'LEFT JOIN "dialog_state" d ON d."resident_id" = r."id" '
        'WHERE i."channel" = $1 AND i."external_id" = $2'
    )
    return sql + " FOR UPDATE OF r" if postgres else sql.replace("$", "?")


@cache
def _columns(model: type[Model]) -> tuple[str, ...]:
    """The columns Tortoise builds a whole instance from (``Model._init_from_db``)."""
    meta = model._meta
    kinds = (meta.db_native_fields, meta.db_default_fields, meta.db_complex_fields)
    return tuple(column for fields in kinds for column, _, _ in fields)


async def _save(session: Session) -> None:
    """The session's own fields of the resident, and the dialog row if it changed."""
    resident, dialog = session.resident, session.dialog
    values = [_db_value(resident, name) for name in SESSION_FIELDS] + [resident.id]
    client = connections.get("default")
    if (dialog.state, dialog.data) == session._saved_state:
        await client.execute_query(_sql(client, _UPDATE_RESIDENT), values)
        return
    values += [_db_value(dialog, name) for name in DIALOG_FIELDS]
    if client.capabilities.dialect == "postgres":  # one statement: an UPDATE in a WITH
        await client.execute_query(f"WITH d AS ({_UPDATE_DIALOG}) {_UPDATE_RESIDENT}", values)
    else:
        await client.execute_query(
            _sql(client, _UPDATE_RESIDENT), values[: len(SESSION_FIELDS) + 1]
        )
        await client.execute_query(_sql(client, _UPDATE_DIALOG), values)


def _db_value(instance: Model, name: str) -> Any:
    """A field's value as Tortoise writes it (``updated_at``'s auto_now is set here)."""
    return instance._meta.fields_map[name].to_db_value(getattr(instance, name), instance)


def _sql(client: BaseDBAsyncClient, sql: str) -> str:
    """SQL written with PostgreSQL's ``$n`` marks, for the connection's dialect."""
    return sql if client.capabilities.dialect == "postgres" else sql.replace("$", "?")


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
        resident, dialog, is_new = await _locked_resident(channel, external_id)
        if event_id:
            # After the resident, whose id scopes the web chat's event ids; a duplicate
            # rolls back a resident it created, so it still has no effect.
            await _record_event(channel, events.scope(channel, resident.id), event_id)
        resident.last_seen_at = datetime.now(UTC)
        if dialog is None:
            dialog = await DialogState.create(resident=resident)
        session = Session(resident, dialog, is_new)
        session._saved_state = (dialog.state, _copy(dialog.data))
        yield session
        if not session.deleted:
            await _save(session)
    if session.deleted:
        await residents.scrub_deleted()  # committed: now it can go from the disk too


def _copy(data: Any) -> Any:
    # Dialog data is small JSON; a deep copy by round trip is plain and safe.
    return json.loads(json.dumps(data))
