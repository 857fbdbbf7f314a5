"""Logging set-up: plain lines, never a secret in them, and no platform id in clear.

A log outlives the data: a resident who asked to be forgotten must not stay in
it by their platform id. Every log line names an account by ``who(channel,
user_id)``, a short keyed hash, so lines about one resident can still be
followed. The key is the deployment's (kept in the database, like the web-chat
cookie secret, so every worker tags a resident alike); without the key the
tag cannot be turned back into an id by trying them all, so a log shipped
elsewhere gives nobody the ids (whoever holds the database holds the key).

Texts we do not write (an exception's, a library's) may name an account too:
while an update or a push is handled (``about``), its account's id is replaced
by its tag in every line the handler writes out.

Lines are text for a person (``log.format = "text"``) or one JSON object each for a
log store (``"json"``), which also carries the channel and the platform event being
handled, so the lines of one update can be found together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from secrets import token_bytes

# Set once at start from the database (bot.app): process-wide, as logging itself is,
# and the same in every worker. Until then, and in a process that never opens the
# database, a key of its own: tags then differ between processes, ids never show.
_tag_key = token_bytes(32)
_about: ContextVar[tuple[str, str] | None] = ContextVar("logged_account", default=None)
# The platform's id of the event being handled (an update id, a message id): never personal.
_event: ContextVar[str | None] = ContextVar("logged_event", default=None)


def use_tag_key(key: str) -> None:
    """Tag accounts with the deployment's key from now on."""
    global _tag_key
    _tag_key = key.encode()


def who(channel: str, user_id: str | int) -> str:
    """An account as a log line names it: ``telegram:3f9a1c2b``, never the id itself."""
    digest = hmac.new(_tag_key, f"{channel}:{user_id}".encode(), hashlib.sha256)
    return f"{channel}:{digest.hexdigest()[:8]}"


@contextmanager
def about(channel: str, user_id: str | int, event_id: str | None = None) -> Iterator[None]:
    """Lines logged inside are about this account (and this event, if given): its id shows
    as its tag, whoever wrote them, and JSON lines name the channel and the event."""
    token = _about.set((channel, str(user_id)))
    event = _event.set(event_id) if event_id else None
    try:
        yield
    finally:
        if event is not None:
            _event.reset(event)
        _about.reset(token)


class RedactSecrets(logging.Filter):
    """Replace each secret (the bot token, say) wherever it appears in a record,
    and the id of the account being handled (``about``) by its tag."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [(re.compile(re.escape(s)), "[redacted]") for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        swaps = list(self.secrets)
        account = _about.get()
        if account is not None:
            record.channel = account[0]
            if (event := _event.get()) is not None:
                record.event = event
        if account is not None and account[1]:
            # Whole ids only: the account 42 must not turn "line 420" into a tag.
            pattern = re.compile(rf"(?<![\w-]){re.escape(account[1])}(?![\w-])")
            swaps.append((pattern, who(*account)))
        if not swaps:
            return True
        if isinstance(event := getattr(record, "event", None), str):
            record.event = _swap(event, swaps)  # a web-chat event id is the browser's choice
        message = record.getMessage()
        redacted = _swap(message, swaps)
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts (an httpx error with a URL, a database error) may hold them too.
            text = logging.Formatter().formatException(record.exc_info)
            if (swapped := _swap(text, swaps)) != text:
                record.exc_info, record.exc_text = None, swapped
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _swap(text: str, swaps: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in swaps:
        text = pattern.sub(replacement, text)
    return text


class JsonLines(logging.Formatter):
    """One JSON object a line, for a log store: what a text line says, in named fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in ("event", "channel"):
            if isinstance(value := getattr(record, field, None), str | int):
                line[field] = str(value)
        if record.exc_text:  # RedactSecrets put the redacted text there
            line["exception"] = record.exc_text
        elif record.exc_info and record.exc_info[1] is not None:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, secrets: Iterable[str], log_format: str = "text") -> None:
    """The root handler on stderr: lines redacted first, then written as ``log_format`` says."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries(level)


def quiet_libraries(level: str) -> None:
    """Libraries whose chatty lines would print a secret or personal data stay above them."""
    for noisy, floor in (
        # httpx logs every request URL, and Telegram's URLs contain the token.
        ("httpx", logging.WARNING),
        ("httpcore", logging.WARNING),
        ("telegram.ext.Updater", logging.WARNING),
        # PTB's debug lines dump whole updates and API calls: residents' ids, names, texts.
        ("telegram", logging.INFO),
        ("apscheduler", logging.WARNING),
        # The database drivers' debug lines print every query with its values.
        ("tortoise", logging.WARNING),
        ("aiosqlite", logging.WARNING),
        ("asyncpg", logging.WARNING),
        # While the server is away, the pool warns with a traceback at every reconnect;
        # the bot says it once in its own words (storage.errors.unavailable).
        ("asyncpg.pool", logging.ERROR),
    ):
        logging.getLogger(noisy).setLevel(max(floor, logging.getLevelName(level)))
