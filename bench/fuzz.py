"""The long fuzzing run: many drawn inputs per entry point against the whole bot.

The same strategies, targets and checks as ``tests/fuzz/`` (see there), with a seed
instead of the suite's fixed inputs, and a failure tallied instead of stopping the run.
Each entry point gets a fresh bot (``bot.app.Runtime`` as ``iesaiste run`` starts it) on a
fresh database and its stand-in, in this process and event loop:

    .venv/bin/python bench/fuzz.py                                # 10,000 inputs each, SQLite
    .venv/bin/python bench/fuzz.py --examples 500 --entry webchat --backend postgres

Printed per entry point: inputs sent (and the conversations they made), by kind, the
answers the residents were shown, the status codes (or socket outcomes) seen, the
failures found with the input that showed each, and the seconds taken. Exit code 1 when
anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_db import scratch_postgres
from bench.standin_process import free_port
from bot.app import Runtime
from bot.channels.telegram import WEBHOOK_PATH as TELEGRAM_PATH
from bot.core.config import load
from storage import db
from tests.bot.channels.messenger_helpers import messenger_env
from tests.bot.channels.telegram_helpers import WEBHOOK_SECRET, telegram_env
from tests.bot.channels.test_webchat_guard import config_file
from tests.fuzz import messenger_target, telegram_target, webchat_target
from tests.fuzz.checks import LogWatch, Tally
from tests.fuzz.harness import SETTINGS, fuzz, healthy, play
from tests.fuzz.strategies import (
    Conversation,
    messenger_conversations,
    telegram_conversations,
    webchat_conversations,
)
from tests.standins.graph_api import GraphStandIn
from tests.standins.telegram_api import BotApiStandIn

ENTRIES = ("telegram", "messenger", "webchat")


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """An empty, migrated database, gone afterwards."""
    if backend == "postgres":
        async with scratch_postgres() as (url, _):
            await db.migrate(url)
            yield url
        return
    # In memory (/dev/shm where there is one): the disk's syncs are not what is fuzzed.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: ASYNC240 - once, at start
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        url = f"sqlite://{folder}/fuzz.sqlite3"
        await db.migrate(url)
        yield url


async def run_entry(entry: str, examples: int, backend: str, seed: int) -> Tally:
    tally = Tally(entry)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(database(backend))
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        port = free_port()
        env = {"IESAISTE_DATABASE_URL": url, "IESAISTE_HTTP_PORT": str(port)}
        base = f"http://127.0.0.1:{port}"
        config = config_file(Path(folder), SETTINGS[entry])
        target: Any
        answer: Any  # the entry point's normal_answer(target)
        if entry == "telegram":
            api = await stack.enter_async_context(BotApiStandIn())
            env |= telegram_env(
                api,
                IESAISTE_TELEGRAM_MODE="webhook",
                IESAISTE_TELEGRAM_WEBHOOK_URL=base + TELEGRAM_PATH,
                IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            )
            target = telegram_target.TelegramTarget(api, base + TELEGRAM_PATH, WEBHOOK_SECRET)
            strategy, answer = telegram_conversations(), telegram_target.normal_answer
        elif entry == "messenger":
            graph = await GraphStandIn().start()
            stack.push_async_callback(graph.stop)
            env |= messenger_env(graph)
            target = messenger_target.MessengerTarget(graph, base + "/webhooks/messenger")
            strategy, answer = messenger_conversations(), messenger_target.normal_answer
        else:
            target = webchat_target.WebchatTarget(base)
            strategy, answer = webchat_conversations(), webchat_target.normal_answer
        runtime = Runtime(load(config, env))
        await runtime.start()
        stack.push_async_callback(runtime.stop)
        stack.push_async_callback(target.close)
        with LogWatch() as watch:

            async def play_one(conversation: Conversation) -> None:
                if tally.inputs < examples:  # enough: the rest are drawn and skipped
                    await play(target, conversation, watch, tally, strict=False)

            one: Callable[[Conversation], Coroutine[Any, Any, None]] = play_one
            await fuzz(strategy, one, examples, seed=seed)
            tally.failures += await healthy(base, target, answer)
            tally.failures += [f"at the end: {line}" for line in watch.since(0, collect=True)]
    tally.finish()
    return tally


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10_000, help="inputs per entry point")
    parser.add_argument("--entry", default=",".join(ENTRIES), help="telegram,messenger,webchat")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    entries = [e for e in args.entry.split(",") if e]
    if not set(entries) <= set(ENTRIES):
        parser.error(f"--entry: one or more of {', '.join(ENTRIES)}")
    os.environ.setdefault("MPLCONFIGDIR", tempfile.gettempdir())
    # Only the checks read the log: ERROR and worse, nothing printed.
    root = logging.getLogger()
    root.setLevel(logging.ERROR)
    root.addHandler(logging.NullHandler())
    failed = 0
    print(f"fuzz: {args.examples} inputs per entry point, {args.backend}, seed {args.seed}")
    for entry in entries:
        tally = await run_entry(entry, args.examples, args.backend, args.seed)
        print("\n".join(tally.lines()), flush=True)
        failed += len(tally.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
