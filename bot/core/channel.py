"""What every channel offers, and the rendering helpers they share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Protocol

from bot.core.messages import ChannelLimits, Reply


class RecipientBlocked(Exception):
    """The platform says the resident blocked the bot: do not retry."""


class RateLimited(Exception):
    """The platform asked us to wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class PushRefused(Exception):
    """The channel will not deliver this push now by policy (Messenger's 24-hour
    window, a web chat with no open tab); it waits for the resident to write."""


class ChannelDown(Exception):
    """The channel cannot send to anyone now (the platform refused its token): the push
    goes back to the queue, not counted as an attempt, and the channel is not tried
    again for a while. The message says what the operator must fix."""

    def __init__(self, reason: str, retry_after: float = 300.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class ClaimPolicy:
    """Whom a worker may claim a channel's pushes for, decided in the claim itself.

    ``ANYONE``: every row of the channel (Telegram). ``PRESENT_HERE``: only
    residents whose socket this worker holds (the web chat: only that worker
    can deliver). ``within(hours)``: only residents who wrote within so many
    hours (Messenger's 24-hour window), or ``human_hours`` for a staff member's own
    words (``Reply.human``: Messenger's HUMAN_AGENT tag, 7 days, when the page may use
    it). A row the policy denies on every worker is moved to "waiting" in bulk, and goes
    out as the catch-up when the resident comes back.
    """

    kind: Literal["anyone", "present_here", "within"]
    hours: int = 0
    human_hours: int = 0

    ANYONE: ClassVar[ClaimPolicy]
    PRESENT_HERE: ClassVar[ClaimPolicy]

    @classmethod
    def within(cls, hours: int, human_hours: int = 0) -> ClaimPolicy:
        return cls("within", hours, human_hours)


ClaimPolicy.ANYONE = ClaimPolicy("anyone")
ClaimPolicy.PRESENT_HERE = ClaimPolicy("present_here")


class Channel(Protocol):
    name: str
    limits: ChannelLimits
    # Whose pushes a worker may claim for this channel; a channel declaring none: anyone's.
    claim_policy: ClaimPolicy

    async def send(self, recipient: str, reply: Reply) -> str:
        """Deliver a push, buttons and all; returns the platform's id of the message sent
        (of the last one, when it took several), which ``edit`` takes. Raises
        RecipientBlocked, RateLimited or PushRefused as the platform says."""

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        """Change a message the bot sent earlier (a staff progress report, a poll);
        False when the platform will not (gone, too old, no open chat). Raises as
        ``send`` does."""


@dataclass(slots=True)
class Once:
    """Says yes for an account at most once in ``seconds``: one apology a resident while
    the database is away, however often the platform delivers their update again."""

    seconds: float = 60.0
    _last: dict[str, float] = field(default_factory=dict)

    def due(self, account: str) -> bool:
        now = time.monotonic()
        for known, since in list(self._last.items()):
            if now - since >= self.seconds:
                del self._last[known]
        if account in self._last:
            return False
        self._last[account] = now
        return True


def coalesce(replies: list[Reply], limit: int, length: Callable[[str], int] = len) -> list[Reply]:
    """Join a bare notice to the reply after it: one message instead of two.

    "That button has expired." followed by the question reads better as one
    message, notifies the resident once and spends half the platform's rate.
    A notice is text alone (no buttons, image or location request); nothing is
    joined into a reply that edits a message in place or will be edited later
    (``keep_apart``), or past ``limit``.
    """
    joined: list[Reply] = []
    for reply in replies:
        previous = joined[-1] if joined else None
        if (
            previous is not None
            and not (previous.buttons or previous.image or previous.request_location)
            and not previous.replace
            and not reply.replace
            and not reply.keep_apart
            and not reply.image
            and length(previous.text) + 2 + length(reply.text) <= limit
        ):
            joined[-1] = replace(reply, text=f"{previous.text}\n\n{reply.text}")
        else:
            joined.append(reply)
    return joined


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji may count two)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, length: Callable[[str], int] = len) -> list[str]:
    """Cut text into pieces no longer than ``limit`` as ``length`` measures.

    Cuts at a paragraph break, else a line break, else a space — the first of
    these found in the second half of the window — so a long answer reads
    naturally as several messages; a single overlong word is cut hard.
    """
    pieces: list[str] = []
    rest = text
    while length(rest) > limit:
        size = min(len(rest), limit)
        while length(rest[:size]) > limit:
            size -= max(1, (length(rest[:size]) - limit) // 2)
        window = rest[:size]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut >= size // 2:
                break
        if cut < size // 2:
            cut = size
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def fit_label(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
