"""What every channel offers, and the rendering helpers they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

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


class Channel(Protocol):
    name: str
    limits: ChannelLimits

    async def send(self, recipient: str, reply: Reply) -> str:
        """Deliver a push, buttons and all; returns the platform's id of the message sent
        (of the last one, when it took several), which ``edit`` takes. Raises
        RecipientBlocked, RateLimited or PushRefused as the platform says."""

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        """Change a message the bot sent earlier (a staff progress report, a poll);
        False when the platform will not (gone, too old, no open chat). Raises as
        ``send`` does."""


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
