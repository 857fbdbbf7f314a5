"""Load through several webhook workers: a realistic mix of residents, as Telegram sends it.

    .venv/bin/python bench/load.py                              # 60 s, 2 workers, 40 connections
    .venv/bin/python bench/load.py --concurrency 100            # Telegram's most for one webhook
    .venv/bin/python bench/load.py --seconds 30 --residents 2000 --concurrency 50
    .venv/bin/python bench/load.py --profile /tmp/bot1.prof     # worker 1 under cProfile

What runs (see bench/README.md for the figures and the reasons):

* One scratch PostgreSQL database ``iesaiste_bench_<random>``, migrated, dropped at the end.
  Before the run: the demo municipality's catalog; ``--residents`` active residents, a third
  new (they onboard during the run) and the rest onboarded (bulk-inserted as onboarding
  leaves them: a neighbourhood, two topics, privacy accepted); ``--audience`` silent
  residents (onboarded, no neighbourhood) who only receive the broadcast.
* The Bot API stand-in (``tests/standins/telegram_api.py``) in its own process
  (``bench/standin_process.py``), enforcing ``--telegram-rate`` messages a second overall.
  The load driver runs in that process too: it plays the residents with the stand-in's own
  ``send_text``/``press_button``/``send_location`` (so callback queries and the messages
  they press are the stand-in's, checked as strictly as in the tests), and POSTs each
  update to ``/webhooks/telegram`` itself, with the secret header, instead of the
  stand-in's single-URL webhook delivery; a method in the webhook's answer (the stop of a
  pressed button's spinner) is carried out by the stand-in, as Telegram does.
* ``--workers`` processes ``python -m bot --config … run`` in webhook mode, each on its own
  port, with ``[delivery] telegram_per_second = --telegram-rate`` and no quiet hours.
* As Telegram does: ``--concurrency`` connections in all (40 by default: Telegram's
  ``max_connections`` when ``setWebhook`` names none, as the bot's does not; 100 is the
  most it allows); one resident's next update only after the answer (200) to the
  previous one, never two at once. Updates are spread over the workers round-robin
  (``--route spread``, what a reverse proxy does) or a resident always to the same worker
  (``--route sticky``).
* The mix, per resident session: a new resident onboards (/start, language, neighbourhood,
  two topics, Done, consent); an onboarded one submits a proposal (/propose, category, text,
  then a place shared as a location or none, Submit, "Mine is different" if similar ones are
  offered); then each taps every poll on screen (a different option each time), and every
  third session sends a free text. A resident rests ``--rest`` seconds (61) between
  sessions: the bot's throttle allows 20 messages a minute.
* Pushes during the run: poll 1 (``iesaiste poll create``, open at once) has invited the
  onboarded residents before the clock starts; poll 2 is created scheduled to open at 40 %
  of the run; ``iesaiste announce --audience all`` is queued at 10 % of the run. The
  workers deliver both through the outbox and the stand-in while answering.

Printed: the sustained rate over the steady part (from ``--warmup`` seconds to the end of
the offered load), answer latency p50/p95/p99/max (from the POST to the webhook's response:
the answers are sent before it), the same per kind of update, the errors (non-200,
timeouts, answers the stand-in refused, apologies, throttle notices, answers that were not
what the step expected), a timeline every 2 s (answered/s, p50/p99, the outbox's queued and
sending rows read from the database, the stand-in's sends/s), and the CPU of each process.

Exit code: 0 when there were no errors; the aims (400 updates/s, p99 < 300 ms) are
reported, not enforced. The machine's other load is printed: figures from a shared machine
are rough.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pstats
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SELF = str(Path(__file__).resolve())
ROOT = Path(SELF).parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.broadcast import Bot, cli, database, healthy, start_bot, stop_all  # noqa: E402
from bench.proc_stats import machine_busy, postgres_cpu, process_cpu  # noqa: E402
from bench.standin_process import StandIn, free_port, serve_commands  # noqa: E402

FIRST_ACTIVE = 600_000_001
FIRST_SILENT = 680_000_001
WEBHOOK_SECRET = "load-bench-webhook-secret"
HOODS = ("centrs", "jaunciems", "parupe", "lauki")  # the demo municipality's
TOPICS = ("transport", "environment", "education", "culture", "social")
LANGUAGES = ("lv", "en", "ru")
RIGA = (56.9496, 24.1052)
ANNOUNCEMENT = "Rīt no 9:00 līdz 15:00 Brīvības ielā nebūs ūdens. Paldies par sapratni!"
POLL_OPTIONS = ("Parkā", "Pie skolas", "Krastā")
IDEAS = (
    "Bedre ietvē pie veikala, kur cilvēki paklūp",
    "Nedeg ielas apgaismojums pie autobusa pieturas",
    "Pārpildīti atkritumu konteineri pagalmā jau nedēļu",
    "Please add a bench and a bin in the small park",
    "Сломана скамейка на детской площадке у школы",
    "Vajadzīga gājēju pāreja pie bērnudārza",
    "Koks nolūzis un aizsprosto celiņu parkā",
)
FREE_TEXTS = (
    "Sveiki! Kad salabos bedres Rīgas ielā?",
    "Hello, where can I read about the new park?",
    "Здравствуйте, когда откроется библиотека?",
)
AIM_RATE, AIM_P99_MS = 400.0, 300.0
# Statuses the driver records besides HTTP ones.
TIMEOUT, NO_CONNECTION = -1, -2


# ============================================================================================
# The stand-in's process: the Bot API and the residents who drive the workers
# ============================================================================================


def _standin_main(conn: Connection) -> None:
    # Ctrl-C reaches the whole process group; the parent stops this child over the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_standin_serve(conn))


async def _standin_serve(conn: Connection) -> None:
    from tests.standins.telegram_api import BotApiStandIn, JSONDict

    class DrivenStandIn(BotApiStandIn):
        """The stand-in whose updates the driver POSTs itself, to the worker it picks."""

        def _webhook_enqueue(self, update: JSONDict) -> None:
            pass

    api = DrivenStandIn()
    await api.start()
    driver: Driver | None = None
    task: asyncio.Task[None] | None = None

    async def handle(command: str, args: dict[str, Any]) -> Any:
        nonlocal driver, task
        if command == "setup":
            api.add_users(args["active"], language_code="lv")
            api.add_users(args["silent"], language_code="lv")
            if args["rate"]:
                api.limit_rate(args["rate"])
            return len(args["active"]) + len(args["silent"])
        if command == "invited":
            return await _wait_invited(api, args["user_ids"], args["limit"])
        if command == "start":
            driver = Driver(api, **args)
            task = asyncio.create_task(driver.run())
            return None
        if command == "status":
            return {
                "sent": api.sent_count,
                "answered": len(driver.records) if driver else 0,
                "cpu": time.process_time(),
            }
        if command == "result":
            assert driver is not None and task is not None
            await task
            return driver.report()
        raise ValueError(f"unknown command {command!r}")

    try:
        await serve_commands(conn, api, handle)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await api.stop()


def _poll_messages(api: Any, user_id: int) -> list[Any]:
    """The poll messages on the resident's screen: every button a ``pl:`` one."""
    found = []
    for message in api.messages(user_id):
        data = message.callback_data()
        if data and all(d.startswith("pl:") for d in data):
            found.append(message)
    return found


async def _wait_invited(api: Any, user_ids: list[int], limit: float) -> int:
    """Wait until every one of ``user_ids`` has a poll message; how many have one."""
    deadline = time.monotonic() + limit
    while True:
        count = sum(1 for user_id in user_ids if _poll_messages(api, user_id))
        if count >= len(user_ids) or time.monotonic() > deadline:
            return count
        await asyncio.sleep(0.25)


class Unexpected(Exception):
    """The bot's answer was not the one the step leads to (the session stops there)."""


@dataclass(slots=True)
class Resident:
    user_id: int
    onboarded: bool
    ready_at: float = 0.0  # when the resident may start the next session
    sessions: int = 0
    taps: dict[int, int] = field(default_factory=dict)  # poll message id → last option
    # What the last update may have answered with: the messages from this index on, and
    # the message whose button it pressed (an answer may edit it in place).
    before: int = 0
    pressed: Any = None


class Driver:
    """The residents: ``concurrency`` sessions at a time, each one update after another."""

    def __init__(
        self,
        api: Any,
        urls: list[str],
        new: list[int],
        onboarded: list[int],
        seconds: float,
        concurrency: int,
        route: str,
        timeout: float,
        rest: float,
        seed: int,
    ) -> None:
        self.api = api
        self.urls = urls
        self.seconds = seconds
        self.concurrency = concurrency
        self.route = route
        self.timeout = timeout
        self.rest = rest
        self.random = random.Random(seed)
        people = [Resident(uid, False) for uid in new] + [Resident(uid, True) for uid in onboarded]
        self.random.shuffle(people)
        self.queue: deque[Resident] = deque(people)
        # (start on the monotonic clock, latency s, HTTP status or TIMEOUT/NO_CONNECTION,
        # kind, worker index)
        self.records: list[tuple[float, float, int, str, int]] = []
        self.unexpected: Counter[str] = Counter()
        self.samples: list[str] = []
        # Connection-seconds spent waiting for a rested resident, or given up before the
        # end because none would be rested in time: load that was not offered.
        self.idle = 0.0
        self.turn = 0
        self.started = self.deadline = 0.0
        self.requests_before = self.errors_before = 0
        self.session: Any = None

    async def run(self) -> None:
        import aiohttp

        self.requests_before, self.errors_before = len(self.api.requests), len(self.api.errors)
        connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.session = session
            self.started = time.monotonic()
            self.deadline = self.started + self.seconds
            await asyncio.gather(*(self._slot() for _ in range(self.concurrency)))

    async def _slot(self) -> None:
        while time.monotonic() < self.deadline and self.queue:
            resident = self.queue.popleft()
            wait = resident.ready_at - time.monotonic()
            if wait > 0:
                if time.monotonic() + wait >= self.deadline:
                    self.queue.appendleft(resident)
                    self.idle += self.deadline - time.monotonic()
                    return
                self.idle += wait
                await asyncio.sleep(wait)
            try:
                await self._session_of(resident)
            except Unexpected as error:
                kind = str(error.args[0])
                self.unexpected[kind] += 1
                if len(self.samples) < 8:
                    self.samples.append(str(error.args[1]))
            except _Stopped:
                pass
            resident.sessions += 1
            resident.ready_at = time.monotonic() + self.rest
            self.queue.append(resident)

    # --- one session -----------------------------------------------------------------------

    async def _session_of(self, r: Resident) -> None:
        if not r.onboarded:
            await self._onboard(r)
            r.onboarded = True
        else:
            await self._propose(r)
        for poll in _poll_messages(self.api, r.user_id):
            await self._tap(r, poll)
        if r.sessions % 3 == 2:
            await self._post(r, self.api.send_text(r.user_id, self.random.choice(FREE_TEXTS)))
            self._expect(r, "free_text", "menu:")

    async def _onboard(self, r: Resident) -> None:
        api, uid = self.api, r.user_id
        await self._post(r, api.send_text(uid, "/start"), "start")
        question = self._expect(r, "start", "onb:language:")
        await self._press(r, question, self.random.choice(LANGUAGES), "language")
        question = self._expect(r, "language", "onb:neighbourhood")
        await self._press(r, question, self.random.choice(HOODS), "neighbourhood")
        question = self._expect(r, "neighbourhood", "onb:topics")
        for topic in self.random.sample(TOPICS, 2):
            await self._press(r, question, topic, "topic")
            question = self._expect(r, "topic", "onb:topics")
        await self._press(r, question, "_done", "topics_done")
        question = self._expect(r, "topics_done", "onb:privacy")
        await self._press(r, question, "_yes", "consent")
        self._expect(r, "consent", "menu:")

    async def _propose(self, r: Resident) -> None:
        api, uid = self.api, r.user_id
        await self._post(r, api.send_text(uid, "/propose"), "propose")
        question = self._expect(r, "propose", "prop:category")
        category = self._values(question)[0]
        await self._press(r, question, category, "category")
        self._expect(r, "category", "prop:text")
        text = f"{self.random.choice(IDEAS)} (#{uid % 100_000}-{r.sessions})"
        await self._post(r, api.send_text(uid, text), "text")
        card = self._expect(r, "text", "prop:card")
        if self.random.random() < 0.5:
            await self._press(r, card, "place", "place")
            self._expect(r, "place", "prop:place")
            latitude = RIGA[0] + self.random.uniform(-0.02, 0.02)
            longitude = RIGA[1] + self.random.uniform(-0.03, 0.03)
            await self._post(r, api.send_location(uid, latitude, longitude), "location")
            card = self._expect(r, "location", "prop:card")
        await self._press(r, card, "submit", "submit")
        answer = self._expect(r, "submit", "menu:", "prop:same")
        if any(d.startswith("prop:same") for d in answer.callback_data()):
            await self._press(r, answer, "different", "different")
            self._expect(r, "different", "menu:")

    async def _tap(self, r: Resident, poll: Any) -> None:
        options = [d for d in poll.callback_data() if d.rsplit(":", 1)[1].isdigit()]
        if not options:
            return
        last = r.taps.get(poll.message_id, -1)
        choice = (last + 1) % len(options)
        r.taps[poll.message_id] = choice
        edits = poll.edits
        await self._post(
            r, self.api.press_button(r.user_id, poll.message_id, options[choice]), "tap"
        )
        if poll.edits <= edits:
            raise Unexpected("tap", f"tap: no edit of the poll; last: {self._last_text(r)}")

    # --- the steps' mechanics --------------------------------------------------------------

    @staticmethod
    def _values(message: Any) -> list[str]:
        return [d.rsplit(":", 1)[1] for d in message.callback_data()]

    async def _press(self, r: Resident, message: Any, value: str, kind: str) -> None:
        for data in message.callback_data():
            if data.rsplit(":", 1)[1] == value:
                update = self.api.press_button(r.user_id, message.message_id, data)
                await self._post(r, update, kind, pressed=message)
                return
        raise Unexpected(kind, f"{kind}: no button {value!r} in {message.callback_data()[:6]}")

    def _last_text(self, r: Resident) -> str:
        messages = self.api.messages(r.user_id)
        return repr(messages[-1].body[:100]) if messages else "(none)"

    def _expect(self, r: Resident, kind: str, *prefixes: str) -> Any:
        """The answer to the last update: the newest message since it (or the pressed one,
        edited) that carries a button of one of ``prefixes``. A push may have come in
        between, so not simply the newest message."""
        candidates = list(reversed(self.api.messages(r.user_id)[r.before :]))
        if r.pressed is not None:
            candidates.append(r.pressed)
        for message in candidates:
            if any(d.startswith(prefixes) for d in message.callback_data()):
                return message
        raise Unexpected(kind, f"after {kind}: wanted {prefixes[0]!r}…, got {self._last_text(r)}")

    async def _post(
        self, r: Resident, update: dict[str, Any], kind: str = "free_text", pressed: Any = None
    ) -> None:
        """POST one update to a worker as Telegram does; raises _Stopped on a failure."""
        import aiohttp

        r.before, r.pressed = len(self.api.messages(r.user_id)), pressed
        if self.route == "sticky":
            worker = r.user_id % len(self.urls)
        else:
            worker = self.turn = (self.turn + 1) % len(self.urls)
        body = json.dumps(update, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
        }
        started = time.monotonic()
        answer, content_type = b"", ""
        try:
            async with self.session.post(self.urls[worker], data=body, headers=headers) as response:
                answer = await response.read()
                status = response.status
                content_type = response.content_type
        except TimeoutError:
            status = TIMEOUT
        except (aiohttp.ClientError, OSError):
            status = NO_CONNECTION
        self.records.append((started, time.monotonic() - started, status, kind, worker))
        if status != 200:
            raise _Stopped
        await self.api.carry_out_webhook_answer(content_type, answer)
        if time.monotonic() >= self.deadline:
            raise _Stopped  # the offered load ends here: the session is not finished

    # --- what the stand-in saw -------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        from bot.core.i18n import translator
        from handlers.dispatcher import FAILED

        apologies = [translator(lang).gettext(FAILED) for lang in LANGUAGES]
        slow = [
            translator(lang)
            .ngettext(
                "You are sending messages faster than I can read them. "
                "Please wait {n} second, then carry on.",
                "You are sending messages faster than I can read them. "
                "Please wait {n} seconds, then carry on.",
                2,
            )
            .split("{n}")[0]
            for lang in LANGUAGES
        ]
        methods: Counter[str] = Counter()
        apology = throttled = announced = invited = 0
        silent_from = FIRST_SILENT
        for request in self.api.requests[self.requests_before :]:
            methods[request.method] += 1
            text = request.params.get("text") or request.params.get("caption") or ""
            if not isinstance(text, str) or not text:
                continue
            if any(a in text for a in apologies):
                apology += 1
            if any(s in text for s in slow):
                throttled += 1
            if request.method == "sendMessage":
                if text == ANNOUNCEMENT:
                    announced += 1
                elif '"pl:' in str(request.params.get("reply_markup", "")):
                    invited += 1
        silent_reached = sum(1 for chat in self.api.delivery_counts() if chat >= silent_from)
        refused = Counter(e.description[:90] for e in self.api.errors[self.errors_before :])
        return {
            "records": self.records,
            "started": self.started,
            "deadline": self.deadline,
            "unexpected": dict(self.unexpected),
            "samples": self.samples,
            "idle": self.idle,
            "methods": dict(methods),
            "apologies": apology,
            "throttled": throttled,
            "announced": announced,
            "invited": invited,
            "silent_reached": silent_reached,
            "refused": dict(refused.most_common(6)),
            "refused_count": sum(refused.values()),
            "rate_limited": len(self.api.rate_limited),
            "cpu": time.process_time(),
        }


class _Stopped(Exception):
    """A session ends early: a failed POST (recorded) or the end of the offered load."""


# ============================================================================================
# The database before the run
# ============================================================================================


async def prepare(active_onboarded: Sequence[int], silent: Sequence[int]) -> None:
    """The demo catalog; onboarded residents as onboarding leaves them, and silent ones
    (onboarded, no neighbourhood: the broadcast's extra audience), all bulk-inserted."""
    from bot.core.config import demo_municipality
    from storage import catalog
    from storage.catalog import Entry
    from storage.models import ChannelIdentity, Neighbourhood, Resident, Subscription, Topic

    m = demo_municipality()
    await catalog.sync(
        [Entry(n.id, n.names) for n in m.neighbourhoods], [Entry(t.id, t.names) for t in m.topics]
    )
    hoods = dict(await Neighbourhood.all().values_list("key", "id"))
    topics = dict(await Topic.all().values_list("key", "id"))
    now = datetime.now(UTC)
    people = [
        Resident(
            language=LANGUAGES[i % 3],
            neighbourhood_id=hoods[HOODS[i % len(HOODS)]],
            privacy_accepted_at=now,
            onboarded_at=now,
        )
        for i in range(len(active_onboarded))
    ]
    people += [Resident(language="lv", onboarded_at=now) for _ in silent]
    await Resident.bulk_create(people, batch_size=2000)
    ids = await Resident.all().order_by("id").values_list("id", flat=True)
    users = [*active_onboarded, *silent]
    await ChannelIdentity.bulk_create(
        [
            ChannelIdentity(resident_id=rid, channel="telegram", external_id=str(uid))
            for rid, uid in zip(ids, users, strict=True)
        ],
        batch_size=2000,
    )
    await Subscription.bulk_create(
        [
            Subscription(resident_id=rid, topic_id=topics[TOPICS[(i + k) % len(TOPICS)]])
            for i, rid in enumerate(ids[: len(active_onboarded)])
            for k in (0, 1)
        ],
        batch_size=2000,
    )


def write_config(path: Path, rate: float) -> Path:
    """The demo municipality (as with no file), pushes at ``rate`` a second, no quiet hours.

    A file without ``[municipality]`` has no neighbourhoods at all, so the demo's are
    written out: the residents pick them, and the polls' audience names them.
    """
    from bot.core.config import demo_municipality

    def table(names: Any) -> str:
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in names.items()) + " }"

    m = demo_municipality()
    lines = ["[municipality]", f"name = {json.dumps(m.name)}", f'timezone = "{m.timezone}"']
    for kind, items in (("neighbourhoods", m.neighbourhoods), ("topics", m.topics)):
        for item in items:
            lines += [
                f"[[municipality.{kind}]]",
                f'id = "{item.id}"',
                f"name = {table(item.names)}",
            ]
            if item.short:
                lines.append(f"short = {table(item.short)}")
    lines += [
        "[delivery]",
        f"telegram_per_second = {rate:g}",
        'quiet_start = "00:00"',
        'quiet_end = "00:00"',
        "[log]",
        'level = "INFO"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def transactions(database_name: str | None) -> int:
    """Transactions so far in our database (the statistics lag by up to a second)."""
    from tortoise import connections

    rows = await connections.get("default").execute_query_dict(
        "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1",
        [database_name],
    )
    return int(rows[0]["n"]) if rows else 0


async def outbox_states() -> Counter[str]:
    """Rows of the outbox per state, now: one GROUP BY."""
    from tortoise import connections

    rows = await connections.get("default").execute_query_dict(
        'SELECT "state", COUNT(*) AS n FROM "delivery" GROUP BY "state"'
    )
    return Counter({str(row["state"]): int(row["n"]) for row in rows})


# ============================================================================================
# The command line of the bot (polls, the announcement)
# ============================================================================================


def local(moment: datetime) -> str:
    """A moment as the CLI takes it: local time in the demo municipality's zone."""
    return moment.astimezone(ZoneInfo("Europe/Riga")).replace(tzinfo=None).isoformat("T", "seconds")


async def create_poll(config: Path, env: dict[str, str], question: str, opens: datetime) -> str:
    options = [arg for label in POLL_OPTIONS for arg in ("--option", label)]
    out = await cli(
        config,
        env,
        "poll",
        "create",
        "--question",
        question,
        *options,
        "--audience",
        "neighbourhood:" + ",".join(HOODS),
        "--opens",
        local(opens),
        "--closes",
        local(opens + timedelta(days=1)),
    )
    return out.split()[0] if out.split() else "?"


# ============================================================================================
# The run
# ============================================================================================


@dataclass
class Figures:
    """What the parent measured beside the driver's report."""

    backlog: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, q, s, sent
    standin_sent: list[tuple[float, int]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # name → CPU s over the steady part
    steady: tuple[float, float] = (0.0, 0.0)
    wall: float = 0.0
    other_load: float = math.nan
    transactions: int = 0  # committed and rolled back in our database, over the steady part
    # Sent by the profiled worker over the steady part (--profile): text → count.
    statements: Counter[str] = field(default_factory=Counter)
    profile: pstats.Stats | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


async def run(args: argparse.Namespace, workdir: Path) -> Figures:
    figures = Figures()
    bots: list[Bot] = []
    standin = StandIn(_standin_main)
    try:
        async with database("postgres", workdir) as (url, database_name):
            try:
                await _run(args, workdir, standin, bots, url, database_name, figures)
            finally:  # the workers stop before their database is dropped
                await asyncio.to_thread(stop_all, bots)
    except Exception as error:
        figures.problems.append(f"{type(error).__name__}: {error}")
        figures.notes += [bot.tail() for bot in bots]
    finally:
        stop_all(bots)
        standin.close()
    return figures


async def _run(
    args: argparse.Namespace,
    workdir: Path,
    standin: StandIn,
    bots: list[Bot],
    url: str,
    database_name: str | None,
    figures: Figures,
) -> None:
    new_count = args.residents // 3
    active = list(range(FIRST_ACTIVE, FIRST_ACTIVE + args.residents))
    new, onboarded = active[:new_count], active[new_count:]
    silent = list(range(FIRST_SILENT, FIRST_SILENT + args.audience))
    await prepare(onboarded, silent)
    await standin.ready()
    await standin.call("setup", active=active, silent=silent, rate=args.telegram_rate)

    config = await asyncio.to_thread(write_config, workdir / "load.toml", args.telegram_rate)
    ports = [free_port() for _ in range(args.workers)]
    env = {
        **os.environ,
        "IESAISTE_TELEGRAM_TOKEN": standin.token,
        "IESAISTE_TELEGRAM_API_URL": standin.url,
        "IESAISTE_DATABASE_URL": url,
        "IESAISTE_HTTP_HOST": "127.0.0.1",
        "IESAISTE_TELEGRAM_MODE": "webhook",
        # setWebhook needs a URL; the driver, not the stand-in, posts the updates.
        "IESAISTE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{ports[0]}/webhooks/telegram",
        "IESAISTE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.pop("IESAISTE_CONFIG", None)
    # Poll 1 opens at once: the workers' scheduler invites the onboarded residents.
    await create_poll(config, env, "Kur likt jaunos soliņus?", datetime.now(UTC))
    profile = Path(args.profile) if args.profile else None
    probe = str(ROOT / "bench" / "load_worker.py")
    for index, port in enumerate(ports):
        entry, bot_env = "", env
        if index == 0 and profile is not None:
            entry, bot_env = probe, {**env, "IESAISTE_BENCH_PROFILE": str(profile)}
        bots.append(start_bot(f"bot{index + 1}", config, bot_env, workdir, port, entry))
    deadline = time.monotonic() + 60
    while not all(healthy(bot.port) for bot in bots):
        if any(bot.process.poll() is not None for bot in bots) or time.monotonic() > deadline:
            raise RuntimeError("a worker did not start")
        await asyncio.sleep(0.2)
    started = time.monotonic()
    invited = await standin.call("invited", 200, user_ids=onboarded, limit=180.0)
    print(
        f"  poll 1 invited {invited} of {len(onboarded)} onboarded residents in "
        f"{time.monotonic() - started:.1f} s (before the clock starts)",
        flush=True,
    )
    if args.pushes:
        # Poll 2 opens during the run: its invitations go out while residents are answered.
        opens_after = 0.4 * args.seconds
        await create_poll(
            config,
            env,
            "Kuru ielu remontēt pirmo?",
            datetime.now(UTC) + timedelta(seconds=opens_after + 2),
        )

    urls = [f"http://127.0.0.1:{port}/webhooks/telegram" for port in ports]
    await standin.call(
        "start",
        urls=urls,
        new=new,
        onboarded=onboarded,
        seconds=args.seconds,
        concurrency=args.concurrency,
        route=args.route,
        timeout=args.timeout,
        rest=args.rest,
        seed=args.seed,
    )
    run_started = time.monotonic()
    steady_from = run_started + args.warmup
    steady_until = run_started + args.seconds
    figures.steady = (steady_from, steady_until)
    announce_at = run_started + 0.1 * args.seconds
    announce: asyncio.Task[str] | None = None
    cpu0: dict[str, float] = {}
    machine0 = (0, 0)
    transactions0 = 0
    pids = {bot.name: bot.process.pid for bot in bots}
    pids["stand-in+driver"] = standin.process.pid or 0

    def cpu_now() -> dict[str, float]:
        now = {name: process_cpu(pid) for name, pid in pids.items()}
        now["postgres"] = postgres_cpu(database_name)
        return now

    while time.monotonic() < steady_until + 1.0:
        now = time.monotonic()
        if not cpu0 and now >= steady_from:
            cpu0, machine0 = cpu_now(), machine_busy()
            transactions0 = await transactions(database_name)
            if profile is not None:
                bots[0].process.send_signal(signal.SIGUSR1)
        if announce is None and args.pushes and now >= announce_at:
            announce = asyncio.create_task(
                cli(config, env, "announce", "--text", ANNOUNCEMENT, "--audience", "all")
            )
        if cpu0 and "wall" not in cpu0 and now >= steady_until:
            cpu1, machine1 = cpu_now(), machine_busy()
            if profile is not None:
                bots[0].process.send_signal(signal.SIGUSR2)
            figures.cpu = {name: cpu1[name] - cpu0[name] for name in cpu1}
            figures.transactions = await transactions(database_name) - transactions0
            figures.wall = now - steady_from
            cpu0["wall"] = now
            if machine1[1] > machine0[1]:
                cores = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])
                cores *= os.cpu_count() or 1
                figures.other_load = max(0.0, cores - sum(figures.cpu.values()) / figures.wall)
        dead = [bot.name for bot in bots if bot.process.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited")
        states = await outbox_states()
        status = await standin.call("status")
        figures.backlog.append((now, states["queued"], states["sending"], states["sent"]))
        figures.standin_sent.append((now, status["sent"]))
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    figures.report = await standin.call("result", args.timeout + 60)
    if announce is not None:
        try:
            figures.notes.append("announce: " + (await announce).strip().replace("\n", "; "))
        except RuntimeError as error:
            figures.problems.append(str(error))
    # The outbox after the offered load: how long the pushes took to drain.
    drained_by = time.monotonic() + args.drain
    while time.monotonic() < drained_by:
        states = await outbox_states()
        now = time.monotonic()
        figures.backlog.append((now, states["queued"], states["sending"], states["sent"]))
        if not states["queued"] and not states["sending"]:
            break
        await asyncio.sleep(1.0)
    figures.notes.append(f"outbox at the end: {dict(await outbox_states())}")
    if profile is not None:
        await asyncio.sleep(1.0)  # the worker writes the file on SIGUSR2
        with contextlib.suppress(OSError, ValueError):
            counted = await asyncio.to_thread(Path(f"{profile}.statements").read_text)
            figures.statements = Counter(json.loads(counted))
        with contextlib.suppress(OSError):
            figures.profile = pstats.Stats(str(profile))
            figures.notes.append(f"profile of bot1 (steady part) written to {profile}")


# Where a function's own time is counted: the first of these found in its file name.
GROUPS = (
    ("/telegram/", "python-telegram-bot"),
    ("/httpx/", "httpx + httpcore + anyio (PTB's HTTP client)"),
    ("/httpcore/", "httpx + httpcore + anyio (PTB's HTTP client)"),
    ("/anyio/", "httpx + httpcore + anyio (PTB's HTTP client)"),
    ("/sniffio/", "httpx + httpcore + anyio (PTB's HTTP client)"),
    ("/h11/", "httpx + httpcore + anyio (PTB's HTTP client)"),
    ("/asyncpg/", "asyncpg"),
    ("/tortoise/", "Tortoise + pypika (building queries, models)"),
    ("/pypika_tortoise/", "Tortoise + pypika (building queries, models)"),
    ("/aiohttp/", "aiohttp (the webhook server; the push sender)"),
    ("/multidict/", "aiohttp (the webhook server; the push sender)"),
    ("/yarl/", "aiohttp (the webhook server; the push sender)"),
    ("/apscheduler/", "apscheduler"),
    ("/babel/", "Babel, gettext"),
    ("/gettext.py", "Babel, gettext"),
    ("/json/", "json"),
    ("/logging/", "logging"),
    ("/asyncio/", "asyncio (the event loop, tasks, streams)"),
    ("/selectors.py", "asyncio (the event loop, tasks, streams)"),
    ("/wt/load/handlers/", "ours: handlers"),
    ("/wt/load/dialogs/", "ours: dialogs"),
    ("/wt/load/storage/", "ours: storage"),
    ("/wt/load/bot/channels/", "ours: bot.channels"),
    ("/wt/load/bot/", "ours: bot (delivery, pacing, http, …)"),
)


IDLE = "waiting in epoll (the loop idle: not work)"


def group_of(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: name it by what it is
        if "poll" in function and "select" in function:
            return IDLE
        if "socket" in function:
            return "socket send/recv (system calls)"
        if "json" in function or "loads" in function or "dumps" in function:
            return "json"
        return "other built-ins (dict, isinstance, str, …)"
    for marker, group in GROUPS:
        if marker in filename:
            return group
    for ours in ("/handlers/", "/dialogs/", "/storage/", "/bot/"):  # another checkout
        if ours in filename and "site-packages" not in filename:
            return f"ours: {ours.strip('/')}"
    return "other (stdlib, …)"


def print_profile(stats: pstats.Stats, updates: int, statements: Counter[str]) -> None:
    """Own time grouped by package, then the top functions by own and cumulative time."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    groups: Counter[str] = Counter()
    for (filename, _line, function), (_cc, _nc, tt, _ct, _callers) in raw.items():
        groups[group_of(filename, function)] += tt
    idle = groups.pop(IDLE, 0.0)
    total = sum(groups.values()) or 1.0
    print(
        f"\n== bot1 under cProfile over the steady part: {total:.1f} s busy (and {idle:.1f} s "
        f"idle in epoll) for {updates} updates = {1000 * total / max(1, updates):.1f} ms an "
        "update (wall time while running, so time waiting for a CPU counts; the profiler's "
        "overhead and the pushes sent meanwhile included) =="
    )
    if statements:
        count = sum(statements.values())
        print(
            f"  statements to PostgreSQL: {count}, {count / max(1, updates):.1f} an update "
            "(the pushes' and the background loops' included); the most frequent, per update:"
        )
        for text, n in statements.most_common(25):
            print(f"  {n / max(1, updates):6.2f}  {text[:140]}")
    for group, seconds in groups.most_common():
        print(f"  {100 * seconds / total:5.1f} %  {group}")
    print("\n-- by own time --")
    stats.sort_stats("tottime").print_stats(20)
    print("-- by cumulative time (a coroutine counts once per resumption) --")
    stats.sort_stats("cumulative").print_stats(25)


# ============================================================================================
# Report
# ============================================================================================


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{1000 * value:.0f}"


def print_report(args: argparse.Namespace, figures: Figures) -> bool:
    report = figures.report
    if not report:
        print(f"FAILED: {'; '.join(figures.problems) or 'no report'}")
        for note in figures.notes:
            print(note)
        return False
    records: list[tuple[float, float, int, str, int]] = report["records"]
    start, end = figures.steady
    steady = [r for r in records if start <= r[0] < end]
    ok = [r for r in steady if r[2] == 200]
    latencies = [r[1] for r in ok]
    rate = len(ok) / (end - start) if end > start else math.nan
    statuses = Counter(r[2] for r in records if r[2] != 200)
    timeouts, no_connection = statuses.pop(TIMEOUT, 0), statuses.pop(NO_CONNECTION, 0)
    unexpected = sum(report["unexpected"].values())
    errors = (
        sum(statuses.values())
        + timeouts
        + no_connection
        + report["refused_count"]
        + report["apologies"]
        + report["throttled"]
        + unexpected
    )
    p99 = percentile(latencies, 0.99)
    print(
        f"\n== {args.workers} webhook worker(s), {args.concurrency} connections, route "
        f"{args.route}, {args.residents} residents (+{args.audience} silent), "
        f"telegram_per_second {args.telegram_rate:g}"
        + (", no pushes during the run" if not args.pushes else "")
        + " =="
    )
    print(
        f"  sustained rate   {rate:.1f} updates/s over the steady part "
        f"({end - start:.0f} s; {len(records)} updates in all, {len(ok)} in the steady part)"
    )
    print(
        f"  latency          p50 {ms(percentile(latencies, 0.5))} ms, p95 "
        f"{ms(percentile(latencies, 0.95))} ms, p99 {ms(p99)} ms, max "
        f"{ms(max(latencies, default=math.nan))} ms (POST to the webhook's 200)"
    )
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in ok:
        by_kind[r[3]].append(r[1])
    print(
        "  by kind          "
        + "; ".join(
            f"{kind} {len(v)}× p50 {ms(percentile(v, 0.5))} p99 {ms(percentile(v, 0.99))}"
            for kind, v in sorted(by_kind.items(), key=lambda kv: -len(kv[1]))
        )
    )
    shares = Counter(r[4] for r in steady)
    print("  per worker       " + ", ".join(f"bot{w + 1} {n}" for w, n in sorted(shares.items())))
    print(
        f"  errors           {errors}: non-200 {dict(statuses) or 0}, timeouts {timeouts}, "
        f"no connection {no_connection}, refused by the stand-in {report['refused_count']} "
        f"{report['refused'] or ''}, apologies {report['apologies']}, throttle notices "
        f"{report['throttled']}, unexpected answers {unexpected} {report['unexpected'] or ''}"
    )
    for sample in report["samples"][:4]:
        print(f"                   e.g. {sample}")
    print(
        f"  pushes           announcement sent {report['announced']} times (silent residents "
        f"reached {report['silent_reached']} of {args.audience}), poll invitations "
        f"{report['invited']} during the run; 429s {report['rate_limited']}"
    )
    print(f"  Bot API calls    {report['methods']}")
    if report["idle"] > 0.01 * args.concurrency * args.seconds:
        print(
            f"  !! connections stood idle {report['idle']:.0f} s of "
            f"{args.concurrency * args.seconds:.0f} for want of a rested resident: the rate is "
            "the residents', not the workers'; more --residents would offer more load"
        )
    wall = figures.wall or math.nan
    cpu = figures.cpu
    bots_cpu = sum(v for k, v in cpu.items() if k.startswith("bot"))
    print(
        "  CPU (steady)     "
        + ", ".join(f"{name} {seconds / wall:.2f} cores" for name, seconds in cpu.items())
        + f"; the workers {1000 * bots_cpu / max(1, len(ok)):.2f} ms an update; other load "
        f"on the machine {figures.other_load:.2f} cores"
    )
    if figures.transactions:
        print(
            f"  PostgreSQL       {figures.transactions} transactions over the steady part, "
            f"{figures.transactions / max(1, len(ok)):.1f} an update (pushes included)"
        )
    print_timeline(records, figures, report)
    print(
        "  aims             "
        f"rate ≥ {AIM_RATE:.0f}/s {'met' if rate >= AIM_RATE else 'NOT met'}, "
        f"p99 < {AIM_P99_MS:.0f} ms {'met' if p99 * 1000 < AIM_P99_MS else 'NOT met'}, "
        f"zero errors {'met' if errors == 0 else 'NOT met'}"
    )
    for problem in figures.problems:
        print(f"  !! {problem}")
    for note in figures.notes:
        print(f"  {note}")
    if figures.profile is not None:
        print_profile(figures.profile, shares.get(0, 0), figures.statements)
    return errors == 0 and not figures.problems


def print_timeline(
    records: list[tuple[float, float, int, str, int]], figures: Figures, report: dict[str, Any]
) -> None:
    """Every 2 s from the driver's start: answers, latency, the outbox, the stand-in's sends."""
    origin = report["started"]
    print("  timeline         t s | answered/s  p50 ms  p99 ms | outbox queued sending | sends/s")
    buckets: dict[int, list[float]] = defaultdict(list)
    for r in records:
        if r[2] == 200:
            buckets[int((r[0] + r[1] - origin) // 2)].append(r[1])
    backlog = {int((t - origin) // 2): (q, s) for t, q, s, _ in figures.backlog if t >= origin}
    sent = [(t, n) for t, n in figures.standin_sent if t >= origin]
    last = max([*buckets, *backlog], default=0)
    for index in range(last + 1):
        answered = buckets.get(index, [])
        queued, sending = backlog.get(index, (0, 0))
        window = [n for t, n in sent if index * 2 <= t - origin < index * 2 + 2]
        earlier = [n for t, n in sent if t - origin < index * 2]
        sends = (window[-1] - (earlier[-1] if earlier else window[0])) / 2 if window else 0
        print(
            f"                 {2 * index:4d} | {len(answered) / 2:10.0f} "
            f"{ms(percentile(answered, 0.5)):>7} {ms(percentile(answered, 0.99)):>7} | "
            f"{queued:13d} {sending:7d} | {sends:7.0f}"
        )


# ============================================================================================
# Main
# ============================================================================================


async def main_async(args: argparse.Namespace) -> bool:
    from bot.core import logs

    logs.configure("WARNING", [])
    task = asyncio.current_task()
    if task is not None:  # SIGTERM cancels like Ctrl-C: the finally blocks clean up
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    workdir = Path(tempfile.mkdtemp(prefix="iesaiste-load-"))
    try:
        figures = await run(args, workdir)
        return print_report(args, figures)
    finally:
        if args.logs:
            await asyncio.to_thread(keep_logs, workdir, Path(args.logs))
        shutil.rmtree(workdir, ignore_errors=True)


def keep_logs(workdir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, target / log.name)


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r}: must be positive")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=positive(float), default=60.0, help="offered load (60)")
    parser.add_argument(
        "--residents", type=positive(int), default=6000, help="active residents, a third new"
    )
    parser.add_argument(
        "--concurrency",
        type=positive(int),
        default=40,
        help="connections in all (40, Telegram's default for a webhook; at most 100)",
    )
    parser.add_argument("--workers", type=positive(int), default=2, help="webhook workers (2)")
    parser.add_argument(
        "--route",
        choices=("spread", "sticky"),
        default="spread",
        help="updates round-robin over the workers (spread) or a resident to one (sticky)",
    )
    parser.add_argument(
        "--audience", type=int, default=10000, help="silent residents who get the broadcast"
    )
    parser.add_argument(
        "--telegram-rate",
        type=positive(float),
        default=1000.0,
        help="telegram_per_second of the workers and the stand-in's flood limit (1000)",
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds before the steady part (5)"
    )
    parser.add_argument(
        "--rest", type=float, default=61.0, help="seconds a resident rests between sessions"
    )
    parser.add_argument(
        "--timeout", type=positive(float), default=30.0, help="a POST's timeout (30 s)"
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait for the outbox after (60)"
    )
    parser.add_argument(
        "--pushes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the announcement and poll 2 during the run (--no-pushes: answers alone)",
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--profile",
        default="",
        metavar="FILE",
        help="run worker 1 under cProfile over the steady part; statistics to FILE",
    )
    parser.add_argument("--logs", default="", metavar="DIR", help="keep the workers' logs in DIR")
    args = parser.parse_args(argv)
    if args.profile:
        args.profile = str(Path(args.profile).resolve())  # the worker runs elsewhere
    if args.warmup >= args.seconds:
        parser.error("--warmup must be shorter than --seconds")
    try:
        right = asyncio.run(main_async(args))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("load: interrupted; database, files and processes cleaned up", file=sys.stderr)
        return 130
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())
