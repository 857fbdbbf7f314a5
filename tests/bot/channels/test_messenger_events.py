"""Reading Meta's webhook deliveries: the signature, which items are acted on, their keys,
and each item as an Incoming; odd shapes are skipped, never raised on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.channels.messenger_events import events_of, sent_at, signature_ok, to_incoming
from bot.core.messages import Incoming, Kind, Location
from tests.standins import messenger_webhook as meta
from tests.standins.graph_core import APP_SECRET

PSID = "7001002003004005"


def incoming_of(item: dict[str, Any]) -> Incoming:
    [event] = events_of(meta.delivery(item)) or []
    incoming = to_incoming(event.item, event.key)
    assert incoming is not None
    return incoming


def test_only_the_app_secrets_hmac_of_the_raw_bytes_passes() -> None:
    raw = meta.encode(meta.delivery(meta.text(PSID, "Sveiki, ūdens!")))
    assert b"\\u016b" in raw, "non-ASCII is escaped, as Meta sends it"
    good = meta.sign(raw)
    assert signature_ok(raw, good, APP_SECRET)
    assert not signature_ok(raw + b" ", good, APP_SECRET)
    assert not signature_ok(raw, meta.sign(raw, "0" * 32), APP_SECRET)
    assert not signature_ok(raw, good.replace("sha256=", "sha1="), APP_SECRET)
    assert not signature_ok(raw, good + "0", APP_SECRET)
    assert not signature_ok(raw, None, APP_SECRET)
    assert not signature_ok(raw, "", APP_SECRET)


def test_every_item_of_every_entry_in_order_and_only_what_we_act_on() -> None:
    first, second, third = meta.text(PSID, "a"), meta.text(PSID, "b"), meta.get_started("8")
    body = meta.delivery(
        entries=[[first, meta.read(PSID), second], [meta.echo(PSID, "ours"), third]]
    )
    body["entry"].append({"id": "1", "time": 1})  # neither messaging nor standby
    body["entry"].append({"id": "1", "time": 1, "standby": [meta.text("9", "c")]})
    events = events_of(body)
    assert events is not None
    assert [event.sender for event in events] == [PSID, PSID, "8", "9"]
    assert [event.item for event in events][:3] == [first, second, third]


def test_a_redelivered_item_has_the_same_key_and_different_items_different_keys() -> None:
    item = meta.text(PSID, "a")
    [one] = events_of(meta.delivery(item)) or []
    [again] = events_of(meta.delivery(item)) or []
    assert one.key == again.key and len(one.key) == 32
    no_mid = meta.referral(PSID, "ad-7", ts=1767000000)
    [ref] = events_of(meta.delivery(no_mid)) or []
    [ref_again] = events_of(meta.delivery(dict(no_mid))) or []
    assert ref.key == ref_again.key != one.key
    # One delivery repeating an item carries it once.
    assert len(events_of(meta.delivery(item, item)) or []) == 1


@pytest.mark.parametrize(
    "body",
    [None, [], "page", {"object": "instagram", "entry": []}, {"object": "page"}, {"entry": []}],
)
def test_what_is_not_a_page_delivery_is_none(body: object) -> None:
    assert events_of(body) is None


@pytest.mark.parametrize(
    "item",
    [
        "an item",
        None,
        {"sender": "7", "message": {"mid": "m", "text": "x"}},
        {"sender": {"id": 7}, "message": {"mid": "m", "text": "x"}},
        {"sender": {"user_ref": "abc"}, "message": {"mid": "m", "text": "x"}},
        {"sender": {"id": "7"}, "message": "x"},
        {"sender": {"id": "7"}, "game_play": {}},
    ],
)
def test_odd_items_are_skipped_and_the_rest_kept(item: object) -> None:
    kept = meta.text(PSID, "kept")
    body = {"object": "page", "entry": [{"id": "1", "messaging": [item, kept]}]}
    assert [event.item for event in events_of(body) or []] == [kept]


def test_text_commands_buttons_and_get_started() -> None:
    said = incoming_of(meta.text(PSID, "Sveiki"))
    assert (said.kind, said.text, said.channel, said.user_id) == (
        Kind.TEXT,
        "Sveiki",
        "messenger",
        PSID,
    )
    typed = incoming_of(meta.text(PSID, "/Help me"))
    assert (typed.kind, typed.command, typed.args) == (Kind.COMMAND, "help", "me")
    tapped = incoming_of(meta.quick_reply(PSID, "English", "onb:language:en"))
    assert (tapped.kind, tapped.payload) == (Kind.BUTTON, "onb:language:en")
    pressed = incoming_of(meta.postback(PSID, "In the park", "pl:3:0"))
    assert (pressed.kind, pressed.payload) == (Kind.BUTTON, "pl:3:0")
    menu = incoming_of(meta.postback(PSID, "My data", "/mydata"))
    assert (menu.kind, menu.command) == (Kind.COMMAND, "mydata")
    started = incoming_of(meta.get_started(PSID, "poster-12"))
    assert (started.kind, started.command, started.args) == (Kind.COMMAND, "start", "poster-12")
    linked = incoming_of(meta.referral(PSID, "poster-13"))
    assert (linked.kind, linked.command, linked.args) == (Kind.COMMAND, "start", "poster-13")


def test_attachments() -> None:
    photo = incoming_of(meta.image(PSID, "https://scontent.example/p.jpg"))
    assert (photo.kind, photo.photo_id) == (Kind.PHOTO, "https://scontent.example/p.jpg")
    assert incoming_of(meta.image(PSID, "file:///etc/passwd")).kind is Kind.OTHER
    assert incoming_of(meta.legacy_sticker(PSID)).kind is Kind.OTHER
    assert incoming_of(meta.sticker(PSID)).kind is Kind.OTHER
    for kind in ("audio", "video", "file", "fallback", "reel"):
        assert incoming_of(meta.attachment(PSID, kind, {"url": "https://x/y"})).kind is Kind.OTHER
    assert incoming_of(meta.attachment(PSID, "fallback", None)).kind is Kind.OTHER
    place = incoming_of(meta.location(PSID, 56.95, 24.1))
    assert (place.kind, place.location) == (Kind.LOCATION, Location(56.95, 24.1))
    assert incoming_of(meta.location(PSID, 956.0, 24.1)).kind is Kind.OTHER


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (1767000000000, datetime.fromtimestamp(1767000000, UTC)),
        (1767000000, datetime.fromtimestamp(1767000000, UTC)),  # seconds, as some referrals
        ("1767000000000", datetime.fromtimestamp(1767000000, UTC)),
        ("soon", None),
        (True, None),
        (None, None),
        (-5, None),
        (10**30, None),
    ],
)
def test_timestamps_in_milliseconds_or_seconds(stamp: object, expected: datetime | None) -> None:
    assert sent_at({"timestamp": stamp}) == expected
