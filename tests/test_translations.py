# Extract the strings from the code into the template (from the repository root):
#
#   .venv/bin/pybabel extract -F babel.cfg --no-default-keywords \
#       -k _ -k N_ -k gettext -k ngettext:1,2 -c TRANSLATORS: \
#       --project=Iesaiste --copyright-holder="Iesaiste contributors" \
#       -o bot/locales/messages.pot .
#
# then `.venv/bin/pybabel update -i bot/locales/messages.pot -d bot/locales`
# and translate; bot/locales/README.md says more. KEYWORDS below are the
# same keywords, so this test sees exactly what that command extracts.
"""Every string a resident can see is there, complete and well-formed, in Latvian,
English and Russian.

The strings are extracted afresh from the code with Babel's own extractor,
not read from the .pot, so a string added to a dialog without its
translations fails here, whether or not someone remembered to extract.
"""

from __future__ import annotations

import ast
import gettext
import io
import re
import string
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from bot.core.i18n import LANGUAGES, catalog_path, translator

ROOT = Path(__file__).resolve().parents[1]
# _("…"), ctx._("…"), N_("…"), tr.gettext("…"), ctx.ngettext("one", "many", n)
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
TOPICS_CHOSEN = ("{n} topic chosen: {names}", "{n} topics chosen: {names}")
AUDIENCE = ("Audience: {who} ({count} resident now)", "Audience: {who} ({count} residents now)")

MsgId = str | tuple[str, ...]


# --- what the code says, what the catalogs say ------------------------------
@cache
def strings_in_the_code() -> dict[MsgId, list[str]]:
    """Every marked string in the folders babel.cfg names, with where it is used."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[MsgId, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


@cache
def catalog(language: str) -> Catalog:
    with catalog_path(language).open("rb") as file:
        return read_po(file, locale=language)


def entries(language: str) -> list[Message]:
    return [message for message in catalog(language) if message.id]


def forms(message: Message) -> tuple[str, ...]:
    """The translation as a tuple: one string, or one per plural form."""
    if isinstance(message.string, str):
        return (message.string,)
    return tuple(message.string)


def as_id(msgid: MsgId | list[str]) -> MsgId:
    """A msgid comparable whatever its container: a string, or (singular, plural)."""
    return tuple(msgid) if isinstance(msgid, tuple | list) else msgid


def label(message: Message | MsgId) -> str:
    msgid = message.id if isinstance(message, Message) else message
    return repr(msgid[0] if isinstance(msgid, tuple | list) else msgid)


def placeholders(text: str) -> set[str]:
    """The str.format fields of a text, e.g. {'{n}', '{names}'}."""
    return {
        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


def header(language: str) -> dict[str, str]:
    """The catalog's header exactly as written (Babel's reader fills in what is missing)."""
    block = catalog_path(language).read_text(encoding="utf-8").split("\n\n", 1)[0]
    quoted = block.split("\nmsgstr ", 1)[1]
    text = "".join(ast.literal_eval(line) for line in quoted.splitlines() if line.startswith('"'))
    fields = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, _colon, value in fields}


def plural_entries_as_written(language: str) -> Iterator[tuple[str, list[int]]]:
    """(first msgid line, msgstr[i] indices) of each plural entry in the .po file.

    Read from the text because Babel's reader pads missing forms and drops
    extra ones, which would hide a wrong count.
    """
    msgid, plural, indices = "", False, []
    lines = catalog_path(language).read_text(encoding="utf-8").splitlines()
    for line in [*lines, "msgid"]:  # the sentinel ends the last entry
        if line.startswith("#"):
            continue
        if line.startswith("msgid ") or line == "msgid":
            if plural:
                yield msgid, indices
            msgid, plural, indices = line[6:], False, []
        elif line.startswith("msgid_plural "):
            plural = True
        elif match := re.match(r"msgstr\[(\d+)\]", line):
            indices.append(int(match[1]))


def header_rule(language: str) -> tuple[int, Callable[[int], int]]:
    """The number of forms and the form-choosing formula that the catalog's own header states.

    The bot runs with the catalog's header (bot/core/i18n.py compiles it with the
    .po), never with what the installed Babel would write, so this is what
    the translations must agree with.
    """
    fields = dict(
        part.strip().split("=", 1)
        for part in header(language)["Plural-Forms"].split(";")
        if "=" in part
    )
    return int(fields["nplurals"]), gettext.c2py(fields["plural"])


def forms_chosen_by_the_rule(language: str) -> dict[int, set[int]]:
    """For each plural form of a catalog, the numbers 0…1000 that its header sends to it."""
    _count, rule = header_rule(language)
    chosen: dict[int, set[int]] = {}
    for n in range(1001):
        chosen.setdefault(rule(n), set()).add(n)
    return chosen


def commands(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w/])/[a-z]+\b", text))


# --- the extractor ------------------------------------------------------------
def test_the_extractor_sees_every_way_the_code_marks_a_string() -> None:
    source = b"""
ctx.answer(ctx._("method on the context", name=x))
ctx.tr.gettext("translator on the context")
tr.gettext("a translator in a variable")
translator(language).gettext("a translator made on the spot")
_("plain underscore")
CONSTANT = N_("marked where defined")
ctx.ngettext("{n} one", "{n} many", n, names=y)
ctx._(CONSTANT)  # a variable: translated where shown, extracted where defined
"""
    found = [
        message
        for _line, message, _comments, _context in extract(
            "python", io.BytesIO(source), keywords=KEYWORDS
        )
    ]
    assert found == [
        "method on the context",
        "translator on the context",
        "a translator in a variable",
        "a translator made on the spot",
        "plain underscore",
        "marked where defined",
        ("{n} one", "{n} many"),
    ]


def test_the_code_has_strings_in_every_folder_babel_cfg_names() -> None:
    places = {where.split("/", 1)[0] for uses in strings_in_the_code().values() for where in uses}
    assert places >= {"bot", "dialogs", "handlers"}
    assert TOPICS_CHOSEN in strings_in_the_code(), "the plural that the Latvian test below uses"


# --- (a) nothing missing ----------------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_in_the_code_is_translated_in_every_language(language: str) -> None:
    missing = []
    for msgid, uses in strings_in_the_code().items():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        message = catalog(language).get(key)
        if message is None or as_id(message.id) != as_id(msgid):
            missing.append(f"{uses[0]}: {label(msgid)}")
    assert not missing, (
        f"not in bot/locales/{language}/LC_MESSAGES/messages.po (extract, update and translate, "
        "see bot/locales/README.md):\n" + "\n".join(missing)
    )


# --- (b) nothing empty or fuzzy -----------------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_no_translation_is_empty_or_fuzzy(language: str) -> None:
    problems = ["the header is marked fuzzy"] if catalog(language).fuzzy else []
    for message in entries(language):
        if message.fuzzy:
            problems.append(f"fuzzy (not used until reviewed): {label(message)}")
        for index, text in enumerate(forms(message)):
            if not text.strip():
                form = f"msgstr[{index}]" if message.pluralizable else "msgstr"
                problems.append(f"empty {form}: {label(message)}")
    assert not problems, f"{language}:\n" + "\n".join(problems)


def test_english_says_exactly_what_the_code_says() -> None:
    different = [
        label(message)
        for message in entries("en")
        if forms(message) != (tuple(message.id) if message.pluralizable else (message.id,))
    ]
    assert not different, "change the English text in the code, not in the catalog:\n" + "\n".join(
        different
    )


# --- (c) placeholders and commands kept -----------------------------------------------
@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_the_original(language: str) -> None:
    only_for_one = {
        form for form, numbers in forms_chosen_by_the_rule(language).items() if numbers == {1}
    }
    problems = []
    for message in entries(language):
        ids = message.id if message.pluralizable else (message.id,)
        wanted = set().union(*(placeholders(text) for text in ids))
        for index, text in enumerate(forms(message)):
            try:
                got = placeholders(text)
            except ValueError as error:
                problems.append(f"{label(message)}: not a valid format string ({error})")
                continue
            allowed = [wanted]
            if message.pluralizable and index in only_for_one:
                # A form used for n = 1 alone may say "one" in words instead of {n}.
                allowed.append(wanted - {"{n}"})
            if got not in allowed:
                problems.append(
                    f"{label(message)}: form {index} has {sorted(got)}, wants {sorted(wanted)}"
                )
    assert not problems, f"{language}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_commands_stay_as_they_are_in_every_language(language: str) -> None:
    changed = [
        f"{label(message)}: {sorted(commands(text))}"
        for message in entries(language)
        for text in forms(message)
        if commands(text) != commands(message.id[0] if message.pluralizable else message.id)
    ]
    assert not changed, f"{language}: /commands must not be translated:\n" + "\n".join(changed)


# --- (d) plural forms: each catalog agrees with its own header ----------------------------
# A grammatical category (Unicode CLDR's names) for each number a resident
# may see: written out here, not taken from Babel, whose data changes between
# releases (2.19 reordered the Latvian forms). Latvian takes the genitive
# plural ("zero") after 0, 10–20, 30… and after the numbers ending in 11–19.
CATEGORIES = {
    "lv": {
        0: "zero", 1: "one", 2: "other", 5: "other", 11: "zero", 12: "zero",
        21: "one", 22: "other", 25: "other", 100: "zero", 101: "one", 111: "zero",
    },
    "ru": {
        0: "many", 1: "one", 2: "few", 5: "many", 11: "many", 12: "many",
        21: "one", 22: "few", 25: "many", 100: "many", 101: "one", 111: "many",
    },
}  # fmt: skip
# What a resident must read, per category, for two plural messages of the bot.
SAID = {
    "lv": {
        TOPICS_CHOSEN: {
            "zero": "Izvēlēts {n} tēmu: Vide",
            "one": "Izvēlēta {n} tēma: Vide",
            "other": "Izvēlētas {n} tēmas: Vide",
        },
        AUDIENCE: {
            "zero": "Saņēmēji: Visi (pašlaik {n} iedzīvotāju)",
            "one": "Saņēmēji: Visi (pašlaik {n} iedzīvotājs)",
            "other": "Saņēmēji: Visi (pašlaik {n} iedzīvotāji)",
        },
    },
    "ru": {
        TOPICS_CHOSEN: {
            "one": "Выбрана {n} тема: Vide",
            "few": "Выбраны {n} темы: Vide",
            "many": "Выбрано {n} тем: Vide",
        },
        AUDIENCE: {
            "one": "Получатели: Visi (сейчас {n} житель)",
            "few": "Получатели: Visi (сейчас {n} жителя)",
            "many": "Получатели: Visi (сейчас {n} жителей)",
        },
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalog_states_its_plural_forms(language: str) -> None:
    written = header(language)
    assert written.get("Language") == language
    assert "Plural-Forms" in written, "pybabel init writes it; do not delete it"
    count, _rule = header_rule(language)
    assert count == (2 if language == "en" else 3)


@pytest.mark.parametrize("language", CATEGORIES)
def test_the_header_gives_each_grammatical_category_a_form_of_its_own(language: str) -> None:
    _count, rule = header_rule(language)
    form_of: dict[str, set[int]] = {}
    for n, category in CATEGORIES[language].items():
        form_of.setdefault(category, set()).add(rule(n))
    assert all(len(forms) == 1 for forms in form_of.values()), form_of
    assert len({next(iter(forms)) for forms in form_of.values()}) == len(form_of), form_of


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_plural_entry_has_as_many_forms_as_its_header(language: str) -> None:
    count, _rule = header_rule(language)
    wanted = list(range(count))
    wrong = [
        f"{msgid}: msgstr{indices}, wants msgstr{wanted}"
        for msgid, indices in plural_entries_as_written(language)
        if sorted(indices) != wanted
    ]
    assert not wrong, f"{language}:\n" + "\n".join(wrong)
    topics = catalog(language).get(TOPICS_CHOSEN[0])
    assert topics is not None and len(forms(topics)) == count, "the plural the tests below read"


# --- (e) the right form at run time --------------------------------------------------------
@pytest.mark.parametrize("language", CATEGORIES)
@pytest.mark.parametrize("message", [TOPICS_CHOSEN, AUDIENCE], ids=["topics", "audience"])
def test_a_resident_reads_the_right_plural_form_for_every_number(
    language: str, message: tuple[str, str]
) -> None:
    tr = translator(language)
    said = {
        n: tr.ngettext(*message, n, names="Vide", who="Visi", count=n) for n in CATEGORIES[language]
    }
    wanted = {
        n: SAID[language][message][category].format(n=n)
        for n, category in CATEGORIES[language].items()
    }
    assert said == wanted


def test_english_says_one_and_many() -> None:
    en = translator("en")
    assert en.ngettext(*TOPICS_CHOSEN, 1, names="Parks") == "1 topic chosen: Parks"
    for n in (0, 2, 11, 21, 101):
        assert en.ngettext(*TOPICS_CHOSEN, n, names="Parks") == f"{n} topics chosen: Parks"


def test_the_language_switch_is_confirmed_in_the_new_language() -> None:
    done = "Done: I will write to you in English."
    assert translator("lv").gettext(done) == "Labi, turpmāk rakstīšu latviski."
    assert translator("ru").gettext(done) == "Хорошо, теперь я буду писать по-русски."
    assert translator("en").gettext(done) == done
