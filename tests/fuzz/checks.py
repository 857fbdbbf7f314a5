"""The properties every fuzzed input is held to, and the tally the long run prints.

- ``LogWatch``: no ERROR record (a traceback, "Task exception was never retrieved", a
  refused answer) while the input is handled;
- ``row_counts``: the rows of every table, compared before and after an input that must
  write nothing (malformed, ignored, a replay);
- ``Untranslated``: no text shown to a Latvian or Russian resident is an English message id
  whose catalog translation differs;
- the apology of a crashed update, in any language, is a failure too.
"""

from __future__ import annotations

import gc
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

from babel.messages.pofile import read_po

from bot.core.i18n import catalog_path
from tests.phrases import failed_apologies

NEVER_RETRIEVED = "never retrieved"


class LogWatch(logging.Handler):
    """Keeps every ERROR (and worse) record of the bot while installed on the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> LogWatch:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)

    def mark(self) -> int:
        return len(self.records)

    def since(self, mark: int, *, collect: bool = False) -> list[str]:
        """The ERROR lines since ``mark``; ``collect`` first lets the garbage collector find
        a task whose exception nobody retrieved (asyncio logs it only then)."""
        if collect:
            gc.collect()
        found = []
        for record in self.records[mark:]:
            line = f"{record.name} {record.levelname}: {record.getMessage()[:300]}"
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                line += f" [traceback: {type(error).__name__}: {str(error)[:200]}]"
            found.append(line)
        return found


async def row_counts() -> dict[str, int]:
    """Rows per table of the bot's schema, in one query."""
    from tortoise import Tortoise, connections

    tables = sorted(model._meta.db_table for model in Tortoise.apps["models"].values())
    select = ", ".join(f'(SELECT count(*) FROM "{table}") AS "{table}"' for table in tables)
    rows = await connections.get("default").execute_query_dict(f"SELECT {select}")
    return {table: int(count) for table, count in rows[0].items()}


def row_changes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}


# --- translations --------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
LONG = 25  # literal characters from which an English message id is looked for anywhere


@dataclass(frozen=True)
class _Pattern:
    msgid: str
    regex: re.Pattern[str]
    anywhere: bool  # long enough to look for inside a text, not only as a whole line


def _pattern(msgid: str) -> _Pattern | None:
    literal = PLACEHOLDER.sub("", msgid)
    if sum(ch.isalpha() for ch in literal) < 4 or not re.search(r"[A-Za-z]{3}", literal):
        return None  # "{name}", "OK", an emoji: nothing that shows English
    parts = [re.escape(part) for part in PLACEHOLDER.split(msgid)]
    regex = re.compile(".+?".join(parts), re.DOTALL)
    return _Pattern(msgid, regex, len(literal.strip()) >= LONG)


@cache
def english_only(language: str) -> tuple[_Pattern, ...]:
    """The English message ids whose translation into ``language`` differs from them."""
    with catalog_path(language).open("rb") as file:
        catalog = read_po(file, locale=language)
    patterns = []
    for message in catalog:
        if not message.id:
            continue
        ids = (message.id,) if isinstance(message.id, str) else tuple(message.id)
        strings = (
            (message.string,) if isinstance(message.string, str) else tuple(message.string or ())
        )
        for index, msgid in enumerate(ids):
            translated = strings[min(index, len(strings) - 1)] if strings else ""
            if translated and translated != msgid:
                pattern = _pattern(str(msgid))
                if pattern is not None:
                    patterns.append(pattern)
    return tuple(patterns)


@cache
def _any_of(language: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """All the patterns as one, to match every segment once: (whole segments, anywhere)."""
    patterns = english_only(language)
    whole = "|".join(f"(?:{p.regex.pattern})" for p in patterns)
    anywhere = "|".join(f"(?:{p.regex.pattern})" for p in patterns if p.anywhere)
    return re.compile(whole, re.DOTALL), re.compile(anywhere, re.DOTALL)


def untranslated(language: str, shown: list[str], sent: set[str]) -> list[str]:
    """The English message ids among what a resident of ``language`` was shown (texts and
    button labels). Whatever the resident sent is taken out first: the bot may quote it."""
    if language not in ("lv", "ru"):
        return []
    found = []
    for text in shown:
        for quoted in sorted(sent, key=len, reverse=True):
            if len(quoted) >= 3:
                text = text.replace(quoted, "\x00")
        segments = {text, *text.split("\n\n"), *text.split("\n")}
        segments = {s.strip() for s in segments if s.strip() and s.strip() not in sent}
        whole, anywhere = _any_of(language)
        if not any(whole.fullmatch(s) for s in segments) and not anywhere.search(text):
            continue  # the usual case, found in one pass; which message it was, below
        for pattern in english_only(language):
            if any(pattern.regex.fullmatch(s) for s in segments) or (
                pattern.anywhere and pattern.regex.search(text)
            ):
                found.append(f"English {pattern.msgid[:60]!r} shown in {language}: {text[:120]!r}")
    return found


def apologies(shown: list[str]) -> list[str]:
    failed = failed_apologies()
    return [f"the crash apology: {text[:80]!r}" for text in shown if any(f in text for f in failed)]


# --- the tally -----------------------------------------------------------------------------
WELL_FORMED = "well-formed"
IGNORED = "ignored"  # delivered by the platform, not taken by the bot: nothing written
REPLAY = "replay"  # a repeat of an earlier input: nothing written, nothing answered
MALFORMED = "malformed"
WRITES_NOTHING = frozenset({IGNORED, REPLAY, MALFORMED})


@dataclass
class Tally:
    """What one entry point was sent and how it answered."""

    name: str
    inputs: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    answers: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    conversations: int = 0
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def record(self, kind: str, status: str, answers: int) -> None:
        self.inputs += 1
        self.kinds[kind] += 1
        self.statuses[status] += 1
        self.answers += answers

    def finish(self) -> None:
        self.seconds = time.monotonic() - self.started

    def lines(self) -> list[str]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items()))
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        lines = [
            f"{self.name}: {self.inputs} inputs in {self.conversations} conversations "
            f"({kinds}); {self.answers} answers; statuses {statuses}; "
            f"{len(self.failures)} failures; {self.seconds:.1f} s",
        ]
        lines += [f"  failure: {failure}" for failure in self.failures[:20]]
        return lines
