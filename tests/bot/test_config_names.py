"""Neighbourhood and topic names fit a button on every channel, or have a short form.

Messenger shows 20 characters of a button, and a chosen one starts with "✓ ": a name of
more than 18 characters needs ``short`` in its language, which buttons use where the
whole name does not fit (the whole name everywhere else: texts, and wider buttons).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import ConfigError, Named, demo_municipality, load
from bot.core.config_values import NAME_ROOM
from bot.core.i18n import LANGUAGES
from bot.core.messages import CHOSEN, LABEL_LENGTH

LONG = "Pētersala-Andrejsala"  # 20 characters: a button of its own, but not with the mark


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_name_has_room_for_the_mark_of_a_chosen_one() -> None:
    assert NAME_ROOM == LABEL_LENGTH - len(CHOSEN) == 18


@pytest.mark.parametrize(
    ("toml", "key", "value", "expected"),
    [
        (
            f'[[municipality.neighbourhoods]]\nid = "p"\nname = "{LONG}"\n',
            "municipality.neighbourhoods[0].name.lv",
            LONG,
            "at most 18 characters (it is shown on a button), or a short form for buttons "
            'beside it: short = { lv = "…" }',
        ),
        (
            '[[municipality.topics]]\nid = "env"\n'
            'name = { lv = "Vide", en = "Environment and parks" }\n',
            "municipality.topics[0].name.en",
            "Environment and parks",
            "at most 18 characters (it is shown on a button), or a short form for buttons "
            'beside it: short = { en = "…" }',
        ),
        (
            f'[[municipality.neighbourhoods]]\nid = "p"\nname = "{LONG}"\n'
            'short = { lv = "Pētersala un Andrejsala" }\n',
            "municipality.neighbourhoods[0].short.lv",
            "Pētersala un Andrejsala",
            "at most 18 characters",
        ),
        (
            '[[municipality.topics]]\nid = "env"\nname = "Vide"\nshort = { de = "Umwelt" }\n',
            "municipality.topics[0].short.de",
            "Umwelt",
            "a language among lv, en, ru",
        ),
        (
            '[[municipality.topics]]\nid = "env"\nname = "Vide"\nshort = "Vide"\n',
            "municipality.topics[0].short",
            "Vide",
            'a table of short names per language, e.g. { en = "…" }',
        ),
    ],
)
def test_a_name_no_button_can_show_is_refused_naming_the_key(
    tmp_path: Path, toml: str, key: str, value: object, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, toml), {})
    assert (raised.value.key, raised.value.value, raised.value.expected) == (key, value, expected)


def test_a_short_form_is_used_on_buttons_only_where_the_whole_name_does_not_fit(
    tmp_path: Path,
) -> None:
    toml = (
        f'[[municipality.neighbourhoods]]\nid = "p"\nname = {{ lv = "{LONG}", en = "Islands" }}\n'
        'short = { lv = "Pētersala" }\n'
    )
    [hood] = load(write(tmp_path, toml), {}).municipality.neighbourhoods
    assert hood == Named("p", {"lv": LONG, "en": "Islands"}, {"lv": "Pētersala"})
    assert hood.label("lv", NAME_ROOM) == "Pētersala"
    assert hood.label("lv", 62) == LONG  # Telegram, the web chat: the whole name
    assert hood.label("en", NAME_ROOM) == "Islands"  # its own name fits
    assert hood.label("ru", NAME_ROOM) == "Pētersala"  # no Russian name: Latvian, short
    assert hood.name("lv") == LONG


def test_the_demo_names_fit_a_button_in_every_language() -> None:
    m = demo_municipality()
    labels = {
        (item.id, language): item.label(language, NAME_ROOM)
        for item in (*m.neighbourhoods, *m.topics)
        for language in LANGUAGES
    }
    assert {key: label for key, label in labels.items() if len(label) > NAME_ROOM} == {}
    assert labels[("environment", "en")] == "Environment"
    assert labels[("environment", "lv")] == "Vide, zaļās zonas"
    assert labels[("transport", "en")] == "Roads, transport"
    assert labels[("transport", "lv")] == "Ceļi un transports"  # 18: whole
    assert labels[("lauki", "ru")] == "Сельская волость"
