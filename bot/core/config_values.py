"""The parts of configuration every section uses: the error, named items, value checks.

Kept apart from ``bot.core.config`` so that a section with a module of its own (the
proposals') parses its values exactly as the rest does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from urllib.parse import urlsplit

from bot.core.messages import CHOSEN, LABEL_LENGTH

LANGUAGES = ("lv", "en", "ru")
CHANNELS = ("telegram", "webchat", "messenger")
# Ids end up inside button payloads, which Telegram caps at 64 bytes.
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"{key} = {value!r}: expected {expected}")


@dataclass(frozen=True, slots=True)
class Named:
    """A neighbourhood or topic: a stable id, its name per language, and a short form
    per language for buttons on channels where the whole name does not fit."""

    id: str
    names: Mapping[str, str]
    short: Mapping[str, str] = field(default_factory=dict)

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["lv"]

    def label(self, language: str, room: int) -> str:
        """The name for a button of ``room`` characters: whole where it fits, else the short
        form (falling back to Latvian as the name does)."""
        name = self.name(language)
        if len(name) <= room:
            return name
        own = self.short.get(language)
        if own is None and language not in self.names:
            own = self.short.get("lv")
        return own or name


def per_language(key: str, raw: dict[Any, Any]) -> dict[str, str]:
    """A table of non-empty texts keyed by our languages, stripped."""
    for language, name in raw.items():
        if language not in LANGUAGES:
            raise ConfigError(f"{key}.{language}", name, f"a language among {', '.join(LANGUAGES)}")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key}.{language}", name, "a non-empty name")
    return {language: name.strip() for language, name in raw.items()}


def name_table(key: str, raw: object) -> Mapping[str, str]:
    if isinstance(raw, str):
        raw = {"lv": raw}
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(key, raw, 'a table of names per language, e.g. { lv = "…", en = "…" }')
    names = per_language(key, raw)
    if "lv" not in names:
        raise ConfigError(key, raw, "a Latvian name (lv), the fallback for every language")
    return names


def short_names(key: str, raw: object) -> Mapping[str, str]:
    """The short forms for buttons: any languages, none required."""
    if not isinstance(raw, dict):
        raise ConfigError(key, raw, 'a table of short names per language, e.g. { en = "…" }')
    return per_language(key, raw)


def named_list(key: str, raw: object) -> tuple[Named, ...]:
    if not isinstance(raw, list):
        raise ConfigError(key, raw, "a list of tables with id and name")
    seen: set[str] = set()
    items = []
    for index, entry in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, entry, "a table with id and name")
        ident = entry.get("id")
        if not isinstance(ident, str) or not ID_PATTERN.match(ident):
            raise ConfigError(
                f"{where}.id", ident, "1–24 lower-case letters, digits, '-' or '_', e.g. 'centrs'"
            )
        if ident in seen:
            raise ConfigError(f"{where}.id", ident, "an id used only once")
        seen.add(ident)
        names = name_table(f"{where}.name", entry.get("name"))
        short = short_names(f"{where}.short", entry.get("short", {}))
        items.append(fits_a_button(where, Named(ident, names, short)))
    return tuple(items)


NAME_ROOM = LABEL_LENGTH - len(CHOSEN)
"""Characters of a neighbourhood's or topic's name on a button that every channel shows
whole: Messenger's 20, less the mark of a chosen one."""


def fits_a_button(where: str, item: Named) -> Named:
    """Refuse a name no button can show whole, unless a short form is given: a cut label
    could not be told from another, and every choice must stay on the buttons."""
    for language in LANGUAGES:
        label = item.label(language, NAME_ROOM)
        if len(label) <= NAME_ROOM:
            continue
        if language in item.short or (language not in item.names and "lv" in item.short):
            key = language if language in item.short else "lv"
            raise ConfigError(f"{where}.short.{key}", label, f"at most {NAME_ROOM} characters")
        key = language if language in item.names else "lv"
        raise ConfigError(
            f"{where}.name.{key}",
            label,
            f"at most {NAME_ROOM} characters (it is shown on a button), or a short form "
            f'for buttons beside it: short = {{ {key} = "…" }}',
        )
    return item


def as_str(key: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ConfigError(key, raw, "a string")
    return raw


def as_int(key: str, raw: object, low: int, high: int) -> int:
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw)
    if not isinstance(raw, int) or isinstance(raw, bool) or not low <= raw <= high:
        raise ConfigError(key, raw, f"a whole number from {low} to {high}")
    return raw


def as_seconds(key: str, raw: object, low: float, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not low <= raw <= high:
        raise ConfigError(key, raw, f"a number of seconds from {low:g} to {high:g}")
    return float(raw)


def as_bool(key: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ConfigError(key, raw, "true or false")
    return raw


def as_rate(key: str, raw: object, high: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= high:
        raise ConfigError(key, raw, f"a number of messages a second above 0, at most {high:g}")
    return float(raw)


def as_clock(key: str, raw: object) -> time:
    if isinstance(raw, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", raw):
        return time(int(raw[:2]), int(raw[3:]))
    raise ConfigError(key, raw, "a time of day as HH:MM, e.g. 21:00")


def as_public_url(key: str, raw: object) -> str:
    url = as_str(key, raw).strip().rstrip("/")
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query):
        raise ConfigError(key, raw, "the bot's public base URL, e.g. https://bot.example.lv")
    return url


def as_networks(key: str, raw: object) -> tuple[IPNetwork, ...]:
    if not isinstance(raw, list):
        raise ConfigError(key, raw, 'a list of addresses or networks, e.g. ["127.0.0.1"]')
    networks = []
    for index, entry in enumerate(raw):
        try:
            networks.append(ipaddress.ip_network(as_str(f"{key}[{index}]", entry), strict=False))
        except ValueError:
            raise ConfigError(
                f"{key}[{index}]", entry, "an IP address or network, e.g. 127.0.0.1 or 10.0.0.0/8"
            ) from None
    return tuple(networks)


def subtable(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise ConfigError(key, section, "a table")
    return section


def check_unknown(where: str, section: Mapping[str, Any], known: set[str]) -> None:
    for key in section:
        if key not in known:
            prefix = f"{where}." if where else ""
            # Not the value: a misspelt key may well hold a token or a password.
            raise ConfigError(f"{prefix}{key}", "…", f"a known key ({', '.join(sorted(known))})")


# What each platform sends as a user id: a staff account matches only that exact
# string, and it must fit the 64-character column and one line of `staff list`.
USER_IDS: dict[str, tuple[re.Pattern[str], str]] = {
    # Telegram: "at most 52 significant bits" (Bot API, User.id); never negative.
    "telegram": (
        re.compile(r"[1-9][0-9]{0,15}"),
        "a Telegram user id (a positive whole number, e.g. 123456789)",
    ),
    "webchat": (
        re.compile(r"[0-9a-f]{32}"),
        "a web-chat id (the 32 hex digits the web chat issues)",
    ),
    "messenger": (re.compile(r"[0-9]{1,64}"), "a Messenger id (PSID: digits only)"),
}
TELEGRAM_MAX_ID = 2**52 - 1


def parse_user_ref(key: str, ref: object, *, any_id: bool = False) -> tuple[str, str]:
    """Split 'telegram:123456' into channel and platform user id, checked per channel.

    ``any_id`` takes any id that fits the column, so that an account recorded
    before ids were checked can still be removed.
    """
    shown = shorten(ref)
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(key, shown, f"CHANNEL:USER_ID with CHANNEL one of {', '.join(CHANNELS)}")
    channel, _, user_id = ref.partition(":")
    if channel not in USER_IDS:
        raise ConfigError(key, shown, f"CHANNEL:USER_ID with CHANNEL one of {', '.join(CHANNELS)}")
    user_id = user_id.strip(" ")
    pattern, expected = USER_IDS[channel]
    if any_id and 0 < len(user_id) <= 64:
        return channel, user_id
    if not pattern.fullmatch(user_id) or (channel == "telegram" and int(user_id) > TELEGRAM_MAX_ID):
        raise ConfigError(key, shown, f"{channel}:ID with ID {expected}")
    return channel, user_id


def shorten(value: object, limit: int = 40) -> object:
    """A long value cut for an error line: the line names it, it need not repeat it."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
