"""Telegram: long polling, or a webhook in our app.

Only translation happens here: an update (the Bot API's JSON, checked against
the shape Telegram documents) becomes an ``Incoming``, a ``Reply`` becomes Bot
API calls. Answers and pushes go on the lean path of ``telegram_push`` (aiohttp,
JSON); python-telegram-bot does the rest (the webhook and the "/" menus at start,
getUpdates, getFile), where its objects cost nothing that matters. Every request
goes to the configured API root, so a self-hosted Bot API server (or the test
stand-in) works the same.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol, TypeGuard, TypeVar

from aiohttp import web
from telegram import BotCommand, BotCommandScopeChat
from telegram.error import BadRequest, Forbidden
from telegram.ext import Application, ApplicationBuilder

from bot.channels import telegram_polling
from bot.channels.telegram_push import ApiRefused, PushFailed, PushSender
from bot.core import metrics
from bot.core.channel import (
    ClaimPolicy,
    RateLimited,
    RecipientBlocked,
    coalesce,
    fit_label,
    split_text,
    utf16_length,
)
from bot.core.config import TelegramConfig
from bot.core.i18n import LANGUAGES, translator
from bot.core.logs import about, who
from bot.core.messages import (
    Capabilities,
    ChannelLimits,
    CommandList,
    CommandMenu,
    Feed,
    Incoming,
    Kind,
    Location,
    Reply,
)

log = logging.getLogger(__name__)

NAME = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
LIMITS = ChannelLimits(
    text_length=4096,
    buttons_per_message=100,
    button_label_length=64,
    payload_bytes=64,
    can_edit=True,
    messages_per_second=30.0,
    messages_per_second_per_chat=1.0,
)
# Photos through getFile; a location through a reply keyboard (when a reply has no
# inline buttons); pushes at any time.
CAPABILITIES = Capabilities.of(
    LIMITS, takes_photos=True, resends_photo_ids=True, asks_location=True
)
CAPTION_LENGTH = 1024
# Telegram's largest updates (a 4096-character message with its entities, the
# message it replies to and a keyboard) are some tens of kilobytes; a megabyte
# leaves room for what the Bot API may add and refuses anything else cheaply.
WEBHOOK_MAX_BYTES = 1024 * 1024
# In webhook mode Telegram waits for the update's answer: an answer to a resident
# waits for Telegram (retry_after, network faults) at most this long in all.
WEBHOOK_ANSWER_WAIT = 5.0
ANSWER_ATTEMPTS = 3  # tries of one message of an answer after a network fault or a 5xx
ANSWER_RETRY_PAUSE = 0.5  # seconds before the second try, doubled before each next one
# Seconds one Bot API call of an answer may take (an uploaded photo included) before
# it counts as a network fault and is tried again; pushes allow more (telegram_push).
ANSWER_TIMEOUT = 10.0

T = TypeVar("T")

LocalImages = Callable[[str], Awaitable[bytes | None]]
"""``local_images(path)``: the bytes of an image our own server serves ("/photos/….jpg",
"/media/…"), or None when it is gone. Telegram cannot fetch such a path, so the
channel uploads the bytes; the runtime hands the reader in (a channel reaches no
storage of its own)."""

Unsent = Callable[[str, list[Reply]], Awaitable[None]]
"""``on_unsent(recipient, replies)``: the answers (the messages not yet sent, in
order) that could not reach the resident within the wait allowed; the runtime
decides what becomes of them."""


class AnswerRate(Protocol):
    """Where answers take their share of the bot token's rate (``bot.pacing.AnswerPacer``)."""

    async def take(self, chat: str) -> float:
        """Book one message now; returns the seconds the chat's own pace asks to wait."""

    async def pause(self, seconds: float) -> None:
        """Telegram said "retry after": hold every send of the token (the pushes too)."""


class _NotSent(Exception):
    """What is left of an answer after its wait allowance ran out, and why."""

    def __init__(self, rest: list[Reply], reason: str) -> None:
        super().__init__(reason)
        self.rest = rest
        self.reason = reason


@dataclass(slots=True)
class _Allowance:
    """The seconds an answer may still wait for Telegram."""

    left: float

    def spend(self, seconds: float) -> bool:
        if seconds > self.left:
            return False
        self.left -= seconds
        return True


def one_call_each(reply: Reply) -> list[Reply]:
    """A reply cut into the messages Telegram carries, one Bot API call each, so a
    message that fails is tried again without repeating the ones before it: an image
    with the text as its caption where it fits (else the image alone, then the text),
    a long text in pieces, the buttons (or the location request) with the last."""
    whole = replace(reply, replace=False)
    if reply.image and utf16_length(reply.text) <= CAPTION_LENGTH:
        return [whole]
    first = [Reply("", image=reply.image)] if reply.image else []
    *pieces, last = split_text(reply.text, LIMITS.text_length, utf16_length)
    return [*first, *(Reply(piece) for piece in pieces), replace(whole, text=last, image="")]


def to_incoming(update: dict[str, Any]) -> Incoming | None:
    """The neutral form of an update ``malformed`` found nothing wrong with, or None
    for what we do not handle."""
    incoming = _read(update)
    if incoming is None:
        return None
    # A NUL is valid in JSON and invisible, but PostgreSQL refuses it in text: dropped.
    return replace(
        incoming,
        text=incoming.text.replace("\x00", ""),
        args=incoming.args.replace("\x00", ""),
        payload=incoming.payload.replace("\x00", ""),
    )


def _read(update: dict[str, Any]) -> Incoming | None:
    event_id = str(update["update_id"])
    query = update.get("callback_query")
    if query is not None:
        pressed = query.get("message")
        return Incoming(
            channel=NAME,
            user_id=str(query["from"]["id"]),
            event_id=event_id,
            kind=Kind.BUTTON,
            payload=query.get("data") or "",
            locale=query["from"].get("language_code") or "",
            message_id=str(pressed["message_id"]) if pressed else "",
        )
    message = update.get("message")
    if message is None or "from" not in message or message["chat"]["type"] != "private":
        return None
    base = Incoming(
        channel=NAME,
        user_id=str(message["from"]["id"]),
        event_id=event_id,
        kind=Kind.OTHER,
        locale=message["from"].get("language_code") or "",
    )
    text = message.get("text")
    if text is not None:
        command = _command(text, message.get("entities") or ())
        if command is not None:
            name, args = command
            return replace(base, kind=Kind.COMMAND, command=name, args=args, text=text)
        return replace(base, kind=Kind.TEXT, text=text)
    if "location" in message:
        point = message["location"]
        return replace(
            base, kind=Kind.LOCATION, location=Location(point["latitude"], point["longitude"])
        )
    if message.get("photo"):
        photo = message["photo"][-1]["file_id"]  # the largest size comes last
        return replace(base, kind=Kind.PHOTO, photo_id=photo, text=message.get("caption") or "")
    if "contact" in message:
        return replace(base, kind=Kind.CONTACT, contact_phone=message["contact"]["phone_number"])
    return base  # a sticker, a voice note, a file: Kind.OTHER


def _command(text: str, entities: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    first = next((e for e in entities if e["offset"] == 0 and e["type"] == "bot_command"), None)
    if first is None:
        return None
    length = first["length"]
    name = text[1:length].split("@", 1)[0].lower()
    return name, text[length:].strip()


def reply_markup(reply: Reply) -> dict[str, Any] | None:
    """The reply's keyboard as the Bot API's JSON: its inline buttons, or the keyboard
    that asks for a location (Telegram asks for one only through a reply keyboard)."""
    if reply.request_location and not reply.buttons:
        button = {"text": f"📍 {reply.request_location}", "request_location": True}
        return {"keyboard": [[button]], "resize_keyboard": True, "one_time_keyboard": True}
    if not reply.buttons:
        return None
    return {
        "inline_keyboard": [
            [
                {"text": fit_label(b.label, LIMITS.button_label_length), "callback_data": b.payload}
                for b in row
            ]
            for row in reply.buttons
        ]
    }


def _secret_matches(request: web.Request, secret: str) -> bool:
    """Compared as bytes in constant time: a header is any bytes, not always UTF-8."""
    given = request.headers.get(SECRET_HEADER, "")
    # aiohttp decodes header bytes that are not UTF-8 as surrogates; this undoes it.
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode())


def _is_int(value: object) -> TypeGuard[int]:
    """an integer"""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_update_id(value: object) -> bool:
    """an update id"""
    return _is_int(value) and 0 <= value < 2**63


def _is_user_id(value: object) -> bool:
    """a Telegram user id"""
    # Telegram: "at most 52 significant bits"; a person's id is positive.
    return _is_int(value) and 0 < value < 2**52


def _is_chat_id(value: object) -> bool:
    """a Telegram chat id"""
    return _is_int(value) and -(2**52) < value < 2**52


def _is_text(value: object) -> bool:
    """a string"""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate ("\\ud800" in JSON): Telegram sends UTF-8
        return False
    return True


def _is_latitude(value: object) -> bool:
    """a latitude"""
    return isinstance(value, int | float) and not isinstance(value, bool) and -90 <= value <= 90


def _is_longitude(value: object) -> bool:
    """a longitude"""
    return isinstance(value, int | float) and not isinstance(value, bool) and -180 <= value <= 180


# What to_incoming reads of an update, as the Bot API documents it. A key that
# ends in "?" may be absent; a dict is an object of that shape, a list of one
# shape a list of such; a function checks a value (its docstring says what).
Shape = Callable[[object], bool] | dict[str, "Shape"] | list["Shape"]
USER: Shape = {"id": _is_user_id, "language_code?": _is_text}
CHAT: Shape = {"id": _is_chat_id, "type": _is_text}
UPDATE: Shape = {
    "update_id": _is_update_id,
    "message?": {
        "message_id": _is_int,
        "chat": CHAT,
        "from?": USER,
        "text?": _is_text,
        "caption?": _is_text,
        "entities?": [{"type": _is_text, "offset": _is_int, "length": _is_int}],
        "location?": {"latitude": _is_latitude, "longitude": _is_longitude},
        "photo?": [{"file_id": _is_text}],
        "contact?": {"phone_number": _is_text},
    },
    "callback_query?": {
        "id": _is_text,
        "from": USER,
        "data?": _is_text,
        "message?": {"message_id": _is_int, "chat": CHAT},
    },
}


def malformed(value: object, shape: Shape = UPDATE, where: str = "") -> str | None:
    """What in an update is not as Telegram sends it (a field's name, never its value), or None.

    Checked before the dispatcher sees the update: ``from.id: "abc"`` would
    otherwise make a resident of "abc" and then fail to answer them.
    """
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return f"{where or 'update'}: not an object"
        for key, inner in shape.items():
            name = key.removesuffix("?")
            path = f"{where}.{name}" if where else name
            if name not in value:
                if key.endswith("?"):
                    continue
                return f"{path}: missing"
            problem = malformed(value[name], inner, path)
            if problem is not None:
                return problem
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return f"{where}: not a list"
        for index, item in enumerate(value):
            problem = malformed(item, shape[0], f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    return None if shape(value) else f"{where}: not {shape.__doc__}"


@dataclass(slots=True)
class TelegramChannel:
    config: TelegramConfig
    feed: Feed
    menu: CommandMenu
    # The language of the menu for residents whose app tells none.
    default_language: str
    name: str = NAME
    limits: ChannelLimits = LIMITS
    capabilities: Capabilities = CAPABILITIES
    claim_policy: ClaimPolicy = ClaimPolicy.ANYONE  # any worker may send to any chat
    # Answers: their share of the token's rate (the runtime keeps it with the pushes'),
    # how long in all one may wait for Telegram, and who takes what could not go then.
    rate: AnswerRate | None = None
    answer_wait: float = 60.0
    on_unsent: Unsent | None = None
    local_images: LocalImages | None = None
    application: Application = field(init=False)  # type: ignore[type-arg]
    # The lean paths from start() to stop(): pushes, and answers (with a shorter wait).
    _push: PushSender | None = field(default=None, init=False)
    _answers: PushSender | None = field(default=None, init=False)
    # Set by stop(): an answer waiting for Telegram is handed on at once.
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _polling: asyncio.Task[None] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        root = self.config.api_url.rstrip("/")
        builder = (
            ApplicationBuilder()
            .token(self.config.token)
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            # Updates come to ``take`` from our webhook route or our own long polling
            # (telegram_polling: an update is confirmed only once handled), not PTB's.
            .updater(None)
        )
        self.application = builder.build()

    @property
    def webhook(self) -> bool:
        return self.config.mode == "webhook"

    # --- lifecycle ----------------------------------------------------------
    async def open(self) -> None:
        """Ready to send (answers, pushes, edits), not yet taking updates."""
        await self.application.initialize()
        self._push = PushSender(self.config.api_url, self.config.token)
        await self._push.open()
        self._answers = PushSender(self.config.api_url, self.config.token, ANSWER_TIMEOUT)
        await self._answers.open()

    async def start(self) -> None:
        await self.open()
        app = self.application
        await app.start()
        await self._publish_commands()
        if self.webhook:
            await app.bot.set_webhook(
                self.config.webhook_url,
                secret_token=self.config.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram: webhook set, waiting at %s", WEBHOOK_PATH)
        else:
            await app.bot.delete_webhook()  # getUpdates is refused while a webhook is set
            self._polling = asyncio.create_task(
                telegram_polling.poll(app.bot, self.take, ALLOWED_UPDATES, self._stopping)
            )
            log.info("telegram: long polling as @%s", app.bot.username)

    async def _publish_commands(self) -> None:
        """The "/" menu in each language; the default one in the municipality's language."""
        default = self.default_language
        for language in ("", *LANGUAGES):
            tr = translator(language or default)
            commands = [BotCommand(name, tr.gettext(text)) for name, text in self.menu.residents]
            await self.application.bot.set_my_commands(commands, language_code=language or None)

    async def publish_staff_commands(
        self, accounts: Sequence[tuple[str, str, CommandList]]
    ) -> None:
        """Staff see their commands in the "/" menu of their own chat, in their language:
        (chat id, language or "", the staff commands of that account's role).

        Read at start: a role granted later shows from the next start (the commands
        work at once; the server checks the role on every use, not the menu).
        """
        default = self.default_language
        for chat_id, language, own in accounts:
            tr = translator(language or default)
            # A staff command named as a resident's (/polls) takes its place, with the
            # staff's words: each command once, the residents' order kept.
            merged = dict(self.menu.residents)
            merged.update(own)
            commands = [BotCommand(name, tr.gettext(text)) for name, text in merged.items()]
            try:
                await self.application.bot.set_my_commands(
                    commands, scope=BotCommandScopeChat(int(chat_id))
                )
            except (BadRequest, Forbidden, ValueError) as error:
                # The account never opened the bot, or blocked it: nothing to show it in.
                # (A ValueError's text would repeat the id.)
                why = "not a Telegram user id" if isinstance(error, ValueError) else error
                log.info("telegram: no staff menu for %s (%s)", who(NAME, chat_id), why)

    async def stop(self) -> None:
        """Stop taking updates, let in-flight ones finish, close the HTTP client."""
        self._stopping.set()
        app = self.application
        if self._polling is not None:
            await self._polling  # the batch in hand is finished and confirmed
            self._polling = None
        if app.running:
            await app.stop()
        await app.shutdown()
        for sender in (self._push, self._answers):
            if sender is not None:
                await sender.close()
        self._push = self._answers = None

    def add_routes(self, app: web.Application) -> None:
        if self.webhook:
            app.router.add_post(WEBHOOK_PATH, self.receive_webhook)

    async def receive_webhook(self, request: web.Request) -> web.Response:
        if not _secret_matches(request, self.config.webhook_secret):
            log.warning("telegram webhook: wrong secret token from %s", request.remote)
            return web.Response(status=403)
        if (request.content_length or 0) > WEBHOOK_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(WEBHOOK_MAX_BYTES, request.content_length or 0)
        raw = await request.read()
        if len(raw) > WEBHOOK_MAX_BYTES:
            raise web.HTTPRequestEntityTooLarge(WEBHOOK_MAX_BYTES, len(raw))
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
            body = None
        if not isinstance(body, dict) or not _is_int(body.get("update_id")):
            # Telegram never sends this, so it will not send it again either.
            log.info("telegram webhook: a body that is not an update was refused")
            return web.Response(status=400, text="not a Telegram update")
        # Handled before we answer 200: a crash makes Telegram redeliver, and
        # the processed-event record makes the redelivery harmless. One that could
        # not be handled now (the database away) is answered 503: Telegram sends it
        # again, with the resident's next ones behind it.
        retry, pressed = await self._handle(body)
        if retry:
            await self._stop_spinner(pressed)
            return web.Response(status=503, text="not handled now; send it again")
        if pressed:
            # Telegram carries out one method given as the answer to an update: the
            # spinner's stop costs no request of ours (its result is of no use anyway).
            return web.json_response(
                {"method": "answerCallbackQuery", "callback_query_id": pressed}
            )
        return web.Response(status=200)

    # --- receiving ----------------------------------------------------------
    async def take(self, body: dict[str, object]) -> bool:
        """Handle one polled update as Telegram sent it; True when it could not be
        handled now and must come again (polling does not confirm it)."""
        retry, pressed = await self._handle(body)
        await self._stop_spinner(pressed)
        return retry

    async def _handle(self, body: dict[str, Any]) -> tuple[bool, str]:
        """Handle one update: (True when it must come again, the id of the callback query
        whose spinner is still to be stopped, or "")."""
        if not any(kind in body for kind in ALLOWED_UPDATES):
            # A kind we did not ask for (an edit, a chat member change): nothing to do.
            return False, ""
        problem = malformed(body)
        if problem is not None:
            # Taken, so Telegram does not send it again and again: it would never
            # become well-formed. The field is named, never its value.
            log.warning("telegram webhook: a malformed update was dropped (%s)", problem)
            return False, ""
        incoming = to_incoming(body)
        if incoming is None:
            return False, ""
        # Nothing may be awaited before feed(): the per-resident lock must be
        # queued for in arrival order, or a text sent right after a button
        # press could overtake it.
        outcome = await self.feed(incoming)
        try:
            await self._answer(incoming.user_id, outcome.replies, incoming.message_id)
        except Exception as error:
            # The error's text may name the account (a send to it failed): tagged.
            with about(NAME, incoming.user_id):
                log.error("telegram: update failed: %s", error, exc_info=error)
        query = body.get("callback_query")
        return outcome.retry, query["id"] if query is not None else ""

    async def _stop_spinner(self, query_id: str) -> None:
        """Answer a callback query, so the pressed button stops spinning. A stale query
        may be refused; no failure of it matters to the resident."""
        if not query_id or self._answers is None:
            return
        try:
            await self._answers.answer_callback(query_id)
        except (PushFailed, RateLimited, RecipientBlocked) as error:
            log.debug("telegram: a button's spinner not stopped (%s)", error)

    # --- answering ----------------------------------------------------------
    async def _answer(self, recipient: str, replies: list[Reply], pressed_on: str) -> None:
        """Send a resident's answers in order, each message once.

        The dialog state has committed by now, so an answer must not be lost: a 429
        is waited out and a network fault or 5xx tried again, for ``answer_wait``
        seconds in all (a few in webhook mode, where Telegram waits for our 200).
        What is left then goes to ``on_unsent``. A message Telegram refuses (400) is
        logged and the rest still go.
        """
        chat_id = int(recipient)
        wait = min(self.answer_wait, WEBHOOK_ANSWER_WAIT) if self.webhook else self.answer_wait
        allowance = _Allowance(wait)
        pending = coalesce(replies, LIMITS.text_length, utf16_length)
        # Telegram's error texts may name the account: tagged, as in feed().
        with about(NAME, recipient):
            for index, reply in enumerate(pending):
                try:
                    await self._answer_one(chat_id, reply, pressed_on, allowance)
                except RecipientBlocked:
                    log.info("telegram: %s blocked the bot", who(NAME, chat_id))
                    return
                except _NotSent as stopped:
                    later = [replace(r, replace=False) for r in pending[index + 1 :]]
                    await self._hand_over(recipient, [*stopped.rest, *later], stopped)
                    return
                except ApiRefused as error:  # refused (400, ...): no retry would mend it
                    log.error(
                        "telegram: an answer to %s was refused: %s",
                        who(NAME, chat_id),
                        error,
                        exc_info=error,
                    )

    async def _answer_one(
        self, chat_id: int, reply: Reply, pressed_on: str, allowance: _Allowance
    ) -> None:
        if reply.replace and pressed_on and not reply.image:
            edit = partial(self._edit, str(chat_id), pressed_on, reply)
            # Not sent, it would go anew: the outbox cannot edit what was pressed.
            if await self._call(chat_id, edit, allowance, [replace(reply, replace=False)]):
                return
        messages = one_call_each(reply)
        for index, message in enumerate(messages):
            send = partial(self._send_one, chat_id, message)
            await self._call(chat_id, send, allowance, messages[index:])

    async def _call(
        self,
        chat_id: int,
        call: Callable[[], Awaitable[T]],
        allowance: _Allowance,
        rest: list[Reply],
    ) -> T:
        """One Bot API call of an answer: paced, and tried again while the allowance lasts.

        Raises RecipientBlocked, _NotSent (with ``rest``, what is then not sent) or
        ApiRefused (no retry would mend it).
        """
        faults = 0
        while True:
            if self.rate is not None:
                pace = await self.rate.take(str(chat_id))
                if pace > 0:
                    await asyncio.sleep(pace)
            try:
                return await call()
            except RateLimited as limited:
                seconds = limited.retry_after
                metrics.rate_limited(NAME, "answer", seconds)
                if self.rate is not None:
                    await self.rate.pause(seconds)
                reason = f"Telegram asked to retry after {seconds:g} s"
            except ApiRefused:
                raise
            except PushFailed as error:  # no answer, or a 5xx (a timeout may have delivered)
                faults += 1
                reason = str(error)
                if faults >= ANSWER_ATTEMPTS:
                    raise _NotSent(rest, f"{reason}, {faults} tries") from None
                seconds = ANSWER_RETRY_PAUSE * 2 ** (faults - 1)
            if not allowance.spend(seconds):
                raise _NotSent(rest, f"{reason}: more than the wait allowed") from None
            log.info(
                "telegram: an answer to %s waits %g s (%s)", who(NAME, chat_id), seconds, reason
            )
            try:
                await asyncio.wait_for(self._stopping.wait(), seconds)
            except TimeoutError:
                continue
            raise _NotSent(rest, f"{reason}, and the bot is stopping")

    async def _send_one(self, chat_id: int, message: Reply) -> None:
        """One message of an answer, as ``one_call_each`` cut it."""
        await self._lean_send(self._sender(self._answers), str(chat_id), message)

    async def _lean_send(self, sender: PushSender, chat_id: str, reply: Reply) -> str:
        """A reply through ``sender``; the message_id it ends in ("" when nothing went)."""
        photo = await self._photo(reply.image)
        if photo is None and not reply.text:
            log.info("telegram: a message of only an image that is gone: nothing to send")
            return ""
        upload = photo if isinstance(photo, bytes) else None
        image = photo if isinstance(photo, str) else ""
        return await sender.send(chat_id, reply.text, image, reply_markup(reply), upload=upload)

    @staticmethod
    def _sender(sender: PushSender | None) -> PushSender:
        if sender is None:
            raise RuntimeError("the Telegram channel is not started")
        return sender

    async def _photo(self, image: str) -> str | bytes | None:
        """What to hand Telegram as a photo: a file id or URL as it is; for an image of
        our own server (a path: Telegram cannot fetch it), its bytes, to upload. None
        when there is no image, or ours is gone."""
        if not image:
            return None
        if not image.startswith("/"):
            return image
        if self.local_images is None:
            log.warning("telegram: no reader for our own images; %s not shown", image[:24])
            return None
        return await self.local_images(image)

    async def _hand_over(self, recipient: str, rest: list[Reply], stopped: _NotSent) -> None:
        log.info(
            "telegram: %d message(s) of an answer to %s not sent: %s",
            len(rest),
            who(NAME, recipient),
            stopped.reason,
        )
        if self.on_unsent is None:
            log.warning("telegram: an answer to %s is lost", who(NAME, recipient))
            return
        try:
            await self.on_unsent(recipient, rest)
        except Exception:
            log.exception("telegram: the answer to %s could not be handed on", who(NAME, recipient))

    # --- sending ------------------------------------------------------------
    async def send(self, recipient: str, reply: Reply) -> str:
        """A push; returns the message_id of the last message sent."""
        return await self._lean_send(self._sender(self._push), recipient, reply)

    async def fetch(self, file_id: str, max_bytes: int) -> bytes | None:
        """Download a file a resident sent (getFile, then the file URL of the API root)."""
        try:
            found = await self.application.bot.get_file(file_id)
            if found.file_size is not None and found.file_size > max_bytes:
                return None
            data = bytes(await found.download_as_bytearray())
        except BadRequest as error:  # an unknown or expired file id
            log.info("telegram: file not fetched (%s)", error)
            return None
        return data if len(data) <= max_bytes else None

    async def edit(self, recipient: str, message_id: str, reply: Reply) -> bool:
        """An edit through the outbox (a staff report); False when Telegram will not."""
        markup = reply_markup(reply)
        return await self._sender(self._push).edit(recipient, message_id, reply.text, markup)

    async def _edit(self, chat_id: str, message_id: str, reply: Reply) -> bool:
        """Edit a pressed message in place; False when Telegram will not (too old, gone,
        a location keyboard, which no edit can carry): the answer then goes anew."""
        markup = reply_markup(reply)
        if markup is not None and "inline_keyboard" not in markup:
            return False
        edited = await self._sender(self._answers).edit(chat_id, message_id, reply.text, markup)
        if not edited:
            log.info("telegram: an edit of %s was refused, sent anew", who(NAME, chat_id))
        return edited
