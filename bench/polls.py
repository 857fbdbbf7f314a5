"""Quick polls at scale: the tally of a million ballots, and taps through the whole bot.

    .venv/bin/python bench/polls.py                         # both parts, SQLite and PostgreSQL
    .venv/bin/python bench/polls.py --part tally --ballots 200000
    .venv/bin/python bench/polls.py --part taps --backend postgres --taps 4000

1. **tally**: one poll of 4 options gets ``--ballots`` (1,000,000) ballots, written in
   SQL in one statement (the neighbourhoods of the demo municipality and five more, three
   channels, one to three options each); then ``storage.polls.tally`` — the counts per
   option with the breakdowns by neighbourhood (small ones summed as "other") and by
   channel — is timed ``--repeat`` times after one warm-up, and its figures checked
   against a count made apart. Aim on PostgreSQL: under 0.2 s.
2. **taps**: the whole bot (``bot.app.Runtime`` as ``iesaiste run`` starts it, long
   polling through python-telegram-bot) against the Bot API stand-in in a process of its
   own (``bench/standin_process.py``, as ``bench/inbound.py``). ``--residents``
   onboarded residents get the poll's invitation through the outbox; then ``--taps``
   button presses (each resident taps the options in turn) are enqueued on the stand-in
   at once, and the clock runs until each press has been answered by its
   ``editMessageText``. Every edit is checked to show the resident's new answer, and the
   database to hold one ballot per resident with the last option tapped. Aims on
   PostgreSQL: at least 400 taps a second, p99 under 300 ms (a tap's latency: from the
   enqueue to its edit arriving at the stand-in).

The databases are scratch ones (a temporary SQLite file, a PostgreSQL database
``iesaiste_bench_<random>``), removed at the end. Exit code 0 unless a figure was wrong;
the aims are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SELF = str(Path(__file__).resolve())
ROOT = Path(SELF).parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scratch_db import scratch_postgres  # noqa: E402

AIM_TALLY_S = 0.2
HOODS = (
    "centrs",
    "jaunciems",
    "parupe",
    "lauki",
    "imanta",
    "teika",
    "purvciems",
    "ziepniekkalns",
)

# One INSERT … SELECT of the ballots: n → neighbourhood n % 8, or "x" (a small one: every
# 997th ballot, so the "other" rule has work), channel n % 3, choices 1..3 bits.
FILL = {
    "postgres": """
INSERT INTO "ballot" ("poll_id", "resident_id", "choices", "draft", "neighbourhood",
  "channel", "cast_at", "changed_at")
SELECT {poll}, NULL, c, c,
  CASE WHEN g % 997 = 0 THEN 'x' ELSE (ARRAY[{hoods}])[1 + g % 8] END,
  (ARRAY['telegram','webchat','messenger'])[1 + g % 3], now(), now()
FROM (SELECT g, (1 + (g * 7) % 7) AS c FROM generate_series(1, {n}) AS g) s
""",
    "sqlite": """
WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {n})
INSERT INTO "ballot" ("poll_id", "resident_id", "choices", "draft", "neighbourhood",
  "channel", "cast_at", "changed_at")
SELECT {poll}, NULL, 1 + (g * 7 + g / 7) % 7, 1 + (g * 7 + g / 7) % 7,
  CASE WHEN g % 997 = 0 THEN 'x' ELSE {hood_case} END,
  CASE g % 3 WHEN 0 THEN 'telegram' WHEN 1 THEN 'webchat' ELSE 'messenger' END,
  datetime('now'), datetime('now')
FROM s
""",
}


def _fill_sql(dialect: str, poll_id: int, n: int) -> str:
    hoods = HOODS
    if dialect == "postgres":
        quoted = ",".join(f"'{h}'" for h in hoods)
        sql = FILL["postgres"].format(poll=poll_id, n=n, hoods=quoted)
        # Spread the choices like SQLite's: 1..7, a mix of one to three options.
        return sql.replace("(1 + (g * 7) % 7)", "(1 + (g * 7 + g / 7) % 7)")
    case = "CASE g % 8 " + " ".join(f"WHEN {i} THEN '{h}'" for i, h in enumerate(hoods)) + " END"
    return FILL["sqlite"].format(poll=poll_id, n=n, hood_case=case)


async def tally_part(url: str, ballots: int, repeat: int) -> tuple[list[float], bool]:
    from tortoise import connections

    from storage import db, polls
    from storage.models import Ballot

    await db.open_database(url)
    try:
        now = datetime.now(UTC)
        draft = polls.PollDraft(
            question={"lv": "Kur likt soliņus?"},
            options=[{"lv": "Parkā"}, {"lv": "Pie skolas"}, {"lv": "Krastā"}, {"lv": "Tirgū"}],
            opens_at=now - timedelta(hours=1),
            closes_at=now + timedelta(days=1),
            multiple=True,
        )
        poll = await polls.create(draft, author="bench")
        client = connections.get("default")
        dialect = str(client.capabilities.dialect)
        started = time.perf_counter()
        await client.execute_script(_fill_sql(dialect, poll.id, ballots))
        if dialect == "postgres":
            await client.execute_script('VACUUM ANALYZE "ballot"')
        else:
            await client.execute_script("ANALYZE")
        print(f"  {ballots:,} ballots written in {time.perf_counter() - started:.1f} s")
        await polls.tally(poll)  # warm-up
        times = []
        result = None
        for _ in range(repeat):
            start = time.perf_counter()
            result = await polls.tally(poll)
            times.append(time.perf_counter() - start)
        assert result is not None
        # The figures checked against counts made apart, per option, by the ORM.
        ok = result.ballots == ballots == await Ballot.filter(poll_id=poll.id).count()
        for position in range(4):
            bit = 1 << position
            rows = await client.execute_query_dict(
                f'SELECT COUNT(*) AS n FROM "ballot" WHERE "poll_id" = {poll.id} '
                f'AND ("choices" & {bit}) <> 0'
            )
            ok = ok and result.counts[position] == int(rows[0]["n"])
        small = ballots // 997  # the ballots of the small neighbourhood "x"
        ok = ok and ("x" in result.by_neighbourhood) == (small >= polls.SMALLEST_GROUP)
        ok = ok and sum(n for n, _ in result.by_neighbourhood.values()) == ballots
        ok = ok and sum(n for n, _ in result.by_channel.values()) == ballots
        if not ok:
            print(f"  WRONG: {result}")
        return times, ok
    finally:
        await db.close_database()


def summary(name: str, times: list[float], aim: float | None, unit: str = "s") -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    line = (
        f"  {name}: median {statistics.median(ordered):.3f} {unit}, p95 {p95:.3f} {unit}, "
        f"worst {ordered[-1]:.3f} {unit}"
    )
    if aim is not None:
        line += f" (aim < {aim} {unit}: {'met' if statistics.median(ordered) < aim else 'NOT met'})"
    return line


async def on_backend(backend: str, work: Path, action: Any) -> Any:
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from storage import db

    # Tortoise caches SQL per connection name, whatever the backend: the other backend's
    # placeholders must not be reused.
    EXECUTOR_CACHE.clear()
    if backend == "sqlite":  # a new file for each part (the folder goes at the end)
        url = f"sqlite://{work}/bench-{uuid.uuid4().hex[:8]}.sqlite3"
        await db.migrate(url)
        return await action(url)
    async with scratch_postgres() as (url, _name):
        await db.migrate(url)
        return await action(url)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("tally", "taps", "both"), default="both")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--ballots", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--residents", type=int, default=500)
    parser.add_argument("--taps", type=int, default=4000)
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    ok = True
    work = Path(tempfile.mkdtemp(prefix="iesaiste-bench-polls-"))
    try:
        for backend in backends:
            if args.part in ("tally", "both"):
                print(f"tally of one poll, {backend}:")
                times, right = await on_backend(
                    backend, work, lambda url: tally_part(url, args.ballots, args.repeat)
                )
                ok = ok and right
                aim = AIM_TALLY_S if backend == "postgres" else None
                print(summary(f"tally of {args.ballots:,} ballots", times, aim))
            if args.part in ("taps", "both"):
                from bench.poll_taps import taps_part

                print(f"taps through the whole bot, {backend}:")
                right = await on_backend(
                    backend, work, lambda url: taps_part(url, args.residents, args.taps, work)
                )
                ok = ok and right
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
