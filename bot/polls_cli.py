"""``iesaiste poll``: create, list, results, close, extend, cancel, from the operator's shell.

A poll made here is the one staff make in the chat (``storage.polls.create``, author
"cli"): the running bot opens it, reminds and closes it, and the results at closing
go to every account with a role that runs polls. ``poll create`` takes flags or a
TOML file with the same keys (``poll.example.toml``); each bad value is one line
naming the flag or the file's key, exit code 2, checked before the database is
opened. The first line printed is the poll's id, for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli_values import coming_time, local_time, parse_audience
from bot.core.config import Config, ConfigError
from bot.core.config_values import CHANNELS, as_bool, check_unknown, shorten
from bot.core.i18n import LANGUAGES
from bot.core.proposals_config import parse_duration

if TYPE_CHECKING:
    from storage.models import Poll, PollOption
    from storage.polls import PollDraft, PollError, Tally

FORMATS = ("text", "json", "csv", "png")
RESULTS = {"after-answer": "after_answer", "at-close": "at_close"}
FAR_AHEAD = timedelta(days=366)  # as for announcements
SHORTEST_REMINDER = timedelta(minutes=1)
OTHER_KEY = "other"  # the neighbourhoods below the smallest group shown, and "none given"

# The keys of a poll file; on the command line each is the flag beside it.
FLAGS = {
    "question": "--question",
    "option": "--option",
    "multiple": "--multiple",
    "audience": "--audience",
    "opens": "--opens",
    "closes": "--closes",
    "remind_before": "--remind-before",
    "results": "--results",
    "channels": "--channels",
    "tell_voters": "--tell-voters",
}


def add_parser(commands: Any) -> None:
    """The ``poll`` sub-commands, on the ``iesaiste`` parser's sub-parsers."""
    poll = commands.add_parser(
        "poll", help="create quick polls, see their results, close, extend or cancel them"
    ).add_subparsers(
        dest="poll_command",
        required=True,
        metavar="{create,list,results,close,extend,cancel}",
    )
    create = poll.add_parser(
        "create", help="create a poll (from flags or --file); prints its id, then its audience"
    )
    create.add_argument("--file", default="", metavar="POLL.toml", help="the poll as TOML")
    create.add_argument("--question", default=None, help="the question in Latvian")
    create.add_argument("--question-en", default=None, help="the question in English")
    create.add_argument("--question-ru", default=None, help="the question in Russian")
    create.add_argument(
        "--option", action="append", default=None, help="an option in Latvian (2 to 10)"
    )
    create.add_argument("--multiple", action="store_true", default=None, help="multiple choice")
    create.add_argument(
        "--audience", default=None, help="all, neighbourhood:ID[,ID…] or topic:ID[,ID…]"
    )
    create.add_argument(
        "--opens", default=None, metavar="TIME", help="local time, e.g. 2026-12-01T10:00 (now)"
    )
    create.add_argument("--closes", default=None, metavar="TIME", help="local time (required)")
    create.add_argument(
        "--remind-before",
        action="append",
        default=None,
        metavar="DURATION",
        help="remind those who have not answered this long before closing (90s, 12h, 1d)",
    )
    create.add_argument("--results", default=None, help="after-answer (the default) or at-close")
    create.add_argument(
        "--channels", default=None, help="telegram,messenger,webchat (default: all)"
    )
    create.add_argument(
        "--tell-voters", action="store_true", default=None, help="send voters the results"
    )
    poll.add_parser("list", help="one line per poll: id, state, opens, closes, ballots")
    results = poll.add_parser("results", help="a poll's results now")
    results.add_argument("id", metavar="ID")
    results.add_argument("--format", default="text", choices=FORMATS)
    results.add_argument("--output", default="", metavar="FILE", help="default: standard output")
    close = poll.add_parser("close", help="close an open poll now")
    close.add_argument("id", metavar="ID")
    extend = poll.add_parser("extend", help="move an open or scheduled poll's closing time")
    extend.add_argument("id", metavar="ID")
    extend.add_argument("--until", required=True, metavar="TIME", help="the new closing time")
    cancel = poll.add_parser("cancel", help="cancel a poll that has not opened")
    cancel.add_argument("id", metavar="ID")


@dataclass(frozen=True, slots=True)
class Request:
    """A ``poll`` command line as checked before the database is opened."""

    draft: PollDraft | None = None
    poll_id: int = 0
    until: datetime | None = None


def prepare(config: Config, args: argparse.Namespace, now: datetime | None = None) -> Request:
    """Check the command line against the configuration; ConfigError names the flag or key."""
    moment = now or datetime.now(UTC)
    command = args.poll_command
    if command == "create":
        return Request(draft=draft_of(config, args, moment))
    if command == "list":
        return Request()
    poll_id = _poll_id(args.id)
    if command == "results" and args.format == "png" and not args.output:
        raise ConfigError("--output", "", "the file to write the chart to (--format png)")
    if command == "extend":
        until = coming_time("--until", args.until, config.municipality.zone, moment, FAR_AHEAD)
        return Request(poll_id=poll_id, until=until)
    return Request(poll_id=poll_id)


def _poll_id(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 2**31:
        raise ConfigError("ID", raw, "the id of a poll, a whole number (iesaiste poll list)")
    return int(raw)


# --- poll create: flags or a file, one set of keys --------------------------------------
def draft_of(config: Config, args: argparse.Namespace, now: datetime) -> PollDraft:
    """The poll the flags or ``--file`` describe."""
    given = [FLAGS[key] for key in FLAGS if getattr(args, key) is not None]
    given += [
        f for f in ("--question-en", "--question-ru") if getattr(args, f[2:].replace("-", "_"))
    ]
    if args.file:
        if given:
            raise ConfigError(given[0], "…", "nothing beside --file: the file holds the poll")
        return parse_poll(config, read_file(args.file), now, in_file=True)
    question = {
        "lv": args.question or "",
        "en": args.question_en or "",
        "ru": args.question_ru or "",
    }
    values: dict[str, Any] = {
        "question": {k: v for k, v in question.items() if v},
        "option": [{"lv": text} for text in args.option or []],
    }
    for key in FLAGS:
        if key not in values and getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return parse_poll(config, values, now, in_file=False)


def read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or "not UTF-8 text"
        raise ConfigError("--file", path, f"a readable poll file ({reason})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("--file", path, f"a poll in TOML ({error})") from None


def parse_poll(
    config: Config, values: dict[str, Any], now: datetime, *, in_file: bool
) -> PollDraft:
    """A poll's keys (as in a file; flags are turned into the same) as a checked draft."""
    from storage import polls

    def key(name: str) -> str:
        return name if in_file else FLAGS.get(name, name)

    check_unknown("", values, set(FLAGS))
    zone = config.municipality.zone
    question = _texts("question", values.get("question", {}), in_file)
    options = _options(values.get("option", []), in_file)
    multiple = as_bool(key("multiple"), values.get("multiple", False))
    tell_voters = as_bool(key("tell_voters"), values.get("tell_voters", False))
    audience = parse_audience(config, key("audience"), values.get("audience", "all"))
    if "opens" in values:
        opens = coming_time(key("opens"), values["opens"], zone, now, FAR_AHEAD)
    else:
        opens = now
    if "closes" not in values:
        raise ConfigError(key("closes"), "", "the closing time, e.g. 2026-12-08T18:00")
    closes = local_time(key("closes"), values["closes"], zone).astimezone(UTC)
    if closes - opens > FAR_AHEAD:
        raise ConfigError(key("closes"), values["closes"], "a time at most a year after opening")
    remind_before = _reminders(key("remind_before"), values.get("remind_before", []), in_file)
    results = values.get("results", "after-answer")
    if not isinstance(results, str) or results.replace("_", "-") not in RESULTS:
        raise ConfigError(key("results"), results, " or ".join(RESULTS))
    draft = polls.PollDraft(
        question=question,
        options=options,
        opens_at=opens,
        closes_at=closes,
        multiple=multiple,
        audience=audience,
        remind_before=tuple(int(span.total_seconds()) for span in remind_before),
        results=RESULTS[results.replace("_", "-")],
        channels=_channels(key("channels"), values.get("channels", [])),
        tell_voters=tell_voters,
    )
    reason = polls.check(draft, now)
    if reason is not None:
        name, shown = _at_fault(reason, values)
        raise ConfigError(key(name) if name in FLAGS else name, shown, f"a poll where not {reason}")
    open_for = closes - opens
    for span, raw in zip(remind_before, values.get("remind_before", []), strict=True):
        if span >= open_for:
            raise ConfigError(
                key("remind_before"),
                raw,
                f"a reminder within the time the poll is open ({_spoken(open_for)})",
            )
    return draft


def _texts(name: str, raw: object, in_file: bool) -> dict[str, str]:
    """A text per language: a table in a file (a plain string is Latvian)."""
    if isinstance(raw, str):
        raw = {"lv": raw}
    if not isinstance(raw, dict):
        raise ConfigError(name, shorten(raw), 'a table of texts per language, e.g. {lv = "…"}')
    for language, text in raw.items():
        shown = f"{name}.{language}" if in_file else _language_flag(name, language)
        if language not in LANGUAGES:
            raise ConfigError(shown, shorten(text), f"a language among {', '.join(LANGUAGES)}")
        if not isinstance(text, str):
            raise ConfigError(shown, shorten(text), "a text")
    return {language: text.strip() for language, text in raw.items() if text.strip()}


def _language_flag(name: str, language: str) -> str:
    flag = FLAGS.get(name, name)
    return flag if language == "lv" else f"{flag}-{language}"


def _options(raw: object, in_file: bool) -> list[dict[str, str]]:
    """The options in order; in a file ``[[option]]`` tables of labels per language."""
    if not isinstance(raw, list):
        raise ConfigError("option", shorten(raw), '[[option]] tables, e.g. lv = "Parkā"')
    return [
        _texts(f"option[{index}]" if in_file else "option", labels, in_file)
        for index, labels in enumerate(raw)
    ]


def _reminders(name: str, raw: object, in_file: bool) -> list[timedelta]:
    if not isinstance(raw, list):
        raise ConfigError(name, shorten(raw), 'a list of durations, e.g. ["24h", "2h"]')
    return [
        parse_duration(f"{name}[{index}]" if in_file else name, value, SHORTEST_REMINDER, FAR_AHEAD)
        for index, value in enumerate(raw)
    ]


def _channels(name: str, raw: object) -> tuple[str, ...]:
    """The channels that take answers: a list (or comma-separated); none given means all."""
    listed = [part.strip() for part in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
        raise ConfigError(name, shorten(raw), f"a list of channels among {', '.join(CHANNELS)}")
    chosen = [channel for channel in listed if channel]
    for channel in chosen:
        if channel not in CHANNELS:
            raise ConfigError(name, raw, f"channels among {', '.join(CHANNELS)}")
    return tuple(sorted(set(chosen)))


# What ``storage.polls.check`` found wrong, and the key it is about.
_FAULTS = (
    ("the question", "question"),
    ("a question", "question"),
    ("a poll has", "option"),
    ("an option", "option"),
    ("two options", "option"),
    ("the closing", "closes"),
    ("results", "results"),
    ("a reminder", "remind_before"),
)


def _at_fault(reason: str, values: dict[str, Any]) -> tuple[str, object]:
    for start, name in _FAULTS:
        if reason.startswith(start):
            raw = values.get(name, "")
            if name == "option" and isinstance(raw, list):
                raw = [labels.get("lv", "") for labels in raw if isinstance(labels, dict)]
            elif isinstance(raw, dict):
                raw = raw.get("lv", "")
            return name, shorten(raw, 60)
    return "poll", "…"


def _spoken(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" * bool(minutes),
    ]
    return " ".join(part for part in parts if part) or f"{seconds}s"


# --- running ------------------------------------------------------------------------------
async def run(config: Config, args: argparse.Namespace, request: Request) -> int:
    command = args.poll_command
    if command == "create":
        assert request.draft is not None
        return await _create(config, request.draft)
    if command == "list":
        return await _list(config)
    if command == "results":
        return await _results(config, args, request.poll_id)
    return await _change(config, command, request)


async def _create(config: Config, draft: PollDraft) -> int:
    from storage import polls

    poll = await polls.create(draft, author="cli")
    size = await polls.audience_size(draft.audience, draft.channels)
    opens = _local(config, poll.opens_at)
    print(poll.id)
    print(f"audience: {size} residents now (invited when it opens, {opens})")
    return 0


def _local(config: Config, moment: datetime) -> str:
    return f"{moment.astimezone(config.municipality.zone):%Y-%m-%d %H:%M}"


async def _list(config: Config) -> int:
    from storage import polls

    rows = await polls.listing()
    if not rows:
        print("no polls")
    for poll in rows:
        ballots = await polls.answers(poll.id)
        question = " ".join(poll.question.get("lv", "").split())
        print(
            f"{poll.id}\t{poll.state}\t{_local(config, poll.opens_at)}\t"
            f"{_local(config, poll.closes_at)}\t{ballots}\t{question}"
        )
    return 0


async def _found(poll_id: int) -> Poll:
    from storage import polls

    poll = await polls.get(poll_id)
    if poll is None:
        raise ConfigError("ID", str(poll_id), "the id of a poll (iesaiste poll list)")
    return poll


async def _results(config: Config, args: argparse.Namespace, poll_id: int) -> int:
    from storage import polls

    poll = await _found(poll_id)
    options = await polls.options_of(poll.id)
    tally = await polls.tally(poll)
    if args.format == "png":
        from bot.core.i18n import translator
        from dialogs.poll_words import chart_png

        tr = translator(config.municipality.default_language)
        image = await asyncio.to_thread(chart_png, tr, poll, options, tally)
        await _write(args.output, image)
        print(f"poll {poll.id}: chart written to {args.output}")
        return 0
    if args.format == "json":
        text = json.dumps(
            results_record(config, poll, options, tally), ensure_ascii=False, indent=1
        )
    elif args.format == "csv":
        text = results_csv(config, options, tally)
    else:
        text = results_text(config, poll, options, tally)
    text = text if text.endswith("\n") else text + "\n"
    if args.output:
        await _write(args.output, text.encode("utf-8"))
        print(f"poll {poll.id}: results written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


async def _write(path: str, data: bytes) -> None:
    try:
        await asyncio.to_thread(Path(path).write_bytes, data)
    except OSError as error:
        raise ConfigError(
            "--output", path, f"a file that can be written ({error.strerror})"
        ) from None


def _percent(count: int, of: int) -> float:
    return round(100 * count / of, 1) if of else 0.0


def _group_name(config: Config, key: str) -> str:
    """A neighbourhood's id as configured; "other" for the small ones summed."""
    return key or OTHER_KEY


def results_record(
    config: Config, poll: Poll, options: list[PollOption], tally: Tally
) -> dict[str, Any]:
    """The results as JSON: counts, percentages of those who answered, turnout (percent of
    the audience, null before it is known), and the breakdowns (neighbourhoods below the
    smallest group summed as "other")."""
    return {
        "poll": poll.id,
        "state": poll.state,
        "question": poll.question.get("lv", ""),
        "multiple": poll.multiple,
        "opens_at": poll.opens_at.astimezone(UTC).isoformat(timespec="seconds"),
        "closes_at": poll.closes_at.astimezone(UTC).isoformat(timespec="seconds"),
        "ballots": tally.ballots,
        "audience": tally.audience,
        "turnout": _percent(tally.ballots, tally.audience) if tally.audience else None,
        "options": [
            {
                "position": option.position,
                "label": option.labels.get("lv", ""),
                "count": count,
                "percent": _percent(count, tally.ballots),
            }
            for option, count in zip(options, tally.counts, strict=True)
        ],
        "by_neighbourhood": {
            _group_name(config, key): {"ballots": n, "counts": counts}
            for key, (n, counts) in _ordered(tally.by_neighbourhood)
        },
        "by_channel": {
            key: {"ballots": n, "counts": counts} for key, (n, counts) in _ordered(tally.by_channel)
        },
    }


def _ordered(groups: dict[str, tuple[int, list[int]]]) -> list[tuple[str, tuple[int, list[int]]]]:
    """Largest group first, "other" last: the order a reader looks for them in."""
    return sorted(groups.items(), key=lambda item: (item[0] == "", -item[1][0], item[0]))


def results_csv(config: Config, options: list[PollOption], tally: Tally) -> str:
    """One row per option and group: everyone, then each neighbourhood, then each channel."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "key", "ballots", "position", "label", "count", "percent"])
    groups: list[tuple[str, str, int, list[int]]] = [("all", "", tally.ballots, tally.counts)]
    for kind, found in (("neighbourhood", tally.by_neighbourhood), ("channel", tally.by_channel)):
        for key, (n, counts) in _ordered(found):
            groups.append(
                (kind, _group_name(config, key) if kind == "neighbourhood" else key, n, counts)
            )
    for kind, key, n, counts in groups:
        for option, count in zip(options, counts, strict=True):
            label = option.labels.get("lv", "")
            writer.writerow([kind, key, n, option.position, label, count, _percent(count, n)])
    return out.getvalue()


def results_text(config: Config, poll: Poll, options: list[PollOption], tally: Tally) -> str:
    """For the operator's eyes: the question, a line per option, turnout, the breakdowns."""
    question = " ".join(poll.question.get("lv", "").split())
    lines = [
        f"poll {poll.id} ({poll.state}, {_local(config, poll.opens_at)} – "
        f"{_local(config, poll.closes_at)}): {question}"
    ]
    for option, count in zip(options, tally.counts, strict=True):
        label = option.labels.get("lv", "")
        lines.append(f"{label}\t{count}\t{_percent(count, tally.ballots)} %")
    turnout = f", turnout {_percent(tally.ballots, tally.audience)} %" if tally.audience else ""
    lines.append(f"{tally.ballots} answered of an audience of {tally.audience}{turnout}")
    for title, found in (
        ("by neighbourhood", tally.by_neighbourhood),
        ("by channel", tally.by_channel),
    ):
        if found:
            lines.append(f"{title}:")
        for key, (n, counts) in _ordered(found):
            name = _group_name(config, key) if title == "by neighbourhood" else key
            shares = ", ".join(f"{c}" for c in counts)
            lines.append(f"{name}\t{n}\t{shares}")
    return "\n".join(lines)


async def _change(config: Config, command: str, request: Request) -> int:
    """close, extend, cancel: each PollError is one line saying what the poll is instead."""
    from storage import polls
    from storage.polls import PollError

    poll_id = request.poll_id
    try:
        if command == "close":
            poll = await polls.close(poll_id, actor="cli")
            ballots = await polls.answers(poll.id)
            print(f"poll {poll.id} closed with {ballots} ballots; the results go to its staff")
        elif command == "extend":
            assert request.until is not None
            poll = await polls.extend(poll_id, request.until, actor="cli")
            print(f"poll {poll.id} now closes at {_local(config, poll.closes_at)}")
        else:
            poll = await polls.cancel(poll_id, actor="cli")
            print(f"poll {poll.id} cancelled")
    except PollError as error:
        raise _refused(config, command, request, error) from None
    return 0


def _refused(config: Config, command: str, request: Request, error: PollError) -> ConfigError:
    poll_id = request.poll_id
    reason, shown = error.reason, str(poll_id)
    if reason == "missing":
        return ConfigError("ID", shown, "the id of a poll (iesaiste poll list)")
    if reason == "time":
        opens = _local(config, error.poll.opens_at) if error.poll else "?"
        until = _local(config, request.until) if request.until else ""
        return ConfigError("--until", until, f"a time after the poll's opening ({opens})")
    if command == "close" and reason == "not_open":
        return ConfigError(
            "ID", shown, f"an open poll (it has not opened: iesaiste poll cancel {poll_id})"
        )
    if command == "cancel" and reason == "open":
        return ConfigError(
            "ID", shown, f"a poll that has not opened (it is open: iesaiste poll close {poll_id})"
        )
    wanted = {"close": "an open poll", "extend": "a poll not closed", "cancel": "a poll not opened"}
    return ConfigError("ID", shown, f"{wanted[command]} (it is {reason})")
