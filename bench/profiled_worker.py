"""A bot worker under cProfile, for ``bench/load.py --profile``: ``python THIS --config … run``.

The profiler is off at start, so start-up and migrations do not dilute the figures: SIGUSR1
turns it on (the bench sends it when its steady part begins), SIGUSR2 turns it off and writes
the statistics to the file named by ``IESAISTE_BENCH_PROFILE``. cProfile sees only the main
thread, which is where the event loop, and so all of the bot's own work, runs.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROFILE = cProfile.Profile()


def _on(signum: int, frame: FrameType | None) -> None:
    PROFILE.enable()


def _off(signum: int, frame: FrameType | None) -> None:
    PROFILE.disable()
    PROFILE.dump_stats(os.environ["IESAISTE_BENCH_PROFILE"])


def main() -> int:
    from bot.cli import main as bot_main

    signal.signal(signal.SIGUSR1, _on)
    signal.signal(signal.SIGUSR2, _off)
    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
