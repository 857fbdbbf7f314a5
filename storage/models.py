"""Tortoise models. Personal data lives in Resident and ChannelIdentity only."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Resident(Model):
    """A person talking to the bot, whatever channels they use."""

    id = fields.IntField(primary_key=True)
    language = fields.CharField(max_length=8, default="")
    neighbourhood: fields.ForeignKeyNullableRelation[Neighbourhood] = fields.ForeignKeyField(
        "models.Neighbourhood", related_name="residents", null=True, on_delete=fields.SET_NULL
    )
    privacy_accepted_at = fields.DatetimeField(null=True)
    onboarded_at = fields.DatetimeField(null=True)
    # /stop: no announcements until /start (answers to their own messages still come).
    announcements_muted = fields.BooleanField(default=False)
    # Set when a push waits for this resident or an account was found blocked,
    # so the next message they send releases them, at no cost otherwise.
    pushes_held = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_seen_at = fields.DatetimeField(null=True)
    # A fixed window counter for the per-resident throttle; kept on the row
    # so that every worker sees the same count.
    throttle_window_start = fields.DatetimeField(null=True)
    throttle_count = fields.IntField(default=0)
    throttle_warned = fields.BooleanField(default=False)

    identities: fields.ReverseRelation[ChannelIdentity]
    subscriptions: fields.ReverseRelation[Subscription]

    class Meta:
        table = "resident"


class ChannelIdentity(Model):
    """One platform account of a resident (a resident may later link several).

    No semicolons in model docstrings: they become SQL comments, and the
    SQLite migration runner of Tortoise 1.1 splits statements on them.
    """

    id = fields.IntField(primary_key=True)
    resident: fields.ForeignKeyRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="identities", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=64)
    # Set when the platform says the resident blocked the bot.
    unreachable_since = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "channel_identity"
        unique_together = (("channel", "external_id"),)


class Neighbourhood(Model):
    """Mirrors the configuration, so residents can point at a row."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=24, unique=True)
    names: dict[str, str] = fields.JSONField(default=dict)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "neighbourhood"


class Topic(Model):
    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=24, unique=True)
    names: dict[str, str] = fields.JSONField(default=dict)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "topic"


class Subscription(Model):
    """A resident follows a topic."""

    id = fields.IntField(primary_key=True)
    resident: fields.ForeignKeyRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="subscriptions", on_delete=fields.CASCADE
    )
    topic: fields.ForeignKeyRelation[Topic] = fields.ForeignKeyField(
        "models.Topic", related_name="subscriptions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "subscription"
        unique_together = (("resident", "topic"),)


class DialogState(Model):
    """Where the conversation of a resident stands: a row, so any worker can resume it."""

    resident: fields.OneToOneRelation[Resident] = fields.OneToOneField(
        "models.Resident", related_name="dialog_state", on_delete=fields.CASCADE, primary_key=True
    )
    state = fields.CharField(max_length=64, default="")  # "dialog:step", "" when idle
    data: dict[str, Any] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "dialog_state"


class StaffMember(Model):
    """A platform account with a staff role."""

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=64)
    role = fields.CharField(max_length=16)
    granted_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "staff_member"
        unique_together = (("channel", "external_id"),)


class ProcessedEvent(Model):
    """Platform event ids already handled: a duplicate delivery has one effect."""

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    # 0 where the platform's ids are unique per channel (Telegram's update ids), else the
    # resident's id: the web chat's ids come from the page, and two residents may pick the
    # same one. The resident's row id, not their platform id, so the table keeps nothing
    # personal once they are forgotten.
    scope = fields.IntField(default=0, db_default=0)
    event_id = fields.CharField(max_length=64)
    processed_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "processed_event"
        unique_together = (("channel", "scope", "event_id"),)


class AuditEntry(Model):
    """Who on the staff did what, when. Staff accounts are named, residents are not."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.CharField(max_length=96)  # "telegram:123" or "cli"
    action = fields.CharField(max_length=64)
    detail: dict[str, Any] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_entry"


class Setting(Model):
    """Small values the whole deployment shares, such as the cookie secret."""

    key = fields.CharField(max_length=64, primary_key=True)
    value = fields.TextField()

    class Meta:
        table = "setting"


class Announcement(Model):
    """A staff message to everyone, some neighbourhoods or some topics.

    Texts are per language and fall back to Latvian; the audience is kept as
    data ({"kind": "all"} or {"kind": "neighbourhood"|"topic", "keys": [...]})
    so the recipients are resolved when it is released, not when it is written.
    """

    id = fields.IntField(primary_key=True)
    author = fields.CharField(max_length=96)  # "telegram:123" or "cli"
    texts: dict[str, str] = fields.JSONField(default=dict)
    image = fields.CharField(max_length=512, default="")
    # The platform the image reference belongs to ("telegram" for a file id
    # Telegram gave us), or "" when none. Other channels get the text alone.
    image_channel = fields.CharField(max_length=16, default="")
    # The same image kept by us (a Media key), served to channels that cannot use
    # the platform's id, or "" when it could not be fetched.
    image_media = fields.CharField(max_length=64, default="")
    audience: dict[str, Any] = fields.JSONField(default=dict)
    urgent = fields.BooleanField(default=False)
    send_at = fields.DatetimeField(db_index=True)
    # pending (an urgent one waits for an admin) → scheduled → released
    # (delivery rows written) → done, or cancelled
    state = fields.CharField(max_length=16, default="scheduled", db_index=True)
    recipients = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    released_at = fields.DatetimeField(null=True)
    approved_by = fields.CharField(max_length=96, default="")  # the admin who confirmed urgent
    cancelled_by = fields.CharField(max_length=96, default="")
    # The staff message kept up to date with the figures while it goes out:
    # {"channel", "chat", "message", "language", "shown"}, or {} when none.
    report: dict[str, Any] = fields.JSONField(default=dict)
    # When a worker last refreshed the report (claimed, so one worker edits at a time).
    report_at = fields.DatetimeField(null=True)

    class Meta:
        table = "announcement"


class Delivery(Model):
    """One push to one resident on one channel: the durable outbox.

    A row names what caused it (its source) and carries a dedupe key, unique
    per resident and channel, so the same push is never queued twice. Its
    words are not stored: a template key and parameters are rendered when it
    is sent, in the resident's language then. It sends a new message or edits
    one sent earlier (the platform's id is kept).

    queued → sending → sent, or failed / blocked / cancelled, or waiting (a
    channel refused it by policy until the resident writes). A row is claimed
    by one worker at a time, highest priority first; a row left "sending" by a
    dead worker is queued again.
    """

    id = fields.BigIntField(primary_key=True)
    # What caused it ("announcement", "announcement_report", …) and that thing's id.
    # (Database defaults throughout only so that 0008 could add the columns to a full table.)
    source_kind = fields.CharField(max_length=32, db_default="")
    source_id = fields.BigIntField(db_default=0)
    dedupe_key = fields.CharField(max_length=128, db_default="")  # "proposal:3:status:accepted"
    # Pending pushes go with the resident when they ask to be forgotten.
    resident: fields.ForeignKeyRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="deliveries", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=64)
    # What it says, rendered at send time: a template key and its parameters (JSON text).
    template = fields.CharField(max_length=48, db_default="")
    params = fields.TextField(default="{}", db_default="{}")
    operation = fields.CharField(max_length=8, default="send", db_default="send")  # or "edit"
    # The platform's id of the message: the one to edit, or the one last sent.
    message_id = fields.CharField(max_length=64, default="", db_default="")
    # A digest of what the message shows now, so an edit to the same content is skipped.
    shown = fields.CharField(max_length=32, default="", db_default="")
    # Asked to show something new while it was being sent: queued again once sent.
    stale = fields.BooleanField(default=False, db_default=False)
    # When the platform will not edit the message: "send" it anew, or "drop" the edit.
    if_edit_refused = fields.CharField(max_length=8, default="send", db_default="send")
    # Higher goes first (a push to one resident before a broadcast) …
    priority = fields.SmallIntField(default=0, db_default=0)
    # … and apart from it, whether quiet hours hold it back.
    quiet_exempt = fields.BooleanField(default=False, db_default=False)
    state = fields.CharField(max_length=16, default="queued")
    not_before = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    claimed_by = fields.CharField(max_length=64, default="")
    claimed_at = fields.DatetimeField(null=True)
    sent_at = fields.DatetimeField(null=True)
    error = fields.CharField(max_length=256, default="")

    class Meta:
        table = "delivery"
        unique_together = (("resident", "channel", "dedupe_key"),)
        indexes = (("state", "channel", "not_before"), ("source_kind", "source_id", "state"))
        # The claim's own index, (channel, priority DESC, id) WHERE state = 'queued', is
        # partial: Tortoise cannot declare it, so 0008_outbox_sources creates it in SQL.


class SendBudget(Model):
    """A platform's rate, shared by every worker: when the next send may start.

    A worker books a short span of sends by moving next_free on (one atomic
    UPDATE), and a 429 moves it past the retry_after, so all workers together
    keep to one bot token's limit.
    """

    channel = fields.CharField(max_length=16, primary_key=True)
    next_free = fields.FloatField(default=0)  # seconds since the epoch, the database's clock

    class Meta:
        table = "send_budget"


class Media(Model):
    """An image the municipality sends (an announcement's photo), served at /media/KEY.

    Keyed by the SHA-256 of its bytes, so the same image is kept once.
    """

    key = fields.CharField(max_length=64, primary_key=True)
    content_type = fields.CharField(max_length=32)
    data = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "media"


class NewcomerCount(Model):
    """How many web-chat residents one client address created in one hour.

    Counted in the database, so every worker keeps to one limit. The address is kept as a
    keyed hash, never in clear, and rows of past hours are pruned daily.
    """

    id = fields.BigIntField(primary_key=True)
    address = fields.CharField(max_length=32)  # HMAC-SHA256 of the address, hex, cut to 32
    hour = fields.IntField()  # whole hours since the epoch, UTC
    count = fields.IntField(default=0)

    class Meta:
        table = "newcomer_count"
        unique_together = (("address", "hour"),)
