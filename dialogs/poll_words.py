"""The words of a quick poll that every part shares: the poll message a resident sees
(in a push, after a tap, in their list, in the staff's preview), the results lines, the
breakdowns and the chart.

One message model on every channel: the question, one button per option and, for
multiple choice, a Done button. Where an option's label is longer than the channel's
button shows whole, the options are numbered in the text and the buttons carry the
numbers, so no label is ever cut to look like another.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.core.charts import bar_chart
from bot.core.config import Named
from bot.core.i18n import N_, Translator, localized
from bot.core.messages import CHOSEN, LABEL_LENGTH, Button, Reply
from storage import media
from storage.models import Poll, PollOption
from storage.polls import OTHER, BallotState, Tally

POLL = "pl"  # pl:{poll}:{position}, pl:{poll}:done, pl:{poll}:results
DONE = "done"
RESULTS = "results"

CHANNEL_NAMES = {"telegram": "Telegram", "webchat": N_("web chat"), "messenger": "Messenger"}


def payload(poll_id: int, value: int | str) -> str:
    return f"{POLL}:{poll_id}:{value}"


def question(poll: Poll, language: str) -> str:
    return localized(poll.question, language)


def label(option: PollOption, language: str) -> str:
    return localized(option.labels, language)


def numbered(options: list[PollOption], language: str, label_length: int) -> bool:
    """Whether the options go numbered in the text: some label does not fit a button whole
    with the mark of a chosen one."""
    room = label_length - len(CHOSEN)
    return any(len(label(option, language)) > room for option in options)


def _answer_line(tr: Translator, options: list[PollOption], bits: int) -> str:
    chosen = [label(o, tr.language) for o in options if bits & (1 << o.position)]
    return tr.gettext("Your answer: {answer}", answer=", ".join(chosen))


def poll_reply(
    tr: Translator,
    poll: Poll,
    options: list[PollOption],
    state: BallotState,
    *,
    zone: ZoneInfo,
    label_length: int = LABEL_LENGTH,
    tally: Tally | None = None,
) -> Reply:
    """The poll as a resident sees it now, with their answer so far; with ``tally``, the
    results under it. A closed (or cancelled) poll shows no option buttons."""
    language = tr.language
    lines = [question(poll, language)]
    by_number = numbered(options, language, label_length)
    if by_number:
        lines.append("")
        lines.extend(f"{o.position + 1}. {label(o, language)}" for o in options)
    lines.append("")
    live = poll.state == "open"
    if poll.state == "closed":
        lines.append(tr.gettext("This poll is closed."))
    elif poll.state == "cancelled":
        lines.append(tr.gettext("This poll was cancelled."))
    elif poll.state == "scheduled":
        lines.append(tr.gettext("Opens on {moment}.", moment=tr.moment(poll.opens_at, zone)))
    else:
        lines.append(tr.gettext("Open until {moment}.", moment=tr.moment(poll.closes_at, zone)))
        if poll.multiple:
            lines.append(tr.gettext("Tap every answer you choose, then press Done."))
    if state.answered:
        lines.append(_answer_line(tr, options, state.choices))
    if poll.multiple and live and state.draft != state.choices and state.draft:
        lines.append(tr.gettext("Ticked, not yet counted: press Done."))
    if tally is not None:
        lines.append("")
        lines.extend(results_lines(tr, poll, options, tally))
    buttons: list[list[Button]] = []
    if live:
        marks = state.draft if poll.multiple else state.choices
        for option in options:
            text = str(option.position + 1) if by_number else label(option, language)
            mark = CHOSEN if marks & (1 << option.position) else ""
            buttons.append([Button(mark + text, payload(poll.id, option.position))])
        if by_number:  # short buttons: several to a row
            flat = [row[0] for row in buttons]
            buttons = [flat[i : i + 5] for i in range(0, len(flat), 5)]
        if poll.multiple:
            # TRANSLATORS: a button label, at most 20 characters: counts the ticked answers.
            buttons.append([Button(tr.gettext("Done"), payload(poll.id, DONE))])
    return Reply("\n".join(lines), buttons, keep_apart=live, pinned_rows=1 if poll.multiple else 0)


def results_lines(tr: Translator, poll: Poll, options: list[PollOption], tally: Tally) -> list[str]:
    """Each option's count and share of those who answered, in the poll's order, then how
    many answered and the turnout of the audience where it is known."""
    lines = []
    for option in options:
        count = tally.counts[option.position] if option.position < len(tally.counts) else 0
        share = count / tally.ballots if tally.ballots else 0.0
        lines.append(
            tr.gettext(
                "{label} — {percent} ({count})",
                label=label(option, tr.language),
                percent=tr.percent(share),
                count=tr.number(count),
            )
        )
    lines.append(answered_line(tr, tally))
    if poll.multiple:
        lines.append(tr.gettext("Several answers could be chosen, so the shares add up to more."))
    return lines


def answered_line(tr: Translator, tally: Tally) -> str:
    """ "n = 286 answered, turnout 12% of 2,400": the figures every result carries."""
    if tally.turnout is None:
        return tr.ngettext(
            "{count} resident answered.",
            "{count} residents answered.",
            tally.ballots,
            count=tr.number(tally.ballots),
        )
    return tr.ngettext(
        "{count} resident answered: {percent} of the {audience} invited.",
        "{count} residents answered: {percent} of the {audience} invited.",
        tally.ballots,
        count=tr.number(tally.ballots),
        percent=tr.percent(tally.turnout),
        audience=tr.number(tally.audience),
    )


def _group_line(
    tr: Translator, name: str, ballots: int, counts: list[int], options: list[PollOption]
) -> str:
    shares = ", ".join(
        f"{label(o, tr.language)} {tr.percent(counts[o.position] / ballots if ballots else 0.0)}"
        for o in options
    )
    return f"{name} ({tr.number(ballots)}): {shares}"


def breakdown_lines(
    tr: Translator,
    poll: Poll,
    options: list[PollOption],
    tally: Tally,
    neighbourhoods: tuple[Named, ...],
) -> list[str]:
    """The results by neighbourhood (a group of fewer than five is in "other") and by
    channel, for staff."""
    names = {n.id: n.name(tr.language) for n in neighbourhoods}
    lines = [tr.gettext("By neighbourhood (groups under 5 answers are in “other”):")]
    groups = sorted(tally.by_neighbourhood.items(), key=lambda item: (item[0] == OTHER, item[0]))
    for key, (ballots, counts) in groups:
        name = tr.gettext("other or none") if key == OTHER else names.get(key, key)
        lines.append(_group_line(tr, name, ballots, counts, options))
    if not groups:
        lines.append(tr.gettext("no answers yet"))
    lines.append(tr.gettext("By channel:"))
    for key, (ballots, counts) in sorted(tally.by_channel.items()):
        name = tr.gettext(CHANNEL_NAMES.get(key, key))
        lines.append(_group_line(tr, name, ballots, counts, options))
    if not tally.by_channel:
        lines.append(tr.gettext("no answers yet"))
    return lines


def chart_png(tr: Translator, poll: Poll, options: list[PollOption], tally: Tally) -> bytes:
    """The results as a bar chart in ``tr``'s language (about 800 px wide)."""
    return bar_chart(
        question(poll, tr.language),
        [label(o, tr.language) for o in options],
        [tally.counts[o.position] for o in options],
        answered_line(tr, tally),
        whole=tally.ballots,
    )


async def chart_image(tr: Translator, poll: Poll, options: list[PollOption], tally: Tally) -> str:
    """The chart kept as an image of ours; its URL, for ``Reply.image``. The same results
    drawn twice are kept once (media is keyed by the bytes' hash)."""
    key = await media.save_image(chart_png(tr, poll, options, tally))
    return media.url(key) if key else ""
