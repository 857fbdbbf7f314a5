"""What an operator watches, in Prometheus' terms: the metric objects (issue 16).

The objects live here, at module level, as prometheus_client means them to, so
every part records with one line (``UPDATES_FAILED.labels(channel).inc()``)
without being handed anything. They are registered in no registry of their
own: each runtime's /metrics server makes a fresh ``CollectorRegistry`` with
``registry()``, so two runtimes in one process (the tests) never register a
name twice and nothing lands in the client's global default registry. The
figures are per process, like any Prometheus client's; a test compares them
before and after what it does.

Labels take few values (a channel, a push's state, a job's id, a place in the
code): never a resident's id, a text or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# A chat bot's answer: a few milliseconds from memory, tens with the database,
# seconds when a photo is fetched or the database is slow; past 10 s it has failed.
ANSWER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

UPDATES = Counter(
    "iesaiste_updates",
    "Updates the dispatcher handled (answered, duplicates too), by channel.",
    ["channel"],
    registry=None,
)
UPDATES_FAILED = Counter(
    "iesaiste_updates_failed",
    "Updates that failed into the apology ('something went wrong'), by channel.",
    ["channel"],
    registry=None,
)
ANSWER_SECONDS = Histogram(
    "iesaiste_answer_seconds",
    "Seconds from an update reaching the dispatcher to its outcome, by channel.",
    ["channel"],
    buckets=ANSWER_BUCKETS,
    registry=None,
)
PUSHES = Counter(
    "iesaiste_pushes",
    "Outbox rows the delivery worker handled, by channel and what became of them "
    "(sent, unchanged, unreachable, rate_limited, postponed, waiting, retried, failed, "
    "cancelled, edit_refused, quiet_hours).",
    ["channel", "state"],
    registry=None,
)
RATE_LIMITED = Counter(
    "iesaiste_rate_limited",
    "429s (retry after) a platform answered, by channel and traffic (push or answer).",
    ["channel", "traffic"],
    registry=None,
)
RETRY_AFTER_SECONDS = Counter(
    "iesaiste_retry_after_seconds",
    "Seconds of retry_after the platforms asked us to wait, by channel and traffic.",
    ["channel", "traffic"],
    registry=None,
)
JOB_RUNS = Counter(
    "iesaiste_scheduler_runs",
    "Scheduler firings that ended (well or not), by job id.",
    ["job"],
    registry=None,
)
JOB_FAILURES = Counter(
    "iesaiste_scheduler_failures",
    "Scheduler firings that ended in an exception, by job id.",
    ["job"],
    registry=None,
)
DATABASE_ERRORS = Counter(
    "iesaiste_database_errors",
    "Database errors caught and survived, by where they were caught.",
    ["where"],
    registry=None,
)
WEBHOOK_RESPONSES = Counter(
    "iesaiste_webhook_responses",
    "Answers to a platform's webhook requests, by channel and HTTP status.",
    ["channel", "status"],
    registry=None,
)
OUTBOX_SCRAPE_FAILURES = Counter(
    "iesaiste_outbox_scrape_failures",
    "Scrapes whose outbox query failed or ran out of time (the outbox gauges are then absent).",
    registry=None,
)

ALL: tuple[Collector, ...] = (
    UPDATES,
    UPDATES_FAILED,
    ANSWER_SECONDS,
    PUSHES,
    RATE_LIMITED,
    RETRY_AFTER_SECONDS,
    JOB_RUNS,
    JOB_FAILURES,
    DATABASE_ERRORS,
    WEBHOOK_RESPONSES,
    OUTBOX_SCRAPE_FAILURES,
)


@contextmanager
def answering(channel: str) -> Iterator[None]:
    """Around one update in the dispatcher: counts it and times it to its outcome."""
    started = time.perf_counter()
    try:
        yield
    finally:
        UPDATES.labels(channel).inc()
        ANSWER_SECONDS.labels(channel).observe(time.perf_counter() - started)


def rate_limited(channel: str, traffic: str, retry_after: float) -> None:
    """A platform said 429: once more, and ``retry_after`` seconds more of waiting."""
    RATE_LIMITED.labels(channel, traffic).inc()
    RETRY_AFTER_SECONDS.labels(channel, traffic).inc(max(0.0, retry_after))


def job_ended(job: str, exception: object) -> None:
    """A scheduler firing ended (APScheduler's executed or error event)."""
    JOB_RUNS.labels(job).inc()
    if exception is not None:
        JOB_FAILURES.labels(job).inc()


@dataclass(frozen=True, slots=True)
class Queued:
    """One channel's queued outbox rows: how many, and when the earliest became due."""

    channel: str
    rows: int
    earliest_due: datetime


@dataclass(slots=True, eq=False)  # a registry keeps its collectors by identity
class Outbox(Collector):
    """The outbox gauges, as the last scrape's query found them (``None``: it failed).

    Read at scrape time, never counted push by push: one aggregate query per
    scrape costs less than a write per push, and is right across workers.
    ``channels`` (those this runtime serves) show 0 when nothing is queued.
    """

    channels: Sequence[str] = ()
    found: list[Queued] | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def collect(self) -> Iterable[Metric]:
        if self.found is None:
            return []
        depth = GaugeMetricFamily(
            "iesaiste_outbox_queued",
            "Outbox rows queued (due or held for later, e.g. quiet hours), by channel.",
            labels=["channel"],
        )
        age = GaugeMetricFamily(
            "iesaiste_outbox_oldest_due_age_seconds",
            "Seconds the oldest due queued row has waited since it became due, by channel "
            "(0 when none is due: rows held for quiet hours are not late).",
            labels=["channel"],
        )
        by_channel = {queued.channel: queued for queued in self.found}
        for channel in sorted({*self.channels, *by_channel}):
            queued = by_channel.get(channel)
            depth.add_metric([channel], queued.rows if queued else 0)
            late = (self.at - queued.earliest_due).total_seconds() if queued else 0.0
            age.add_metric([channel], max(0.0, late))
        return [depth, age]


def registry(*extra: Collector) -> CollectorRegistry:
    """A runtime's own registry: every metric above, the process' own figures (memory,
    CPU, open files) and ``extra`` (the outbox gauges)."""
    made = CollectorRegistry(auto_describe=False)
    for collector in (*ALL, *extra):
        made.register(collector)
    ProcessCollector(registry=made)
    return made
