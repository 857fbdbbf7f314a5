"""Quick polls: create, open, remind, close, answer with one tap, count.

The database is the source of truth for what is due: each move of a poll
(scheduled → open → closed, or cancelled) is a compare-and-set on its row, and
each reminder is claimed by setting its ``sent_at``, so opening, reminders and
closing happen once whatever the number of workers, and after a restart.

A ballot is one row per resident and poll (a unique constraint), written by
one upsert that also checks the poll is open: a thousand taps at once give one
ballot. The chosen options are bits (``1 << position``); the neighbourhood and
channel are copied onto the ballot when it is cast, so the tally is one scan
of the poll's ballots, counted by the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from storage import deliveries, staff
from storage.deliveries import Push
from storage.models import (
    Ballot,
    Delivery,
    Poll,
    PollOption,
    PollReminder,
    Resident,
    StaffMember,
    Subscription,
)

MIN_OPTIONS = 2
MAX_OPTIONS = 10
QUESTION_LENGTH = 300  # characters: a question must fit a message with its options
OPTION_LENGTH = 100
RESULTS = ("after_answer", "at_close")
POLL_STATES = ("scheduled", "open", "closed", "cancelled")
# The smallest neighbourhood shown apart in a breakdown: smaller ones are summed as "other",
# so no small group's answers can be read off.
SMALLEST_GROUP = 5
OTHER = ""  # the key of the "other" neighbourhood in a breakdown (and of "none given")

# Sources (and templates) of the pushes about a poll.
INVITE = "poll_invite"  # the poll itself, at its opening
REMINDER = "poll_reminder"  # to those who have not answered
RESULTS_PUSH = "poll_results"  # the final results at closing, to staff and (if set) voters
COMPOSERS = ("communications", "admin")  # the staff roles that run polls

Refusal = Literal["missing", "not_open", "closed", "cancelled", "audience", "channel", "option"]


class PollError(Exception):
    """Why a resident's answer or a staff action was not taken."""

    def __init__(self, reason: str, poll: Poll | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.poll = poll


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PollDraft:
    """A poll as staff composed it, checked (``check``) before it is saved."""

    question: dict[str, str]  # per language; "lv" is required
    options: list[dict[str, str]]  # per option, its labels per language ("lv" required)
    opens_at: datetime
    closes_at: datetime
    multiple: bool = False
    audience: dict[str, Any] = field(default_factory=lambda: {"kind": "all"})
    remind_before: tuple[int, ...] = ()  # seconds before the closing
    results: str = "after_answer"
    channels: tuple[str, ...] = ()  # () for every channel
    tell_voters: bool = False


def check(draft: PollDraft, now: datetime | None = None) -> str | None:
    """What is wrong with a draft, in plain words for the staff member or operator; None
    when it may be saved. The callers word it for their own setting (a chat step, a flag)."""
    moment = now or _now()
    if not draft.question.get("lv", "").strip():
        return "the question in Latvian is missing"
    if any(len(text) > QUESTION_LENGTH for text in draft.question.values()):
        return f"a question is longer than {QUESTION_LENGTH} characters"
    if not MIN_OPTIONS <= len(draft.options) <= MAX_OPTIONS:
        return f"a poll has {MIN_OPTIONS} to {MAX_OPTIONS} options, not {len(draft.options)}"
    for labels in draft.options:
        if not labels.get("lv", "").strip():
            return "an option has no Latvian label"
        if any(len(text) > OPTION_LENGTH for text in labels.values()):
            return f"an option is longer than {OPTION_LENGTH} characters"
    latvian = [labels["lv"].strip().casefold() for labels in draft.options]
    if len(set(latvian)) != len(latvian):
        return "two options have the same Latvian label"
    if draft.closes_at <= draft.opens_at:
        return "the closing time is not after the opening time"
    if draft.closes_at <= moment:
        return "the closing time has passed"
    if draft.results not in RESULTS:
        return f"results are shown {' or '.join(RESULTS)}"
    if any(seconds <= 0 for seconds in draft.remind_before):
        return "a reminder is not before the closing"
    return None


async def create(draft: PollDraft, *, author: str) -> Poll:
    """Save a poll with its options and reminders; it opens at ``opens_at``."""
    async with in_transaction():
        poll = await Poll.create(
            author=author,
            question={k: v.strip() for k, v in draft.question.items() if v.strip()},
            multiple=draft.multiple,
            audience=draft.audience,
            channels=list(draft.channels),
            opens_at=draft.opens_at,
            closes_at=draft.closes_at,
            results=draft.results,
            tell_voters=draft.tell_voters,
        )
        await PollOption.bulk_create(
            [
                PollOption(
                    poll=poll,
                    position=position,
                    labels={k: v.strip() for k, v in labels.items() if v.strip()},
                )
                for position, labels in enumerate(draft.options)
            ]
        )
        for seconds in sorted(set(draft.remind_before), reverse=True):
            due = draft.closes_at - timedelta(seconds=seconds)
            await PollReminder.create(poll=poll, before_seconds=seconds, due_at=due)
        await staff.record(
            author,
            "poll.create",
            {
                "id": poll.id,
                "audience": draft.audience,
                "opens_at": draft.opens_at.isoformat(),
                "closes_at": draft.closes_at.isoformat(),
            },
        )
    return poll


async def get(poll_id: int) -> Poll | None:
    return await Poll.get_or_none(id=poll_id)


async def options_of(poll_id: int) -> list[PollOption]:
    return list(await PollOption.filter(poll_id=poll_id).order_by("position"))


async def reminders_of(poll_id: int) -> list[PollReminder]:
    return list(await PollReminder.filter(poll_id=poll_id).order_by("due_at"))


async def listing(states: Sequence[str] = POLL_STATES, limit: int = 50) -> list[Poll]:
    """Polls in these states: open and scheduled first by their next moment, then the
    latest closed."""
    rows = await Poll.filter(state__in=list(states)).order_by("-id").limit(limit)
    order = {"open": 0, "scheduled": 1, "closed": 2, "cancelled": 3}
    return sorted(rows, key=lambda p: (order.get(p.state, 9), _next_moment(p)))


def _next_moment(poll: Poll) -> float:
    """Open: its closing; scheduled: its opening; closed or cancelled: latest first."""
    if poll.state == "open":
        return poll.closes_at.timestamp()
    if poll.state == "scheduled":
        return poll.opens_at.timestamp()
    return -poll.id


# --- the audience -----------------------------------------------------------------------
async def audience_size(audience: dict[str, Any], channels: Sequence[str] = ()) -> int:
    """How many residents the audience names now (on the allowed channels)."""
    return await deliveries.count_audience(audience, channels)


async def refusal(poll: Poll, resident: Resident, channel: str) -> Refusal | None:
    """Why this resident may not answer this poll now, or None when they may."""
    if poll.state == "cancelled":
        return "cancelled"
    if poll.state == "closed" or poll.closes_at <= _now():
        return "closed"
    if poll.state != "open":
        return "not_open"
    if poll.channels and channel not in poll.channels:
        return "channel"
    if not await in_audience(poll, resident):
        return "audience"
    return None


async def in_audience(poll: Poll, resident: Resident) -> bool:
    kind, keys = poll.audience.get("kind", "all"), list(poll.audience.get("keys", []))
    if kind == "all":
        return True
    if kind == "neighbourhood":
        neighbourhood_id = resident.neighbourhood_id  # type: ignore[attr-defined]
        if neighbourhood_id is None:
            return False
        return await Resident.filter(id=resident.id, neighbourhood__key__in=keys).exists()
    if kind == "topic":
        return await Subscription.filter(resident_id=resident.id, topic__key__in=keys).exists()
    return False


# --- the clock: open, remind, close -------------------------------------------------------
def _push(kind: str, poll: Poll, key: str, priority: int = deliveries.BROADCAST) -> Push:
    """A push about a poll: its source and template are ``kind``, its words rendered at
    send time from the poll's id alone; ``key`` makes it once per resident."""
    return Push(kind, poll.id, f"poll:{poll.id}:{key}", kind, {"poll": poll.id}, priority=priority)


async def open_due(not_before: datetime, now: datetime | None = None) -> list[Poll]:
    """Open every scheduled poll whose time has come and queue its invitation to the
    audience (held until ``not_before``, the end of quiet hours). Returns the polls this
    call opened: each opens once, whichever worker gets there first."""
    moment = now or _now()
    opened: list[Poll] = []
    due = await Poll.filter(state="scheduled", opens_at__lte=moment).order_by("id")
    for candidate in due:
        async with in_transaction() as client:
            poll = await Poll.select_for_update().using_db(client).get_or_none(id=candidate.id)
            if poll is None or poll.state != "scheduled":
                continue
            await deliveries.queue_audience(
                _push(INVITE, poll, "invite"), poll.audience, not_before, channels=poll.channels
            )
            invited = await deliveries.residents_of(INVITE, poll.id)
            poll.state, poll.opened_at, poll.audience_size = "open", moment, invited
            await poll.save(update_fields=["state", "opened_at", "audience_size"], using_db=client)
        opened.append(poll)
    return opened


async def remind_due(not_before: datetime, now: datetime | None = None) -> int:
    """Send every reminder whose time has come, once, to those in the audience who have not
    answered yet. A reminder of a poll no longer open is dropped. Returns how many
    reminder pushes were queued."""
    moment = now or _now()
    queued = 0
    due = await PollReminder.filter(sent_at__isnull=True, due_at__lte=moment).order_by("due_at")
    for reminder in due:
        async with in_transaction():
            claimed = await PollReminder.filter(id=reminder.id, sent_at__isnull=True).update(
                sent_at=moment
            )
            if not claimed:
                continue  # another worker has it
            poll = await Poll.get(id=reminder.poll_id)  # type: ignore[attr-defined]
            if poll.state != "open" or poll.closes_at <= moment:
                continue
            push = _push(REMINDER, poll, f"reminder:{reminder.id}")
            count = await deliveries.queue_audience(
                push, poll.audience, not_before, channels=poll.channels, unanswered=poll.id
            )
            await PollReminder.filter(id=reminder.id).update(recipients=count)
            await Poll.filter(id=poll.id).update(reminders_sent=F("reminders_sent") + 1)
            queued += count
    return queued


async def close_due(now: datetime | None = None) -> list[Poll]:
    """Close every open poll whose time has come; the staff (and the voters, if so set)
    are told the results. Returns the polls this call closed."""
    moment = now or _now()
    closed: list[Poll] = []
    for candidate in await Poll.filter(state="open", closes_at__lte=moment).order_by("id"):
        poll = await _close(candidate.id, "", moment)
        if poll is not None:
            closed.append(poll)
    return closed


async def _close(poll_id: int, actor: str, moment: datetime) -> Poll | None:
    """Close one open poll (compare-and-set) and queue its results; None if it was not open."""
    async with in_transaction():
        changed = await Poll.filter(id=poll_id, state="open").update(
            state="closed", closed_at=moment, closed_by=actor
        )
        if not changed:
            return None
        poll = await Poll.get(id=poll_id)
        if poll.closes_at > moment:
            poll.closes_at = moment
            await poll.save(update_fields=["closes_at"])
        await PollReminder.filter(poll_id=poll_id, sent_at__isnull=True).update(sent_at=moment)
        push = _push(RESULTS_PUSH, poll, "results", deliveries.PERSONAL)
        await deliveries.queue(push, await staff_recipients(poll))
        if poll.tell_voters:
            await deliveries.queue_voters(replace(push, priority=deliveries.BROADCAST), poll.id)
        if actor:
            await staff.record(actor, "poll.close", {"id": poll.id})
    return poll


async def staff_recipients(poll: Poll) -> list[deliveries.Recipient]:
    """Who on the staff hears of a poll's results: its author, or, for a poll made from
    the command line, every account with a role that runs polls."""
    channel, _, external_id = poll.author.partition(":")
    if external_id:
        accounts = [(channel, external_id)]
    else:
        rows = await StaffMember.filter(role__in=COMPOSERS).values_list("channel", "external_id")
        accounts = [(str(c), str(e)) for c, e in rows]
    return await deliveries.staff_accounts(accounts)


# --- staff actions ------------------------------------------------------------------------
async def close(poll_id: int, actor: str) -> Poll:
    """Close an open poll now; PollError "missing", "not_open" (scheduled: cancel it) or
    "closed"/"cancelled"."""
    poll = await _close(poll_id, actor, _now())
    if poll is not None:
        return poll
    current = await get(poll_id)
    if current is None:
        raise PollError("missing")
    raise PollError("not_open" if current.state == "scheduled" else current.state, current)


async def extend(poll_id: int, until: datetime, actor: str) -> Poll:
    """Move the closing time of a poll not closed yet (later or earlier, but still to come
    and after its opening); the reminders not sent move with it."""
    async with in_transaction():
        poll = await Poll.select_for_update().get_or_none(id=poll_id)
        if poll is None:
            raise PollError("missing")
        if poll.state in ("closed", "cancelled"):
            raise PollError(poll.state, poll)
        if until <= _now() or until <= poll.opens_at:
            raise PollError("time", poll)
        poll.closes_at = until
        await poll.save(update_fields=["closes_at"])
        for reminder in await PollReminder.filter(poll_id=poll_id, sent_at__isnull=True):
            reminder.due_at = until - timedelta(seconds=reminder.before_seconds)
            await reminder.save(update_fields=["due_at"])
        await staff.record(actor, "poll.extend", {"id": poll_id, "until": until.isoformat()})
    return poll


async def cancel(poll_id: int, actor: str) -> Poll:
    """Cancel a poll that has not opened; an open one is closed instead (``close``)."""
    async with in_transaction():
        changed = await Poll.filter(id=poll_id, state="scheduled").update(
            state="cancelled", cancelled_by=actor
        )
        poll = await get(poll_id)
        if poll is None:
            raise PollError("missing")
        if not changed:
            raise PollError(poll.state, poll)
        await staff.record(actor, "poll.cancel", {"id": poll_id})
    return poll


# --- answering ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BallotState:
    """A resident's answer as it stands: what counts, and (multiple choice) what is ticked."""

    choices: int = 0
    draft: int = 0

    @property
    def answered(self) -> bool:
        return self.choices != 0

    def chosen(self, position: int) -> bool:
        return bool(self.choices & (1 << position))

    def ticked(self, position: int) -> bool:
        return bool(self.draft & (1 << position))


def positions(bits: int) -> list[int]:
    return [p for p in range(MAX_OPTIONS) if bits & (1 << p)]


async def answers(poll_id: int) -> int:
    """How many residents' answers to a poll count (a cheap count, for a list of polls)."""
    return await Ballot.filter(poll_id=poll_id, choices__not=0).count()


async def ballot_of(poll_id: int, resident_id: int) -> BallotState:
    row = await Ballot.get_or_none(poll_id=poll_id, resident_id=resident_id)
    return BallotState(row.choices, row.draft) if row else BallotState()


async def _upsert(
    poll: Poll, resident: Resident, channel: str, position: int | None, *, done: bool
) -> BallotState:
    """The one statement that records a tap: insert the ballot or change it, only while
    the poll is open. ``position`` None with ``done``: a multiple choice's Done."""
    client = connections.get("default")
    param = deliveries._Params(client.capabilities.dialect)
    now = deliveries._db_time(_now())
    at = param(now, "timestamptz")
    poll_mark, resident_mark = param(poll.id, "int"), param(resident.id, "int")
    channel_mark = param(channel, "text")
    neighbourhood = (
        'COALESCE((SELECT n."key" FROM "resident" r JOIN "neighbourhood" n '
        f'ON n."id" = r."neighbourhood_id" WHERE r."id" = {resident_mark}), \'\')'
    )
    open_now = (
        f'EXISTS (SELECT 1 FROM "poll" p WHERE p."id" = {poll_mark} '
        f'AND p."state" = \'open\' AND p."closes_at" > {at})'
    )
    has_option = ""
    if position is not None:
        has_option = (
            f' AND EXISTS (SELECT 1 FROM "poll_option" o WHERE o."poll_id" = {poll_mark} '
            f'AND o."position" = {param(position, "int")})'
        )
    if done:
        sql = (
            f'UPDATE "ballot" SET "choices" = "draft", "cast_at" = COALESCE("cast_at", {at}), '
            f'"changed_at" = {at}, "neighbourhood" = {neighbourhood}, "channel" = {channel_mark} '
            f'WHERE "poll_id" = {poll_mark} AND "resident_id" = {resident_mark} '
            f'AND "draft" <> 0 AND {open_now} RETURNING "choices", "draft"'
        )
    else:
        assert position is not None
        bit = param(1 << position, "int")
        if poll.multiple:  # a tap toggles the tick; Done makes it count
            insert = f"0, {bit}, NULL, NULL"
            change = f'"draft" = ("ballot"."draft" | {bit}) - ("ballot"."draft" & {bit})'
        else:  # a tap is the answer
            insert = f"{bit}, {bit}, {at}, {at}"
            change = (
                f'"choices" = {bit}, "draft" = {bit}, '
                f'"cast_at" = COALESCE("ballot"."cast_at", {at}), "changed_at" = {at}, '
                f'"neighbourhood" = excluded."neighbourhood", "channel" = excluded."channel"'
            )
        sql = (
            'INSERT INTO "ballot" ("poll_id", "resident_id", "choices", "draft", "cast_at", '
            f'"changed_at", "neighbourhood", "channel") SELECT {poll_mark}, {resident_mark}, '
            f"{insert}, {neighbourhood}, {channel_mark} WHERE {open_now}{has_option} "
            f'ON CONFLICT ("poll_id", "resident_id") DO UPDATE SET {change} '
            'RETURNING "choices", "draft"'
        )
    rows = await client.execute_query_dict(sql, param.values)
    if not rows:  # only now is it worth asking why
        if (
            position is not None
            and not await PollOption.filter(poll_id=poll.id, position=position).exists()
        ):
            raise PollError("option", poll)
        if done and (await Poll.filter(id=poll.id, state="open").exists()):
            raise PollError("empty", poll)
        raise PollError("closed", poll)
    state = BallotState(int(rows[0]["choices"]), int(rows[0]["draft"]))
    if state.answered and poll.reminders_sent:
        # A reminder still waiting (quiet hours held it) must not reach someone who has
        # answered: by the resident's own index, cheap on every tap.
        await Delivery.filter(
            resident_id=resident.id,
            source_kind=REMINDER,
            source_id=poll.id,
            state__in=("queued", "waiting"),
        ).update(state="cancelled", error="answered before the reminder went")
    return state


async def tap(poll: Poll, resident: Resident, channel: str, position: int) -> BallotState:
    """A resident tapped an option: the answer (single choice) or a tick toggled (multiple
    choice). PollError "option" for a position the poll has not, "closed" when it closed
    meanwhile."""
    if not 0 <= position < MAX_OPTIONS:
        raise PollError("option", poll)
    return await _upsert(poll, resident, channel, position, done=False)


async def done(poll: Poll, resident: Resident, channel: str) -> BallotState:
    """A multiple-choice poll's Done: the ticks count as the answer. PollError "empty" when
    nothing is ticked."""
    return await _upsert(poll, resident, channel, None, done=True)


@dataclass(frozen=True, slots=True)
class ResidentPolls:
    open: list[tuple[Poll, BallotState]]  # open now, in their audience
    answered: list[tuple[Poll, BallotState]]  # closed ones they answered, latest first


async def polls_for(resident: Resident, channel: str, past: int = 5) -> ResidentPolls:
    """The open polls a resident may answer (with their answer so far), and the closed
    ones they answered."""
    now = _now()
    mine = {
        int(poll_id): BallotState(int(choices), int(draft))
        for poll_id, choices, draft in await Ballot.filter(resident_id=resident.id).values_list(
            "poll_id", "choices", "draft"
        )
    }
    open_polls = []
    for poll in await Poll.filter(state="open", closes_at__gt=now).order_by("closes_at", "id"):
        if await refusal(poll, resident, channel) is None:
            open_polls.append((poll, mine.get(poll.id, BallotState())))
    answered_ids = [poll_id for poll_id, state in mine.items() if state.answered]
    closed = await Poll.filter(id__in=answered_ids or [0], state="closed").order_by("-closed_at")
    return ResidentPolls(open_polls, [(poll, mine[poll.id]) for poll in closed[:past]])


# --- the tally ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tally:
    """A poll's results, every figure counted by the database.

    ``by_neighbourhood`` keys are neighbourhood ids, with OTHER ("") for those with
    fewer than ``SMALLEST_GROUP`` ballots and for residents with none; each value is
    (ballots, per-option counts). ``by_channel`` likewise per channel.
    """

    ballots: int
    audience: int
    counts: list[int]  # per option, in the poll's order
    by_neighbourhood: dict[str, tuple[int, list[int]]]
    by_channel: dict[str, tuple[int, list[int]]]

    @property
    def turnout(self) -> float | None:
        return self.ballots / self.audience if self.audience else None


SNAPSHOT_SECONDS = 5
# Below this many ballots a poll is counted afresh for every resident who sees its results:
# the count is cheap, and exact. Above it, the counts residents see are at most
# SNAPSHOT_SECONDS old, so a city-wide poll is counted once in that time, not on every tap.
SNAPSHOT_FROM = 1000


async def results_now(poll: Poll, now: datetime | None = None) -> Tally:
    """The results a resident sees of an open poll (the counts, without breakdowns), at most
    ``SNAPSHOT_SECONDS`` old for a big one; a closed poll's, exact. One worker recounts a
    stale snapshot (compare-and-set on ``snapshot_at``); the others show the one there."""
    moment = now or _now()
    snapshot, taken = poll.snapshot or {}, poll.snapshot_at
    fresh = taken is not None and moment - taken < timedelta(seconds=SNAPSHOT_SECONDS)
    if poll.state == "open" and fresh and int(snapshot.get("ballots", 0)) >= SNAPSHOT_FROM:
        return Tally(int(snapshot["ballots"]), poll.audience_size, list(snapshot["counts"]), {}, {})
    result = await tally(poll)
    if poll.state == "open" and result.ballots >= SNAPSHOT_FROM:
        stale = Poll.filter(id=poll.id)
        if taken is not None:
            stale = stale.filter(snapshot_at=taken)
        else:
            stale = stale.filter(snapshot_at__isnull=True)
        await stale.update(
            snapshot={"ballots": result.ballots, "counts": result.counts}, snapshot_at=moment
        )
    return result


# One scan of the poll's ballots (the CTE), counted per neighbourhood, channel and set of
# choices; each grouping is then summed from that in the database.
TALLY_SQL = """
WITH t AS (
  SELECT "neighbourhood" AS nb, "channel" AS ch, "choices" AS c, COUNT(*) AS n
  FROM "ballot" WHERE "poll_id" = {poll} AND "choices" <> 0
  GROUP BY "neighbourhood", "channel", "choices"
)
SELECT 'n' AS g, o."position" AS pos, t.nb AS k, SUM(t.n) AS n
  FROM t JOIN "poll_option" o ON o."poll_id" = {poll} AND (t.c & (1 << o."position")) <> 0
  GROUP BY o."position", t.nb
UNION ALL
SELECT 'c', o."position", t.ch, SUM(t.n)
  FROM t JOIN "poll_option" o ON o."poll_id" = {poll} AND (t.c & (1 << o."position")) <> 0
  GROUP BY o."position", t.ch
UNION ALL
SELECT 'o', o."position", '', SUM(t.n)
  FROM t JOIN "poll_option" o ON o."poll_id" = {poll} AND (t.c & (1 << o."position")) <> 0
  GROUP BY o."position"
UNION ALL SELECT 'b', -1, '', SUM(t.n) FROM t
UNION ALL SELECT 'bn', -1, t.nb, SUM(t.n) FROM t GROUP BY t.nb
UNION ALL SELECT 'bc', -1, t.ch, SUM(t.n) FROM t GROUP BY t.ch
"""


async def tally(poll: Poll) -> Tally:
    """The results of a poll now (open or closed), with the breakdowns."""
    client = connections.get("default")
    param = deliveries._Params(client.capabilities.dialect)
    sql = TALLY_SQL.format(poll=param(poll.id, "int"))
    rows = await client.execute_query_dict(sql, param.values)
    size = await PollOption.filter(poll_id=poll.id).count()
    hoods: dict[str, tuple[int, list[int]]] = {}
    channels: dict[str, tuple[int, list[int]]] = {}
    ballots_of: dict[str, dict[str, int]] = {"b": {}, "bn": {}, "bc": {}}
    per: dict[str, dict[str, list[int]]] = {"o": {}, "n": {}, "c": {}}
    for row in rows:
        group, key, n = str(row["g"]), str(row["k"] or ""), int(row["n"] or 0)
        if group in ballots_of:
            ballots_of[group][key] = n
        else:
            per[group].setdefault(key, [0] * size)[int(row["pos"])] = n
    for key, n in ballots_of["bc"].items():
        channels[key] = (n, per["c"].get(key, [0] * size))
    small = [key for key, n in ballots_of["bn"].items() if n < SMALLEST_GROUP or key == OTHER]
    for key, n in ballots_of["bn"].items():
        if key not in small:
            hoods[key] = (n, per["n"].get(key, [0] * size))
    if small:
        other = [0] * size
        for key in small:
            for index, count in enumerate(per["n"].get(key, [])):
                other[index] += count
        hoods[OTHER] = (sum(ballots_of["bn"][key] for key in small), other)
    ballots = ballots_of["b"].get("", 0)
    counts = per["o"].get("", [0] * size)
    audience = poll.audience_size if poll.state != "scheduled" else 0
    return Tally(ballots, audience, counts, hoods, channels)
