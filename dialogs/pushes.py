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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.core.i18n import LANGUAGES, Translator, translator
from bot.core.messages import RenderRequest, Reply
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
