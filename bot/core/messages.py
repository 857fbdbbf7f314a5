"""The neutral message types every channel translates to and from.

Dialogs and handlers speak only these; a channel module turns a platform
payload into an ``Incoming`` and a ``Reply`` into platform calls, degrading
gracefully where the platform offers less (see ``ChannelLimits``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.core.i18n import N_


class Kind(StrEnum):
    """What a resident sent."""

    TEXT = "text"
    COMMAND = "command"
    BUTTON = "button"
    LOCATION = "location"
    PHOTO = "photo"
    CONTACT = "contact"
    OTHER = "other"  # a sticker, a voice note, a file: something no dialog reads
    OPEN = "open"  # the resident opened the chat (the web chat connected)


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Incoming:
    """One event from a resident, whatever the platform.

    ``event_id`` is the platform's own id of the event; together with
    ``channel`` it makes a duplicate delivery recognisable.
    """

    channel: str
    user_id: str
    event_id: str
    kind: Kind
    text: str = ""
    command: str = ""  # without the slash, lower case: "start"
    args: str = ""  # what followed the command
    payload: str = ""  # a button's payload
    location: Location | None = None
    photo_id: str = ""  # the platform's file id of the largest size
    contact_phone: str = ""
    locale: str = ""  # the platform's idea of the resident's language, e.g. "lv"
    message_id: str = ""  # the bot message a button was pressed on, if any
    # When the resident sent it, as the platform stamps it; set where a channel's push
    # window counts from the resident's last message (Messenger's 24 hours).
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Button:
    """A button with a short, stable payload (Telegram allows 64 bytes)."""

    label: str
    payload: str


@dataclass(slots=True)
class Reply:
    """What the bot answers.

    ``buttons`` is a list of rows. ``replace`` asks the channel to edit the
    message the resident pressed a button on, where the platform allows it;
    elsewhere the reply is sent anew. ``request_location``, when not empty,
    is the translated label of a button that asks for a shared location where
    the platform can (the label travels with the reply because a channel does
    not know the resident's language).
    """

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    image: str = ""  # a URL or a platform file id
    request_location: str = ""
    replace: bool = False
    # This message will be edited in place later (its buttons toggle), so no
    # notice may be joined into it: the edit would wipe the notice out.
    keep_apart: bool = False
    # The last rows (Done, Back) stay on every page when the dialog engine pages
    # the rows before them, the choices, to fit a channel's buttons per message.
    pinned_rows: int = 0
    # Words a staff member wrote to this resident (a private answer, a status's
    # explanation): a channel whose window for pushes has closed may still carry them
    # where a person's own answer is allowed longer (Messenger's HUMAN_AGENT tag).
    human: bool = False

    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

    def to_json(self) -> dict[str, Any]:
        """What a push with fixed words stores (``REPLY_TEMPLATE``): text, buttons, image."""
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [[[b.label, b.payload] for b in row] for row in self.buttons]
        if self.image:
            data["image"] = self.image
        if self.human:
            data["human"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        rows = data.get("buttons") or []
        return cls(
            str(data.get("text", "")),
            [[Button(str(label), str(payload)) for label, payload in row] for row in rows],
            image=str(data.get("image", "")),
            human=bool(data.get("human", False)),
        )


# A push whose words are fixed when it is queued: its parameters are ``Reply.to_json()``,
# and the delivery worker renders it itself.
REPLY_TEMPLATE = "reply"


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """Everything a push's words may depend on, when it is sent.

    Nothing else (not which resident it is for): the delivery worker renders
    each distinct request once for a whole batch of a broadcast. What depends
    on the resident goes in ``params``.
    """

    template: str  # "announcement", "announcement_report", …
    params: Mapping[str, Any]
    language: str  # the resident's chosen language now; "" when they have chosen none
    channel: str  # where it goes: an image or a button may differ per platform


# Renders a push at send time; None when its source is gone (a cancelled announcement):
# the delivery is then cancelled, not sent. Raises for a template it does not know.
Render = Callable[[RenderRequest], Awaitable["Reply | None"]]


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """What a platform can carry; rendering degrades to fit."""

    text_length: int
    buttons_per_message: int
    button_label_length: int
    payload_bytes: int
    can_edit: bool
    messages_per_second: float
    messages_per_second_per_chat: float


LABEL_LENGTH = 20
"""The longest button label every channel we support shows whole (Messenger's quick
replies and buttons: 20 characters)."""
CHOSEN = "✓ "
"""What a toggle button's label starts with while its choice is chosen."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the channel of an update can do, as the dialogs see it.

    The runtime registers each channel's with the dispatcher, and a dialog step
    reads them from its context; the dialog engine uses them to decide edit or
    send anew and to page buttons that do not fit, so no dialog needs to know the
    platform. The defaults are what an unregistered channel (a test, a tool) gets.
    """

    can_edit: bool = True  # a sent message can be changed (its buttons toggle in place)
    takes_photos: bool = False  # the channel hands over a photo the resident sends
    # A photo's platform id can be sent again later (Telegram's file ids); else the id is
    # good only while its update is handled (a web-chat upload) and our copy must be used.
    resends_photo_ids: bool = False
    asks_location: bool = False  # a reply can ask for the resident's location
    buttons_per_message: int = 100
    label_length: int = 64  # characters of a button label shown whole
    payload_bytes: int = 64  # of a button's payload, UTF-8
    # Pushes are allowed only this long after the resident's last message (Messenger:
    # 24 hours); None where a push may go at any time.
    push_window: timedelta | None = None

    @classmethod
    def of(
        cls,
        limits: ChannelLimits,
        *,
        takes_photos: bool = False,
        resends_photo_ids: bool = False,
        asks_location: bool = False,
        push_window: timedelta | None = None,
    ) -> Capabilities:
        """A channel's capabilities from its limits and what else it can do."""
        return cls(
            can_edit=limits.can_edit,
            takes_photos=takes_photos,
            resends_photo_ids=resends_photo_ids,
            asks_location=asks_location,
            buttons_per_message=limits.buttons_per_message,
            label_length=limits.button_label_length,
            payload_bytes=limits.payload_bytes,
            push_window=push_window,
        )


STRICTEST = Capabilities(
    can_edit=False,
    takes_photos=False,
    asks_location=False,
    buttons_per_message=13,
    label_length=LABEL_LENGTH,
    payload_bytes=64,
    push_window=timedelta(hours=24),
)
"""The least a channel we support offers: Messenger's 13 quick replies of 20 characters,
no editing, its 24-hour window, and Telegram's 64 bytes of callback data. Every dialog
is tested under it."""


# What a resident hears while the database is away (``Outcome.retry``): the update comes
# back by itself (the platform delivers it again, or it was kept), so no need to resend.
DATABASE_AWAY = N_(
    "Sorry, we are having a technical problem. Your message is kept: "
    "we will answer it as soon as we can, in a minute or two."
)


@dataclass(slots=True)
class Outcome:
    """What handling one update produced: the replies, in the resident's language."""

    replies: list[Reply]
    language: str
    # The resident asked to be forgotten: a channel that knows them by an id of its own
    # making (the web chat's cookie) issues a new one, so the old id never comes back.
    forgotten: bool = False
    # A passing fault (the database away) kept the update from being handled: nothing of
    # it was saved and the replies (if any) say it is kept. The channel must not confirm
    # it (Telegram and Meta then deliver it again; a stored event is tried again), or,
    # where nobody keeps it (the web chat), must offer the resident to send it again.
    retry: bool = False


class FileSource(Protocol):
    """A channel that can hand over the bytes of a file a resident sent (a photo)."""

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        """The file's bytes; None when it is larger than ``max_bytes`` or gone."""


Feed = Callable[[Incoming], Awaitable[Outcome]]
"""How a channel hands an update on and gets the answers back: the runtime wires a
channel to the dispatcher with this, so no channel imports a handler or a dialog."""

CommandList = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CommandMenu:
    """The commands a platform may list in its own menu (Telegram's "/"): name and
    untranslated description; the channel translates them per language. A staff
    account's own commands are handed over per account (they depend on its role)."""

    residents: CommandList = ()
