"""``iesaiste poll`` as an operator runs it.

The command lines and poll files are checked in-process (they are read before the
database is opened); the commands themselves run as real processes on both databases,
with the residents and their taps made through ``storage`` by the test.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import _parser
from bot.core.config import Config, ConfigError, demo_municipality, load
from bot.polls_cli import draft_of, parse_poll, prepare
from storage import catalog, polls, residents
from storage.catalog import Entry
from storage.models import Ballot, Poll, Resident
from storage.sessions import open_session
from tests.bot.test_cli import iesaiste
from tests.bot.test_proposals_cli import one_line, opened

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 14:00 in Riga


def config() -> Config:
    return load(None, {})


def create(*flags: str) -> polls.PollDraft:
    args = _parser().parse_args(["poll", "create", *flags])
    return draft_of(config(), args, NOW)


def refused(*flags: str) -> str:
    with pytest.raises(ConfigError) as caught:
        prepare(config(), _parser().parse_args(["poll", *flags]), NOW)
    return str(caught.value)


def readme_example() -> str:
    """The poll file shown in the README's "Quick polls" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```toml\n(# poll\.toml.*?)```", readme, re.S)
    assert found, "the README shows an example poll.toml"
    return found[1]


# --- the command line and the file, before the database ----------------------------------
def test_every_flag_lands_in_the_draft_with_local_times_in_the_municipality_zone() -> None:
    draft = create(
        "--question", "Kur likt soliņus?", "--question-en", "Where should the benches go?",
        "--question-ru", "Где поставить скамейки?",
        "--option", "Parkā", "--option", "Pie skolas", "--option", "Krastā",
        "--multiple", "--audience", "neighbourhood:parupe,centrs",
        "--opens", "2026-12-02T10:00", "--closes", "2027-06-01T10:00",
        "--remind-before", "1d", "--remind-before", "90s",
        "--results", "at-close", "--channels", "telegram,messenger", "--tell-voters",
    )  # fmt: skip
    assert draft == polls.PollDraft(
        question={
            "lv": "Kur likt soliņus?",
            "en": "Where should the benches go?",
            "ru": "Где поставить скамейки?",
        },
        options=[{"lv": "Parkā"}, {"lv": "Pie skolas"}, {"lv": "Krastā"}],
        # Riga is UTC+2 in winter and UTC+3 in summer.
        opens_at=datetime(2026, 12, 2, 8, 0, tzinfo=UTC),
        closes_at=datetime(2027, 6, 1, 7, 0, tzinfo=UTC),
        multiple=True,
        audience={"kind": "neighbourhood", "keys": ["centrs", "parupe"]},
        remind_before=(86_400, 90),
        results="at_close",
        channels=("messenger", "telegram"),
        tell_voters=True,
    )


def test_a_poll_opens_now_by_default_and_must_say_when_it_closes() -> None:
    draft = create("--question", "Jā vai nē?", "--option", "Jā", "--option", "Nē",
                   "--closes", "2026-12-08T18:00")  # fmt: skip
    assert (draft.opens_at, draft.audience, draft.multiple, draft.results, draft.channels) == (
        NOW,
        {"kind": "all"},
        False,
        "after_answer",
        (),
    )
    assert refused("create", "--question", "Jā?", "--option", "Jā", "--option", "Nē") == (
        "--closes = '': expected the closing time, e.g. 2026-12-08T18:00"
    )


GOOD = ("--question", "Jā vai nē?", "--option", "Jā", "--option", "Nē")


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (
            ("--option", "Jā", "--option", "Nē", "--closes", "2026-12-08T18:00"),
            "--question = '': expected a poll where not the question in Latvian is missing",
        ),
        (
            ("--question", "Jā?", "--option", "Jā", "--closes", "2026-12-08T18:00"),
            "--option = ['Jā']: expected a poll where not a poll has 2 to 10 options, not 1",
        ),
        (
            (
                "--question",
                "Jā?",
                "--option",
                "Jā",
                "--option",
                "jā",
                "--closes",
                "2026-12-08T18:00",
            ),
            "--option = ['Jā', 'jā']: expected a poll where not two options have the same "
            "Latvian label",
        ),
        (
            (*GOOD, "--closes", "tomorrow"),
            "--closes = 'tomorrow': expected a local time such as 2026-12-01T10:00",
        ),
        (
            (*GOOD, "--closes", "2026-11-30T10:00"),
            "--closes = '2026-11-30T10:00': expected a poll where not the closing time is not "
            "after the opening time",
        ),
        (
            (*GOOD, "--opens", "2026-11-30T10:00", "--closes", "2026-12-08T18:00"),
            "--opens = '2026-11-30T10:00': expected a time that has not passed yet",
        ),
        (
            # 03:00–04:00 does not exist in Riga on the night summer time starts.
            (*GOOD, "--opens", "2027-03-28T03:30", "--closes", "2027-04-08T18:00"),
            "--opens = '2027-03-28T03:30': expected a time that exists in Europe/Riga "
            "(the clocks skip it that night)",
        ),
        (
            (*GOOD, "--closes", "2026-12-08T18:00", "--remind-before", "tomorrow"),
            "--remind-before = 'tomorrow': expected a duration from 1m to 366d such as 90s, "
            "12h or 3d",
        ),
        (
            (*GOOD, "--closes", "2026-12-03T14:00", "--remind-before", "3d"),
            "--remind-before = '3d': expected a reminder within the time the poll is open (2d)",
        ),
        (
            (*GOOD, "--closes", "2026-12-08T18:00", "--audience", "neighbourhood:atlantis"),
            "--audience = 'neighbourhood:atlantis': expected all, neighbourhood:ID[,ID…] or "
            "topic:ID[,ID…] (neighbourhood: centrs, jaunciems, lauki, parupe; topic: culture, "
            "education, environment, social, transport)",
        ),
        (
            (*GOOD, "--closes", "2026-12-08T18:00", "--results", "never"),
            "--results = 'never': expected after-answer or at-close",
        ),
        (
            (*GOOD, "--closes", "2026-12-08T18:00", "--channels", "telegram,fax"),
            "--channels = 'telegram,fax': expected channels among telegram, webchat, messenger",
        ),
        (
            ("--file", "poll.toml", "--question", "Jā?"),
            "--question = '…': expected nothing beside --file: the file holds the poll",
        ),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(flags: tuple[str, ...], line: str) -> None:
    assert refused("create", *flags) == line


def test_results_close_extend_and_cancel_check_their_arguments() -> None:
    assert refused("results", "x7") == (
        "ID = 'x7': expected the id of a poll, a whole number (iesaiste poll list)"
    )
    assert refused("results", "7", "--format", "png") == (
        "--output = '': expected the file to write the chart to (--format png)"
    )
    assert refused("extend", "7", "--until", "2026-11-01T10:00") == (
        "--until = '2026-11-01T10:00': expected a time that has not passed yet"
    )


def test_the_readme_example_is_the_shipped_example_and_parses() -> None:
    example = readme_example()
    assert (ROOT / "poll.example.toml").read_text(encoding="utf-8") == example
    import tomllib

    draft = parse_poll(config(), tomllib.loads(example), NOW, in_file=True)
    assert draft.question["lv"] and draft.question["en"] and draft.question["ru"]
    assert [labels["lv"] for labels in draft.options] == ["Parkā", "Pie skolas", "Upes krastā"]
    assert all({"lv", "en", "ru"} <= set(labels) for labels in draft.options)
    assert draft.remind_before == (86_400, 7200)
    assert draft.audience == {"kind": "neighbourhood", "keys": ["centrs", "parupe"]}


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            {"colour": "red"},
            "colour = '…': expected a known key (audience, channels, closes, "
            "multiple, opens, option, question, remind_before, results, tell_voters)",
        ),
        (
            {"question": {"de": "Wo?", "lv": "Kur?"}},
            "question.de = 'Wo?': expected a language among lv, en, ru",
        ),
        ({"option": [{"lv": "Jā"}, {"lv": "Nē", "ru": 3}]}, "option[1].ru = 3: expected a text"),
        ({"multiple": "yes"}, "multiple = 'yes': expected true or false"),
        (
            {"remind_before": ["24h", "soon"]},
            "remind_before[1] = 'soon': expected a duration from 1m to 366d such as 90s, 12h or 3d",
        ),
        (
            {"remind_before": "24h"},
            'remind_before = \'24h\': expected a list of durations, e.g. ["24h", "2h"]',
        ),
        (
            {"closes": "2026-13-01T10:00"},
            "closes = '2026-13-01T10:00': expected a local time such as 2026-12-01T10:00",
        ),
        (
            {"channels": ["telegram", "pigeon"]},
            "channels = ['telegram', 'pigeon']: expected "
            "channels among telegram, webchat, messenger",
        ),
    ],
)
def test_a_bad_value_in_a_poll_file_is_one_line_naming_the_key(
    change: dict[str, object], line: str, tmp_path: Path
) -> None:
    import tomllib

    values = {**tomllib.loads(readme_example()), **change}
    with pytest.raises(ConfigError) as caught:
        parse_poll(config(), values, NOW, in_file=True)
    assert str(caught.value) == line


def test_a_poll_file_that_is_missing_or_not_toml_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    assert refused("create", "--file", str(missing)) == (
        f"--file = '{missing}': expected a readable poll file (No such file or directory)"
    )
    broken = tmp_path / "broken.toml"
    broken.write_text('question = "Kur?\n', encoding="utf-8")
    assert refused("create", "--file", str(broken)).startswith(
        f"--file = '{broken}': expected a poll in TOML (Illegal character"
    )


# --- the commands, as processes on both databases ----------------------------------------
async def resident(user_id: str, neighbourhood: str, channel: str = "telegram") -> Resident:
    async with open_session(channel, user_id, "") as session:
        session.resident.onboarded_at = datetime.now(UTC)
        await session.resident.save()
        person = session.resident
    await residents.set_neighbourhood(person, neighbourhood)
    return person


def local(moment: datetime) -> str:
    return moment.astimezone(config().municipality.zone).strftime("%Y-%m-%dT%H:%M")


async def test_a_poll_from_a_file_end_to_end(database_url: str, tmp_path: Path) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    now = datetime.now(UTC)
    # The README's example, moved to times still to come and opening now.
    example = re.sub(r'opens = "[^"]*"[^\n]*\n', "", readme_example())
    example = re.sub(r'closes = "[^"]*"', f'closes = "{local(now + timedelta(days=3))}"', example)
    path = tmp_path / "poll.toml"
    path.write_text(example, encoding="utf-8")
    async with opened(database_url):
        m = demo_municipality()
        await catalog.sync([Entry(n.id, n.names) for n in m.neighbourhoods], [])
        voters = [await resident(str(n), "centrs") for n in range(1, 7)]
        voters += [await resident("50", "parupe"), await resident("51", "jaunciems")]
    code, out, err = await iesaiste("poll", "create", "--file", str(path), env=env)
    assert (code, err) == (0, ""), err
    first, second = out.splitlines()
    poll_id = int(first)
    assert second.startswith("audience: 7 residents now (invited when it opens, ")
    async with opened(database_url):
        [poll] = await polls.open_due(datetime.now(UTC))
        assert (poll.id, poll.audience_size, poll.author) == (poll_id, 7, "cli")
        # Six in the centre, one across the river; the one in Jaunciems is not asked.
        for n, voter in enumerate(voters[:6]):
            await polls.tap(poll, voter, "telegram", 0 if n < 4 else 1)
        await polls.tap(poll, voters[6], "messenger", 2)
        assert await Ballot.filter(poll_id=poll_id).count() == 7
    code, out, err = await iesaiste("poll", "results", str(poll_id), "--format", "json", env=env)
    assert (code, err) == (0, "")
    results = json.loads(out)
    assert {k: results[k] for k in ("poll", "state", "ballots", "audience", "turnout")} == {
        "poll": poll_id,
        "state": "open",
        "ballots": 7,
        "audience": 7,
        "turnout": 100.0,
    }
    assert results["options"] == [
        {"position": 0, "label": "Parkā", "count": 4, "percent": 57.1},
        {"position": 1, "label": "Pie skolas", "count": 2, "percent": 28.6},
        {"position": 2, "label": "Upes krastā", "count": 1, "percent": 14.3},
    ]
    # One answer across the river is too few to show apart: it is "other".
    assert results["by_neighbourhood"] == {
        "centrs": {"ballots": 6, "counts": [4, 2, 0]},
        "other": {"ballots": 1, "counts": [0, 0, 1]},
    }
    assert results["by_channel"] == {
        "telegram": {"ballots": 6, "counts": [4, 2, 0]},
        "messenger": {"ballots": 1, "counts": [0, 0, 1]},
    }
    code, out, _ = await iesaiste("poll", "results", str(poll_id), env=env)
    assert code == 0 and out.splitlines()[1:5] == [
        "Parkā\t4\t57.1 %",
        "Pie skolas\t2\t28.6 %",
        "Upes krastā\t1\t14.3 %",
        "7 answered of an audience of 7, turnout 100.0 %",
    ]
    code, out, _ = await iesaiste("poll", "results", str(poll_id), "--format", "csv", env=env)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 * (1 + 2 + 2)
    assert rows[0] == {
        "group": "all", "key": "", "ballots": "7", "position": "0", "label": "Parkā",
        "count": "4", "percent": "57.1",
    }  # fmt: skip
    assert [(r["group"], r["key"]) for r in rows[3::3]] == [
        ("neighbourhood", "centrs"),
        ("neighbourhood", "other"),
        ("channel", "telegram"),
        ("channel", "messenger"),
    ]
    chart = tmp_path / "chart.png"
    code, out, err = await iesaiste(
        "poll", "results", str(poll_id), "--format", "png", "--output", str(chart), env=env
    )
    assert (code, out, err) == (0, f"poll {poll_id}: chart written to {chart}\n", "")
    with Image.open(chart) as image:
        assert (image.format, image.width) == ("PNG", 800)
        assert 200 < image.height < 2000
    code, out, _ = await iesaiste("poll", "list", env=env)
    assert code == 0
    [line] = out.splitlines()
    assert line.split("\t")[:2] == [str(poll_id), "open"]
    assert line.split("\t")[4:] == ["7", "Kur likt jaunos soliņus?"]
    code, out, err = await iesaiste("poll", "close", str(poll_id), env=env)
    assert (code, out, err) == (
        0,
        f"poll {poll_id} closed with 7 ballots; the results go to its staff\n",
        "",
    )
    assert await one_line("poll", "close", str(poll_id), env=env) == (
        f"iesaiste: ID = '{poll_id}': expected an open poll (it is closed)"
    )
    async with opened(database_url):
        assert (await Poll.get(id=poll_id)).state == "closed"


async def test_a_scheduled_poll_is_extended_then_cancelled(database_url: str) -> None:
    env = {"IESAISTE_DATABASE_URL": database_url}
    now = datetime.now(UTC)
    opens, closes = local(now + timedelta(days=1)), local(now + timedelta(days=2))
    later = now + timedelta(days=5)
    code, out, err = await iesaiste(
        "poll", "create", "--question", "Jā vai nē?", "--option", "Jā", "--option", "Nē",
        "--opens", opens, "--closes", closes, "--remind-before", "2h", env=env,
    )  # fmt: skip
    assert (code, err) == (0, ""), err
    poll_id = int(out.splitlines()[0])
    assert (
        out.splitlines()[1]
        == f"audience: 0 residents now (invited when it opens, {opens.replace('T', ' ')})"
    )
    assert await one_line("poll", "close", str(poll_id), env=env) == (
        f"iesaiste: ID = '{poll_id}': expected an open poll (it has not opened: "
        f"iesaiste poll cancel {poll_id})"
    )
    code, out, _ = await iesaiste("poll", "extend", str(poll_id), "--until", local(later), env=env)
    assert (code, out) == (0, f"poll {poll_id} now closes at {local(later).replace('T', ' ')}\n")
    async with opened(database_url):
        [reminder] = await polls.reminders_of(poll_id)
        assert reminder.due_at == (await Poll.get(id=poll_id)).closes_at - timedelta(hours=2)
    code, out, _ = await iesaiste("poll", "cancel", str(poll_id), env=env)
    assert (code, out) == (0, f"poll {poll_id} cancelled\n")
    assert await one_line("poll", "cancel", str(poll_id), env=env) == (
        f"iesaiste: ID = '{poll_id}': expected a poll not opened (it is cancelled)"
    )
    assert await one_line("poll", "results", "999999", env=env) == (
        "iesaiste: ID = '999999': expected the id of a poll (iesaiste poll list)"
    )
