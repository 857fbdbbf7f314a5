"""One resident's update, handled inside one transaction.

``open_session`` records the event id (a duplicate raises DuplicateEvent),
finds or creates the resident, takes the per-resident row lock (PostgreSQL's
``SELECT … FOR UPDATE``; SQLite runs one writer at a time anyway) and loads
the dialog state. Everything the handlers write during the update commits or
rolls back together when the block ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from storage.errors import DuplicateEvent
from storage.models import ChannelIdentity, DialogState, ProcessedEvent, Resident


@dataclass(slots=True)
class Session:
    resident: Resident
    identity: ChannelIdentity
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


async def _identity(channel: str, external_id: str) -> tuple[ChannelIdentity, bool]:
    identity = await ChannelIdentity.get_or_none(channel=channel, external_id=external_id)
    if identity is not None:
        return identity, False
    resident = await Resident.create()
    identity = await ChannelIdentity.create(
        resident=resident, channel=channel, external_id=external_id
    )
    return identity, True


@asynccontextmanager
async def open_session(channel: str, external_id: str, event_id: str) -> AsyncIterator[Session]:
    async with in_transaction():
        if event_id:
            try:
                # A savepoint keeps PostgreSQL's transaction usable after the
                # unique violation, so we can tell the caller cleanly.
                async with in_transaction():
                    await ProcessedEvent.create(channel=channel, event_id=event_id[:64])
            except IntegrityError:
                raise DuplicateEvent(f"{channel}:{event_id}") from None
        try:
            async with in_transaction():
                identity, is_new = await _identity(channel, external_id)
        except IntegrityError:
            # Another worker created this resident a moment ago: use theirs.
            identity = await ChannelIdentity.get(channel=channel, external_id=external_id)
            is_new = False
        resident = await Resident.select_for_update().get(id=identity.resident_id)  # type: ignore[attr-defined]
        resident.last_seen_at = datetime.now(UTC)
        dialog, _ = await DialogState.get_or_create(resident=resident)
        session = Session(resident, identity, dialog, is_new)
        session._saved_state = (dialog.state, _copy(dialog.data))
        yield session
        if session.deleted:
            return
        await resident.save()
        if (dialog.state, dialog.data) != session._saved_state:
            await dialog.save()


def _copy(data: Any) -> Any:
    # Dialog data is small JSON; a deep copy by round trip is plain and safe.
    return json.loads(json.dumps(data))
