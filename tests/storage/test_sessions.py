"""The session's own statements: the rows it loads are the ORM's rows, what it writes
is read back, and on PostgreSQL an update costs five statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from tortoise import connections

from storage import db
from storage.errors import DuplicateEvent
from storage.models import DialogState, Neighbourhood, Resident
from storage.sessions import open_session


def _row(instance: Resident | DialogState) -> dict[str, object]:
    return {name: getattr(instance, name) for name in instance._meta.db_fields}


async def test_the_session_loads_the_resident_and_the_dialog_as_the_orm_does(
    database: str,
) -> None:
    async with open_session("telegram", "7", "e1") as session:
        session.dialog.state = "proposal:text"
        session.dialog.data = {"text": "Bedre Rīgas ielā 🚧", "seen": [1, 2], "nothing": None}
    resident_id = session.resident.id
    riga = await Neighbourhood.get(key="centrs")
    await Resident.filter(id=resident_id).update(
        language="lv",
        neighbourhood_id=riga.id,
        onboarded_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        announcements_muted=True,
    )
    async with open_session("telegram", "7", "e2") as session:
        loaded_resident, loaded_dialog = _row(session.resident), _row(session.dialog)
    assert loaded_resident == _row(await Resident.get(id=resident_id)) | {
        "last_seen_at": loaded_resident["last_seen_at"]  # the ORM's copy is the one written
    }
    assert loaded_resident["onboarded_at"] == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert loaded_dialog == _row(await DialogState.get(resident_id=resident_id))
    assert loaded_dialog["data"] == {"text": "Bedre Rīgas ielā 🚧", "seen": [1, 2], "nothing": None}


async def test_what_the_session_writes_is_there_the_next_time(database: str) -> None:
    async with open_session("webchat", "anna", "e1") as session:
        session.resident.throttle_count = 3
        session.resident.throttle_warned = True
        session.dialog.state = "poll:ask"
        session.dialog.data = {"poll": 4}
    first_seen = session.resident.last_seen_at
    assert first_seen is not None and datetime.now(UTC) - first_seen < timedelta(minutes=1)
    async with open_session("webchat", "anna", "e2") as session:
        assert (session.resident.throttle_count, session.resident.throttle_warned) == (3, True)
        assert (session.state, session.data) == ("poll:ask", {"poll": 4})
        session.dialog.state = ""
    dialog = await DialogState.get(resident_id=session.resident.id)
    assert (dialog.state, dialog.data) == ("", {"poll": 4})


async def test_an_unchanged_dialog_row_is_not_written(database: str) -> None:
    async with open_session("telegram", "7", "e1") as session:
        session.dialog.state = "proposal:text"
    written = (await DialogState.get(resident_id=session.resident.id)).updated_at
    async with open_session("telegram", "7", "e2"):
        pass
    assert (await DialogState.get(resident_id=session.resident.id)).updated_at == written


async def test_a_duplicate_event_writes_nothing(database: str) -> None:
    async with open_session("telegram", "7", "e1") as session:
        session.dialog.state = "proposal:text"
    with pytest.raises(DuplicateEvent):
        async with open_session("telegram", "7", "e1") as again:
            again.dialog.state = "changed"
    assert (await DialogState.get(resident_id=session.resident.id)).state == "proposal:text"


@pytest.fixture
async def one_connection(postgres_url: str) -> AsyncIterator[list[str]]:
    """A PostgreSQL pool of one connection, and the statements sent on it from now on."""
    await db.open_database(postgres_url + ("&" if "?" in postgres_url else "?") + "maxsize=1")
    seen: list[str] = []
    async with connections.get("default").acquire_connection() as connection:
        connection.add_query_logger(lambda record: seen.append(" ".join(record.query.split())))
    yield seen
    await db.close_database()


async def test_an_update_of_a_known_resident_costs_five_statements(
    one_connection: list[str],
) -> None:
    account = uuid4().hex  # the server's database is not emptied for this test
    async with open_session("telegram", account, f"{account}-1") as session:
        session.dialog.state = "proposal:text"
    one_connection.clear()
    async with open_session("telegram", account, f"{account}-2") as session:
        session.dialog.state = "proposal:place"
    starts = [statement.split(" (")[0].split(" r.")[0] for statement in one_connection]
    assert starts == [
        "BEGIN;",
        "SELECT",  # the identity, the locked resident and its dialog row
        'INSERT INTO "processed_event"',
        "WITH d AS",  # the dialog's UPDATE inside the resident's
        "COMMIT;",
    ]
