"""What each kind of push says, rendered when it is sent, in the resident's language then.

An outbox row stores no words: a template key and its parameters
(``storage.deliveries.Push``). Just before the row goes, the delivery
worker asks ``Pushes`` (handed to it by ``bot.app``: the runtime does not
import dialogs) for the words, so a resident who switched to Russian after
an announcement was released gets it in Russian, and a staff report shows
the figures of the moment it is edited. A template returns None when its
source is gone (a cancelled announcement): the delivery is cancelled.

A template may depend only on what its ``RenderRequest`` holds (the worker
renders each distinct request once per batch); what depends on the
resident goes in the parameters. A push with fixed words needs no template
here: it stores a ``Reply`` under ``REPLY_TEMPLATE``, which the worker
renders itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.core.config import Config
from bot.core.i18n import LANGUAGES, N_, Translator, translator
from bot.core.messages import LABEL_LENGTH, REPLY_TEMPLATE, RenderRequest, Reply
from dialogs.announce import ADMIN_ASKED, ADMIN_ASKED_NOTE, progress_text, status_text
from dialogs.announcement_list import DECIDED, DECIDED_NOTE
from storage import announcements, deliveries, media
from storage.models import Announcement

Template = Callable[["Pushes", RenderRequest], Awaitable[Reply | None]]

# Template key → its renderer, filled below at import (declared once, like the dialogs).
TEMPLATES: dict[str, Template] = {}


def template(name: str) -> Callable[[Template], Template]:
    def register(render: Template) -> Template:
        TEMPLATES[name] = render
        return render

    return register


@dataclass(frozen=True, slots=True)
class Pushes:
    """The ``Render`` of every push the bot sends (``bot.core.messages.Render``)."""

    zone: ZoneInfo
    default_language: str = "lv"
    # Each channel's longest message (``ChannelLimits.text_length``): a digest fits it.
    text_lengths: Mapping[str, int] = field(default_factory=dict)
    # The configuration, for the names in proposals' pushes (categories, departments).
    config: Config = field(default_factory=Config)
    # Each channel's longest button label shown whole (``ChannelLimits.button_label_length``):
    # a poll's options go on its buttons where they fit, as in the answer to a tap.
    label_lengths: Mapping[str, int] = field(default_factory=dict)

    def label_length(self, channel: str) -> int:
        return self.label_lengths.get(channel, LABEL_LENGTH)

    async def __call__(self, request: RenderRequest) -> Reply | None:
        render = TEMPLATES.get(request.template)
        if render is None:
            raise LookupError(f"no push template {request.template!r}")
        return await render(self, request)

    def language(self, request: RenderRequest) -> str:
        """The resident's chosen language; else the one the push was queued in (a staff
        member's app language when they composed), else the municipality's."""
        for language in (request.language, request.params.get("language", "")):
            if language in LANGUAGES:
                return str(language)
        return self.default_language

    def translator(self, request: RenderRequest) -> Translator:
        return translator(self.language(request))


async def _announcement(request: RenderRequest) -> Announcement | None:
    return await announcements.get(int(request.params["announcement"]))


def announcement_text(row: Announcement, language: str) -> str:
    """The announcement in a language, falling back to Latvian."""
    texts = {code: text for code, text in row.texts.items() if text}
    return texts.get(language) or texts.get("lv", "")


def announcement_image(row: Announcement, channel: str) -> str:
    """A platform's own file id means nothing elsewhere: there the copy we keep is
    shown, or, if we have none, the text goes alone. A plain URL goes everywhere."""
    if not row.image or not row.image_channel or row.image_channel == channel:
        return row.image
    return media.url(row.image_media) if row.image_media else ""


@template(deliveries.ANNOUNCEMENT)
async def announcement(pushes: Pushes, request: RenderRequest) -> Reply | None:
    row = await _announcement(request)
    if row is None or row.state == "cancelled":
        return None
    text = announcement_text(row, pushes.language(request))
    return Reply(text, image=announcement_image(row, request.channel))


@template(announcements.REPORT)
async def report(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """The staff's progress report, with the figures as they are now."""
    row = await _announcement(request)
    if row is None:
        return None
    tr = pushes.translator(request)
    if row.released_at is None:  # cancelled or declined before it went out
        return Reply(status_text(tr, row, pushes.zone))
    counts = await deliveries.counts(deliveries.ANNOUNCEMENT, row.id)
    finished = row.state != "released" or counts["queued"] + counts["sending"] == 0
    return Reply(progress_text(tr, row, counts, finished))


@template(ADMIN_ASKED_NOTE)
async def admin_asked(pushes: Pushes, request: RenderRequest) -> Reply | None:
    params = request.params
    text = pushes.translator(request).gettext(
        ADMIN_ASKED, id=params["announcement"], author=params["author"]
    )
    return Reply(text)


@template(DECIDED_NOTE)
async def decided(pushes: Pushes, request: RenderRequest) -> Reply | None:
    params = request.params
    text = pushes.translator(request).gettext(DECIDED[params["verdict"]], id=params["announcement"])
    return Reply(text)


WHILE_AWAY = N_("While you were away:")
DIGEST_TEXT_LENGTH = 4000  # for a channel that told none
SHORTEST_ITEM = 80  # an item cut to fit is never cut shorter


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def fit_digest(head: str, items: list[str], limit: int) -> str:
    """The head and the items, a paragraph each; when that is longer than the channel's
    message, each item is cut to an equal share. Past ``SHORTEST_ITEM`` a share is not
    cut further: the channel splits what is still too long into several messages."""
    text = "\n\n".join([head, *items])
    if len(text) <= limit or not items:
        return text
    share = max(SHORTEST_ITEM, (limit - len(head)) // len(items) - 2)
    return "\n\n".join([head, *(_shorten(item, share) for item in items)])


@template(deliveries.DIGEST)
async def digest(pushes: Pushes, request: RenderRequest) -> Reply | None:
    """The catch-up: "While you were away:" and each held push, rendered now, a paragraph
    each, in the resident's language of now.

    An item whose push carries buttons (none today; poll invitations will) is not
    folded: its buttons must stay actionable, so it goes as its own message after the
    digest. So does an item with an image, which one text cannot carry. An item whose
    source is gone is cancelled. Nothing left to fold: no digest (it is cancelled).
    """
    folded: list[str] = []
    alone: list[int] = []
    gone: list[int] = []
    for item_id, item_template, params in await deliveries.digest_items(request.params["items"]):
        if item_template == REPLY_TEMPLATE:
            reply: Reply | None = Reply.from_json(params)
        else:
            item = RenderRequest(item_template, params, request.language, request.channel)
            reply = await pushes(item)
        if reply is None:
            gone.append(item_id)
        elif reply.buttons or reply.image or reply.request_location:
            alone.append(item_id)
        elif reply.text.strip():
            folded.append(reply.text.strip())
        else:
            gone.append(item_id)
    await deliveries.unfold(alone, gone)
    if not folded:
        return None
    tr = pushes.translator(request)
    limit = pushes.text_lengths.get(request.channel, DIGEST_TEXT_LENGTH)
    return Reply(fit_digest(tr.gettext(WHILE_AWAY), folded, limit))


# Proposals' pushes (the feedback loop, the staff's notes) and polls' (the invitation, the
# reminder, the results): registered on import.
from dialogs import poll_pushes, proposal_pushes, review_pushes  # noqa: E402,F401
