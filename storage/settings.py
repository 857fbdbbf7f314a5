"""Deployment-wide values kept in the database, shared by every worker."""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError

from storage.models import Setting


async def secret(key: str) -> str:
    """A random secret made once and then read by every worker alike."""
    row = await Setting.get_or_none(key=key)
    if row is not None:
        return row.value
    try:
        row = await Setting.create(key=key, value=secrets.token_urlsafe(32))
    except IntegrityError:  # another worker made it first
        row = await Setting.get(key=key)
    return row.value
