"""Delivery across real processes: a bot killed in the middle of a broadcast, a bot that
never comes back, two bots on one PostgreSQL database.

The bot runs as in production, ``python -m bot run`` in a subprocess, and the announcement is
queued with ``python -m bot announce``. The Bot API stand-in runs in the test process, rate
limited like a bot with paid broadcasts (1000 messages a second), so the bot has to pace.
Residents are written straight into the tables, as onboarding leaves them, so that 10,000 of
them take a second.

A kill comes at the worst moment for duplicates: the stand-in holds back its answers until
every one of the worker's in-flight slots waits on a message that Telegram has already
delivered but the bot has not yet reported. Those, and only those, may go out twice.

Telegram's limit is per bot token: two workers together keep to it, through a budget of
send times shared in the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.delivery import DeliveryWorker
from storage import db
from storage.models import ChannelIdentity, Delivery, Resident
from tests.bot.channels.telegram_helpers import joined
from tests.conftest import free_port
from tests.phrases import HELP, MAIN_MENU, MUNICIPALITY, tr
from tests.standins.telegram_api import BotApiStandIn

ROOT = Path(__file__).resolve().parents[2]
RATE = 1000  # messages a second: the stand-in's flood control and the bot's pacing
RESIDENTS = 10_000
FIRST_CHAT = 500_000_001
TEXT = "Rīt no 9:00 līdz 15:00 Brīvības ielā nebūs ūdens."
_WORKER = {field.name: field.default for field in dataclasses.fields(DeliveryWorker)}
IN_FLIGHT: int = _WORKER["in_flight"]  # sends one worker has under way at most
BATCH: int = _WORKER["batch"]  # rows one worker claims at a time
LEASE = _WORKER["lease"]  # how long a claimed row belongs to its worker
WEBHOOK_SECRET = "process-test-webhook-secret"


def write_config(tmp_path: Path, rate: int = RATE) -> str:
    """Paced to ``rate`` (paid broadcasts by default), no quiet hours: passes at any hour."""
    path = tmp_path / f"config-{rate}.toml"
    path.write_text(
        f'[delivery]\ntelegram_per_second = {rate}\nquiet_start = "00:00"\nquiet_end = "00:00"\n',
        encoding="utf-8",
    )
    return str(path)


async def onboard(count: int) -> list[int]:
    """``count`` onboarded residents on Telegram, bulk-inserted; returns their chat ids."""
    now = datetime.now(UTC)
    await Resident.bulk_create(
        [Resident(language="lv", onboarded_at=now) for _ in range(count)], batch_size=1000
    )
    ids = await Resident.all().order_by("id").values_list("id", flat=True)
    chats = [FIRST_CHAT + index for index in range(count)]
    await ChannelIdentity.bulk_create(
        [
            ChannelIdentity(resident_id=resident_id, channel="telegram", external_id=str(chat))
            for resident_id, chat in zip(ids, chats, strict=True)
        ],
        batch_size=1000,
    )
    return chats


class BotProcess:
    """``python -m bot run`` in a subprocess; its output goes to a log file."""

    def __init__(
        self, name: str, port: int, log: Path, process: asyncio.subprocess.Process
    ) -> None:
        self.name, self.port, self.log, self.process = name, port, log, process
        self.killed = False

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} (pid {self.process.pid}) ---\n" + "\n".join(
            text.splitlines()[-lines:]
        )

    async def kill(self) -> None:
        """``kill -9``: no clean-up, no reports, whatever was in flight."""
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)

    async def stop(self) -> None:
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            await self.kill()


class Bots:
    """Starts bot processes and checks on them; whatever still runs is stopped at the end."""

    def __init__(self, database_url: str, config: str, tmp_path: Path) -> None:
        self.database_url, self.config, self.tmp_path = database_url, config, tmp_path
        self.started: list[BotProcess] = []

    async def start(
        self, api: BotApiStandIn, name: str, port: int | None = None, **environ: str
    ) -> BotProcess:
        """Start a bot; the same ``port`` again is the same worker coming back."""
        port = port or free_port()
        log = self.tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "IESAISTE_TELEGRAM_TOKEN": api.token,
            "IESAISTE_TELEGRAM_API_URL": api.url,
            "IESAISTE_DATABASE_URL": self.database_url,
            "IESAISTE_HTTP_HOST": "127.0.0.1",
            "IESAISTE_HTTP_PORT": str(port),
            "IESAISTE_LOG_LEVEL": "INFO",
            **environ,
        }
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--config",
                self.config,
                "run",
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        bot = BotProcess(name, port, log, process)
        self.started.append(bot)
        return bot

    async def announce(self, text: str) -> str:
        """``iesaiste announce --text … --audience all``; returns what it printed."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            self.config,
            "announce",
            "--text",
            text,
            "--audience",
            "all",
            cwd=ROOT,
            env={**os.environ, "IESAISTE_DATABASE_URL": self.database_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return out.decode().strip()

    def logs(self) -> str:
        return "\n".join(bot.tail() for bot in self.started)

    async def until(
        self,
        condition: Callable[[], object | Awaitable[object]],
        timeout: float,  # noqa: ASYNC109 - a test helper's deadline
        what: str,
    ) -> None:
        """Wait until ``condition()`` holds, failing at once if a bot process died."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            dead = [bot for bot in self.started if not bot.running and not bot.killed]
            if dead:
                raise AssertionError(f"a bot exited while waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}\n{self.logs()}"
                )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for bot in self.started:
            await bot.stop()


@pytest.fixture
async def bots(database_url: str, tmp_path: Path) -> AsyncIterator[Bots]:
    """The test's own connection to the database (to onboard and inspect), and its bots."""
    await db.open_database(database_url)
    started = Bots(database_url, write_config(tmp_path), tmp_path)
    try:
        yield started
    finally:
        await started.close()
        await db.close_database()


async def states() -> Counter[str]:
    return Counter(await Delivery.all().values_list("state", flat=True))


def all_sent(count: int) -> Callable[[], Awaitable[bool]]:
    """A condition: the announcement has been released and all its ``count`` rows are sent."""

    async def condition() -> bool:
        return await Delivery.filter(state="sent").count() == count

    return condition


@dataclasses.dataclass(frozen=True)
class Killed:
    """What a bot left behind when it was killed."""

    worker: str  # its worker id, as in ``delivery.claimed_by``
    held: set[int]  # chats whose message Telegram delivered and the bot never heard about
    claimed: set[int]  # chats of the rows it had claimed and not reported ("sending")


async def kill_with_sends_in_flight(bots: Bots, bot: BotProcess, api: BotApiStandIn) -> Killed:
    """``kill -9`` the bot with all its in-flight slots on messages Telegram has delivered.

    The stand-in delivers each message at once but holds back its answer, so the bot cannot
    report them: the worst moment for a crash. Called as a batch begins (after a multiple of
    BATCH sends); claims are pipelined, so the next batch is at hand to fill every slot.
    """
    mark = len(api.requests)
    api.delay("sendMessage", 30)  # the effect at once, the answer held back
    await bots.until(lambda: api.in_flight >= IN_FLIGHT, 15, f"{IN_FLIGHT} sends in flight")
    await bot.kill()
    api.delay("sendMessage", 0)
    api.release_delayed()
    held = {int(r.params["chat_id"]) for r in api.requests[mark:] if r.method == "sendMessage"}
    rows = await Delivery.filter(state="sending").values_list("external_id", "claimed_by")
    workers = {worker for _, worker in rows}
    assert len(workers) == 1, f"rows being sent by {workers}, not only by the killed bot"
    return Killed(workers.pop(), held, {int(chat) for chat, _ in rows})


def check_duplicates(api: BotApiStandIn, killed: Killed, what: str) -> int:
    """Only sends in flight at the kill may be repeated, each once; returns how many were."""
    duplicates = api.duplicates()
    extra = sum(duplicates.values())
    print(
        f"\n{what}: {len(killed.held)} sends in flight and {len(killed.claimed)} rows claimed "
        f"at the kill -> {extra} duplicate(s) (bound: {IN_FLIGHT}, the in-flight limit)"
    )
    assert extra <= IN_FLIGHT, f"{extra} duplicates: more than the {IN_FLIGHT} in flight"
    assert set(duplicates) <= killed.held, "a message that had been reported was sent again"
    assert max(duplicates.values(), default=1) == 1
    return extra


async def test_a_bot_killed_mid_broadcast_and_restarted_resends_only_what_was_in_flight(
    bots: Bots,
) -> None:
    chats = await onboard(RESIDENTS)
    async with BotApiStandIn() as api:
        api.add_users(chats)
        api.limit_rate(RATE)
        first = await bots.start(api, "first")
        assert (await bots.announce(TEXT)).endswith(f"queued for {RESIDENTS} recipients")
        await api.wait_until(lambda: api.sent_count >= 15 * BATCH, 60, "3000 messages sent")
        killed = await kill_with_sends_in_flight(bots, first, api)
        sent_at_kill = api.sent_count
        # Restarted at once, as systemd would: the same configuration, so the same port.
        again = await bots.start(api, "restarted", port=first.port)
        await bots.until(all_sent(RESIDENTS), 90, "every row sent after the restart")

        counts = api.delivery_counts()
        assert set(counts) == set(chats), "someone got nothing"
        assert {m.text for chat in (chats[0], chats[-1]) for m in api.delivered(chat)} == {TEXT}
        check_duplicates(api, killed, f"killed after {sent_at_kill} of {RESIDENTS} sends")
        assert await states() == Counter({"sent": RESIDENTS})
        assert "pushes a stopped worker had claimed are queued again" in again.log.read_text()


async def test_the_rows_of_a_bot_that_never_comes_back_go_out_after_its_lease(
    bots: Bots,
) -> None:
    """A worker gone for good (another host, another port): once its lease has run out,
    any worker queues its rows again. Waiting out the 5-minute lease is simulated by
    moving the dead worker's claims back in time."""
    chats = await onboard(2000)
    async with BotApiStandIn() as api:
        api.add_users(chats)
        api.limit_rate(RATE)
        gone = await bots.start(api, "gone")
        await bots.announce(TEXT)
        await api.wait_until(lambda: api.sent_count >= 2 * BATCH, 60, "400 messages sent")
        killed = await kill_with_sends_in_flight(bots, gone, api)
        other = await bots.start(api, "other")  # another port: another worker

        async def only_the_dead_workers_rows_left() -> bool:
            left = await Delivery.filter(state__in=["queued", "sending"]).values_list(
                "state", "claimed_by"
            )
            return all(state == "sending" and worker == killed.worker for state, worker in left)

        await bots.until(only_the_dead_workers_rows_left, 60, "the other bot to send the rest")
        left = await Delivery.filter(state="sending").count()
        assert left == len(killed.claimed), "within its lease, the dead worker's rows wait"
        await Delivery.filter(state="sending", claimed_by=killed.worker).update(
            claimed_at=datetime.now(UTC) - LEASE - timedelta(seconds=1)
        )
        await bots.until(all_sent(len(chats)), 30, "the dead worker's rows sent")

        assert set(api.delivery_counts()) == set(chats), "someone got nothing"
        check_duplicates(api, killed, "a worker gone for good")
        assert "pushes of a worker gone for good are queued again" in other.log.read_text()


async def start_two_webhook_bots(bots: Bots, api: BotApiStandIn) -> None:
    """Two workers behind one webhook URL, as a production deployment runs several.

    Only one process may long-poll a bot token: a second poll ends the first with 409
    Conflict, over and over. Webhook mode has no such limit: both processes set the same
    webhook URL (Telegram posts each update to whichever process the proxy picks; here,
    always the first) and both deliver pushes.
    """
    port = free_port()
    webhook = {
        "IESAISTE_TELEGRAM_MODE": "webhook",
        "IESAISTE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/webhooks/telegram",
        "IESAISTE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    await bots.start(api, "one", port=port, **webhook)
    await bots.start(api, "two", **webhook)
    await bots.until(
        lambda: len(api.requests_of("setWebhook")) == 2, 30, "both bots to set the webhook"
    )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_bots_on_one_database_share_a_broadcast_without_duplicates(bots: Bots) -> None:
    chats = await onboard(RESIDENTS)
    async with BotApiStandIn() as api:
        api.add_users(chats)
        api.limit_rate(RATE)
        await start_two_webhook_bots(bots, api)
        assert (await bots.announce(TEXT)).endswith(f"queued for {RESIDENTS} recipients")
        await bots.until(all_sent(RESIDENTS), 90, "every row sent")

        counts = api.delivery_counts()
        assert set(counts) == set(chats), "someone got nothing"
        assert api.duplicates() == {}, "someone got the announcement twice"
        assert sum(counts.values()) == RESIDENTS
        assert await states() == Counter({"sent": RESIDENTS})
        shares = Counter(await Delivery.all().values_list("claimed_by", flat=True))
        print(f"\nshares of {RESIDENTS} deliveries: {dict(shares)}")
        assert len(shares) == 2, f"both bots deliver: {dict(shares)}"
        # A worker is its host, http.host and http.port: restarted, it knows its own rows.
        assert all(
            worker.endswith(tuple(f"/127.0.0.1:{bot.port}" for bot in bots.started))
            for worker in shares
        ), dict(shares)
        # And residents are still answered: the update goes to the first bot.
        api.send_text(chats[0], "/help")
        announced, answer = await api.wait_for_messages(chats[0], 2, timeout=15)
        assert announced.text == TEXT
        help_ = tr("lv", HELP, municipality=MUNICIPALITY)
        assert answer.text == joined(help_, tr("lv", MAIN_MENU)), "in Latvian, with the menu"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_bots_together_keep_to_the_bots_rate(bots: Bots, tmp_path: Path) -> None:
    """Telegram's limit is per bot token, not per process: the workers book their sends
    from one budget in the database, and neither is refused."""
    rate = 50
    bots.config = write_config(tmp_path, rate)
    chats = await onboard(10 * rate)  # ten seconds' worth at the rate
    async with BotApiStandIn() as api:
        api.add_users(chats)
        api.limit_rate(rate)
        await start_two_webhook_bots(bots, api)
        await bots.announce(TEXT)
        await bots.until(all_sent(len(chats)), 60, "every row sent")
        assert api.duplicates() == {} and set(api.delivery_counts()) == set(chats)
        assert len(api.rate_limited) == 0, (
            f"{len(api.rate_limited)} sends refused with 429, "
            f"{len(api.ignored_retry_after)} sent before the retry_after told had passed"
        )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_an_announcement_to_more_than_32767_residents_is_released(bots: Bots) -> None:
    """asyncpg takes at most 32,767 parameters in one query: an audience must not become one
    parameter per resident."""
    count = 32_768
    chats = await onboard(count)
    async with BotApiStandIn() as api:
        api.add_users(chats)
        api.limit_rate(RATE)
        await bots.start(api, "bot")
        assert (await bots.announce(TEXT)).endswith(f"queued for {count} recipients")

        async def released() -> bool:
            return await Delivery.all().count() == count

        await bots.until(released, 30, "the scheduler to release it")
