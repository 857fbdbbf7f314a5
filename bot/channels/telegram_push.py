"""Pushes to Telegram on a lean path: one aiohttp session, straight to the Bot API.

A push is a sendMessage (or a sendPhoto with its caption) with no buttons.
Through python-telegram-bot each one costs about 2 ms of CPU (httpx's pool
bookkeeping, building and parsing objects); here about 0.5 ms, which is what
lets one worker keep up with paid broadcasts (1000 a second). Replies to
residents stay on PTB. Errors map as ``TelegramChannel._send`` maps them.
The bot token is in every URL, so no text raised from here may carry a URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.core.channel import RateLimited, RecipientBlocked, split_text, utf16_length

TEXT_LENGTH = 4096  # UTF-16 code units
CAPTION_LENGTH = 1024
TIMEOUT = aiohttp.ClientTimeout(total=30)


class PushFailed(Exception):
    """Telegram refused the push or could not be reached; worth trying again later."""


@dataclass(slots=True)
class PushSender:
    api_url: str
    token: str
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _root: str = field(default="", init=False)

    async def open(self) -> None:
        # The connector's limit is above any worker's in-flight sends.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100), timeout=TIMEOUT
        )
        self._root = f"{self.api_url.rstrip('/')}/bot{self.token}/"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, chat_id: str, text: str, image: str = "") -> None:
        """Text over several messages when longer than Telegram allows; an image
        with the text as its caption when it fits, else the image, then the text."""
        if image:
            caption = text if utf16_length(text) <= CAPTION_LENGTH else ""
            payload: dict[str, Any] = {"chat_id": chat_id, "photo": image}
            if caption:
                payload["caption"] = caption
            await self._call("sendPhoto", payload)
            if caption or not text:
                return
        for piece in split_text(text, TEXT_LENGTH, utf16_length):
            await self._call("sendMessage", {"chat_id": chat_id, "text": piece})

    async def _call(self, method: str, payload: dict[str, Any]) -> None:
        if self._session is None:
            raise RuntimeError("the push sender is not open")
        try:
            async with self._session.post(self._root + method, json=payload) as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientError as error:
            # Never chain the original error: some carry the URL, and the URL the token.
            raise PushFailed(f"{method}: {type(error).__name__}") from None
        except TimeoutError:
            raise PushFailed(f"{method}: no answer within {TIMEOUT.total:g} s") from None
        if status == 200:
            return
        answer = _json(body)
        code = answer.get("error_code", status)
        description = str(answer.get("description") or f"HTTP {status}")
        if code == 403:
            raise RecipientBlocked(description)
        if code == 429:
            parameters = answer.get("parameters") or {}
            raise RateLimited(float(parameters.get("retry_after", 1)))
        raise PushFailed(f"{method}: {code} {description}"[:200])


def _json(body: bytes) -> dict[str, Any]:
    """The Bot API's error object; {} when a proxy answered with something else."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
