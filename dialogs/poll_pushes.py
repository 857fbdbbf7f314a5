"""The pushes of a poll, worded at send time in the reader's language: the invitation at
the opening (the poll message itself), the reminder to those who have not answered, and
the final results with the chart at the closing (to its staff and, if so set, the voters).

Each renders from what the database holds when it goes: an invitation or a reminder of a
poll no longer open is cancelled (None), so a push held through quiet hours never offers
buttons of a poll that closed meanwhile. An invitation and a reminder go only to those who
have not answered (``storage.polls``), so they show no answer; their buttons fit the
strictest channel (``LABEL_LENGTH``), since a template may not depend on the channel's
capabilities beyond its name.
"""

from __future__ import annotations

from bot.core.i18n import N_
from bot.core.messages import RenderRequest, Reply
from dialogs.poll_words import chart_image, poll_reply, question, results_lines
from dialogs.pushes import Pushes, template
from storage import polls
from storage.models import Poll
from storage.polls import BallotState

REMINDER_LINE = N_("Reminder: this poll closes on {time}. You have not answered it yet.")
RESULTS_HEAD = N_("The poll has closed. Its results:")


async def _open_poll(request: RenderRequest) -> Poll | None:
    poll = await polls.get(int(request.params["poll"]))
    if poll is None or poll.state != "open":
        return None
    return poll


@template(polls.INVITE)
async def poll_invite(pushes: Pushes, request: RenderRequest) -> Reply | None:
    poll = await _open_poll(request)
    if poll is None:
        return None
    options = await polls.options_of(poll.id)
    return poll_reply(
        pushes.translator(request),
        poll,
        options,
        BallotState(),
        zone=pushes.zone,
        label_length=pushes.label_length(request.channel),
    )


@template(polls.REMINDER)
async def poll_reminder(pushes: Pushes, request: RenderRequest) -> Reply | None:
    poll = await _open_poll(request)
    if poll is None:
        return None
    tr = pushes.translator(request)
    options = await polls.options_of(poll.id)
    reply = poll_reply(
        tr,
        poll,
        options,
        BallotState(),
        zone=pushes.zone,
        label_length=pushes.label_length(request.channel),
    )
    line = tr.gettext(REMINDER_LINE, time=tr.moment(poll.closes_at, pushes.zone))
    reply.text = f"{line}\n\n{reply.text}"
    return reply


@template(polls.RESULTS_PUSH)
async def poll_results(pushes: Pushes, request: RenderRequest) -> Reply | None:
    poll = await polls.get(int(request.params["poll"]))
    if poll is None or poll.state != "closed":
        return None
    tr = pushes.translator(request)
    options = await polls.options_of(poll.id)
    tally = await polls.tally(poll)
    lines = [tr.gettext(RESULTS_HEAD), question(poll, tr.language)]
    lines += results_lines(tr, poll, options, tally)
    return Reply("\n\n".join(lines), image=await chart_image(tr, poll, options, tally))
