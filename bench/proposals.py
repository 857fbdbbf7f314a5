"""Proposals at scale: the similar-proposal lookup and Open311's ``requests.json``.

    .venv/bin/python bench/proposals.py                     # SQLite and PostgreSQL
    .venv/bin/python bench/proposals.py --backend sqlite --open 20000

What runs on each backend (a fresh SQLite file in a temporary folder, or a scratch
PostgreSQL database ``iesaiste_bench_<random>``, migrated; both removed at the end):

1. 1,000 public proposals are inserted (``storage.models``, bulk), a third of them
   with an approved photo, half of them with a place. ``GET
   /open311/v2/requests.json?page_size=1000`` is fetched over real HTTP from the
   bot's own aiohttp application (``bot.http.build_app`` with ``bot.open311``'s
   routes) on 127.0.0.1, ``--repeat`` times after one warm-up; every answer is
   checked to hold the 1,000 requests. The client runs in the same process (its
   share of the CPU counts against the figure).
2. More open proposals are inserted, up to ``--open`` (50,000) in all, each with
   its word stems in the index (``storage.similar.terms``) as ``submit`` leaves it;
   six categories, the demo municipality's neighbourhoods, texts drawn from a
   vocabulary of Latvian, English and Russian words, places within Riga's box.
   ``storage.similar.find`` is then timed for ``--repeat`` drafts: half of them
   with a place (nearby and by words), half by words only. ``requests.json`` is
   timed once more on the full table, for information.

It prints the median, the 95th percentile and the worst of each, against the aims
(lookup < 50 ms, requests.json < 100 ms). Exit code 0 unless an answer was wrong;
the aims are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

SELF = str(Path(__file__).resolve())
ROOT = Path(SELF).parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.scratch_db import scratch_postgres  # noqa: E402

AIM_LOOKUP_MS, AIM_REQUESTS_MS = 50.0, 100.0
CATEGORIES = ("roads", "lighting", "greenery", "waste", "idea", "other")
# Riga, roughly: where the places fall.
SOUTH, NORTH, WEST, EAST = 56.88, 57.05, 23.95, 24.30
WORDS = (
    "bedre ceļš ietve apgaismojums laterna koks parks sols atkritumi konteiners "
    "skola bērnudārzs pietura autobuss velosipēdu celiņš ūdens kanalizācija "
    "pothole road pavement streetlight lamp tree park bench rubbish bin school "
    "stop bus cycle lane water drain crossing traffic sign noise parking "
    "яма дорога тротуар фонарь дерево парк скамейка мусор контейнер школа "
    "остановка автобус велодорожка вода переход светофор шум парковка"
).split()


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "."


def place(rng: random.Random) -> tuple[float | None, float | None]:
    if rng.random() < 0.5:
        return None, None
    return rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)


async def insert(
    count: int, start: int, rng: random.Random, hoods: list[str], *, photos: bool
) -> None:
    """``count`` open proposals with their stems indexed (and approved photos)."""
    from storage import similar
    from storage.models import Proposal, ProposalPhoto, ProposalTerm

    year = datetime.now(UTC).year
    now = datetime.now(UTC)
    batch = 1000
    for first in range(start, start + count, batch):
        numbers = range(first, min(first + batch, start + count))
        rows = []
        for n in numbers:
            lat, lon = place(rng)
            rows.append(
                Proposal(
                    id=n,
                    reference=f"P-{year}-{n:06d}",
                    category=rng.choice(CATEGORIES),
                    department="municipality",
                    neighbourhood=rng.choice(hoods),
                    text=text(rng),
                    language="lv",
                    latitude=lat,
                    longitude=lon,
                    address="Brīvības iela 1" if lat is not None else "",
                    status=rng.choice(("received", "under_review", "planned", "in_progress")),
                    explanation="Izskatām.",
                    supporters=rng.randint(1, 40),
                    created_at=now - timedelta(minutes=n),
                    updated_at=now - timedelta(minutes=n // 2),
                )
            )
        await Proposal.bulk_create(rows)
        await ProposalTerm.bulk_create(
            [
                ProposalTerm(
                    proposal_id=row.id,
                    term=term,
                    category=row.category,
                    neighbourhood=row.neighbourhood,
                )
                for row in rows
                for term in similar.terms(row.text)
            ],
            batch_size=5000,
        )
        if photos:
            await ProposalPhoto.bulk_create(
                [
                    ProposalPhoto(proposal_id=row.id, key=f"{row.id:064x}", approved=True)
                    for row in rows
                    if row.id % 3 == 0
                ]
            )


async def timed(action: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    await action()  # warm-up: connections, statement caches
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await action()
        times.append((time.perf_counter() - began) * 1000)
    return times


def summary(name: str, times: list[float], aim: float) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    verdict = "within" if p95 < aim else "OVER"
    return (
        f"  {name:<44} median {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   "
        f"worst {ordered[-1]:7.1f} ms   ({verdict} the aim of {aim:g} ms)"
    )


async def run_backend(url: str, total: int, repeat: int) -> bool:
    import aiohttp
    from aiohttp import web

    from bot.core.config import Config, demo_municipality
    from bot.http import build_app
    from bot.open311 import add_routes
    from storage import db, similar

    config = Config(municipality=demo_municipality(), database_url=url)
    hoods = [n.id for n in config.municipality.neighbourhoods] or [""]
    rng = random.Random(13)
    await db.migrate(url)
    await db.open_database(url)
    app = build_app()
    add_routes(app, config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint = f"http://127.0.0.1:{port}/open311/v2/requests.json?page_size=1000"
    correct = True
    try:
        began = time.perf_counter()
        await insert(1000, 1, rng, hoods, photos=True)
        print(f"  1,000 proposals inserted in {time.perf_counter() - began:.1f} s")
        async with aiohttp.ClientSession() as http:

            async def fetch() -> None:
                nonlocal correct
                async with http.get(endpoint) as response:
                    body = await response.json()
                    if response.status != 200 or len(body) != 1000:
                        correct = False

            print(
                summary(
                    "requests.json, 1,000 of 1,000", await timed(fetch, repeat), AIM_REQUESTS_MS
                )
            )
            began = time.perf_counter()
            await insert(total - 1000, 1001, rng, hoods, photos=False)
            print(
                f"  {total - 1000:,} more open proposals inserted in "
                f"{time.perf_counter() - began:.1f} s"
            )
            drafts = []
            for n in range(repeat + 1):
                lat, lon = (
                    (rng.uniform(SOUTH, NORTH), rng.uniform(WEST, EAST)) if n % 2 else (None, None)
                )
                drafts.append((rng.choice(CATEGORIES), rng.choice(hoods), text(rng), lat, lon))
            found_any = 0
            queue = iter(drafts)

            async def lookup() -> None:
                nonlocal found_any
                category, hood, words, lat, lon = next(queue)
                found = await similar.find(
                    category=category,
                    text=words,
                    neighbourhood=hood,
                    latitude=lat,
                    longitude=lon,
                    distance=150,
                )
                found_any += bool(found)

            print(
                summary(
                    f"similar.find among {total:,} open", await timed(lookup, repeat), AIM_LOOKUP_MS
                )
            )
            print(f"  ({found_any} of {repeat + 1} drafts found similar proposals)")
            print(
                summary(
                    f"requests.json, 1,000 of {total:,}",
                    await timed(fetch, repeat),
                    AIM_REQUESTS_MS,
                )
            )
    finally:
        await runner.cleanup()
        await db.close_database()
        # Tortoise caches SQL per connection name, whatever the backend: the next differs.
        from tortoise.backends.base.executor import EXECUTOR_CACHE

        EXECUTOR_CACHE.clear()
    return correct


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--open", type=int, default=50_000, help="open proposals (50000)")
    parser.add_argument("--repeat", type=int, default=40, help="timed runs of each (40)")
    args = parser.parse_args()
    if args.open < 1000:
        parser.error("--open must be at least 1000")
    correct = True
    if args.backend in ("sqlite", "both"):
        folder = tempfile.mkdtemp(prefix="iesaiste-bench-")
        try:
            print("SQLite")
            correct &= await run_backend(f"sqlite://{folder}/bench.sqlite3", args.open, args.repeat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        async with scratch_postgres() as (url, _):
            print("PostgreSQL")
            correct &= await run_backend(url, args.open, args.repeat)
    if not correct:
        print("some answers were wrong", file=sys.stderr)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
