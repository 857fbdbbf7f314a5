"""What the benchmarks read from /proc: peak memory, CPU of a process, of PostgreSQL's
backends for one database, and of the whole machine. Linux only; 0 where absent."""

from __future__ import annotations

import os
from pathlib import Path


def status_kb(pid: int, key: str) -> int:
    """A ``VmHWM``-style line of /proc/<pid>/status in kB; 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a live process; 0.0 when gone."""
    try:
        values = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(values[11]) + int(values[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu(database_name: str | None) -> float:
    """CPU seconds so far of the PostgreSQL backends connected to ``database_name``.

    A backend's process title names its database ("postgres: postgres iesaiste_bench_… ");
    the bot's pool keeps its connections for the whole run, so the difference of two
    readings is what serving the run cost the server (its background writers aside).
    """
    if not database_name:
        return 0.0
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if database_name.encode() not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        total += process_cpu(int(entry.name))
    return total


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat; (0, 0) where absent."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)
