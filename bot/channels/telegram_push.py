"""Messages to Telegram on a lean path: one aiohttp session, straight to the Bot API.

A message is a sendMessage (or a sendPhoto with its caption), with its
keyboard if it has one, or an editMessageText of a message sent earlier; the
answers to residents and the pushes both go this way. Through
python-telegram-bot each call cost about 2 ms of CPU (httpx's pool bookkeeping,
building and parsing objects); here about 0.5 ms, which is what lets one worker
keep up with paid broadcasts (1000 a second), and it was 38 % of a worker's
time per update under load (bench/README.md, "load.py").

Errors: 403 RecipientBlocked, 429 RateLimited, a refused edit EditRefused
(``edit`` turns it into False), any other 4xx ApiRefused (trying again would
fail alike), no answer or a 5xx PushFailed (worth trying again).
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
PUSH_TIMEOUT = 30.0  # seconds for one call, its upload included


class PushFailed(Exception):
    """Telegram could not be reached, or failed (a 5xx); worth trying again later."""


class ApiRefused(PushFailed):
    """Telegram refused the call (a 4xx but 403 and 429): the same call would be refused
    again. A PushFailed still, so that the outbox keeps its backoff for it."""


@dataclass(slots=True)
class PushSender:
    api_url: str
    token: str
    timeout: float = PUSH_TIMEOUT
    _session: aiohttp.ClientSession | None = field(default=None, init=False)
    _root: str = field(default="", init=False)

    async def open(self) -> None:
        # The connector's limit is above any worker's in-flight sends.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        self._root = f"{self.api_url.rstrip('/')}/bot{self.token}/"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self,
        chat_id: str,
        text: str,
        image: str = "",
        markup: dict[str, Any] | None = None,
        upload: bytes | None = None,
    ) -> str:
        """Text over several messages when longer than Telegram allows; an image
        with the text as its caption when it fits, else the image, then the text.
        ``upload``: the image's bytes, sent as a file (a photo of ours that Telegram
        cannot fetch by URL); ``image`` is then not sent. The inline keyboard
        ``markup`` rides on the last message. Returns the message_id of the last
        message sent."""
        if image or upload is not None:
            caption = text if utf16_length(text) <= CAPTION_LENGTH else ""
            payload: dict[str, Any] = {"chat_id": chat_id}
            if upload is None:
                payload["photo"] = image
            if caption:
                payload["caption"] = caption
            last = caption or not text
            if markup and last:
                payload["reply_markup"] = markup
            sent = await self._call("sendPhoto", payload, upload)
            if last:
                return _message_id(sent)
        pieces = split_text(text, TEXT_LENGTH, utf16_length)
        for index, piece in enumerate(pieces):
            payload = {"chat_id": chat_id, "text": piece}
            if markup and index == len(pieces) - 1:
                payload["reply_markup"] = markup
            sent = await self._call("sendMessage", payload)
        return _message_id(sent)

    async def edit(
        self, chat_id: str, message_id: str, text: str, markup: dict[str, Any] | None = None
    ) -> bool:
        """Change the text (and buttons) of a message sent earlier; False when Telegram
        will not (too old, gone, or the text now too long for one message)."""
        if not message_id.isdigit() or utf16_length(text) > TEXT_LENGTH:
            return False
        payload: dict[str, Any] = {"chat_id": chat_id, "message_id": int(message_id), "text": text}
        if markup:  # left out, the keyboard is removed
            payload["reply_markup"] = markup
        try:
            await self._call("editMessageText", payload)
        except EditRefused as refused:
            # Telegram's answer to an edit that changes nothing: it shows what it should.
            return "not modified" in str(refused).lower()
        return True

    async def answer_callback(self, query_id: str) -> None:
        """Stop a pressed button's spinner (answerCallbackQuery with no text)."""
        await self._call("answerCallbackQuery", {"callback_query_id": query_id})

    async def _call(self, method: str, payload: dict[str, Any], upload: bytes | None = None) -> Any:
        """The Bot API's ``result``; raises as the module's docstring says. With an
        ``upload``, the call is multipart and the bytes go as its ``photo``."""
        if self._session is None:
            raise RuntimeError("the push sender is not open")
        request: dict[str, Any] = (
            {"json": payload} if upload is None else {"data": _form(payload, upload)}
        )
        try:
            async with self._session.post(self._root + method, **request) as response:
                body = await response.read()
                status = response.status
        except aiohttp.ClientError as error:
            # Never chain the original error: some carry the URL, and the URL the token.
            raise PushFailed(f"{method}: {type(error).__name__}") from None
        except TimeoutError:
            raise PushFailed(f"{method}: no answer within {self.timeout:g} s") from None
        answer = _json(body)
        if status == 200:
            return answer.get("result")
        code = answer.get("error_code", status)
        description = str(answer.get("description") or f"HTTP {status}")
        if code == 403:
            raise RecipientBlocked(description)
        if code == 429:
            raise RateLimited(_retry_after(answer.get("parameters")))
        if code == 400 and method.startswith("edit"):
            raise EditRefused(description[:200])
        failure = f"{method}: {code} {description}"[:200]
        if isinstance(code, int) and 400 <= code < 500:
            raise ApiRefused(failure)
        raise PushFailed(failure)


class EditRefused(Exception):
    """Telegram will not edit the message (a 400 to an edit): not worth trying again."""


def _form(payload: dict[str, Any], upload: bytes) -> aiohttp.FormData:
    """A multipart body as the Bot API takes it: every field a string, objects as JSON."""
    form = aiohttp.FormData()
    for name, value in payload.items():
        form.add_field(name, json.dumps(value) if isinstance(value, dict) else str(value))
    form.add_field("photo", upload, filename="photo.jpg", content_type="image/jpeg")
    return form


def _retry_after(parameters: Any) -> float:
    """The seconds a 429 asks to wait; 1 when its answer names none that makes sense."""
    seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(seconds, int | float) and 0 < seconds < 86_400:
        return float(seconds)
    return 1.0


def _message_id(result: Any) -> str:
    return str(result.get("message_id", "")) if isinstance(result, dict) else ""


def _json(body: bytes) -> dict[str, Any]:
    """The Bot API's answer object; {} when a proxy answered with something else."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
