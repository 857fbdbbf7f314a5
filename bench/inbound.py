"""Inbound throughput: Telegram updates per second through the whole bot, next to a bare echo.

    .venv/bin/python bench/inbound.py [--updates N] [--residents R] [--backend sqlite|postgres|both]

What runs, for each backend (see bench/README.md for the figures and why it is built so):

* The Bot API stand-in (``tests/standins/telegram_api.py``) runs in a child process with its
  own event loop, on 127.0.0.1, controlled over a ``multiprocessing`` pipe. The bot and the
  stand-in therefore do not share one event loop or one core.
* The full stack: ``bot.app.Runtime`` from ``bot.core.config.load(None, env)``, exactly as
  ``iesaiste run`` starts it (long polling through python-telegram-bot, the dispatcher,
  Tortoise on SQLite or PostgreSQL, replies with sendMessage). R residents are onboarded
  beforehand through ``storage`` functions. Each text update of an onboarded resident with
  no open dialog is answered with 1 message: "did not understand" joined to the main menu.
* The bare echo: a python-telegram-bot ``Application`` with one MessageHandler that sends the
  text back (1 message per update), with the bot's ``concurrent_updates``, polling the same
  stand-in in the same way (deleteWebhook, then start_polling with the same allowed_updates).
* The bare echo x2 (informative): the same bare Application sending the bot's two replies
  (the same texts and inline keyboard): PTB + HTTP cost of the bot's output, without the
  dispatcher and the database.

Every stack first gets a warm-up burst (one update per resident), then the timed burst:
N text updates round-robin over the residents, all enqueued on the stand-in at once; the
clock runs from the enqueue until the last expected sendMessage has arrived at the stand-in.

Exit code: 0 when every stack got exactly the expected replies, 1 otherwise (the ratio to
the echo is reported, not enforced).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.proc_stats import machine_busy, postgres_cpu  # noqa: E402
from bench.scratch_db import scratch_postgres  # noqa: E402
from bench.standin_process import StandIn, free_port, serve_commands  # noqa: E402

FIRST_USER_ID = 700_000_001
PHRASES = (
    "Sveiki! Kad salabos bedres Rīgas ielā?",
    "Labdien, vai rīt būs atkritumu izvešana?",
    "Hello, where can I read about the new park?",
    "Здравствуйте, когда откроется библиотека?",
    "Paldies par informāciju",
    "Kur var pieteikt apgaismojuma bojājumu pie skolas?",
)


# ============================================================================================
# The stand-in's process: its own event loop, driven over a pipe
# ============================================================================================


def _standin_main(conn: Connection) -> None:
    asyncio.run(_standin_serve(conn))


async def _standin_serve(conn: Connection) -> None:
    from tests.standins.telegram_api import BotApiStandIn

    api = BotApiStandIn()
    await api.start()

    async def handle(command: str, args: dict[str, Any]) -> Any:
        if command == "add_users":
            for user_id in args["user_ids"]:
                api.add_user(user_id, first_name=f"Resident {user_id}", language_code="lv")
            return len(args["user_ids"])
        if command == "burst":
            return await _burst(api, **args)
        raise ValueError(f"unknown command {command!r}")

    try:
        await serve_commands(conn, api, handle)
    finally:
        await api.stop()


async def _burst(
    api: Any, items: list[tuple[int, str]], expected: int, limit: float, settle: float
) -> dict[str, Any]:
    """Enqueue all updates at once; wait for ``expected`` sendMessage calls; describe them."""
    requests = api.requests
    start_index = len(requests)
    errors_before = len(api.errors)
    pending_before = api.pending_update_count
    seen, count = start_index, 0
    done_at: float | None = None

    def done() -> bool:
        # Incremental: wait_until re-checks after every request, so never rescan the list.
        nonlocal seen, count, done_at
        end = len(requests)
        for index in range(seen, end):
            if requests[index].method == "sendMessage":
                count += 1
        seen = end
        if count >= expected and done_at is None:
            done_at = time.perf_counter()
        return count >= expected

    cpu_start = time.process_time()
    started = time.perf_counter()
    for user_id, text in items:
        api.send_text(user_id, text)
    enqueued = time.perf_counter()
    timed_out = False
    try:
        await api.wait_until(done, limit, lambda: f"{expected} replies (have {count})")
    except AssertionError:
        timed_out = True
    finished = done_at if done_at is not None else time.perf_counter()
    cpu = time.process_time() - cpu_start
    # Anything more than expected (a duplicate, an apology) would arrive now.
    await asyncio.sleep(settle)
    new = [r for r in requests[start_index:]]
    sends = [r.params for r in new if r.method == "sendMessage"]
    errors = api.errors[errors_before:]
    return {
        "elapsed": finished - started,
        "enqueue": enqueued - started,
        "timed_out": timed_out,
        "replies": len(sends),
        "texts": dict(Counter(p.get("text", "") for p in sends)),
        "per_chat": dict(Counter(int(p.get("chat_id", 0)) for p in sends)),
        "with_keyboard": sum(1 for p in sends if p.get("reply_markup")),
        "get_updates": sum(1 for r in new if r.method == "getUpdates"),
        "errors": [tuple(e) for e in errors[:5]],
        "error_count": len(errors),
        "pending_before": pending_before,
        "pending_after": api.pending_update_count,
        "cpu": cpu,
    }


# ============================================================================================
# The stacks under test (in this process)
# ============================================================================================


def forget_cached_sql() -> None:
    # Tortoise caches SQL per connection name ("default") whatever the backend.
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    EXECUTOR_CACHE.clear()


async def onboard(database_url: str, user_ids: Sequence[int]) -> None:
    """Residents as onboarding leaves them, written through ``storage``'s own functions."""
    from bot.core.config import demo_municipality
    from storage import catalog, db, residents
    from storage.catalog import Entry
    from storage.sessions import open_session

    await db.migrate(database_url)
    await db.open_database(database_url)
    try:
        m = demo_municipality()
        await catalog.sync(
            [Entry(n.id, n.names) for n in m.neighbourhoods],
            [Entry(t.id, t.names) for t in m.topics],
        )
        neighbourhoods = [n.id for n in m.neighbourhoods]
        topics = [t.id for t in m.topics]
        for index, user_id in enumerate(user_ids):
            async with open_session("telegram", str(user_id), "") as session:
                resident = session.resident
                await residents.set_language(resident, "lv")
                neighbourhood = neighbourhoods[index % len(neighbourhoods)]
                await residents.set_neighbourhood(resident, neighbourhood)
                await residents.set_topics(resident, topics[index % len(topics) :][:2])
                await residents.accept_privacy(resident)
                await residents.mark_onboarded(resident)
    finally:
        await db.close_database()
        forget_cached_sql()


@dataclass
class Stack:
    """One bot under test: how to start and stop it, and what it must answer."""

    name: str
    replies_per_update: int
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    # Expected reply texts for a burst of these texts (a multiset).
    expect: Callable[[Sequence[str]], Counter[str]]


def full_stack(standin: StandIn, database_url: str, seen: dict[str, Any]) -> Stack:
    """``seen`` gets the bot's ``concurrent_updates``, read from the Application it built."""
    from bot.app import Runtime
    from bot.core.config import load
    from bot.core.i18n import translator
    from handlers.dispatcher import DID_NOT_UNDERSTAND

    lv = translator("lv")
    not_understood = lv.gettext(DID_NOT_UNDERSTAND)
    menu_text = lv.gettext("Main menu — what would you like to do?")
    runtimes: list[Any] = []

    async def start() -> None:
        env = {
            "IESAISTE_TELEGRAM_TOKEN": standin.token,
            "IESAISTE_TELEGRAM_API_URL": standin.url,
            "IESAISTE_DATABASE_URL": database_url,
            "IESAISTE_HTTP_HOST": "127.0.0.1",
            "IESAISTE_HTTP_PORT": str(free_port()),
            "IESAISTE_LOG_LEVEL": "WARNING",
        }
        runtime = Runtime(load(None, env))
        runtimes.append(runtime)
        await runtime.start()
        assert runtime.telegram is not None
        seen["concurrent_updates"] = runtime.telegram.application.concurrent_updates

    async def stop() -> None:
        while runtimes:
            await runtimes.pop().stop()
        forget_cached_sql()

    def expect(texts: Sequence[str]) -> Counter[str]:
        # The channel joins the notice and the menu into one message.
        return Counter({f"{not_understood}\n\n{menu_text}": len(texts)})

    return Stack("full bot", 1, start, stop, expect)


def bare_echo(standin: StandIn, concurrent_updates: int, *, double: bool) -> Stack:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
    from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

    from bot.channels.telegram import ALLOWED_UPDATES
    from bot.core.i18n import translator
    from handlers.dispatcher import DID_NOT_UNDERSTAND

    lv = translator("lv")
    not_understood = lv.gettext(DID_NOT_UNDERSTAND)
    menu_text = lv.gettext("Main menu — what would you like to do?")
    # The same keyboard the bot's main menu carries (labels as the bot's translator gives them).
    menu_markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(lv.gettext("Settings"), callback_data="menu:settings"),
                InlineKeyboardButton(lv.gettext("My data"), callback_data="menu:data"),
            ],
            [InlineKeyboardButton(lv.gettext("Help"), callback_data="menu:help")],
        ]
    )
    box: list[Application] = []  # type: ignore[type-arg]

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None and message.text is not None
        await context.bot.send_message(message.chat.id, message.text)

    async def echo_twice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        assert message is not None
        await context.bot.send_message(message.chat.id, not_understood)
        await context.bot.send_message(message.chat.id, menu_text, reply_markup=menu_markup)

    async def start() -> None:
        app = (
            ApplicationBuilder()
            .token(standin.token)
            .base_url(f"{standin.url}/bot")
            .base_file_url(f"{standin.url}/file/bot")
            .concurrent_updates(concurrent_updates)
            .build()
        )
        app.add_handler(MessageHandler(filters.TEXT, echo_twice if double else echo))
        box.append(app)
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.bot.delete_webhook()
        await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)

    async def stop() -> None:
        while box:
            app = box.pop()
            if app.updater is not None and app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()

    def expect(texts: Sequence[str]) -> Counter[str]:
        if double:
            return Counter({not_understood: len(texts), menu_text: len(texts)})
        return Counter(texts)

    return Stack("bare echo x2" if double else "bare echo", 2 if double else 1, start, stop, expect)


# ============================================================================================
# Measuring
# ============================================================================================


@dataclass
class Result:
    backend: str
    stack: str
    updates: int
    replies_per_update: int
    expected: int = 0
    replies: int = 0
    elapsed: float = math.nan
    bot_cpu: float = math.nan  # CPU seconds of this process (all threads) during the burst
    standin_cpu: float = math.nan  # CPU seconds of the stand-in's process
    db_cpu: float = math.nan  # CPU seconds of the PostgreSQL backends serving our database
    other_load: float = math.nan  # cores busy with anything else on the machine meanwhile
    get_updates: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def updates_per_second(self) -> float:
        return self.updates / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def replies_per_second(self) -> float:
        return self.replies / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def cpu_ms_per_update(self) -> float:
        return 1000 * self.bot_cpu / self.updates


def workload(user_ids: Sequence[int], count: int, offset: int) -> list[tuple[int, str]]:
    """``count`` texts round-robin over the residents; each text is unique (the echo is checked)."""
    return [
        (user_ids[i % len(user_ids)], f"{PHRASES[(i + offset) % len(PHRASES)]} #{offset + i}")
        for i in range(count)
    ]


async def burst(
    standin: StandIn,
    stack: Stack,
    items: list[tuple[int, str]],
    limit: float,
    result: Result | None,
    database_name: str | None,
) -> None:
    expected = stack.expect([text for _, text in items])
    expected_total = sum(expected.values())
    busy0, total0 = machine_busy()
    db0 = postgres_cpu(database_name)
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    outcome = await standin.call(
        "burst",
        limit + 30.0,
        items=items,
        expected=expected_total,
        limit=limit,
        settle=0.3,
    )
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    db_cpu = postgres_cpu(database_name) - db0
    busy1, total1 = machine_busy()
    problems = []
    if outcome["pending_before"]:
        problems.append(f"{outcome['pending_before']} updates were still queued before the burst")
    if outcome["timed_out"]:
        problems.append(f"timed out after {limit:.0f} s")
    if outcome["replies"] != expected_total:
        problems.append(f"{outcome['replies']} replies, expected {expected_total}")
    if Counter(outcome["texts"]) != expected:
        wrong = Counter(outcome["texts"]) - expected
        problems.append(f"unexpected reply texts, e.g. {list(wrong)[:2]!r}")
    per_update = Counter(user for user, _ in items)
    wrong_chats = [
        chat
        for chat, n in per_update.items()
        if outcome["per_chat"].get(chat, 0) != n * stack.replies_per_update
    ]
    if wrong_chats:
        problems.append(f"{len(wrong_chats)} chats got a wrong number of replies")
    if outcome["error_count"]:
        problems.append(f"{outcome['error_count']} error responses, e.g. {outcome['errors'][:2]!r}")
    if result is None:  # the warm-up: only correctness matters
        if problems:
            raise RuntimeError(f"warm-up of {stack.name} failed: {'; '.join(problems)}")
        return
    result.expected = expected_total
    result.replies = outcome["replies"]
    result.elapsed = outcome["elapsed"]
    result.bot_cpu = cpu
    result.standin_cpu = outcome["cpu"]
    result.db_cpu = db_cpu if database_name else math.nan
    result.get_updates = outcome["get_updates"]
    if total1 > total0:
        busy_cores = (busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1)
        result.other_load = max(0.0, busy_cores - (cpu + outcome["cpu"] + db_cpu) / wall)
    result.problems.extend(problems)


async def measure(
    standin: StandIn,
    stack: Stack,
    backend: str,
    user_ids: Sequence[int],
    updates: int,
    limit: float,
    offset: int,
    database_name: str | None,
) -> Result:
    result = Result(backend, stack.name, updates, stack.replies_per_update)
    try:
        # Bounded even if starting or stopping hangs: two bursts, plus time to start and stop.
        async with asyncio.timeout(2 * (limit + 30.0) + 60.0):
            await _measure(standin, stack, user_ids, updates, limit, offset, database_name, result)
    except TimeoutError:
        result.problems.append("the stack did not start, answer or stop in time")
    return result


async def _measure(
    standin: StandIn,
    stack: Stack,
    user_ids: Sequence[int],
    updates: int,
    limit: float,
    offset: int,
    database_name: str | None,
    result: Result,
) -> None:
    try:
        await stack.start()
        # Warm-up: one update per resident (connections, caches, the residents' rows).
        items = workload(user_ids, len(user_ids), offset)
        await burst(standin, stack, items, limit, None, database_name)
        items = workload(user_ids, updates, offset + len(user_ids))
        await burst(standin, stack, items, limit, result, database_name)
    except Exception as error:
        result.problems.append(f"{type(error).__name__}: {error}")
    finally:
        try:
            await stack.stop()
        except Exception as error:
            result.problems.append(f"stopping: {type(error).__name__}: {error}")


@contextlib.asynccontextmanager
async def database(backend: str, workdir: Path) -> Any:
    """A fresh, empty database URL for one backend; dropped or deleted afterwards."""
    if backend == "sqlite":
        # On disk, as in production (sqlite://data/iesaiste.sqlite3), not in memory.
        yield f"sqlite://{workdir}/bench-{uuid.uuid4().hex[:8]}.sqlite3"
        return
    async with scratch_postgres() as (url, _):
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                from storage import db

                await db.close_database()


async def run(args: argparse.Namespace) -> list[Result]:
    from bot.core import logs
    from bot.core.config import load

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    limits = load(None, {}).limits
    per_resident = math.ceil(args.updates / args.residents) + 1  # + the warm-up's one
    if per_resident > limits.throttle_messages:
        raise SystemExit(
            f"--updates {args.updates} over --residents {args.residents} is {per_resident} "
            "messages per resident (with the warm-up), more than the bot's throttle allows "
            f"({limits.throttle_messages} per {limits.throttle_seconds} s): throttled residents "
            f"get other answers. Use more residents."
        )
    user_ids = [FIRST_USER_ID + i for i in range(args.residents)]
    results: list[Result] = []
    # SIGTERM (as from `timeout` or a CI runner) cancels like Ctrl-C does, so the finally
    # blocks below still drop the database, delete the files and stop the stand-in.
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="iesaiste-bench-"))
    standin = StandIn(_standin_main)
    try:
        await standin.ready()
        logs.configure("WARNING", [standin.token])
        await standin.call("add_users", 30.0, user_ids=user_ids)
        offset = 0
        for backend in backends:
            try:
                async with database(backend, workdir) as url:
                    database_name = None if backend == "sqlite" else url.rsplit("/", 1)[1]
                    await onboard(url, user_ids)
                    seen: dict[str, Any] = {}
                    full = full_stack(standin, url, seen)
                    if "full" in args.stacks:
                        result = await measure(
                            standin,
                            full,
                            backend,
                            user_ids,
                            args.updates,
                            args.timeout,
                            offset,
                            database_name,
                        )
                        results.append(result)
                        offset += 10 * (args.updates + args.residents)
                    else:  # only to learn the bot's concurrent_updates
                        try:
                            await full.start()
                        finally:
                            await full.stop()
                    # The bot's own setting, read from the Application it built.
                    concurrency = seen.get("concurrent_updates")
                    if concurrency is None:
                        raise RuntimeError("the bot did not start: no concurrent_updates to copy")
                    stacks = [
                        bare_echo(standin, concurrency, double=name == "echo2")
                        for name in ("echo", "echo2")
                        if name in args.stacks
                    ]
                    for stack in stacks:
                        results.append(
                            await measure(
                                standin,
                                stack,
                                backend,
                                user_ids,
                                args.updates,
                                args.timeout,
                                offset,
                                database_name,
                            )
                        )
                        offset += 10 * (args.updates + args.residents)
            except Exception as error:
                failed = Result(backend, "setup", args.updates, 0)
                failed.problems.append(f"{type(error).__name__}: {error}")
                results.append(failed)
    finally:
        standin.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(results: list[Result], args: argparse.Namespace) -> None:
    print()
    print(
        f"Inbound throughput: {args.updates} text updates from {args.residents} onboarded "
        "residents, "
        f"all enqueued at once;"
    )
    print(
        "time = from the enqueue until the last expected sendMessage reached the Bot API stand-in "
        "(a separate process)."
    )
    print(
        'The full bot answers each text with 1 message ("did not understand" + the main menu); '
        "the bare echo with 1 (the same text);"
    )
    print(
        "the bare echo x2 sends the bot's 2 messages from a bare PTB handler "
        "(no dispatcher, no database)."
    )
    print(
        "Residents are onboarded beforehand through storage (open_session, residents.set_language, "
        "set_neighbourhood, set_topics, accept_privacy, mark_onboarded);"
    )
    print(
        "each stack gets a warm-up of one update per resident first. All stacks use "
        "python-telegram-bot long polling with the bot's concurrent_updates."
    )
    print()
    header = (
        f"{'backend':<9} {'stack':<13} {'updates/s':>9} {'replies/s':>9} {'replies':>11} "
        f"{'wall s':>6} {'CPU ms/upd':>10} {'stand-in s':>10} {'db CPU s':>8} {'other load':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.stack == "setup":
            print(f"{r.backend:<9} FAILED: {'; '.join(r.problems)}")
            continue
        replies = f"{r.replies}/{r.expected}"
        db_cpu = "-" if math.isnan(r.db_cpu) else f"{r.db_cpu:.2f}"
        print(
            f"{r.backend:<9} {r.stack:<13} {r.updates_per_second:>9.1f} "
            f"{r.replies_per_second:>9.1f} "
            f"{replies:>11} {r.elapsed:>6.2f} {r.cpu_ms_per_update:>10.2f} {r.standin_cpu:>10.2f} "
            f"{db_cpu:>8} {r.other_load:>10.2f}"
        )
        for problem in r.problems:
            print(f"{'':<9} !! {problem}")
    print(
        "\nCPU ms/upd: CPU of the process under test (all its threads) per update; stand-in s: the "
        "stand-in process's CPU;\ndb CPU s: the PostgreSQL backends serving the bot; other load: "
        "cores busy with anything else on the machine\n(above ~0.2 the figures are disturbed by "
        "other work: run again on a quiet machine)."
    )
    print()
    for backend in dict.fromkeys(r.backend for r in results):
        by_stack = {r.stack: r for r in results if r.backend == backend}
        full, echo = by_stack.get("full bot"), by_stack.get("bare echo")
        if full is None or echo is None:
            print(f"{backend}: no ratio (it needs both the full bot and the bare echo)")
            continue
        if not (full.ok and echo.ok):
            print(f"{backend}: no ratio (a run failed, see above)")
            continue
        ratio = full.updates_per_second / echo.updates_per_second
        line = (
            f"{backend}: full bot {full.updates_per_second:.1f} updates/s vs bare echo "
            f"{echo.updates_per_second:.1f} updates/s = {ratio:.3f} of the echo's rate "
            f"(aim >= 0.50: {'met' if ratio >= 0.5 else 'MISSED'}); replies/s ratio "
            f"{full.replies_per_second / echo.replies_per_second:.2f}"
        )
        double = by_stack.get("bare echo x2")
        if double is not None and double.ok:
            line += (
                f"; vs bare echo x2 (same 2 sends): "
                f"{full.updates_per_second / double.updates_per_second:.2f}"
            )
        print(line)
        print(
            f"{'':<{len(backend)}}  replies received vs expected: "
            f"full bot {full.replies}/{full.expected}, "
            f"bare echo {echo.replies}/{echo.expected}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--updates", type=int, default=3000, help="timed updates per stack (3000)")
    parser.add_argument("--residents", type=int, default=200, help="onboarded residents (200)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds one burst may take before it fails (60)",
    )
    parser.add_argument(
        "--stacks",
        default="full,echo,echo2",
        help="which stacks to run, comma-separated from full,echo,echo2 (all; fewer for profiling)",
    )
    args = parser.parse_args(argv)
    if args.updates < 1 or args.residents < 1 or not 1 <= args.timeout <= 600:
        parser.error("--updates and --residents must be >= 1, --timeout from 1 to 600")
    args.stacks = [name.strip() for name in args.stacks.split(",") if name.strip()]
    if not args.stacks or not set(args.stacks) <= {"full", "echo", "echo2"}:
        parser.error("--stacks: a comma-separated choice of full, echo, echo2")
    started = time.perf_counter()
    try:
        results = asyncio.run(run(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("inbound: interrupted; database, files and stand-in cleaned up", file=sys.stderr)
        return 130
    report(results, args)
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
