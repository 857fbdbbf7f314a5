"""What a handler or dialog step gets: the update, the resident, the answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.config import Config
from bot.core.i18n import Translator, localized, translator
from bot.core.messages import Capabilities, FileSource, Incoming, Reply
from storage.models import Resident
from storage.sessions import Session


@dataclass(slots=True)
class Ctx:
    incoming: Incoming
    session: Session
    config: Config
    tr: Translator
    role: str | None = None  # the staff role, checked on the server for every staff action
    replies: list[Reply] = field(default_factory=list)
    files: Mapping[str, FileSource] = field(default_factory=dict)  # channel → its files
    # What the channel of this update can do: edit, photos, buttons, label length…
    capabilities: Capabilities = field(default_factory=Capabilities)
    # The photo this update carries, fetched by the dispatcher before the transaction
    # opened (no download holds the resident's row lock); None when the current step
    # takes no photo, or the channel did not hand it over.
    photo: bytes | None = None

    # --- translation -----------------------------------------------------
    def _(self, message: str, /, **values: object) -> str:
        return self.tr.gettext(message, **values)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: object) -> str:
        return self.tr.ngettext(singular, plural, n, **values)

    @property
    def language(self) -> str:
        return self.tr.language

    def use_language(self, language: str) -> None:
        self.tr = translator(language)

    def local(self, names: dict[str, str]) -> str:
        return localized(names, self.language)

    # --- the conversation ------------------------------------------------
    @property
    def resident(self) -> Resident:
        return self.session.resident

    @property
    def state(self) -> str:
        return self.session.dialog.state

    @property
    def data(self) -> dict[str, Any]:
        return self.session.dialog.data

    def set_state(self, state: str, data: dict[str, Any] | None = None) -> None:
        self.session.dialog.state = state
        if data is not None:
            self.session.dialog.data = data

    def clear_state(self) -> None:
        self.session.dialog.state = ""
        self.session.dialog.data = {}

    @property
    def onboarded(self) -> bool:
        return self.session.resident.onboarded_at is not None

    # --- answering --------------------------------------------------------
    def answer(self, reply: Reply | str) -> None:
        reply = Reply(reply) if isinstance(reply, str) else reply
        if reply.replace and not self.capabilities.can_edit:
            # The platform cannot change a sent message: the new state comes as a new one
            # (the engine makes the old message's buttons expire).
            reply.replace = False
        self.replies.append(reply)

    # --- files ------------------------------------------------------------
    @property
    def takes_photos(self) -> bool:
        """Whether this channel can hand over a photo the resident sends."""
        return self.capabilities.takes_photos
