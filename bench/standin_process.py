"""The Bot API stand-in in a process of its own, driven over a pipe: shared by the benchmarks.

The stand-in is strict and parses every request; in the bot's process its CPU would count
against the bot, so it runs in a child (``multiprocessing``, spawn) with its own event loop.
Every message on the pipe is ``(sequence number, …)``: an answer names the request it
answers. Each benchmark supplies the child's entry point (a module-level function, so spawn
can find it) and the commands it understands; this module holds the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serve_commands(conn: Connection, api: Any, handle: Handler) -> None:
    """In the child: say where the stand-in listens, then answer the parent's commands
    until "stop" or until the parent is gone."""
    loop = asyncio.get_running_loop()
    conn.send((0, "ok", {"url": api.url, "token": api.token}))
    while True:
        try:
            seq, command, args = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):  # the parent is gone
            return
        if command == "stop":
            conn.send((seq, "ok", None))
            return
        try:
            result = await handle(command, args)
        except Exception as error:  # report it to the parent instead of dying silently
            conn.send((seq, "error", f"{type(error).__name__}: {error}"))
        else:
            conn.send((seq, "ok", result))


class StandIn:
    """The parent's handle on the stand-in process."""

    def __init__(self, target: Callable[[Connection], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self.process = context.Process(
            target=target, args=(child,), name="bot-api-stand-in", daemon=True
        )
        self.process.start()
        child.close()
        self.url = self.token = ""
        self._seq = 0
        # A reader abandoned by a cancelled call may still be waiting on the pipe; one reader
        # at a time, and an answer read for another request is kept for it.
        self._read_lock = threading.Lock()
        self._stash: dict[int, tuple[str, Any]] = {}

    def _receive(self, seq: int, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        if not self._read_lock.acquire(timeout=timeout):
            raise TimeoutError(f"the stand-in did not answer within {timeout:.0f} s")
        try:
            while seq not in self._stash:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._conn.poll(remaining):
                    raise TimeoutError(f"the stand-in did not answer within {timeout:.0f} s")
                got, status, value = self._conn.recv()
                self._stash[got] = (status, value)
            status, value = self._stash.pop(seq)
        finally:
            self._read_lock.release()
        if status == "error":
            raise RuntimeError(f"stand-in: {value}")
        return value

    async def ready(self) -> None:
        info = await asyncio.to_thread(self._receive, 0, 30.0)
        self.url, self.token = info["url"], info["token"]

    async def call(self, command: str, wait: float = 60.0, **args: Any) -> Any:
        """Run ``command`` in the stand-in's process; ``wait`` bounds the answer's arrival."""
        self._seq += 1
        self._conn.send((self._seq, command, args))
        return await asyncio.to_thread(self._receive, self._seq, wait)

    def close(self) -> None:
        """Stop the child; bounded: ask, then terminate, then kill."""
        with contextlib.suppress(Exception):
            if self.process.is_alive():
                self._seq += 1
                self._conn.send((self._seq, "stop", {}))
                self._receive(self._seq, 5.0)
        self.process.join(5.0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self._conn.close()
