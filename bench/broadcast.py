"""Broadcast throughput: one announcement to many residents, against Telegram's flood control.

    .venv/bin/python bench/broadcast.py                       # the default four runs, ~10 min
    .venv/bin/python bench/broadcast.py --run 30:1500:1       # RATE:RECIPIENTS:WORKERS
    .venv/bin/python bench/broadcast.py --run 1000:100000:2 --release bench

What runs for each ``--run`` (see bench/README.md for the figures):

* A fresh PostgreSQL database ``iesaiste_bench_<random>`` (or an SQLite file with
  ``--backend sqlite``, one worker only), migrated, with RECIPIENTS onboarded residents on
  Telegram bulk-inserted through ``storage.models`` (as onboarding leaves them).
* The Bot API stand-in (``tests/standins/telegram_api.py``) in its own process, enforcing
  RATE messages a second overall (a token bucket of one second's worth), so its CPU does
  not count against the bot.
* WORKERS bot processes, ``python -m bot run`` as in production, configured with
  ``[delivery] telegram_per_second = RATE`` and no quiet hours. One worker long-polls; two or
  more run in webhook mode behind one webhook URL (only one process may long-poll a token).
* The announcement is queued with ``python -m bot announce --audience all`` and released by
  the bots' scheduler (``--release cli``, the default), or written by a helper process with
  ``storage.deliveries.release`` (``--release bench``), which measures the release's own
  time and peak memory apart from the bots'.

It reports the achieved rate over the steady part (from 5 % to 95 % of the sends) as a
fraction of RATE, the duplicates, the losses (recipients who got nothing, rows not ``sent``),
the 429s, the peak memory (VmHWM) and CPU of each bot process, and how long a personal push
took to reach its resident: one push to one resident outside the audience (as a proposal's
status change will queue one), queued by the bench in the outbox when half the broadcast had
gone out, timed from its commit to its arrival at the stand-in (both on the machine's
monotonic clock).

Exit code: 0 when every run delivered every message exactly once; 1 otherwise. The rate
and memory aims are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SELF = str(Path(__file__).resolve())
ROOT = Path(SELF).parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.proc_stats import machine_busy, postgres_cpu, process_cpu, status_kb  # noqa: E402
from bench.scratch_db import scratch_postgres  # noqa: E402
from bench.standin_process import StandIn, free_port, serve_commands  # noqa: E402

FIRST_CHAT = 800_000_001
PERSONAL_CHAT = 799_999_999  # the resident of the personal push, outside the audience
TEXT = "Rīt no 9:00 līdz 15:00 Brīvības ielā nebūs ūdens. Paldies par sapratni!"
PERSONAL_TEXT = "Jūsu priekšlikums #7 ir pieņemts."
WEBHOOK_SECRET = "broadcast-bench-webhook-secret"
DEFAULT_RUNS = ("30:1500:1", "30:1500:2", "1000:100000:1", "1000:100000:2")
AIM_RATE, AIM_MEMORY_MB, AIM_PERSONAL_SECONDS = 0.95, 200, 5.0


# ============================================================================================
# The stand-in's process
# ============================================================================================


def _standin_main(conn: Connection) -> None:
    asyncio.run(_standin_serve(conn))


async def _standin_serve(conn: Connection) -> None:
    from tests.standins.telegram_api import BotApiStandIn

    api = BotApiStandIn()
    await api.start()
    samples: list[tuple[float, int]] = []  # (stand-in clock, sends so far), every 0.2 s

    async def sample() -> None:
        while True:
            samples.append((api.clock(), api.sent_count))
            await asyncio.sleep(0.2)

    async def handle(command: str, args: dict[str, Any]) -> Any:
        if command == "setup":
            first, count = args["first"], args["count"]
            api.add_users([*range(first, first + count), PERSONAL_CHAT])
            api.limit_rate(args["rate"])
            return count
        if command == "status":
            return {
                "sent": api.sent_count,
                "set_webhook": len(api.requests_of("setWebhook")),
                "cpu": time.process_time(),
            }
        if command == "report":
            return _standin_report(api, samples, **args)
        raise ValueError(f"unknown command {command!r}")

    sampler = asyncio.create_task(sample())
    try:
        await serve_commands(conn, api, handle)
    finally:
        sampler.cancel()
        await api.stop()


def _standin_report(api: Any, samples: list[tuple[float, int]], first: int, count: int) -> dict:
    counts = api.delivery_counts()
    personal = counts.pop(PERSONAL_CHAT, 0)
    audience = range(first, first + count)
    missing = sum(1 for chat in audience if chat not in counts)
    sent = api.sent_count
    # The steady part: from the sample where 5 % had gone out to the one where 95 % had (or
    # to the last send, for a run cut short).
    low, high = math.ceil(0.05 * count), math.floor(0.95 * count)
    since = next((t for t, n in samples if n >= low), None)
    last = samples[-1][1] if samples else 0  # sends go on while this report is made
    until = next((t for t, n in samples if n >= min(high, last)), None)
    steady = api.achieved_rate(since, until) if since is not None and until is not None else 0.0
    started = next((t for t, n in samples if n > 0), None)
    finished = next((t for t, n in samples if n >= last), None)
    # The slowest and fastest second of the steady part, from the samples.
    window = [
        (t, n)
        for t, n in samples
        if since is not None and until is not None and since <= t <= until
    ]
    per_second = [
        (n2 - n1) / (t2 - t1)
        for (t1, n1), (t2, n2) in zip(window, window[5:], strict=False)
        if t2 > t1
    ]
    limited = Counter(r.scope for r in api.rate_limited)
    errors = Counter(e.description for e in api.errors)
    return {
        "sent": sent,
        "duplicates": sum(api.duplicates().values()),
        "missing": missing,
        "outside_audience": sum(1 for chat in counts if chat not in audience),
        "steady_rate": steady,
        "steady_seconds": (until - since) if since is not None and until is not None else 0.0,
        "slowest_second": min(per_second, default=0.0),
        "fastest_second": max(per_second, default=0.0),
        "sending_seconds": (finished - started) if started and finished else 0.0,
        "rate_limited": dict(limited),
        "ignored_retry_after": len(api.ignored_retry_after),
        "errors": dict(errors.most_common(5)),
        "cpu": time.process_time(),
        "personal_sends": personal,
        "personal_at": api.send_times(PERSONAL_CHAT)[:1],  # on the machine's monotonic clock
        "personal_text": [m.text for m in api.delivered(PERSONAL_CHAT)][:1],
    }


# ============================================================================================
# Processes and /proc
# ============================================================================================


@dataclass
class Bot:
    """One ``python -m bot run`` process."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]
    peak_kb: int = 0
    cpu: float = 0.0

    def measure(self) -> None:
        """Peak memory and CPU so far, read while the process lives."""
        if self.process.poll() is None:
            self.peak_kb = max(self.peak_kb, status_kb(self.process.pid, "VmHWM"))
            self.cpu = max(self.cpu, process_cpu(self.process.pid))

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            text = []
        return "\n".join(f"    {self.name}| {line}" for line in text[-lines:])

    def terminate(self) -> None:
        """SIGTERM: the bot finishes the batch in hand and exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 30 s."""
        self.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


async def cli(config: Path, env: dict[str, str], *args: str) -> str:
    """``python -m bot --config CONFIG ARGS…``; its standard output. Raises RuntimeError
    with the command's name and the last line of its standard error when it fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(config),
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    if process.returncode != 0:
        last = (err.decode().strip().splitlines() or ["?"])[-1]
        command = " ".join(itertools.takewhile(lambda arg: not arg.startswith("-"), args))
        raise RuntimeError(f"`iesaiste {command}` failed: {last}")
    return out.decode()


def start_bot(
    name: str,
    config: Path,
    env: dict[str, str],
    workdir: Path,
    port: int | None = None,
    entry: str = "",
) -> Bot:
    port = port or free_port()
    log = workdir / f"{name}.log"
    command = [entry] if entry else ["-m", "bot"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *command, "--config", str(config), "run"],
            cwd=ROOT,
            env={**env, "IESAISTE_HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Bot(name, port, log, process)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# ============================================================================================
# The database
# ============================================================================================


@contextlib.asynccontextmanager
async def database(backend: str, workdir: Path) -> Any:
    """A fresh, migrated, open database; closed and dropped (or deleted) afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url, name = f"sqlite://{workdir}/broadcast-{uuid.uuid4().hex[:8]}.sqlite3", None
        else:
            url, name = await stack.enter_async_context(scratch_postgres())
        yield await stack.enter_async_context(_opened(url)), name


@contextlib.asynccontextmanager
async def _opened(url: str) -> Any:
    """The database migrated and open; closed afterwards (before it is dropped)."""
    from storage import db

    try:
        await db.migrate(url)
        await db.open_database(url)
        yield url
    finally:
        with contextlib.suppress(Exception):
            await db.close_database()
        from tortoise.backends.base.executor import EXECUTOR_CACHE

        EXECUTOR_CACHE.clear()


async def onboard(count: int) -> int:
    """``count`` onboarded residents on Telegram, chats FIRST_CHAT…, bulk-inserted; and the
    resident of the personal push, not onboarded, so outside every audience. Returns that
    resident's id."""
    from datetime import UTC, datetime

    from storage.models import ChannelIdentity, Resident

    now = datetime.now(UTC)
    await Resident.bulk_create(
        [Resident(language="lv", onboarded_at=now) for _ in range(count)], batch_size=2000
    )
    ids = await Resident.all().order_by("id").values_list("id", flat=True)
    await ChannelIdentity.bulk_create(
        [
            ChannelIdentity(resident_id=rid, channel="telegram", external_id=str(FIRST_CHAT + i))
            for i, rid in enumerate(ids)
        ],
        batch_size=2000,
    )
    personal = await Resident.create(language="lv")
    await ChannelIdentity.create(
        resident=personal, channel="telegram", external_id=str(PERSONAL_CHAT)
    )
    return personal.id


async def queue_personal(resident_id: int) -> tuple[float, float]:
    """One push to one resident, as a proposal's status change will queue it; returns the
    moment it was committed, on the monotonic clock and as seconds since the epoch."""
    from bot.core.messages import Reply
    from storage import deliveries

    push = deliveries.Push(
        "proposal_status",
        7,
        "proposal:7:status:accepted",
        "reply",
        Reply(PERSONAL_TEXT).to_json(),
        priority=deliveries.PERSONAL,
    )
    await deliveries.queue(push, [(resident_id, "telegram", str(PERSONAL_CHAT))])
    return time.monotonic(), time.time()


async def personal_claimed(committed: float) -> float:
    """Seconds from the personal push's commit to a worker's claim of it."""
    from storage.models import Delivery

    row = await Delivery.get_or_none(source_kind="proposal_status")
    if row is None or row.claimed_at is None:
        return math.nan
    return row.claimed_at.timestamp() - committed


async def delivery_states(kind: str = "announcement") -> Counter[str]:
    from tortoise.functions import Count

    from storage.models import Delivery

    rows = (
        await Delivery.filter(source_kind=kind)
        .annotate(n=Count("id"))
        .group_by("state")
        .values_list("state", "n")
    )
    return Counter({str(state): int(n) for state, n in rows})


async def shares() -> Counter[str]:
    from tortoise.functions import Count

    from storage.models import Delivery

    rows = (
        await Delivery.filter(state="sent", source_kind="announcement")
        .annotate(n=Count("id"))
        .group_by("claimed_by")
        .values_list("claimed_by", "n")
    )
    return Counter({str(worker): int(n) for worker, n in rows})


# The bench's own release (--release bench): what the bot's scheduler does for a due,
# non-urgent announcement with no quiet hours, in a helper process whose time and memory
# are measured apart from the bots'.


def release_main(database_url: str, text: str) -> int:
    return asyncio.run(_release(database_url, text))


async def _release(database_url: str, text: str) -> int:
    from datetime import UTC, datetime, timedelta

    from storage import db, deliveries

    await db.open_database(database_url)
    try:
        # Due in an hour, so that no bot's scheduler takes it first; released now.
        announcement = await deliveries.create_announcement(
            author="bench",
            texts={"lv": text},
            audience={"kind": "all"},
            send_at=datetime.now(UTC) + timedelta(hours=1),
        )
        started = time.perf_counter()
        count = await deliveries.release(announcement, datetime.now(UTC))
        print(
            f"released {count} {time.perf_counter() - started:.2f} "
            f"{status_kb(os.getpid(), 'VmHWM')}",
            flush=True,
        )
    finally:
        await db.close_database()
    return 0


# ============================================================================================
# One run
# ============================================================================================


@dataclass
class Run:
    rate: float
    recipients: int
    workers: int
    backend: str
    release: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    states: Counter[str] = field(default_factory=Counter)
    shares: list[int] = field(default_factory=list)
    peaks_mb: list[float] = field(default_factory=list)
    cpu_ms_per_message: float = math.nan
    standin_cpu: float = math.nan
    db_cpu: float = math.nan
    other_load: float = math.nan
    release_seconds: float = math.nan
    release_peak_mb: float = math.nan
    total_seconds: float = math.nan
    unfinished: int = 0  # rows still queued or being sent when the time limit came
    paced: float = math.nan  # telegram_per_second of each worker
    personal_queued_at: float = math.nan  # time.monotonic() of the personal push's commit
    personal_claimed: float = math.nan  # seconds from that commit to a worker's claim
    personal_sent_at: int = 0  # sends of the broadcast when it was queued
    personal_state: str = ""  # its row's state at the end

    @property
    def personal_seconds(self) -> float:
        """From the personal push's commit to its arrival at the stand-in."""
        arrived = self.report.get("personal_at") or []
        return arrived[0] - self.personal_queued_at if arrived else math.nan

    @property
    def name(self) -> str:
        return f"{self.rate:g}/s × {self.recipients} × {self.workers} worker(s)"

    @property
    def duplicates(self) -> int:
        return int(self.report.get("duplicates", -1))

    @property
    def losses(self) -> int:
        """Recipients who got nothing; for a run cut short, rows that ended other than sent."""
        if not self.report:
            return -1
        if self.unfinished:
            return sum(self.states.get(state, 0) for state in ("failed", "blocked", "waiting"))
        return max(int(self.report["missing"]), self.recipients - self.states.get("sent", 0))

    @property
    def fraction(self) -> float:
        return float(self.report.get("steady_rate", 0.0)) / self.rate

    @property
    def correct(self) -> bool:
        personal = math.isnan(self.personal_queued_at) or (
            self.report.get("personal_sends") == 1
            and self.report.get("personal_text") == [PERSONAL_TEXT]
            and self.personal_state == "sent"
        )
        return (
            not self.problems
            and not self.unfinished
            and self.duplicates == 0
            and self.losses == 0
            and personal
        )


def write_config(path: Path, rate: float) -> Path:
    path.write_text(
        "[delivery]\n"
        f"telegram_per_second = {rate:g}\n"
        'quiet_start = "00:00"\n'
        'quiet_end = "00:00"\n'
        "[log]\n"
        'level = "INFO"\n',
        encoding="utf-8",
    )
    return path


async def execute(run: Run, args: argparse.Namespace, workdir: Path) -> None:
    """One run, bounded in time; everything it started is stopped and dropped."""
    limit = args.limit or (run.recipients / run.rate) * 1.5 + 60.0
    bots: list[Bot] = []
    standin = StandIn(_standin_main)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limit + 120.0):  # set-up and tear-down included
            async with database(run.backend, workdir) as (url, name):
                try:
                    await _execute(run, args, workdir, standin, bots, url, name, limit)
                finally:  # the bots stop before their database is dropped
                    await asyncio.to_thread(stop_all, bots)
    except TimeoutError:
        run.problems.append(f"the run did not finish within {limit + 120:.0f} s")
    except Exception as error:
        run.problems.append(f"{type(error).__name__}: {error}")
    finally:
        stop_all(bots)
        if run.problems:
            run.notes += [bot.tail() for bot in bots]
        standin.close()
        run.total_seconds = time.perf_counter() - started


def stop_all(bots: Sequence[Bot]) -> None:
    for bot in bots:
        bot.measure()
    for bot in bots:  # all at once: each finishes its batch in hand
        bot.terminate()
    for bot in bots:
        bot.stop()


async def _execute(
    run: Run,
    args: argparse.Namespace,
    workdir: Path,
    standin: StandIn,
    bots: list[Bot],
    url: str,
    database_name: str | None,
    limit: float,
) -> None:
    await standin.ready()
    personal = await onboard(run.recipients)
    committed = math.nan  # the personal push's commit, seconds since the epoch
    await standin.call("setup", first=FIRST_CHAT, count=run.recipients, rate=run.rate)
    # Each process paces to its own telegram_per_second: the production setting is the bot's
    # rate in every worker; --split-rate gives each worker its share instead.
    run.paced = run.rate / run.workers if args.split_rate else run.rate
    config = write_config(workdir / f"config-{uuid.uuid4().hex[:6]}.toml", run.paced)
    env = {
        **os.environ,
        "IESAISTE_TELEGRAM_TOKEN": standin.token,
        "IESAISTE_TELEGRAM_API_URL": standin.url,
        "IESAISTE_DATABASE_URL": url,
        "IESAISTE_HTTP_HOST": "127.0.0.1",
    }
    env.pop("IESAISTE_CONFIG", None)
    first_port = free_port()
    if run.workers > 1:
        # Only one process may long-poll a token: several workers run behind one webhook URL.
        env |= {
            "IESAISTE_TELEGRAM_MODE": "webhook",
            "IESAISTE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{first_port}/webhooks/telegram",
            "IESAISTE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
    for index in range(run.workers):
        port = first_port if index == 0 else None
        bots.append(start_bot(f"bot{index + 1}", config, env, workdir, port, args.bot_entry))
    deadline = time.monotonic() + 60
    while not all(healthy(bot.port) for bot in bots):
        if any(bot.process.poll() is not None for bot in bots) or time.monotonic() > deadline:
            raise RuntimeError("a bot did not start")
        await asyncio.sleep(0.2)

    cpu0 = sum(process_cpu(bot.process.pid) for bot in bots)
    db0, standin0 = postgres_cpu(database_name), process_cpu(standin.process.pid or 0)
    busy0, total0 = machine_busy()
    wall0 = time.perf_counter()
    run.release = args.release
    if run.release == "cli":
        try:
            await cli(config, env, "announce", "--text", TEXT, "--audience", "all")
        except RuntimeError as failed:
            run.problems.append(str(failed))
    else:
        helper = await asyncio.create_subprocess_exec(
            sys.executable,
            SELF,
            "_release",
            url,
            TEXT,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(helper.communicate(), 300)
        if helper.returncode != 0:
            raise RuntimeError(f"the release helper failed: {err.decode()[-500:]}")
        _, count, seconds, peak_kb = out.decode().split()
        run.release_seconds, run.release_peak_mb = float(seconds), int(peak_kb) / 1024
        run.notes.append(
            f"released by the bench: {count} rows in {float(seconds):.1f} s, the helper's "
            f"peak RSS {int(peak_kb) / 1024:.0f} MB"
        )

    # Wait until no row is queued or being sent, every worker alive, within the limit.
    from storage.models import Delivery

    deadline = time.monotonic() + limit
    released_by = time.monotonic() + (60 if run.release == "cli" else 10)
    while True:
        for bot in bots:
            bot.measure()
        dead = [bot.name for bot in bots if bot.process.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited")
        status = await standin.call("status")
        if math.isnan(run.personal_queued_at) and (
            status["sent"] >= run.recipients // 2
            if args.personal_after is None
            else status["sent"] > 0 and time.perf_counter() - wall0 >= args.personal_after
        ):
            # Half the broadcast is out, the other half queued: a status change happens now.
            run.personal_queued_at, committed = await queue_personal(personal)
            run.personal_sent_at = status["sent"]
        if status["sent"] >= run.recipients or time.monotonic() > deadline - 5:
            rows = await Delivery.all().count()
            busy = await Delivery.filter(state__in=["queued", "sending"]).count()
            if rows and not busy:
                break
        if time.monotonic() > released_by and status["sent"] == 0:
            if not await Delivery.all().exists():
                run.problems.append("the announcement was never released (see the bots' logs)")
                run.notes += [bot.tail(6) for bot in bots]
                return
        if time.monotonic() > deadline:
            run.unfinished = await Delivery.filter(state__in=["queued", "sending"]).count()
            run.notes.append(
                f"cut short by the time limit ({limit:.0f} s): {status['sent']} of "
                f"{run.recipients} sent, {run.unfinished} rows still queued or being sent"
            )
            break
        await asyncio.sleep(0.5)
    wall = time.perf_counter() - wall0
    for bot in bots:
        bot.measure()
    cpu = sum(process_cpu(bot.process.pid) for bot in bots) - cpu0
    run.db_cpu = postgres_cpu(database_name) - db0 if database_name else math.nan
    run.standin_cpu = process_cpu(standin.process.pid or 0) - standin0
    busy1, total1 = machine_busy()
    if total1 > total0:
        cores = (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)
        known = cpu + run.standin_cpu + (0.0 if math.isnan(run.db_cpu) else run.db_cpu)
        run.other_load = max(0.0, cores - known / wall)
    await asyncio.sleep(1.0)  # a late duplicate would arrive now
    run.report = await standin.call("report", 120, first=FIRST_CHAT, count=run.recipients)
    run.states = await delivery_states()
    run.personal_state = ",".join(await delivery_states("proposal_status")) or "none"
    if not math.isnan(run.personal_queued_at):
        run.personal_claimed = await personal_claimed(committed)
    run.shares = sorted((await shares()).values(), reverse=True)
    run.peaks_mb = [bot.peak_kb / 1024 for bot in bots]
    if run.report["sent"]:
        run.cpu_ms_per_message = 1000 * cpu / run.report["sent"]


# ============================================================================================
# Report
# ============================================================================================


def print_run(run: Run) -> None:
    r = run.report
    if not r:
        print(f"{run.name}: FAILED — {'; '.join(run.problems) or 'no report'}")
        for note in run.notes:
            print(note)
        return
    limited = r["rate_limited"]
    peak = max(run.peaks_mb, default=math.nan)
    losses = "unknown (cut short)" if run.unfinished else "met" if run.losses == 0 else "MISSED"
    aims = [
        ("rate", "met" if run.fraction >= AIM_RATE else "MISSED"),
        ("duplicates", "met" if run.duplicates == 0 else "MISSED"),
        ("losses", losses),
        ("memory", "met" if peak < AIM_MEMORY_MB else "MISSED"),
    ]
    if not math.isnan(run.personal_queued_at) and run.rate <= 30:
        met = run.personal_seconds < AIM_PERSONAL_SECONDS
        aims.append(("personal push < 5 s", "met" if met else "MISSED"))
    print(
        f"\n== {run.name}, {run.backend}, each worker paced to {run.paced:g}/s, released by "
        f"{run.release} =="
    )
    print(
        f"  steady rate      {r['steady_rate']:8.1f}/s = {run.fraction:.3f} of R "
        f"(over {r['steady_seconds']:.1f} s; slowest second {r['slowest_second']:.0f}/s, "
        f"fastest {r['fastest_second']:.0f}/s)"
    )
    print(
        f"  sent             {r['sent']} messages in {r['sending_seconds']:.1f} s; "
        f"rows {dict(run.states)}"
    )
    print(
        f"  duplicates       {run.duplicates}   losses {run.losses} "
        f"(recipients with nothing {r['missing']}, rows not sent "
        f"{run.recipients - run.states.get('sent', 0)}"
        + (f", of which {run.unfinished} unfinished" if run.unfinished else "")
        + ")"
    )
    print(
        f"  429s             {sum(limited.values())} {limited or ''}; sends ignoring a "
        f"retry_after {r['ignored_retry_after']}; other errors {r['errors'] or 0}"
    )
    print(
        "  peak RSS         "
        + ", ".join(f"{mb:.0f} MB" for mb in run.peaks_mb)
        + (f"; shares {run.shares}" if run.workers > 1 else "")
    )
    db = "-" if math.isnan(run.db_cpu) else f"{run.db_cpu:.1f} s"
    print(
        f"  CPU              bots {run.cpu_ms_per_message:.2f} ms/message; stand-in "
        f"{run.standin_cpu:.1f} s; PostgreSQL {db}; other load {run.other_load:.2f} cores"
    )
    if not math.isnan(run.personal_queued_at):
        behind = run.recipients - run.personal_sent_at
        print(
            f"  personal push    {run.personal_seconds:.2f} s from its commit to its resident, "
            f"claimed after {run.personal_claimed:.2f} s "
            f"(queued after {run.personal_sent_at} sends, {behind} broadcast rows still to go, "
            f"{behind / run.rate:.0f} s of the rate); row {run.personal_state}, "
            f"{r.get('personal_sends', 0)} message(s)"
        )
    print(f"  run time         {run.total_seconds:.0f} s (set-up and tear-down included)")
    print("  aims             " + ", ".join(f"{name} {verdict}" for name, verdict in aims))
    for problem in run.problems:
        print(f"  !! {problem}")
    for note in run.notes:
        print(f"  {note}")


def summary(runs: Sequence[Run]) -> None:
    print("\nsummary (R = the stand-in's flood limit and the bots' telegram_per_second)")
    header = (
        f"{'R/s':>6} {'recipients':>10} {'workers':>7} {'achieved/R':>10} {'dups':>5} "
        f"{'losses':>6} {'unsent':>6} {'429s':>6} {'peak MB':>8} {'CPU ms/msg':>10} "
        f"{'personal s':>10} {'time s':>6}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        if not run.report:
            print(f"{run.rate:>6g} {run.recipients:>10} {run.workers:>7}  FAILED")
            continue
        print(
            f"{run.rate:>6g} {run.recipients:>10} {run.workers:>7} {run.fraction:>10.3f} "
            f"{run.duplicates:>5} {run.losses:>6} {run.unfinished:>6} "
            f"{sum(run.report['rate_limited'].values()):>6} "
            f"{max(run.peaks_mb):>8.0f} {run.cpu_ms_per_message:>10.2f} "
            f"{run.personal_seconds:>10.2f} {run.total_seconds:>6.0f}"
        )


# ============================================================================================
# Main
# ============================================================================================


def parse_run(text: str, backend: str) -> Run:
    try:
        rate, recipients, workers = text.split(":")
        run = Run(float(rate), int(recipients), int(workers), backend)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected RATE:RECIPIENTS:WORKERS") from None
    if not (0 < run.rate <= 1000 and run.recipients >= 20 and 1 <= run.workers <= 8):
        raise argparse.ArgumentTypeError(
            f"{text!r}: RATE from 1 to 1000 (the bot's maximum), RECIPIENTS >= 20, 1-8 WORKERS"
        )
    if backend == "sqlite" and run.workers > 1:
        raise argparse.ArgumentTypeError(f"{text!r}: SQLite runs one dispatcher only")
    return run


async def main_async(runs: list[Run], args: argparse.Namespace) -> None:
    from bot.core import logs

    logs.configure("WARNING", [])
    task = asyncio.current_task()
    if task is not None:  # SIGTERM cancels like Ctrl-C: the finally blocks clean up
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="iesaiste-broadcast-"))
    try:
        for run in runs:
            print(f"-- {run.name} on {run.backend} …", flush=True)
            await execute(run, args, workdir)
            print_run(run)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_release"]:  # the helper process of --release bench
        return release_main(argv[1], argv[2])
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--run",
        action="append",
        metavar="RATE:RECIPIENTS:WORKERS",
        help=f"a run (repeatable); default: {' '.join(DEFAULT_RUNS)}",
    )
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--release",
        choices=("cli", "bench"),
        default="cli",
        help="who releases the announcement: `iesaiste announce` and the bots' scheduler "
        "(cli, the default), or a helper process that measures the release alone (bench)",
    )
    parser.add_argument(
        "--limit",
        type=float,
        default=0.0,
        help="seconds a run may send for (default: 1.5 × RECIPIENTS/RATE + 60 s)",
    )
    parser.add_argument(
        "--split-rate",
        action="store_true",
        help="configure each of N workers with RATE/N messages a second (default: RATE each, "
        "as one configuration file for all workers gives)",
    )
    parser.add_argument(
        "--personal-after",
        type=float,
        default=None,
        metavar="S",
        help="queue the personal push S seconds after the release instead of when half the "
        "broadcast has gone out (for a run cut short by --limit: 30:100000:1 --limit 60)",
    )
    parser.add_argument(
        "--bot-entry",
        default="",
        metavar="SCRIPT",
        help="run the bots as `python SCRIPT --config … run` instead of `python -m bot` "
        "(to try a change patched in at run time)",
    )
    args = parser.parse_args(argv)
    try:
        runs = [parse_run(text, args.backend) for text in args.run or DEFAULT_RUNS]
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    started = time.perf_counter()
    try:
        asyncio.run(main_async(runs, args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("broadcast: interrupted; databases, files and processes cleaned up", file=sys.stderr)
        return 130
    summary(runs)
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")
    return 0 if all(run.correct for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
