"""What every channel offers, and the rendering helpers they share."""

from __future__ import annotations

from typing import Protocol

from bot.messages import ChannelLimits, Reply


class RecipientBlocked(Exception):
    """The platform says the resident blocked the bot: do not retry."""


class RateLimited(Exception):
    """The platform asked us to wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class Channel(Protocol):
    name: str
    limits: ChannelLimits

    async def send(self, recipient: str, reply: Reply) -> None:
        """Deliver a push; raises RecipientBlocked or RateLimited as the platform says."""


def split_text(text: str, limit: int) -> list[str]:
    """Cut text into pieces of at most ``limit`` characters.

    Cuts at a paragraph, then a line, then a space, so a long answer reads
    naturally as several messages; a single overlong word is cut hard.
    """
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def fit_label(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
