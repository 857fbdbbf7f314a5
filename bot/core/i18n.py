"""Translations from gettext catalogs, read with Babel.

The .po files under ``bot/locales`` are the source of truth; they are
compiled in memory at start-up, so there is no build step and no stale .mo.
Message ids are English. Latvian is the fallback for staff-written content,
but for our own strings a missing translation falls back to the English id.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations

LOCALES_DIR = Path(__file__).parent.parent / "locales"
LANGUAGES = ("lv", "en", "ru")
DEFAULT_LANGUAGE = "lv"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark a string for extraction where it is defined; translate it where it is shown."""
    return message


@dataclass(frozen=True, slots=True)
class Translator:
    language: str
    _translations: Translations

    def gettext(self, message: str, /, **values: object) -> str:
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        text = self._translations.ngettext(singular, plural, n)
        return text.format(n=n, **values)

    def number(self, n: int) -> str:
        """12 345 in Latvian and Russian, 12,345 in English."""
        return format_decimal(n, locale=self.language)

    def percent(self, share: float) -> str:
        """A share as a whole percentage, written as the language does (CLDR): "42%", "42 %"."""
        return format_percent(share, locale=self.language)

    def day(self, value: date) -> str:
        """A date as people there write it in full: "2027. gada 1. maijs", "May 1, 2027"."""
        return format_date(value, "long", locale=self.language)

    def moment(self, when: datetime, zone: ZoneInfo) -> str:
        """A date and time as people there write it, in the municipality's zone."""
        return format_datetime(when, "d MMM y, HH:mm", tzinfo=zone, locale=self.language)


def catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translator(language: str) -> Translator:
    """The translator for a language; read once per process, then shared (read-only)."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    path = catalog_path(language)
    if not path.exists():
        return Translator(language, Translations())
    with path.open("rb") as file:
        catalog = read_po(file, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translator(language, Translations(buffer, domain=DOMAIN))


def pick_language(*candidates: str) -> str:
    """The first supported language among candidates such as 'ru-RU', else Latvian."""
    for candidate in candidates:
        code = (candidate or "").split("-")[0].split("_")[0].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE


def localized(names: Mapping[str, str], language: str) -> str:
    """Staff- or config-written text per language, falling back to Latvian."""
    return names.get(language) or names.get(DEFAULT_LANGUAGE) or next(iter(names.values()), "")


LANGUAGE_NAMES = {"lv": "Latviešu", "en": "English", "ru": "Русский"}
