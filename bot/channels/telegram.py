"""Telegram through python-telegram-bot: long polling, or a webhook in our app.

Only translation happens here: a PTB ``Update`` becomes an ``Incoming``, a
``Reply`` becomes Bot API calls. Every request goes to the configured API
root, so a self-hosted Bot API server (or the test stand-in) works the same.
"""

from __future__ import annotations

import hmac
import json
import logging
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import TypeGuard

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram_push import PushSender
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
CAPABILITIES = Capabilities.of(LIMITS, takes_photos=True, asks_location=True)
CAPTION_LENGTH = 1024
# Telegram's largest updates (a 4096-character message with its entities, the
# message it replies to and a keyboard) are some tens of kilobytes; a megabyte
# leaves room for what the Bot API may add and refuses anything else cheaply.
WEBHOOK_MAX_BYTES = 1024 * 1024


def to_incoming(update: Update) -> Incoming | None:
    """The neutral form of an update, or None for what we do not handle."""
    event_id = str(update.update_id)
    if update.callback_query is not None:
        query = update.callback_query
        message = query.message
        return Incoming(
            channel=NAME,
            user_id=str(query.from_user.id),
            event_id=event_id,
            kind=Kind.BUTTON,
            payload=query.data or "",
            locale=query.from_user.language_code or "",
            message_id=str(message.message_id) if message else "",
        )
    message = update.message
    if message is None or message.from_user is None or message.chat.type != "private":
        return None
    base = Incoming(
        channel=NAME,
        user_id=str(message.from_user.id),
        event_id=event_id,
        kind=Kind.OTHER,
        locale=message.from_user.language_code or "",
    )
    if message.text is not None:
        command = _command(message)
        if command is not None:
            name, args = command
            return replace(base, kind=Kind.COMMAND, command=name, args=args, text=message.text)
        return replace(base, kind=Kind.TEXT, text=message.text)
    if message.location is not None:
        location = Location(message.location.latitude, message.location.longitude)
        return replace(base, kind=Kind.LOCATION, location=location)
    if message.photo:
        photo = message.photo[-1].file_id
        return replace(base, kind=Kind.PHOTO, photo_id=photo, text=message.caption or "")
    if message.contact is not None:
        return replace(base, kind=Kind.CONTACT, contact_phone=message.contact.phone_number)
    return base  # a sticker, a voice note, a file: Kind.OTHER


def _command(message: Message) -> tuple[str, str] | None:
    entities = message.entities or ()
    first = next((e for e in entities if e.offset == 0 and e.type == "bot_command"), None)
    if first is None or message.text is None:
        return None
    name = message.text[1 : first.length].split("@", 1)[0].lower()
    return name, message.text[first.length :].strip()


def keyboard(reply: Reply) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    if reply.request_location and not reply.buttons:
        # Telegram can ask for a location only through a reply keyboard.
        return ReplyKeyboardMarkup(
            [[KeyboardButton(f"📍 {reply.request_location}", request_location=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    fit_label(b.label, LIMITS.button_label_length), callback_data=b.payload
                )
                for b in row
            ]
            for row in reply.buttons
        ]
    )


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


def inline_keyboard(reply: Reply) -> dict[str, object] | None:
    """The reply's buttons as the Bot API's JSON, for the lean push path."""
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
    application: Application = field(init=False)  # type: ignore[type-arg]
    # Pushes go on a lean path of their own from start() to stop().
    _push: PushSender | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        root = self.config.api_url.rstrip("/")
        builder = (
            ApplicationBuilder()
            .token(self.config.token)
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            # Our per-resident lock keeps each resident's updates in order,
            # so different residents need not wait for one another.
            .concurrent_updates(64)
        )
        if self.webhook:
            builder = builder.updater(None)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)

    @property
    def webhook(self) -> bool:
        return self.config.mode == "webhook"

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        app = self.application
        await app.initialize()
        self._push = PushSender(self.config.api_url, self.config.token)
        await self._push.open()
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
            assert app.updater is not None
            await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            log.info("telegram: long polling as @%s", app.bot.username)

    async def _publish_commands(self) -> None:
        """The "/" menu in each language; the default one in the municipality's language."""
        default = self.default_language
        for language in ("", *LANGUAGES):
            tr = translator(language or default)
            commands = [BotCommand(name, tr.gettext(text)) for name, text in self.menu.residents]
            await self.application.bot.set_my_commands(commands, language_code=language or None)

    async def publish_staff_commands(self, accounts: list[tuple[str, str]]) -> None:
        """Staff see their commands in the "/" menu of their own chat, in their language.

        Read at start: a role granted later shows from the next start (the commands
        work at once; the server checks the role on every use, not the menu).
        """
        default = self.default_language
        for chat_id, language in accounts:
            tr = translator(language or default)
            commands = [
                BotCommand(name, tr.gettext(text))
                for name, text in self.menu.residents + self.menu.staff
            ]
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
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()
        if self._push is not None:
            await self._push.close()
            self._push = None

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
        problem = malformed(body)
        update = None
        if problem is None:
            try:
                update = Update.de_json(body, self.application.bot)
            except Exception:  # whatever else a malformed update makes PTB raise
                problem = "not readable as an update"
        if update is None:
            # Acknowledged, so Telegram does not send it again and again: it would
            # never become well-formed. The field is named, never its value.
            log.warning("telegram webhook: a malformed update was dropped (%s)", problem)
            return web.Response(status=200)
        # Handled before we answer 200: a crash makes Telegram redeliver, and
        # the processed-event record makes the redelivery harmless.
        await self.application.process_update(update)
        return web.Response(status=200)

    # --- receiving ----------------------------------------------------------
    async def _on_update(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert isinstance(update, Update)
        incoming = to_incoming(update)
        if incoming is None:
            return
        # Nothing may be awaited before feed(): the per-resident lock must be
        # queued for in arrival order, or a text sent right after a button
        # press could overtake it.
        outcome = await self.feed(incoming)
        if update.callback_query is not None:
            # Stop the button's spinner; a stale query may fail, which is harmless.
            try:
                await update.callback_query.answer()
            except BadRequest:
                pass
        chat_id = int(incoming.user_id)
        for reply in coalesce(outcome.replies, LIMITS.text_length, utf16_length):
            try:
                await self._send(chat_id, reply, incoming.message_id)
            except RecipientBlocked:
                log.info("telegram: %s blocked the bot", who(NAME, chat_id))
                return

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user if isinstance(update, Update) else None
        # The error's text may name the account (a send to it failed): tagged, as in feed().
        with about(NAME, user.id) if user is not None else nullcontext():
            log.error("telegram: update failed: %s", context.error, exc_info=context.error)

    # --- sending ------------------------------------------------------------
    async def send(self, recipient: str, reply: Reply) -> str:
        """A push; returns the message_id of the last message sent. Text, an image and
        inline buttons go on the lean path once started; a location request through
        PTB, as replies do."""
        if self._push is not None and not reply.request_location:
            return await self._push.send(recipient, reply.text, reply.image, inline_keyboard(reply))
        return await self._send(int(recipient), reply, "")

    async def _send(self, chat_id: int, reply: Reply, pressed_on: str) -> str:
        """Send (or edit in place) a reply; returns the id of the message it ends in."""
        bot = self.application.bot
        markup = keyboard(reply)
        try:
            if reply.replace and pressed_on and not reply.image:
                if await self._edit(chat_id, int(pressed_on), reply, markup):
                    return pressed_on
            text = reply.text
            if reply.image:
                caption = text if utf16_length(text) <= CAPTION_LENGTH else ""
                photo = await bot.send_photo(
                    chat_id,
                    reply.image,
                    caption=caption or None,
                    reply_markup=markup if caption else None,
                )
                if caption:
                    return str(photo.message_id)
            pieces = split_text(text, LIMITS.text_length, utf16_length)
            sent = ""
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                message = await bot.send_message(
                    chat_id, piece, reply_markup=markup if last else None
                )
                sent = str(message.message_id)
            return sent
        except Forbidden as error:
            raise RecipientBlocked(str(error)) from error
        except RetryAfter as error:
            with warnings.catch_warnings():
                # PTB 22 warns that retry_after will become a timedelta; we take both.
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                retry = error.retry_after
            raise RateLimited(
                retry if isinstance(retry, int | float) else retry.total_seconds()
            ) from error

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
        """An edit through the outbox (a staff report): on the lean path once started."""
        if self._push is not None:
            return await self._push.edit(recipient, message_id, reply.text, inline_keyboard(reply))
        if not message_id.isdigit():
            return False
        try:
            return await self._edit(int(recipient), int(message_id), reply, keyboard(reply))
        except Forbidden:
            return False

    async def _edit(self, chat_id: int, message_id: int, reply: Reply, markup: object) -> bool:
        """Edit a message in place; False when Telegram will not (too old, gone)."""
        if utf16_length(reply.text) > LIMITS.text_length or not isinstance(
            markup, InlineKeyboardMarkup | None
        ):
            return False
        try:
            await self.application.bot.edit_message_text(
                reply.text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            )
        except BadRequest as error:
            if "not modified" in str(error).lower():
                return True
            log.info("telegram: edit refused (%s), sending anew", error)
            return False
        return True
