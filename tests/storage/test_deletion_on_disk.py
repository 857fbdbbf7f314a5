"""A forgotten resident leaves no trace in the SQLite file or its write-ahead log.

The database stays open while the files are read, as the running bot holds it:
what counts is what is on disk now, not after a clean shutdown. The deletion goes
the real way (``/mydata`` or a declined privacy notice through the dispatcher, or
``storage.residents.forget``). PostgreSQL gives no such file-level guarantee
(old row versions stay until VACUUM and in its WAL segments), so this is SQLite only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import connections

from bot.core.config import Config, demo_municipality
from handlers.dispatcher import Dispatcher
from storage import catalog, db, residents
from storage.catalog import Entry
from storage.models import ChannelIdentity, Delivery, DialogState, Resident
from tests.chat import Chat
from tests.conftest import _forget_cached_sql

GONE = "7305119842"  # the Telegram id of the resident who asks to be forgotten
KEPT = "6204118731"  # another resident, who stays: proves the search finds a live id
NOTE = "note-Zvaigznes-iela-17-dz-42"  # something they wrote, kept in their dialog data


@pytest.fixture(params=["default", "secure_delete=OFF"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An open SQLite file with the demo catalog, as the running bot holds it.

    Debian's SQLite turns ``secure_delete`` on by default; python.org's builds for
    macOS and Windows do not. A URL that turns it off stands for those.
    """
    url = f"sqlite://{tmp_path}/test.sqlite3"
    if request.param != "default":
        url += f"?{request.param}"
    _forget_cached_sql()
    await db.migrate(url)
    await db.open_database(url)
    m = demo_municipality()
    await catalog.sync(
        [Entry(n.id, n.names) for n in m.neighbourhoods], [Entry(t.id, t.names) for t in m.topics]
    )
    yield url
    await db.close_database()
    _forget_cached_sql()


@pytest.fixture
def config(database: str) -> Config:
    return Config(municipality=demo_municipality(), database_url=database)


def holding(database_url: str, text: str) -> list[str]:
    """Which of the database file and the files SQLite keeps beside it hold ``text``, raw."""
    main = Path(database_url.removeprefix("sqlite://").split("?")[0])
    assert main.is_file() and Path(f"{main}-wal").is_file(), "the database is open in WAL mode"
    files = [Path(f"{main}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    return [path.name for path in files if path.exists() and text.encode() in path.read_bytes()]


async def write_note(user_id: str, note: str) -> None:
    """Something the resident typed, kept in their dialog data beside what the dialog holds."""
    identity = await ChannelIdentity.get(channel="telegram", external_id=user_id)
    dialog = await DialogState.get(resident_id=identity.resident_id)  # type: ignore[attr-defined]
    dialog.data = {**dialog.data, "draft": note}
    await dialog.save()


async def queue_push(user_id: str) -> None:
    """A push waiting in the outbox: the row keeps its own copy of the platform id."""
    identity = await ChannelIdentity.get(channel="telegram", external_id=user_id)
    await Delivery.create(
        resident_id=identity.resident_id,  # type: ignore[attr-defined]
        channel="telegram",
        external_id=user_id,
        text="Rīt nebūs ūdens.",
        not_before=datetime.now(UTC),
    )


async def to_privacy_notice(chat: Chat) -> None:
    """Onboarding up to its last question, the privacy notice."""
    await chat.command("start")
    await chat.press_payload("onb:language:en")
    await chat.choose("onb:neighbourhood", "centrs")
    await chat.choose("onb:topics", "_done")


async def delete_by_mydata(chat: Chat) -> None:
    await chat.command("mydata")
    await chat.press("Delete my data")
    await chat.press("Yes, delete")
    assert chat.texts() == [
        "Your data has been deleted. If you write again, we will start afresh with /start."
    ]


async def delete_by_declining(chat: Chat) -> None:
    await chat.choose("onb:privacy", "_no")
    assert chat.texts() == [
        "Understood. We have not kept anything about you. "
        "Send /start whenever you change your mind."
    ]


async def delete_by_forget(chat: Chat) -> None:
    identity = await ChannelIdentity.get(channel="telegram", external_id=chat.user_id)
    await residents.forget(await Resident.get(id=identity.resident_id))  # type: ignore[attr-defined]


Step = Callable[[Chat], Awaitable[None]]


@pytest.mark.parametrize(
    ("arrive", "delete"),
    [
        (Chat.onboard, delete_by_mydata),
        (to_privacy_notice, delete_by_declining),
        (Chat.onboard, delete_by_forget),
    ],
    ids=["mydata", "declined-privacy", "forget"],
)
async def test_a_deleted_residents_ids_and_texts_are_nowhere_in_the_files(
    database: str, config: Config, arrive: Step, delete: Step
) -> None:
    dispatcher = Dispatcher(config)
    kept = Chat(dispatcher, user_id=KEPT, channel="telegram")
    await kept.onboard()
    gone = Chat(dispatcher, user_id=GONE, channel="telegram")
    await arrive(gone)
    await write_note(GONE, NOTE)
    # The running bot checkpoints now and then: older copies sit in the file itself,
    # newer ones (the note written again, a push queued) in the write-ahead log.
    await connections.get("default").execute_query("PRAGMA wal_checkpoint(PASSIVE)")
    await write_note(GONE, NOTE + "-again")
    await queue_push(GONE)
    assert holding(database, GONE) == ["test.sqlite3", "test.sqlite3-wal"]
    assert holding(database, NOTE) == ["test.sqlite3", "test.sqlite3-wal"]

    await delete(gone)

    assert not await ChannelIdentity.filter(external_id=GONE).exists()
    assert not await Delivery.filter(external_id=GONE).exists()
    assert holding(database, KEPT) == ["test.sqlite3"]  # and the log is empty
    assert holding(database, GONE) == []
    assert holding(database, NOTE) == []
