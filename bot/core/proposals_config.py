"""The ``[proposals]`` section: categories, the departments they go to, and the limits.

A category names the department that handles it, optionally another one for some
neighbourhoods (roads in the rural parish go to the parish office). A department
names its staff accounts: they review its proposals and hear about new ones, with
or without a staff role. With no categories configured, a small set that any
municipality has is used, all handled by one department, so proposals work from
the first run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.core.config_values import (
    ConfigError,
    Named,
    as_int,
    as_str,
    check_unknown,
    named_list,
    parse_user_ref,
    subtable,
)
from bot.core.geo import Bounds, Polygon, parse_polygons

DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_duration(key: str, raw: object, low: timedelta, high: timedelta) -> timedelta:
    """'90s', '45m', '12h', '3d' (or a number of seconds) as a timedelta within bounds."""
    seconds: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        seconds = raw
    elif isinstance(raw, str) and (match := DURATION.match(raw)):
        seconds = int(match[1]) * UNITS[match[2]]
    if seconds is None or not low <= timedelta(seconds=seconds) <= high:
        raise ConfigError(
            key, raw, f"a duration from {_spoken(low)} to {_spoken(high)} such as 90s, 12h or 3d"
        )
    return timedelta(seconds=seconds)


def _spoken(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0 and seconds >= UNITS[unit]:
            return f"{seconds // UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Department:
    """Who handles proposals: a name per language and the staff accounts in it."""

    id: str
    names: Mapping[str, str]
    short: Mapping[str, str] = field(default_factory=dict)
    staff: tuple[tuple[str, str], ...] = ()  # (channel, platform user id)

    @property
    def named(self) -> Named:
        return Named(self.id, self.names, self.short)

    def name(self, language: str) -> str:
        return self.named.name(language)


@dataclass(frozen=True, slots=True)
class Category:
    """What a proposal is about, and which department takes it (per neighbourhood)."""

    id: str
    names: Mapping[str, str]
    short: Mapping[str, str] = field(default_factory=dict)
    department: str = ""
    # neighbourhood id → department id, where another department handles it there
    by_neighbourhood: Mapping[str, str] = field(default_factory=dict)

    @property
    def named(self) -> Named:
        return Named(self.id, self.names, self.short)

    def name(self, language: str) -> str:
        return self.named.name(language)

    def department_for(self, neighbourhood: str | None) -> str:
        return self.by_neighbourhood.get(neighbourhood or "", self.department)


@dataclass(frozen=True, slots=True)
class ProposalsConfig:
    categories: tuple[Category, ...] = ()
    departments: tuple[Department, ...] = ()
    # New proposals one resident may submit in 24 hours; 0: no limit.
    daily_limit: int = 5
    max_photos: int = 3
    # Open proposals of the same category at most this far apart are offered as the same.
    similar_distance_metres: int = 150
    # How long after "implemented" the author and followers are asked "Is it fixed?".
    ask_fixed_after: timedelta = timedelta(days=3)
    # Where proposal photos are kept as files (relative: to the working directory).
    photo_dir: str = "data/photos"
    # A shared location outside this box is refused; None: any place is taken.
    bounds: Bounds | None = None
    # Neighbourhood id → its boundary, to find a shared location's neighbourhood.
    boundaries: tuple[tuple[str, tuple[Polygon, ...]], ...] = ()

    def category(self, key: str) -> Category | None:
        return next((c for c in self.categories if c.id == key), None)

    def department(self, key: str) -> Department | None:
        return next((d for d in self.departments if d.id == key), None)

    def departments_of(self, channel: str, user_id: str) -> frozenset[str]:
        """The departments a staff account belongs to (by the configuration)."""
        return frozenset(d.id for d in self.departments if (channel, user_id) in d.staff)


def default_proposals() -> ProposalsConfig:
    """What a municipality with no ``[proposals]`` categories gets."""

    def category(ident: str, lv: str, en: str, ru: str) -> Category:
        return Category(ident, {"lv": lv, "en": en, "ru": ru}, department="municipality")

    return ProposalsConfig(
        categories=(
            category("roads", "Ceļi un ietves", "Roads, pavements", "Дороги и тротуары"),
            category("lighting", "Apgaismojums", "Street lighting", "Освещение"),
            category("greenery", "Parki, koki", "Parks and trees", "Парки и деревья"),
            category("waste", "Atkritumi", "Waste", "Мусор"),
            category("idea", "Ideja pilsētai", "An idea", "Идея для города"),
            category("other", "Cits", "Something else", "Другое"),
        ),
        departments=(
            Department(
                "municipality",
                {"lv": "Pašvaldība", "en": "The municipality", "ru": "Самоуправление"},
            ),
        ),
    )


def _departments(raw: object) -> tuple[Department, ...]:
    if not isinstance(raw, list):
        raise ConfigError("proposals.departments", raw, "a list of tables with id, name, staff")
    for index, entry in enumerate(raw):
        if isinstance(entry, dict):
            known = {"id", "name", "short", "staff"}
            check_unknown(f"proposals.departments[{index}]", entry, known)
    named = named_list("proposals.departments", [_without(e, "staff") for e in raw])
    departments = []
    for index, (item, entry) in enumerate(zip(named, raw, strict=True)):
        accounts = entry.get("staff", [])
        where = f"proposals.departments[{index}].staff"
        if not isinstance(accounts, list):
            raise ConfigError(where, accounts, 'a list of accounts, e.g. ["telegram:123456789"]')
        staff = tuple(
            parse_user_ref(f"{where}[{i}]", account) for i, account in enumerate(accounts)
        )
        departments.append(Department(item.id, item.names, item.short, staff))
    return tuple(departments)


def _without(entry: object, *keys: str) -> object:
    return {k: v for k, v in entry.items() if k not in keys} if isinstance(entry, dict) else entry


def _categories(
    raw: object, departments: tuple[Department, ...], neighbourhoods: tuple[Named, ...]
) -> tuple[Category, ...]:
    if not isinstance(raw, list):
        raise ConfigError("proposals.categories", raw, "a list of tables with id, name, department")
    for index, entry in enumerate(raw):
        if isinstance(entry, dict):
            check_unknown(
                f"proposals.categories[{index}]",
                entry,
                {"id", "name", "short", "department", "by_neighbourhood"},
            )
    named = named_list(
        "proposals.categories", [_without(e, "department", "by_neighbourhood") for e in raw]
    )
    known = {d.id for d in departments}
    hoods = {n.id for n in neighbourhoods}
    choices = ", ".join(sorted(known)) or "none configured"
    categories = []
    for index, (item, entry) in enumerate(zip(named, raw, strict=True)):
        where = f"proposals.categories[{index}]"
        department = entry.get("department")
        if department not in known:
            raise ConfigError(f"{where}.department", department, f"a department id ({choices})")
        overrides = entry.get("by_neighbourhood", {})
        if not isinstance(overrides, dict):
            raise ConfigError(
                f"{where}.by_neighbourhood", overrides, 'a table like { lauki = "parish" }'
            )
        for hood, other in overrides.items():
            if hood not in hoods:
                raise ConfigError(f"{where}.by_neighbourhood.{hood}", hood, "a neighbourhood id")
            if other not in known:
                raise ConfigError(
                    f"{where}.by_neighbourhood.{hood}", other, f"a department id ({choices})"
                )
        categories.append(Category(item.id, item.names, item.short, department, dict(overrides)))
    return tuple(categories)


def _bounds(raw: object) -> Bounds | None:
    if raw is None:
        return None
    example = "{ south = 56.9, west = 23.9, north = 57.1, east = 24.3 }"
    if not isinstance(raw, dict) or set(raw) != {"south", "west", "north", "east"}:
        raise ConfigError("proposals.bounds", raw, f"a table {example}")
    values = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"proposals.bounds.{key}", value, "a number of degrees")
        values[key] = float(value)
    bounds = Bounds(**values)
    if not (-90 <= bounds.south < bounds.north <= 90 and -180 <= bounds.west < bounds.east <= 180):
        raise ConfigError("proposals.bounds", raw, f"south below north, west of east: {example}")
    return bounds


def _boundaries(
    raw: object, base: Path | None, neighbourhoods: tuple[Named, ...]
) -> tuple[tuple[str, tuple[Polygon, ...]], ...]:
    key = "proposals.neighbourhood_boundaries"
    path_text = as_str(key, raw)
    if not path_text:
        return ()
    path = Path(path_text)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(key, path_text, f"a readable GeoJSON file ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConfigError(key, path_text, "a GeoJSON file (it is not valid JSON)") from None
    hoods = {n.id for n in neighbourhoods}
    try:
        found = parse_polygons(data)
    except ValueError as error:
        raise ConfigError(key, path_text, f"a GeoJSON FeatureCollection ({error})") from None
    for hood, _ in found:
        if hood not in hoods:
            raise ConfigError(
                key, path_text, f"features whose properties.id is a neighbourhood id, not {hood!r}"
            )
    return tuple(found)


KNOWN = {
    "categories",
    "departments",
    "daily_limit",
    "max_photos",
    "similar_distance_metres",
    "ask_fixed_after",
    "photo_dir",
    "bounds",
    "neighbourhood_boundaries",
}


def parse(
    data: Mapping[str, Any], neighbourhoods: tuple[Named, ...], base: Path | None = None
) -> ProposalsConfig:
    """The ``[proposals]`` table; ``base`` is the configuration file's folder (relative
    paths in it are read from there)."""
    section = subtable(data, "proposals")
    check_unknown("proposals", section, KNOWN)
    defaults = ProposalsConfig()
    if "categories" in section:
        departments = _departments(section.get("departments", []))
        categories = _categories(section["categories"], departments, neighbourhoods)
        if not categories:
            raise ConfigError("proposals.categories", [], "at least one category")
    elif "departments" in section:
        raise ConfigError(
            "proposals.categories", "…", "categories that name the departments configured"
        )
    else:
        base_set = default_proposals()
        categories, departments = base_set.categories, base_set.departments
    return ProposalsConfig(
        categories=categories,
        departments=departments,
        daily_limit=as_int("proposals.daily_limit", section.get("daily_limit", 5), 0, 1000),
        max_photos=as_int("proposals.max_photos", section.get("max_photos", 3), 1, 10),
        similar_distance_metres=as_int(
            "proposals.similar_distance_metres",
            section.get("similar_distance_metres", defaults.similar_distance_metres),
            1,
            10_000,
        ),
        ask_fixed_after=parse_duration(
            "proposals.ask_fixed_after",
            section.get("ask_fixed_after", "3d"),
            timedelta(seconds=1),
            timedelta(days=365),
        ),
        photo_dir=as_str("proposals.photo_dir", section.get("photo_dir", defaults.photo_dir))
        or defaults.photo_dir,
        bounds=_bounds(section.get("bounds")),
        boundaries=_boundaries(section.get("neighbourhood_boundaries", ""), base, neighbourhoods),
    )
