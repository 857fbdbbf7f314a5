"""A bot worker as ``bench/load.py`` runs it with ``--profile``:
``python THIS --config … run``, otherwise exactly ``iesaiste run``.

* ``IESAISTE_BENCH_PROFILE=FILE``: cProfile, off at start so that start-up does not dilute
  the figures. SIGUSR1 (sent when the steady part begins) turns it on, SIGUSR2 turns it off
  and writes the statistics to FILE, and to FILE.statements the statements sent to
  PostgreSQL meanwhile, by text (cProfile counts each resumption of a coroutine as a call,
  so its call counts cannot say how many round trips there were). cProfile sees only the
  main thread, which is where the event loop, and so all of the bot's own work, runs.
"""

from __future__ import annotations

import cProfile
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROFILE = cProfile.Profile()
COUNTING = [False]
STATEMENTS: Counter[str] = Counter()  # the statement's text (its first 160 characters) → count


def _on(signum: int, frame: FrameType | None) -> None:
    STATEMENTS.clear()
    COUNTING[0] = True
    PROFILE.enable()


def _off(signum: int, frame: FrameType | None) -> None:
    PROFILE.disable()
    COUNTING[0] = False
    path = os.environ["IESAISTE_BENCH_PROFILE"]
    PROFILE.dump_stats(path)
    Path(path + ".statements").write_text(json.dumps(dict(STATEMENTS)), encoding="utf-8")


def _count(query: object) -> None:
    if COUNTING[0]:
        STATEMENTS[" ".join(str(query).split())[:160]] += 1


def _count_statements() -> None:
    """Wrap asyncpg's one path to the server for queries (``Connection._do_execute``, under
    fetch, execute and executemany alike) and the simple-query protocol (``execute`` with
    no arguments: BEGIN, COMMIT and the pool's reset query)."""
    from asyncpg import connection

    do_execute = connection.Connection._do_execute
    execute = connection.Connection.execute

    async def counted_do_execute(self: Any, query: object, *args: Any, **kwargs: Any) -> Any:
        _count(query)
        return await do_execute(self, query, *args, **kwargs)

    async def counted_execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # with arguments it goes through _do_execute
            _count(query)
        return await execute(self, query, *args, **kwargs)

    connection.Connection._do_execute = counted_do_execute  # type: ignore[method-assign]
    connection.Connection.execute = counted_execute  # type: ignore[method-assign]


def main() -> int:
    from bot.cli import main as bot_main

    if os.environ.get("IESAISTE_BENCH_PROFILE"):
        _count_statements()
        signal.signal(signal.SIGUSR1, _on)
        signal.signal(signal.SIGUSR2, _off)
    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
