"""``bench/polls.py``'s second part: poll taps through the whole bot (see its docstring).

Two phases on the same running bot, after the invitations have gone out:
- **burst**: ``taps`` presses enqueued at once; taps answered per second is the count
  over the time until the last edit arrived;
- **paced**: presses offered at a steady ``AIM_TAPS_PER_S`` for the same count; each
  press's latency is from its enqueue to its ``editMessageText`` arriving.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.standin_process import StandIn, free_port, serve_commands

AIM_TAPS_PER_S = 400.0
AIM_P99_MS = 300.0
OPTIONS = ("Parkā", "Pie skolas", "Krastā")


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
        if command == "invitations":
            return await _invitations(api, args["user_ids"], args["limit"])
        if command == "taps":
            return await _taps(api, **args)
        raise ValueError(f"unknown command {command!r}")

    try:
        await serve_commands(conn, api, handle)
    finally:
        await api.stop()


async def _invitations(api: Any, user_ids: list[int], limit: float) -> dict[int, Any]:
    """Wait until every resident has the poll message; its id and buttons per resident."""

    def found() -> dict[int, Any]:
        result = {}
        for user_id in user_ids:
            for message in api.messages(user_id):
                data = message.callback_data()
                if data and all(d.startswith("pl:") for d in data):
                    result[user_id] = (message.message_id, data)
        return result

    await api.wait_until(
        lambda: len(found()) == len(user_ids), limit, lambda: f"invitations ({len(found())})"
    )
    return found()


async def _taps(
    api: Any, items: list[tuple[int, int, str]], rate: float | None, limit: float
) -> dict[str, Any]:
    """Press the buttons (all at once, or at ``rate`` a second); wait for one edit each."""
    requests = api.requests
    start_index, errors_before = len(requests), len(api.errors)
    pressed: dict[int, list[float]] = defaultdict(list)  # chat → enqueue times, in order
    answered: dict[int, list[tuple[float, str]]] = defaultdict(list)  # chat → (time, text)
    seen, count = start_index, 0
    expected = len(items)

    def done() -> bool:
        nonlocal seen, count
        now, end = time.perf_counter(), len(requests)
        for index in range(seen, end):
            request = requests[index]
            if request.method == "editMessageText":
                answered[int(request.params["chat_id"])].append((now, request.params["text"]))
                count += 1
        seen = end
        return count >= expected

    started = time.perf_counter()
    for index, (user_id, message_id, data) in enumerate(items):
        if rate is not None:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        pressed[user_id].append(time.perf_counter())
        api.press_button(user_id, message_id, data)
    timed_out = False
    try:
        await api.wait_until(done, limit, lambda: f"{expected} edits (have {count})")
    except AssertionError:
        timed_out = True
    last = max((t for edits in answered.values() for t, _ in edits), default=started)
    await asyncio.sleep(0.3)  # anything more than expected arrives now
    done()
    latencies = [
        edit_time - press_time
        for chat, presses in pressed.items()
        for press_time, (edit_time, _) in zip(presses, answered.get(chat, []), strict=False)
    ]
    return {
        "elapsed": last - started,
        "timed_out": timed_out,
        "edits": count,
        "texts": {chat: [text for _, text in edits] for chat, edits in answered.items()},
        "latencies": latencies,
        "errors": [tuple(e) for e in api.errors[errors_before:][:5]],
        "callbacks_open": len(api._open_callbacks),
    }


async def _prepare(url: str, user_ids: list[int]) -> int:
    """Residents as onboarding leaves them and an open poll for all of them."""
    from bench.inbound import onboard
    from storage import db, polls

    await onboard(url, user_ids)
    await db.open_database(url)
    try:
        now = datetime.now(UTC)
        draft = polls.PollDraft(
            question={"lv": "Kur likt jaunos soliņus?"},
            options=[{"lv": label} for label in OPTIONS],
            opens_at=now - timedelta(seconds=1),
            closes_at=now + timedelta(days=1),
        )
        return (await polls.create(draft, author="bench")).id
    finally:
        await db.close_database()


def _config(work: Path) -> str:
    """The example configuration with quiet hours off: the invitations go at any hour."""
    text = Path("config.example.toml").read_text(encoding="utf-8")
    text = text.replace('quiet_start = "21:00"', 'quiet_start = "00:00"')
    text = text.replace('quiet_end = "09:00"', 'quiet_end = "00:00"')
    path = work / "bench-polls.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


ANSWER = re.compile(r"Jūsu atbilde: (.+)")


def _check(items: list[tuple[int, int, str]], texts: dict[int, list[str]]) -> bool:
    """Each resident's edits show, in order, the option each of their taps chose."""
    wanted: dict[int, list[str]] = defaultdict(list)
    for user_id, _, data in items:
        wanted[user_id].append(OPTIONS[int(data.rsplit(":", 1)[1])])
    for user_id, labels in wanted.items():
        shown = [m.group(1) if (m := ANSWER.search(t)) else "?" for t in texts.get(user_id, [])]
        if shown != labels:
            print(f"  WRONG edits for {user_id}: {shown[:4]}… wanted {labels[:4]}…")
            print(f"  the first: {texts.get(user_id, [''])[0][:200]!r}")
            return False
    return True


async def taps_part(url: str, residents: int, taps: int, work: Path) -> bool:
    from bench.inbound import forget_cached_sql
    from bot.app import Runtime
    from bot.core.config import load
    from storage import polls
    from storage.models import Poll

    user_ids = list(range(5_000_001, 5_000_001 + residents))
    poll_id = await _prepare(url, user_ids)
    standin = StandIn(_standin_main)
    runtime: Any = None
    ok = True
    try:
        await standin.ready()
        await standin.call("add_users", user_ids=user_ids)
        env = {
            "IESAISTE_TELEGRAM_TOKEN": standin.token,
            "IESAISTE_TELEGRAM_API_URL": standin.url,
            "IESAISTE_DATABASE_URL": url,
            "IESAISTE_HTTP_HOST": "127.0.0.1",
            "IESAISTE_HTTP_PORT": str(free_port()),
            "IESAISTE_LOG_LEVEL": "WARNING",
        }
        runtime = Runtime(load(_config(work), env))
        await runtime.start()
        started = time.perf_counter()
        invited = await standin.call("invitations", wait=600, user_ids=user_ids, limit=580.0)
        print(
            f"  {len(invited)} invitations delivered through the outbox in "
            f"{time.perf_counter() - started:.1f} s"
        )
        rounds = max(1, taps // residents)
        last_option: dict[int, int] = {}

        def presses(offset: int) -> list[tuple[int, int, str]]:
            items = []
            for k in range(rounds):
                for index, user_id in enumerate(user_ids):
                    message_id, data = invited[user_id]
                    option = (index + k + offset) % len(OPTIONS)
                    last_option[user_id] = option
                    items.append((user_id, message_id, data[option]))
            return items

        for phase, rate in (("burst", None), ("paced", AIM_TAPS_PER_S)):
            # The paced taps go on from where the burst's left off: a tap on the option
            # already chosen edits nothing (Telegram answers "message is not modified").
            items = presses(0 if phase == "burst" else rounds)
            cpu = time.process_time()
            result = await standin.call(
                "taps", wait=900, items=items, rate=rate, limit=max(60.0, 4 * len(items) / 100)
            )
            cpu_ms = 1000 * (time.process_time() - cpu) / len(items)
            right = not result["timed_out"] and result["edits"] == len(items)
            right = right and not result["errors"] and _check(items, result["texts"])
            ok = ok and right
            latencies = result["latencies"]
            per_second = len(items) / result["elapsed"] if result["elapsed"] else 0.0
            line = (
                f"  {phase}: {len(items):,} taps by {residents} residents, "
                f"{per_second:,.0f} taps/s answered, the bot's CPU {cpu_ms:.1f} ms a tap"
            )
            if latencies:
                line += (
                    f", latency p50 {1000 * statistics.median(latencies):.0f} ms, "
                    f"p99 {1000 * _percentile(latencies, 0.99):.0f} ms"
                )
            if phase == "burst":
                met = "met" if per_second >= AIM_TAPS_PER_S else "NOT met"
                line += f" (aim ≥ {AIM_TAPS_PER_S:.0f}/s: {met})"
            else:
                p99 = 1000 * _percentile(latencies, 0.99) if latencies else float("inf")
                line += (
                    f" at {AIM_TAPS_PER_S:.0f} offered/s (aim p99 < {AIM_P99_MS:.0f} ms: "
                    f"{'met' if p99 < AIM_P99_MS else 'NOT met'})"
                )
            print(line + ("" if right else f" — WRONG: {result['errors'] or result['edits']}"))
        # One ballot per resident, holding the option of their last tap.
        tally = await polls.tally(await Poll.get(id=poll_id))
        wanted = [list(last_option.values()).count(n) for n in range(len(OPTIONS))]
        if tally.ballots != residents or tally.counts != wanted:
            print(f"  WRONG: {tally.ballots} ballots, counts {tally.counts}, wanted {wanted}")
            ok = False
        return ok
    finally:
        if runtime is not None:
            await runtime.stop()
        standin.close()
        forget_cached_sql()
