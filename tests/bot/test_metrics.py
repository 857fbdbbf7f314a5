"""GET /metrics: the figures move with what the bot does, on a port of its own only.

The metric objects are per process (``bot.core.metrics``), so each test reads
/metrics before and after what it does and compares.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Runtime
from bot.core import metrics
from storage import deliveries
from storage.models import Resident
from tests.bot.channels.telegram_helpers import WEBHOOK_SECRET, Chat, eventually, telegram_env
from tests.bot.test_announcements import config_without_quiet_hours, onboarded
from tests.conftest import RuntimeFactory, _admin, free_port
from tests.phrases import HELP_FIRST_LINE
from tests.standins.telegram_api import BotApiStandIn

Figures = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(runtime: Runtime) -> Figures:
    """/metrics over HTTP, parsed as Prometheus would: (sample name, labels) → value."""
    url = f"http://127.0.0.1:{runtime.config.metrics_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(figures: Figures, name: str, **labels: str) -> float:
    """A sample's value; 0 for one not shown yet (a counter is shown once it moved)."""
    return figures.get((name, frozenset(labels.items())), 0.0)


def moved(before: Figures, after: Figures, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def metrics_env(**extra: str) -> dict[str, str]:
    return {"IESAISTE_METRICS_PORT": str(free_port()), **extra}


def listening_ports() -> set[int]:
    """The TCP ports this very process listens on (Linux: its socket inodes, looked up in
    /proc/net/tcp*), whatever other processes on the machine do."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if found := re.fullmatch(r"socket:\[(\d+)\]", link):
            inodes.add(found[1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_with_no_metrics_port_the_bot_listens_on_its_public_port_alone(
    start_bot: RuntimeFactory,
) -> None:
    before = listening_ports()
    runtime = await start_bot()
    assert runtime.config.metrics_port == 0
    assert listening_ports() - before == {runtime.config.http_port}
    await runtime.stop()

    runtime = await start_bot(**metrics_env())
    assert listening_ports() - before == {runtime.config.http_port, runtime.config.metrics_port}
    await runtime.stop()
    assert listening_ports() - before == set(), "both servers are stopped"


async def test_the_public_port_does_not_serve_metrics_and_webhook_refusals_are_counted(
    start_bot: RuntimeFactory,
) -> None:
    async with BotApiStandIn() as api:
        port = free_port()
        runtime = await start_bot(
            **telegram_env(
                api,
                IESAISTE_TELEGRAM_MODE="webhook",
                IESAISTE_TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/webhooks/telegram",
                IESAISTE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                IESAISTE_HTTP_PORT=str(port),
            ),
            **metrics_env(),
        )
        before = await scrape(runtime)
        public = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{public}/metrics") as response:
                assert response.status == 404
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret"}
            for _ in range(2):
                async with http.post(f"{public}/webhooks/telegram", json={}, headers=wrong) as r:
                    assert r.status == 403
            async with http.post(f"{public}/webhooks/nothing-of-ours", json={}) as response:
                assert response.status == 404
        after = await scrape(runtime)
        counted = "iesaiste_webhook_responses_total"
        assert moved(before, after, counted, channel="telegram", status="403") == 2
        assert not [
            labels
            for name, labels in after
            if name == counted and ("channel", "nothing-of-ours") in labels
        ], "a made-up path adds no label"
        await runtime.stop()


async def test_updates_answers_429s_pushes_and_firings_are_counted(
    start_bot: RuntimeFactory, tmp_path: Path
) -> None:
    async with BotApiStandIn() as api:
        api.add_user(1001, "Anna", language_code="en")
        runtime = await start_bot(
            config_without_quiet_hours(tmp_path), **telegram_env(api), **metrics_env()
        )
        await onboarded("1001", "en", "centrs")
        anna = Chat(api, 1001)
        before = await scrape(runtime)

        for _ in range(3):
            (answer,) = await anna.send("/help")
            assert answer.text.startswith(HELP_FIRST_LINE.partition("{")[0])
        api.fail_next("sendMessage", 429, retry_after=1, chat_id=1001)
        await anna.send("/help")  # answered once the second has passed

        await deliveries.create_announcement(
            author="test",
            texts={"lv": "Sveiki", "en": "Hello, neighbours"},
            audience={"kind": "all"},
            send_at=datetime.now(UTC),
        )
        await api.wait_until(lambda: anna.messages[-1].text == "Hello, neighbours", timeout=15)

        async def push_counted() -> bool:  # counted as the worker reports it, a moment later
            figures = await scrape(runtime)
            return (
                moved(before, figures, "iesaiste_pushes_total", channel="telegram", state="sent")
                == 1
            )

        await eventually(push_counted, what="the announcement counted as sent")
        after = await scrape(runtime)

        telegram = {"channel": "telegram"}
        assert moved(before, after, "iesaiste_updates_total", **telegram) == 4
        assert moved(before, after, "iesaiste_updates_failed_total", **telegram) == 0
        assert moved(before, after, "iesaiste_answer_seconds_count", **telegram) == 4
        assert moved(before, after, "iesaiste_answer_seconds_bucket", le="10.0", **telegram) == 4
        assert moved(before, after, "iesaiste_answer_seconds_sum", **telegram) > 0
        answers = {"channel": "telegram", "traffic": "answer"}
        assert moved(before, after, "iesaiste_rate_limited_total", **answers) == 1
        assert moved(before, after, "iesaiste_retry_after_seconds_total", **answers) == 1.0
        release = {"job": "release-due-announcements"}
        assert moved(before, after, "iesaiste_scheduler_runs_total", **release) >= 1
        assert moved(before, after, "iesaiste_scheduler_failures_total", **release) == 0
        await runtime.stop()


async def test_the_outbox_gauges_show_what_waits_and_how_late_it_is(
    start_bot: RuntimeFactory,
) -> None:
    # Messenger is not served here: its rows stay queued, as if its delivery were paused.
    runtime = await start_bot(**metrics_env())
    resident = await Resident.create()
    now = datetime.now(UTC)
    for key, due in (("late", now - timedelta(minutes=10)), ("tomorrow", now + timedelta(hours=8))):
        push = deliveries.Push(source_kind="test", source_id=1, dedupe_key=key, template="x")
        assert await deliveries.queue(push, [(resident.id, "messenger", "m-1")], due) == 1

    figures = await scrape(runtime)
    assert value(figures, "iesaiste_outbox_queued", channel="messenger") == 2
    # The row due ten minutes ago is the late one; the one held until tomorrow is not late.
    late = value(figures, "iesaiste_outbox_oldest_due_age_seconds", channel="messenger")
    assert 600 <= late < 3600
    # A channel this worker serves shows 0 when nothing of it waits.
    assert value(figures, "iesaiste_outbox_queued", channel="webchat") == 0
    assert ("iesaiste_outbox_queued", frozenset({("channel", "webchat")})) in figures
    await runtime.stop()


# An embedded SQLite file cannot become unreachable; a PostgreSQL server can.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_during_a_database_outage_a_scrape_answers_without_the_outbox_gauges(
    start_bot: RuntimeFactory, database_url: str
) -> None:
    async with BotApiStandIn() as api:
        api.add_user(1001, "Anna", language_code="en")
        runtime = await start_bot(**telegram_env(api), **metrics_env())
        await onboarded("1001", "en", "centrs")
        before = await scrape(runtime)
        assert ("iesaiste_outbox_queued", frozenset({("channel", "telegram")})) in before
        name = database_url.rsplit("/", 1)[1]
        await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            await _admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            await Chat(api, 1001, may_fail=True).send("/help")  # the apology
            during = await scrape(runtime)
        finally:
            await _admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert not [key for key in during if key[0].startswith("iesaiste_outbox_queued")]
        assert moved(before, during, "iesaiste_outbox_scrape_failures_total") == 1
        # The update is kept and fetched again every few seconds while the database is
        # away, so it may have been counted more than once by the time of the scrape.
        assert moved(before, during, "iesaiste_updates_failed_total", channel="telegram") >= 1
        assert moved(before, during, "iesaiste_updates_total", channel="telegram") >= 1
        # The update met the outage (and, mostly, so did the look-up of its apology's language).
        assert moved(before, during, "iesaiste_database_errors_total", where="dispatcher") >= 1

        after = await scrape(runtime)  # the database is back: so are the gauges
        assert ("iesaiste_outbox_queued", frozenset({("channel", "telegram")})) in after
        await runtime.stop()


def test_the_readme_lists_every_metric() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    section = readme.partition("## Metrics and alerts")[2].partition("\n## ")[0]
    shown = metrics.registry(metrics.Outbox(("webchat",), found=[])).collect()
    names = [
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in shown
        if family.name.startswith("iesaiste_")
    ]
    assert len(names) == len(metrics.ALL) + 2  # and the two outbox gauges
    assert [name for name in names if f"`{name}" not in section] == []
