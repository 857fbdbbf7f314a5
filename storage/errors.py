"""Exceptions storage raises in domain terms, so callers need not know the ORM."""

from __future__ import annotations

import sqlite3

import asyncpg
from tortoise.exceptions import DBConnectionError


class DuplicateEvent(Exception):
    """This platform event was handled before: a redelivery has no second effect."""


class ResidentGone(Exception):
    """The resident was deleted while we were handling their message."""


# SQLSTATE classes of a server that is away or refusing for now, not of a wrong query:
# 08 connection exception, 53 insufficient resources (too many connections), 57 operator
# intervention (shut down, restarting, cannot connect now, backend terminated).
_PASSING_SQLSTATE_CLASSES = ("08", "53", "57")
# What SQLite says when the file is busy or the disk is away for a moment.
_PASSING_SQLITE = ("database is locked", "disk i/o error", "unable to open database file")


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) means the database cannot be reached now.

    Such a failure passes: the update or push it stopped is kept and tried again,
    and a resident is told to wait, not that their input was wrong. Any other
    failure is a fault of ours and is logged with its traceback. The drivers'
    exceptions are read here, the only package that knows them.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _passing(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _passing(error: BaseException) -> bool:
    if isinstance(
        error, (OSError, DBConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError)
    ):
        # Refused, reset, timed out; a closed connection; Tortoise's own word; asyncpg's
        # protocol left mid-operation on a connection whose server end was cut ("cannot
        # switch to state 11; another operation is in progress"): a new one will do.
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = str(getattr(error, "sqlstate", "") or "")
        if state.startswith(_PASSING_SQLSTATE_CLASSES):
            return True
        # 55000 is also a query's fault; only "not currently accepting connections" passes.
        return state == "55000" and "not currently accepting connections" in str(error)
    if isinstance(error, sqlite3.OperationalError):
        return str(error).lower().startswith(_PASSING_SQLITE)
    return False
