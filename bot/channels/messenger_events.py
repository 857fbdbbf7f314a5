"""Messenger's webhook deliveries, read: the signature, the events we act on, Incoming.

Pure functions, no I/O: the channel (``bot.channels.messenger``) stores what
``events_of`` returns before it answers Meta, and turns each stored item into
an ``Incoming`` with ``to_incoming`` when it handles it. Meta's payloads are
read leniently (numbers may come as strings, a timestamp in seconds or in
milliseconds, lists may be missing) and anything of the wrong shape is
skipped, never raised: one odd item must not cost the rest of a batch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.core.messages import Incoming, Kind, Location

NAME = "messenger"
SIGNATURE_PREFIX = "sha256="
SIGNATURE_LENGTH = len(SIGNATURE_PREFIX) + 64


def signature_ok(raw: bytes, header: str | None, app_secret: str) -> bool:
    """``X-Hub-Signature-256``: "sha256=" and the hex HMAC-SHA256 of the raw body, keyed
    with the app secret; compared in constant time."""
    if not header or len(header) != SIGNATURE_LENGTH or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len(SIGNATURE_PREFIX) :].lower(), expected)


@dataclass(frozen=True, slots=True)
class Event:
    """One messaging item worth storing: its dedupe key, its sender and the item itself."""

    key: str
    sender: str
    item: dict[str, Any]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:  # JSON's integers have no bound: 10**400 is no coordinate
            return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def sent_at(item: dict[str, Any]) -> datetime | None:
    """The item's timestamp: milliseconds, or seconds when below 1e12 (Meta stamps some
    referrals in seconds)."""
    stamp = _number(item.get("timestamp"))
    if stamp is None or stamp <= 0:
        return None
    seconds = stamp / 1000 if stamp >= 1e12 else stamp
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _kind_of(item: dict[str, Any]) -> str | None:
    """What the item is, among those we act on; None for the rest (echoes, reads…)."""
    message = item.get("message")
    if isinstance(message, dict):
        return None if message.get("is_echo") else "message"
    if isinstance(item.get("postback"), dict):
        return "postback"
    if isinstance(item.get("referral"), dict):
        return "referral"
    return None  # read, delivery, reaction, message_edit, optin, unknown: nothing to do


def _key(item: dict[str, Any], sender: str, kind: str) -> str:
    body = _dict(item.get(kind))
    mid = _text(body.get("mid"))
    if mid:
        source = f"mid:{mid}"
    else:
        payload = _text(body.get("payload")) or _text(body.get("ref"))
        source = f"{sender}:{item.get('timestamp')}:{kind}:{payload}"
    # JSON may carry a lone surrogate ("\ud800"), which UTF-8 cannot: kept as it came.
    return hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def events_of(body: object) -> list[Event] | None:
    """Every item of a delivery we act on, in order; None when the body is not a page's
    webhook delivery at all."""
    if not isinstance(body, dict) or body.get("object") != "page":
        return None
    entries = body.get("entry")
    if not isinstance(entries, list):
        return None
    events: list[Event] = []
    seen: set[str] = set()
    for entry in entries:
        entry = _dict(entry)
        for item in [*_list(entry.get("messaging")), *_list(entry.get("standby"))]:
            if not isinstance(item, dict):
                continue
            sender = _text(_dict(item.get("sender")).get("id"))
            kind = _kind_of(item)
            # A PSID is ASCII digits: str.isdigit() alone takes "١٢٣" and "²³" too.
            psid = sender.isascii() and sender.isdigit() and len(sender) <= 64
            if not psid or kind is None:
                continue  # a user_ref (no PSID), an echo, a read receipt…
            key = _key(item, sender, kind)
            if key not in seen:  # one delivery may repeat an item
                seen.add(key)
                events.append(Event(key, sender, item))
    return events


def _command(text: str) -> tuple[str, str] | None:
    """ "/help", "/start ref": a command name (lower case, no slash) and what follows."""
    if not text.startswith("/") or len(text) < 2:
        return None
    name, _, args = text[1:].partition(" ")
    name = name.lower()
    if not name.isascii() or not all(ch.isalnum() or ch == "_" for ch in name):
        return None
    return name, args.strip()


def to_incoming(item: dict[str, Any], key: str) -> Incoming | None:
    """The neutral form of a stored item, or None for one no dialog can take."""
    incoming = _read(item, key)
    if incoming is None:
        return None
    return replace(
        incoming,
        text=_storable(incoming.text),
        args=_storable(incoming.args),
        payload=_storable(incoming.payload),
    )


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """Text a database takes: JSON may carry a NUL (PostgreSQL refuses it in text) and a
    lone surrogate such as "\\ud800" (UTF-8 cannot hold it); dropped and replaced."""
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _read(item: dict[str, Any], key: str) -> Incoming | None:
    sender = _text(_dict(item.get("sender")).get("id"))
    if not sender:
        return None
    base = Incoming(
        channel=NAME, user_id=sender, event_id=key, kind=Kind.OTHER, sent_at=sent_at(item)
    )
    postback = item.get("postback")
    if isinstance(postback, dict):
        payload = _text(postback.get("payload"))
        ref = _text(_dict(postback.get("referral")).get("ref"))
        return _button(base, payload, ref)
    referral = item.get("referral")
    if isinstance(referral, dict):
        # A link (m.me/…?ref=…) opened an existing conversation: as Get Started with it.
        return replace(base, kind=Kind.COMMAND, command="start", args=_text(referral.get("ref")))
    message = _dict(item.get("message"))
    quick = _dict(message.get("quick_reply"))
    if _text(quick.get("payload")):
        return _button(base, _text(quick["payload"]), "")
    text = _text(message.get("text"))
    for attachment in _list(message.get("attachments")):
        found = _attachment(base, _dict(attachment), text)
        if found is not None:
            return found
    if text:
        command = _command(text)
        if command is not None:
            return replace(base, kind=Kind.COMMAND, command=command[0], args=command[1], text=text)
        return replace(base, kind=Kind.TEXT, text=text)
    return base  # audio, video, a file, a sticker, a shared link: no dialog reads it


def _attachment(base: Incoming, attachment: dict[str, Any], text: str) -> Incoming | None:
    kind = _text(attachment.get("type"))
    payload = _dict(attachment.get("payload"))
    if kind == "image" and not payload.get("sticker_id"):
        url = _text(payload.get("url"))
        if url.startswith(("https://", "http://")):
            return replace(base, kind=Kind.PHOTO, photo_id=url, text=text)
    if kind == "location":
        coordinates = _dict(payload.get("coordinates"))
        lat, long = _number(coordinates.get("lat")), _number(coordinates.get("long"))
        if lat is not None and long is not None and -90 <= lat <= 90 and -180 <= long <= 180:
            return replace(base, kind=Kind.LOCATION, location=Location(lat, long))
    return None


def _button(base: Incoming, payload: str, ref: str) -> Incoming:
    """A postback or quick reply: a payload starting with "/" is a command (Get Started,
    the persistent menu), as if typed; the rest are the dialogs' own button payloads."""
    command = _command(payload)
    if command is not None:
        name, args = command
        return replace(base, kind=Kind.COMMAND, command=name, args=args or ref, text=payload)
    return replace(base, kind=Kind.BUTTON, payload=payload)
