"""Staff compose a quick poll in the chat: the question and 2–10 options per language,
one answer or several, the audience, the opening and closing times, reminders, when
residents see the results, which channels take answers, whether voters hear the final
results; a preview shows the poll as a resident sees it with the audience size, then
Create.

As with an announcement, the draft is one card that updates in place, and each change
is its own step whose data is in the database, so a draft survives a restart or another
worker. ``storage.polls.check`` has the last word: a draft it refuses goes back to the
step at fault with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.config_values import ConfigError
from bot.core.i18n import LANGUAGE_NAMES, LANGUAGES, N_
from bot.core.messages import CHOSEN, Button, Reply
from bot.core.proposals_config import parse_duration
from dialogs import menu, poll_words
from dialogs.announce import FAR_AHEAD, TIME_PASSED, actor, audience_label, snippet
from dialogs.audience_steps import add_audience_steps
from dialogs.context import Ctx
from dialogs.engine import Dialog, Step, ask_again, begin, enter
from dialogs.moments import UnreadableTime, parse_local
from dialogs.pickers import BACK, DONE, SKIP, rows
from storage import polls
from storage.models import Poll, PollOption
from storage.polls import COMPOSERS, MAX_OPTIONS, MIN_OPTIONS, OPTION_LENGTH, QUESTION_LENGTH

dialog = Dialog("pc", roles=frozenset(COMPOSERS))

CLOSING_DAYS = (1, 3, 7)  # the closing-time buttons: so many days after the opening
DEFAULT_DAYS = 7
REMINDER_BUTTONS = (24 * 3600, 2 * 3600)  # "24 h before", "2 h before"
MAX_REMINDERS = 5
# Channels whose accounts are the platform's own; the web chat's are cookies, so one
# person can answer from several browsers.
PLATFORM_CHANNELS = ("telegram", "messenger")

UNREADABLE_TIME = N_("I could not read that time. Please write it like 1.12.2026 10:00.")
TOO_FAR = N_("That is more than a year ahead. Please give an earlier time.")
DISCARDED = N_("The draft is discarded; no poll was made.")


def _now() -> datetime:
    return datetime.now(UTC)


async def start(ctx: Ctx) -> None:
    draft: dict[str, Any] = {
        "question": {},
        "options": [],
        "multiple": False,
        "audience": {"kind": "all", "keys": []},
        "opens": "",
        "closes": "",
        "days": DEFAULT_DAYS,
        "reminders": [],
        "results": "after_answer",
        "platform_only": False,
        "tell_voters": False,
    }
    await begin(ctx, question, {**draft, "editing": "lv"})


# --- the draft in the dialog's data -----------------------------------------------------
def opening(data: dict[str, Any], now: datetime) -> datetime:
    return datetime.fromisoformat(data["opens"]) if data.get("opens") else now


def closing(data: dict[str, Any], now: datetime) -> datetime:
    """A typed closing time, or so many days after the opening (the buttons)."""
    if data.get("closes"):
        return datetime.fromisoformat(data["closes"])
    return opening(data, now) + timedelta(days=int(data.get("days") or DEFAULT_DAYS))


def draft_of(data: dict[str, Any], now: datetime) -> polls.PollDraft:
    return polls.PollDraft(
        question={k: v for k, v in data.get("question", {}).items() if v},
        options=[dict(labels) for labels in data.get("options", [])],
        opens_at=opening(data, now),
        closes_at=closing(data, now),
        multiple=bool(data.get("multiple")),
        audience=data.get("audience") or {"kind": "all", "keys": []},
        remind_before=tuple(int(s) for s in data.get("reminders", [])),
        results=str(data.get("results") or "after_answer"),
        channels=PLATFORM_CHANNELS if data.get("platform_only") else (),
        tell_voters=bool(data.get("tell_voters")),
    )


def span(ctx: Ctx, seconds: int) -> str:
    """A reminder's distance from the closing, in the largest whole unit."""
    if seconds % 86_400 == 0:
        return ctx.ngettext("{n} day", "{n} days", seconds // 86_400)
    if seconds % 3600 == 0:
        return ctx.ngettext("{n} h", "{n} h", seconds // 3600)
    if seconds % 60 == 0:
        return ctx.ngettext("{n} min", "{n} min", seconds // 60)
    return ctx.ngettext("{n} s", "{n} s", seconds)


def _moment(ctx: Ctx, at: datetime) -> str:
    return ctx.tr.moment(at, ctx.config.municipality.zone)


def opens_label(ctx: Ctx, data: dict[str, Any]) -> str:
    if not data.get("opens"):
        return ctx._("as soon as you create it")
    return _moment(ctx, datetime.fromisoformat(data["opens"]))


def closes_label(ctx: Ctx, data: dict[str, Any]) -> str:
    if data.get("closes"):
        return _moment(ctx, datetime.fromisoformat(data["closes"]))
    days = int(data.get("days") or DEFAULT_DAYS)
    return ctx.ngettext(
        "{count} day after it opens", "{count} days after it opens", days, count=ctx.tr.number(days)
    )


def summary_lines(ctx: Ctx, data: dict[str, Any], count: int) -> list[str]:
    """The settings of a draft, for the card and the preview."""
    lines = [
        ctx._("Several answers allowed") if data.get("multiple") else ctx._("One answer"),
        ctx.ngettext(
            "Audience: {who} ({count} resident now)",
            "Audience: {who} ({count} residents now)",
            count,
            who=audience_label(ctx, data.get("audience", {})),
            count=ctx.tr.number(count),
        ),
        ctx._("Channels: Telegram and Messenger only (not the web chat)")
        if data.get("platform_only")
        else ctx._("Channels: all"),
        ctx._("Opens: {when}", when=opens_label(ctx, data)),
        ctx._("Closes: {when}", when=closes_label(ctx, data)),
    ]
    reminders = sorted((int(s) for s in data.get("reminders", [])), reverse=True)
    if reminders:
        spans = ", ".join(span(ctx, s) for s in reminders)
        lines.append(ctx._("Reminders before closing: {spans}", spans=spans))
    else:
        lines.append(ctx._("Reminders: none"))
    if data.get("results") == "at_close":
        lines.append(ctx._("Results: residents see them when it closes"))
    else:
        lines.append(ctx._("Results: residents see them after answering"))
    if data.get("tell_voters"):
        lines.append(ctx._("At closing the voters get the results"))
    else:
        lines.append(ctx._("At closing only staff get the results"))
    return lines


# --- the draft card ---------------------------------------------------------------------
async def render_card(ctx: Ctx) -> Reply:
    data = ctx.data
    texts: dict[str, str] = data.get("question", {})
    lines = [ctx._("New poll"), "", ctx._("Question:")]
    for code in LANGUAGES:
        name = LANGUAGE_NAMES[code]
        if texts.get(code):
            lines.append(f"{name}: {snippet(texts[code])}")
        elif code != "lv":
            lines.append(ctx._("{language}: none (they get the Latvian text)", language=name))
    lines.append("")
    options = data.get("options", [])
    if options:
        lines.append(ctx._("Options:"))
        lines += [_option_line(ctx, index, labels) for index, labels in enumerate(options)]
    else:
        lines.append(
            ctx._("Options: none yet (add {low} to {high})", low=MIN_OPTIONS, high=MAX_OPTIONS)
        )
    lines.append("")
    count = await polls.audience_size(data.get("audience", {}), draft_of(data, _now()).channels)
    lines += summary_lines(ctx, data, count)
    # TRANSLATORS: a button label, at most 20 characters.
    options_ = ctx._("Options")
    # TRANSLATORS: a button label, at most 20 characters.
    audience_ = ctx._("Audience")
    # TRANSLATORS: a button label, at most 20 characters: the poll's opening time.
    opens_ = ctx._("Opening")
    # TRANSLATORS: a button label, at most 20 characters: the poll's closing time.
    closes_ = ctx._("Closing")
    # TRANSLATORS: a button label, at most 20 characters.
    reminders_ = ctx._("Reminders")
    # TRANSLATORS: a button label, at most 20 characters: answers, results, channels.
    settings_ = ctx._("Settings")
    # TRANSLATORS: a button label, at most 20 characters.
    preview_ = ctx._("Preview and create")
    # TRANSLATORS: a button label, at most 20 characters.
    discard = ctx._("Discard the draft")
    buttons = [
        [card.button(LANGUAGE_NAMES[code], f"q-{code}") for code in LANGUAGES],
        [card.button(options_, "options"), card.button(audience_, "audience")],
        [card.button(opens_, "opens"), card.button(closes_, "closes")],
        [card.button(reminders_, "reminders"), card.button(settings_, "settings")],
        [card.button(preview_, "preview")],
        [card.button(discard, "discard")],
    ]
    return Reply("\n".join(lines), buttons, keep_apart=True)


def _option_line(ctx: Ctx, index: int, labels: dict[str, str]) -> str:
    others = [LANGUAGE_NAMES[code] for code in LANGUAGES if code != "lv" and labels.get(code)]
    line = f"{index + 1}. {labels.get('lv', '')}"
    return f"{line} ({', '.join(others)})" if others else line


async def on_card(ctx: Ctx, value: str) -> None:
    if value.startswith("q-") and value[2:] in LANGUAGES:
        ctx.data["editing"] = value[2:]
        await enter(ctx, question)
    elif value == "options":
        await enter(ctx, options)
    elif value == "audience":
        await enter(ctx, audience)
    elif value == "opens":
        await enter(ctx, opens)
    elif value == "closes":
        await enter(ctx, closes)
    elif value == "reminders":
        await enter(ctx, reminders)
    elif value == "settings":
        await enter(ctx, settings)
    elif value == "preview":
        await show_preview(ctx)
    elif value == "discard":
        ctx.answer(ctx._(DISCARDED))
        await menu.show(ctx)
    else:
        await ask_again(ctx, card)


card = dialog.step("card", render_card, on_button=on_card)


# --- the question -----------------------------------------------------------------------
async def render_question(ctx: Ctx) -> Reply:
    code = ctx.data.get("editing", "lv")
    texts = ctx.data.get("question", {})
    if code == "lv":
        prompt = ctx._(
            "Write the poll's question in Latvian, as residents will read it (at most "
            "{n} characters). Residents whose language has no question of its own get this "
            "one.",
            n=QUESTION_LENGTH,
        )
    else:
        prompt = ctx._(
            "Write the question for residents who chose {language}.",
            language=LANGUAGE_NAMES[code],
        )
    buttons = []
    if texts.get(code) and code != "lv":
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([question.button(ctx._("Remove this text"), "remove")])
    if texts.get("lv"):
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([question.button(ctx._("Back"), BACK)])
    hint = ctx._("/cancel stops and discards the draft.")
    return Reply(f"{prompt}\n\n{hint}", buttons)


async def on_question(ctx: Ctx, value: str) -> None:
    text = value.strip()
    if len(text) > QUESTION_LENGTH:
        await ask_again(
            ctx,
            question,
            ctx._(
                "That is {length} characters; a question has at most {n}. Please shorten it.",
                length=len(text),
                n=QUESTION_LENGTH,
            ),
        )
        return
    if not text:
        await ask_again(ctx, question)
        return
    ctx.data.setdefault("question", {})[ctx.data.get("editing", "lv")] = text
    await enter(ctx, card)


async def on_question_button(ctx: Ctx, value: str) -> None:
    code = ctx.data.get("editing", "lv")
    if value == "remove" and code != "lv":
        ctx.data.get("question", {}).pop(code, None)
    elif value != BACK or not ctx.data.get("question", {}).get("lv"):
        await ask_again(ctx, question)
        return
    await enter(ctx, card)


question = dialog.step(
    "question", render_question, on_button=on_question_button, on_text=on_question
)


# --- the options ------------------------------------------------------------------------
async def render_options(ctx: Ctx) -> Reply:
    listed = ctx.data.get("options", [])
    lines = [
        ctx._(
            "The options, in the order residents see them ({low} to {high}):",
            low=MIN_OPTIONS,
            high=MAX_OPTIONS,
        )
    ]
    lines += [_option_line(ctx, index, labels) for index, labels in enumerate(listed)]
    if not listed:
        lines.append(ctx._("none yet"))
    buttons: list[list[Button]] = []
    if len(listed) < MAX_OPTIONS:
        # TRANSLATORS: a button label, at most 20 characters.
        buttons.append([options.button(ctx._("Add an option"), "add")])
    # TRANSLATORS: a button label, at most 20 characters with the number.
    removals = [options.button(ctx._("Remove {n}", n=i + 1), f"rm{i}") for i in range(len(listed))]
    buttons += rows(removals, 3)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([options.button(ctx._("Back"), BACK)])
    return Reply("\n".join(lines), buttons, pinned_rows=1)


async def on_options(ctx: Ctx, value: str) -> None:
    listed = ctx.data.setdefault("options", [])
    if value == "add" and len(listed) < MAX_OPTIONS:
        ctx.data["option"] = {"index": len(listed), "lang": "lv"}
        await enter(ctx, option)
    elif value.startswith("rm") and value[2:].isdigit() and int(value[2:]) < len(listed):
        del listed[int(value[2:])]
        await enter(ctx, options, replace=True)
    elif value == BACK:
        await enter(ctx, card)
    else:
        await ask_again(ctx, options)


options = dialog.step("options", render_options, on_button=on_options)


async def render_option(ctx: Ctx) -> Reply:
    editing = ctx.data.get("option") or {"index": 0, "lang": "lv"}
    code = editing["lang"]
    if code == "lv":
        prompt = ctx._(
            "Write option {n} in Latvian (at most {length} characters).",
            n=editing["index"] + 1,
            length=OPTION_LENGTH,
        )
        # TRANSLATORS: a button label, at most 20 characters.
        buttons = [[option.button(ctx._("Back"), BACK)]]
    else:
        latvian = ctx.data["options"][editing["index"]]["lv"]
        prompt = ctx._(
            "The same option for residents who chose {language}: «{option}». Write it, or "
            "press Skip and they get the Latvian one.",
            language=LANGUAGE_NAMES[code],
            option=latvian,
        )
        # TRANSLATORS: a button label, at most 20 characters.
        buttons = [[option.button(ctx._("Skip"), SKIP)]]
    return Reply(prompt, buttons)


def _next_language(code: str) -> str | None:
    later = LANGUAGES[LANGUAGES.index(code) + 1 :]
    return later[0] if later else None


async def on_option_text(ctx: Ctx, value: str) -> None:
    editing = ctx.data.get("option")
    listed = ctx.data.setdefault("options", [])
    if not editing or editing["index"] > len(listed) or editing["index"] >= MAX_OPTIONS:
        await enter(ctx, options)
        return
    text = value.strip()
    if len(text) > OPTION_LENGTH:
        await ask_again(
            ctx,
            option,
            ctx._(
                "That is {length} characters; an option has at most {n}. Please shorten it.",
                length=len(text),
                n=OPTION_LENGTH,
            ),
        )
        return
    code = editing["lang"]
    if code == "lv":
        taken = {labels["lv"].casefold() for labels in listed}
        if not text or text.casefold() in taken:
            await ask_again(ctx, option, N_("There is already an option with that text."))
            return
        listed.append({"lv": text})
    elif text:
        listed[editing["index"]][code] = text
    await _after_option_language(ctx, editing)


async def on_option_button(ctx: Ctx, value: str) -> None:
    editing = ctx.data.get("option")
    if not editing:
        await enter(ctx, options)
    elif value == BACK and editing["lang"] == "lv":
        del ctx.data["option"]
        await enter(ctx, options)
    elif value == SKIP and editing["lang"] != "lv":
        await _after_option_language(ctx, editing)
    else:
        await ask_again(ctx, option)


async def _after_option_language(ctx: Ctx, editing: dict[str, Any]) -> None:
    """Ask the option in the next language; after the last one, back to the list."""
    following = _next_language(editing["lang"])
    if following is None:
        del ctx.data["option"]
        await enter(ctx, options)
        return
    ctx.data["option"] = {"index": editing["index"], "lang": following}
    await enter(ctx, option)


option = dialog.step("option", render_option, on_button=on_option_button, on_text=on_option_text)


# --- the audience -----------------------------------------------------------------------
WHO = N_("Who is the poll for?")
audience, pick = add_audience_steps(dialog, WHO, lambda: card)


# --- opening and closing ----------------------------------------------------------------
def _read_time(ctx: Ctx, value: str) -> datetime | str:
    """The moment typed, or the reason it cannot be used (a message to translate)."""
    now = _now()
    try:
        moment = parse_local(value, now, ctx.config.municipality.zone)
    except UnreadableTime:
        return UNREADABLE_TIME
    if moment <= now:
        return TIME_PASSED
    if moment - now > FAR_AHEAD:
        return TOO_FAR
    return moment


def _time_prompt(ctx: Ctx, question_: str) -> str:
    return ctx._(
        "{question} Write a date and time such as 1.12.2026 10:00, or only a time such "
        "as 10:00 (then the next 10:00 to come). Now it is {now}.",
        question=question_,
        now=_moment(ctx, _now()),
    )


async def render_opens(ctx: Ctx) -> Reply:
    prompt = _time_prompt(ctx, ctx._("When should the poll open?"))
    # TRANSLATORS: a button label, at most 20 characters.
    at_once = ctx._("When I create it")
    # TRANSLATORS: a button label, at most 20 characters.
    back = ctx._("Back")
    return Reply(prompt, [[opens.button(at_once, "now"), opens.button(back, BACK)]])


async def on_opens_button(ctx: Ctx, value: str) -> None:
    if value == "now":
        ctx.data["opens"] = ""
    elif value != BACK:
        await ask_again(ctx, opens)
        return
    await enter(ctx, card)


async def on_opens_text(ctx: Ctx, value: str) -> None:
    moment = _read_time(ctx, value)
    if isinstance(moment, str):
        await ask_again(ctx, opens, moment)
        return
    ctx.data["opens"] = moment.isoformat()
    await enter(ctx, card)


opens = dialog.step("opens", render_opens, on_button=on_opens_button, on_text=on_opens_text)


async def render_closes(ctx: Ctx) -> Reply:
    prompt = _time_prompt(ctx, ctx._("When should the poll close?"))
    labels = {
        # TRANSLATORS: a button label, at most 20 characters: the poll closes a day after
        # it opens.
        1: ctx._("1 day after opening"),
        # TRANSLATORS: a button label, at most 20 characters.
        3: ctx._("3 days after"),
        # TRANSLATORS: a button label, at most 20 characters.
        7: ctx._("7 days after"),
    }
    buttons = [[closes.button(labels[days], f"d{days}") for days in CLOSING_DAYS]]
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([closes.button(ctx._("Back"), BACK)])
    return Reply(prompt, buttons)


async def on_closes_button(ctx: Ctx, value: str) -> None:
    if value.startswith("d") and value[1:].isdigit() and int(value[1:]) in CLOSING_DAYS:
        ctx.data.update(closes="", days=int(value[1:]))
    elif value != BACK:
        await ask_again(ctx, closes)
        return
    await enter(ctx, card)


async def on_closes_text(ctx: Ctx, value: str) -> None:
    moment = _read_time(ctx, value)
    if isinstance(moment, str):
        await ask_again(ctx, closes, moment)
        return
    if moment <= opening(ctx.data, _now()):
        await ask_again(ctx, closes, N_("The poll must close after it opens."))
        return
    ctx.data["closes"] = moment.isoformat()
    await enter(ctx, card)


closes = dialog.step("closes", render_closes, on_button=on_closes_button, on_text=on_closes_text)


# --- reminders --------------------------------------------------------------------------
async def render_reminders(ctx: Ctx) -> Reply:
    chosen = sorted((int(s) for s in ctx.data.get("reminders", [])), reverse=True)
    lines = [
        ctx._(
            "Reminders go to those who have not answered yet, before the poll closes. "
            "Tap one to add it, or write another such as 12h, 90m or 3d."
        )
    ]
    if chosen:
        spans = ", ".join(span(ctx, s) for s in chosen)
        lines.append(ctx._("Reminders before closing: {spans}", spans=spans))
    else:
        lines.append(ctx._("Reminders: none"))
    buttons: list[list[Button]] = []
    if len(chosen) < MAX_REMINDERS:
        labels = {
            # TRANSLATORS: a button label, at most 20 characters: a reminder a day before
            # the poll closes.
            24 * 3600: ctx._("24 h before"),
            # TRANSLATORS: a button label, at most 20 characters.
            2 * 3600: ctx._("2 h before"),
        }
        buttons.append(
            [reminders.button(labels[s], f"add{s}") for s in REMINDER_BUTTONS if s not in chosen]
        )
    removals = [
        # TRANSLATORS: a button label, at most 20 characters: removes the reminder so long
        # before the closing ("Remove 24 h").
        reminders.button(ctx._("Remove {span}", span=span(ctx, s)), f"rm{s}")
        for s in chosen
    ]
    buttons += rows(removals, 2)
    # TRANSLATORS: a button label, at most 20 characters.
    buttons.append([reminders.button(ctx._("Back"), BACK)])
    return Reply("\n".join(lines), [row for row in buttons if row], pinned_rows=1)


def _add_reminder(ctx: Ctx, seconds: int) -> str | None:
    """Add a reminder; the reason it cannot be, or None."""
    chosen = [int(s) for s in ctx.data.get("reminders", [])]
    if seconds in chosen:
        return N_("That reminder is there already.")
    if len(chosen) >= MAX_REMINDERS:
        return N_("A poll has at most 5 reminders.")
    now = _now()
    if seconds >= (closing(ctx.data, now) - opening(ctx.data, now)).total_seconds():
        return N_("That reminder would come before the poll opens.")
    ctx.data["reminders"] = [*chosen, seconds]
    return None


async def on_reminders(ctx: Ctx, value: str) -> None:
    chosen = [int(s) for s in ctx.data.get("reminders", [])]
    digits = value[3:] if value.startswith("add") else value[2:]
    if value == BACK:
        await enter(ctx, card)
    elif value.startswith("add") and digits.isdigit() and int(digits) in REMINDER_BUTTONS:
        reason = _add_reminder(ctx, int(digits))
        if reason:
            await ask_again(ctx, reminders, reason)
        else:
            await enter(ctx, reminders, replace=True)
    elif value.startswith("rm") and digits.isdigit() and int(digits) in chosen:
        ctx.data["reminders"] = [s for s in chosen if s != int(digits)]
        await enter(ctx, reminders, replace=True)
    else:
        await ask_again(ctx, reminders)


async def on_reminder_text(ctx: Ctx, value: str) -> None:
    try:
        seconds = int(
            parse_duration(
                "reminder", value.strip(), timedelta(minutes=1), FAR_AHEAD
            ).total_seconds()
        )
    except ConfigError:
        await ask_again(
            ctx, reminders, N_("I could not read that. Please write it like 12h, 90m or 3d.")
        )
        return
    reason = _add_reminder(ctx, seconds)
    if reason:
        await ask_again(ctx, reminders, reason)
        return
    await enter(ctx, reminders)


reminders = dialog.step(
    "reminders", render_reminders, on_button=on_reminders, on_text=on_reminder_text
)


# --- settings: one answer or several, results, channels, voters -------------------------
SETTINGS = {
    # value: (data key, the value it sets)
    "one": ("multiple", False),
    "many": ("multiple", True),
    "after": ("results", "after_answer"),
    "close": ("results", "at_close"),
    "all": ("platform_only", False),
    "platform": ("platform_only", True),
    "tell": ("tell_voters", True),
    "quiet": ("tell_voters", False),
}


async def render_settings(ctx: Ctx) -> Reply:
    data = ctx.data
    prompt = ctx._(
        "Tap to choose:\n"
        "- one answer per resident, or several;\n"
        "- residents see the results after answering, or only when the poll closes;\n"
        "- answers from every channel, or only from Telegram and Messenger accounts (one "
        "person can answer from several browsers on the web chat);\n"
        "- at closing the voters get the results too, or only staff."
    )
    labels = {
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it).
        "one": ctx._("One answer"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it).
        "many": ctx._("Several answers"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it):
        # residents see the results after answering.
        "after": ctx._("Results at once"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it):
        # residents see the results when the poll closes.
        "close": ctx._("Results at closing"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it).
        "all": ctx._("All channels"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it):
        # only Telegram and Messenger accounts may answer.
        "platform": ctx._("Platform accounts"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it):
        # the voters get the final results.
        "tell": ctx._("Tell voters"),
        # TRANSLATORS: a button label, at most 18 characters (a mark may come before it):
        # only staff get the final results.
        "quiet": ctx._("Only staff told"),
    }

    def mark(value: str) -> Button:
        key, wanted = SETTINGS[value]
        chosen = (
            bool(data.get(key)) == wanted if isinstance(wanted, bool) else data.get(key) == wanted
        )
        return settings.button((CHOSEN if chosen else "") + labels[value], value)

    buttons = [
        [mark("one"), mark("many")],
        [mark("after"), mark("close")],
        [mark("all"), mark("platform")],
        [mark("tell"), mark("quiet")],
        # TRANSLATORS: a button label, at most 20 characters.
        [settings.button(ctx._("Done"), DONE)],
    ]
    return Reply(prompt, buttons, keep_apart=True, pinned_rows=1)


async def on_settings(ctx: Ctx, value: str) -> None:
    if value == DONE:
        await enter(ctx, card)
    elif value in SETTINGS:
        key, wanted = SETTINGS[value]
        ctx.data[key] = wanted
        await enter(ctx, settings, replace=True)
    else:
        await ask_again(ctx, settings)


settings = dialog.step("settings", render_settings, on_button=on_settings)


# --- preview and create -----------------------------------------------------------------
def sample(data: dict[str, Any], now: datetime) -> tuple[Poll, list[PollOption]]:
    """The draft as the rows a resident's message is drawn from (not saved)."""
    draft = draft_of(data, now)
    poll = Poll(
        id=0,
        author="",
        question=draft.question,
        multiple=draft.multiple,
        audience=draft.audience,
        channels=list(draft.channels),
        opens_at=draft.opens_at,
        closes_at=draft.closes_at,
        results=draft.results,
        tell_voters=draft.tell_voters,
        state="open",
    )
    rows_ = [PollOption(position=i, labels=labels) for i, labels in enumerate(draft.options)]
    return poll, rows_


async def _refused(ctx: Ctx, now: datetime) -> bool:
    """Send a draft that cannot be saved back to the step at fault, with why."""
    data = ctx.data
    draft = draft_of(data, now)
    if not draft.question.get("lv"):
        ctx.data["editing"] = "lv"
        await _go_back(ctx, question, ctx._("The question in Latvian is still missing."))
        return True
    if len(draft.options) < MIN_OPTIONS:
        await _go_back(ctx, options, ctx._("A poll needs at least {n} options.", n=MIN_OPTIONS))
        return True
    if draft.opens_at < now - timedelta(minutes=1):
        await _go_back(ctx, opens, ctx._(TIME_PASSED))
        return True
    if draft.closes_at <= max(draft.opens_at, now):
        await _go_back(ctx, closes, ctx._("The poll must close after it opens."))
        return True
    span_ = (draft.closes_at - draft.opens_at).total_seconds()
    if any(seconds >= span_ for seconds in draft.remind_before):
        await _go_back(ctx, reminders, ctx._("That reminder would come before the poll opens."))
        return True
    reason = polls.check(draft, now)
    if reason is not None:  # storage's own rule, worded for staff in its plain English
        await _go_back(ctx, card, ctx._("The poll cannot be made: {reason}.", reason=reason))
        return True
    return False


async def _go_back(ctx: Ctx, step: Step, notice: str) -> None:
    ctx.answer(notice)
    await enter(ctx, step)


async def show_preview(ctx: Ctx) -> None:
    """The poll as a resident with the staff member's language sees it (the Latvian text
    where that language has none), then the summary to confirm."""
    now = _now()
    if await _refused(ctx, now):
        return
    poll, rows_ = sample(ctx.data, now)
    shown = poll_words.poll_reply(
        ctx.tr,
        poll,
        rows_,
        polls.BallotState(),
        zone=ctx.config.municipality.zone,
        label_length=ctx.capabilities.label_length,
    )
    await enter(ctx, preview)
    # The sample's buttons are the preview's own: a tap on one only says what it is.
    nonce_tagged = ctx.replies[-1].all_buttons()[0].payload.rpartition(":")[0]
    buttons = [[Button(b.label, f"{nonce_tagged}:sample") for b in row] for row in shown.buttons]
    ctx.replies.insert(
        len(ctx.replies) - 1, Reply(shown.text, buttons, image=shown.image, keep_apart=True)
    )


async def render_preview(ctx: Ctx) -> Reply:
    now = _now()
    data = ctx.data
    draft = draft_of(data, now)
    count = await polls.audience_size(draft.audience, draft.channels)
    lines = [ctx._("Above is the poll as residents will see it, each in their language.")]
    lines += summary_lines(ctx, data, count)
    if count == 0:
        lines.append(ctx._("Nobody matches this audience yet."))
    # TRANSLATORS: a button label, at most 20 characters.
    create_ = ctx._("Create the poll")
    # TRANSLATORS: a button label, at most 20 characters.
    edit = ctx._("Edit")
    # TRANSLATORS: a button label, at most 20 characters.
    discard = ctx._("Discard the draft")
    buttons = [
        [preview.button(create_, "create")],
        [preview.button(edit, "edit"), preview.button(discard, "discard")],
    ]
    return Reply("\n".join(lines), buttons)


async def on_preview(ctx: Ctx, value: str) -> None:
    if value == "edit":
        await enter(ctx, card)
    elif value == "discard":
        ctx.answer(ctx._(DISCARDED))
        await menu.show(ctx)
    elif value == "create":
        await create(ctx)
    elif value == "sample":
        await ask_again(ctx, preview, N_("That is the preview: taps count once the poll is open."))
    else:
        await ask_again(ctx, preview)


async def create(ctx: Ctx) -> None:
    now = _now()
    if await _refused(ctx, now):
        return
    poll = await polls.create(draft_of(ctx.data, now), author=actor(ctx))
    ctx.clear_state()
    zone = ctx.config.municipality.zone
    if poll.opens_at <= now + timedelta(seconds=30):
        text = ctx._(
            "Poll #{id} is made and opens now; it closes at {closes}. /polls shows its "
            "results as they come.",
            id=poll.id,
            closes=ctx.tr.moment(poll.closes_at, zone),
        )
    else:
        text = ctx._(
            "Poll #{id} is made: it opens at {opens} and closes at {closes}. /polls shows "
            "it; you can cancel it there until it opens.",
            id=poll.id,
            opens=ctx.tr.moment(poll.opens_at, zone),
            closes=ctx.tr.moment(poll.closes_at, zone),
        )
    ctx.answer(Reply(text, replace=True))


preview = dialog.step("preview", render_preview, on_button=on_preview)
