"""What the command line's values mean where several commands take them: an audience
(``announce --audience``, ``poll create --audience``) and a local time (``announce --at``,
``poll create --opens/--closes``, ``poll extend --until``).

Each raises ConfigError naming the flag or key it was given, so a mistake is one line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.config import Config, ConfigError

TIME_EXAMPLE = "a local time such as 2026-12-01T10:00"


def parse_audience(config: Config, key: str, raw: object) -> dict[str, Any]:
    """``all``, ``neighbourhood:ID[,ID…]`` or ``topic:ID[,ID…]`` with ids the configuration
    knows, as the audience stored on an announcement or a poll."""
    text = raw if isinstance(raw, str) else ""
    kind, _, listed = text.partition(":")
    keys = sorted({k.strip() for k in listed.split(",") if k.strip()})
    known = {
        "neighbourhood": {n.id for n in config.municipality.neighbourhoods},
        "topic": {t.id for t in config.municipality.topics},
    }
    if kind == "all" and not listed:
        return {"kind": "all"}
    if kind in known and keys and set(keys) <= known[kind]:
        return {"kind": kind, "keys": keys}
    choices = "; ".join(
        f"{k}: {', '.join(sorted(ids)) or '(none configured)'}" for k, ids in known.items()
    )
    raise ConfigError(key, raw, f"all, neighbourhood:ID[,ID…] or topic:ID[,ID…] ({choices})")


def local_time(key: str, raw: object, zone: ZoneInfo) -> datetime:
    """An ISO time (``2026-12-01T10:00``; a TOML date-time too), in the municipality's zone
    unless it names its offset; in UTC. A local time the clocks skip when summer time
    starts is refused rather than silently moved by an hour."""
    if isinstance(raw, datetime):
        moment = raw
    else:
        try:
            moment = datetime.fromisoformat(raw if isinstance(raw, str) else "")
        except ValueError:
            raise ConfigError(key, raw, TIME_EXAMPLE) from None
    if moment.tzinfo is None:
        naive, moment = moment, moment.replace(tzinfo=zone)
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise ConfigError(
                key, raw, f"a time that exists in {zone.key} (the clocks skip it that night)"
            )
    return moment


def coming_time(
    key: str, raw: object, zone: ZoneInfo, now: datetime, far_ahead: timedelta
) -> datetime:
    """``local_time`` still to come (a minute's grace) and at most ``far_ahead``, in UTC."""
    moment = local_time(key, raw, zone)
    # Compared before converting: 9999-12-31T23:59-05:00 has no UTC time.
    if moment < now - timedelta(minutes=1):
        raise ConfigError(key, raw, "a time that has not passed yet")
    if moment - now > far_ahead:
        raise ConfigError(key, raw, "a time at most a year ahead")
    return moment.astimezone(UTC)
