"""A bot worker as ``bench/load.py`` runs it with ``--profile`` or ``--experiment``:
``python THIS --config … run``, otherwise exactly ``iesaiste run``.

* ``IESAISTE_BENCH_PROFILE=FILE``: cProfile, off at start so that start-up does not dilute
  the figures. SIGUSR1 (sent when the steady part begins) turns it on, SIGUSR2 turns it off
  and writes the statistics to FILE, and to FILE.statements the statements sent to
  PostgreSQL meanwhile, by text (cProfile counts each resumption of a coroutine as a call,
  so its call counts cannot say how many round trips there were). cProfile sees only the
  main thread, which is where the event loop, and so all of the bot's own work, runs.
* ``IESAISTE_BENCH_EXPERIMENTS=NAME[,NAME…]``: a change patched in at run time, to measure
  what it would gain before anyone writes it properly (nothing here is a fix):
  - ``no-reset``: asyncpg's pool sends no reset query (``SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL;``) when a connection goes back to the pool. The bot
    takes no session-level advisory lock, LISTENs to nothing and SETs nothing per session,
    so the query resets nothing; an open transaction is still ended by asyncpg.
  - ``raw-answers``: the answers (sendMessage, editMessageText) and answerCallbackQuery go
    through the channel's own aiohttp sender (``bot.channels.telegram_push.PushSender``,
    which the pushes use) instead of python-telegram-bot's ``Bot`` over httpx, so no
    ``Message`` is built from each result. Telegram's errors then surface as the push
    sender's exceptions, not PTB's: fine for a run with no errors, not a fix as it is.
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

EXPERIMENTS = ("no-reset", "raw-answers")
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


def _no_reset() -> None:
    from asyncpg import connection

    connection.Connection.get_reset_query = lambda self: ""  # type: ignore[method-assign]


def _raw_answers() -> None:
    from telegram import CallbackQuery, InlineKeyboardMarkup

    from bot.channels import telegram as channel
    from bot.channels.telegram_push import PushSender

    cls = channel.TelegramChannel
    send_one, start = cls._send_one, cls.start
    senders: list[PushSender] = []

    def markup_of(markup: Any) -> dict[str, Any] | None:
        return markup.to_dict() if markup is not None else None

    async def raw_send_one(self: Any, chat_id: int, message: Any) -> None:
        if message.image:
            await send_one(self, chat_id, message)
        elif message.text:
            markup = markup_of(channel.keyboard(message))
            await self._push.send(str(chat_id), message.text, markup=markup)

    async def raw_edit(self: Any, chat_id: int, message_id: int, reply: Any, markup: Any) -> bool:
        if channel.utf16_length(reply.text) > channel.LIMITS.text_length or not isinstance(
            markup, InlineKeyboardMarkup | None
        ):
            return False
        return bool(
            await self._push.edit(str(chat_id), str(message_id), reply.text, markup_of(markup))
        )

    async def raw_start(self: Any) -> None:
        await start(self)
        senders.append(self._push)

    async def raw_answer(self: Any, *args: Any, **kwargs: Any) -> bool:
        await senders[-1]._call("answerCallbackQuery", {"callback_query_id": self.id})
        return True

    cls._send_one = raw_send_one  # type: ignore[method-assign]
    cls._edit = raw_edit  # type: ignore[method-assign]
    cls.start = raw_start  # type: ignore[method-assign]
    CallbackQuery.answer = raw_answer  # type: ignore[method-assign]


def main() -> int:
    from bot.cli import main as bot_main

    wanted = [name for name in os.environ.get("IESAISTE_BENCH_EXPERIMENTS", "").split(",") if name]
    unknown = sorted(set(wanted) - set(EXPERIMENTS))
    if unknown:
        print(f"load_worker: unknown experiments {unknown}; known: {EXPERIMENTS}", file=sys.stderr)
        return 2
    if "no-reset" in wanted:
        _no_reset()
    if "raw-answers" in wanted:
        _raw_answers()
    if os.environ.get("IESAISTE_BENCH_PROFILE"):
        _count_statements()
        signal.signal(signal.SIGUSR1, _on)
        signal.signal(signal.SIGUSR2, _off)
    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
