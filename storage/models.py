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
    # When the resident last wrote here, as the platform stamps it (set by channels
    # whose pushes must come within a window of it, Messenger's 24 hours).
    last_inbound_at = fields.DatetimeField(null=True)
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


class InboundEvent(Model):
    """An event a platform will not deliver again once we acknowledged it (Messenger).

    Written before the acknowledgement and handled right after it. A worker that dies
    in between finds its own rows on restart, and any worker takes the rows of one
    gone for longer than the lease. Handled rows keep only their key (the body is
    emptied), so a redelivery is recognised for a week and no message text stays.
    """

    id = fields.BigIntField(primary_key=True)
    channel = fields.CharField(max_length=16)
    # A hash of the platform's event id (Messenger's mid, or sender, time and kind).
    key = fields.CharField(max_length=64)
    body = fields.TextField(default="")  # the event as the platform sent it, JSON
    received_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    claimed_by = fields.CharField(max_length=64, default="")
    claimed_at = fields.DatetimeField(null=True)
    handled_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)

    class Meta:
        table = "inbound_event"
        unique_together = (("channel", "key"),)


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


class Presence(Model):
    """A resident's open chat held by one worker (a web-chat socket), so that the worker
    holding it is the one that claims their pushes.

    Written when the resident's first tab opens on that worker and removed when the last
    closes. The worker refreshes its rows every few seconds, so a row left by a worker
    that died goes stale and counts as gone.
    """

    id = fields.BigIntField(primary_key=True)
    worker = fields.CharField(max_length=64)  # the delivery worker id, as in claimed_by
    channel = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=64)
    seen_at = fields.DatetimeField()

    class Meta:
        table = "presence"
        unique_together = (("worker", "channel", "external_id"),)
        # The claim asks by resident (any worker, or this one): the unique index leads with
        # the worker, so the resident's own index serves the "anywhere" question.
        indexes = (("channel", "external_id"),)


class Proposal(Model):
    """An idea or a problem report, from its submission to the resident's "is it fixed?".

    The author is kept only as a link to the resident, cut when they are forgotten
    (the proposal stays, detached). Category, department and neighbourhood are the
    configuration's ids. The reference (P-2026-0042) counts per year.
    """

    id = fields.BigIntField(primary_key=True)
    reference = fields.CharField(max_length=16, unique=True)
    author: fields.ForeignKeyNullableRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="proposals", null=True, on_delete=fields.SET_NULL
    )
    category = fields.CharField(max_length=24)
    department = fields.CharField(max_length=24)
    neighbourhood = fields.CharField(max_length=24, default="")
    text = fields.TextField()
    language = fields.CharField(max_length=8, default="")  # what the author wrote in
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    address = fields.CharField(max_length=256, default="")
    # received, under_review, planned, in_progress, accepted, partly_accepted, rejected,
    # implemented, not_ours, duplicate, withdrawn
    status = fields.CharField(max_length=16, default="received")
    explanation = fields.TextField(default="")  # the latest public explanation
    expected_on = fields.DateField(null=True)  # the promised date
    passed_to = fields.CharField(max_length=128, default="")  # "not ours": to whom
    duplicate_of: fields.ForeignKeyNullableRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="duplicates", null=True, on_delete=fields.SET_NULL
    )
    hidden_reason = fields.CharField(max_length=256, default="")
    hidden_at = fields.DatetimeField(null=True)
    supporters = fields.IntField(default=0)  # the count of ProposalSupport rows
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now_add=True)
    reviewed_at = fields.DatetimeField(null=True)  # the first staff action: no withdrawal
    first_answer_at = fields.DatetimeField(null=True)  # the first public status change
    resolved_at = fields.DatetimeField(null=True)  # when it reached a closed status
    # When the author and followers are to be asked "Is it fixed?"; cleared once asked.
    ask_fixed_at = fields.DatetimeField(null=True)
    fixed_round = fields.IntField(default=0)  # how many times it was marked implemented
    reopened = fields.IntField(default=0)
    # Staff reminded of the promised date: "before" the day before, "overdue" on the day.
    reminded = fields.CharField(max_length=16, default="")

    class Meta:
        table = "proposal"
        indexes = (
            ("status", "category", "neighbourhood"),
            ("department", "status"),
            ("latitude", "longitude"),
            ("updated_at",),
            ("created_at",),  # open data pages by it
        )


class ProposalCounter(Model):
    """The last reference number given in a year: one atomic upsert per proposal."""

    year = fields.IntField(primary_key=True)
    number = fields.IntField(default=0)

    class Meta:
        table = "proposal_counter"


class ProposalPhoto(Model):
    """A photo of a proposal, kept as a file under ``proposals.photo_dir``, not as a blob.

    ``kind`` is "resident" (sent with the proposal) or "completed" (staff's photo of
    the finished work). The public sees it only once a moderator approved it.
    """

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="photos", on_delete=fields.CASCADE
    )
    key = fields.CharField(max_length=64)  # the SHA-256 of the re-encoded bytes, the file name
    kind = fields.CharField(max_length=16, default="resident")
    approved = fields.BooleanField(default=False)
    width = fields.IntField(default=0)
    height = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "proposal_photo"


class ProposalFollow(Model):
    """A resident hears of every status change of a proposal (its author too)."""

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="follows", on_delete=fields.CASCADE
    )
    resident: fields.ForeignKeyRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="follows", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "proposal_follow"
        unique_together = (("proposal", "resident"),)
        indexes = (("resident_id",),)


class ProposalSupport(Model):
    """A +1: counted on the proposal, never listed, still counted once its resident is
    forgotten."""

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="supports", on_delete=fields.CASCADE
    )
    resident: fields.ForeignKeyNullableRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="supports", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "proposal_support"
        unique_together = (("proposal", "resident"),)


class ProposalEvent(Model):
    """The history of a proposal: who did what, when, from what to what, and why.

    ``kind``: status, department, duplicate, merged, hidden, expected, reopened,
    answered (a private answer to the author). ``actor`` is a staff account
    ("telegram:123"), "cli", "resident" or "system", never a resident's id.
    """

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="events", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16)
    actor = fields.CharField(max_length=96)
    from_value = fields.CharField(max_length=64, default="")
    to_value = fields.CharField(max_length=64, default="")
    explanation = fields.TextField(default="")
    expected_on = fields.DateField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "proposal_event"
        indexes = (("proposal_id", "created_at"),)


class ProposalComment(Model):
    """What a resident wrote back on a proposal (with "Reply", or after "is it fixed?"),
    or a staff member's private answer to the author: the department reads it."""

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="comments", on_delete=fields.CASCADE
    )
    resident: fields.ForeignKeyNullableRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="comments", null=True, on_delete=fields.SET_NULL
    )
    staff = fields.CharField(max_length=96, default="")  # the staff account, for their answers
    text = fields.TextField()
    read_at = fields.DatetimeField(null=True)  # when the department's staff saw it
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "proposal_comment"
        indexes = (("proposal_id", "created_at"),)


class ProposalRating(Model):
    """One answer to "Is it fixed?": yes, partly or no, then a rating of 1 to 5."""

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="ratings", on_delete=fields.CASCADE
    )
    resident: fields.ForeignKeyNullableRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="ratings", null=True, on_delete=fields.SET_NULL
    )
    round = fields.IntField()  # the proposal's fixed_round it answers
    answer = fields.CharField(max_length=8)  # yes, partly, no
    rating = fields.SmallIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "proposal_rating"
        unique_together = (("proposal", "resident", "round"),)


class ProposalTerm(Model):
    """One word stem of an open proposal's text, for finding proposals that read alike
    among tens of thousands: an inverted index the similar-proposal lookup reads."""

    id = fields.BigIntField(primary_key=True)
    proposal: fields.ForeignKeyRelation[Proposal] = fields.ForeignKeyField(
        "models.Proposal", related_name="terms", on_delete=fields.CASCADE
    )
    term = fields.CharField(max_length=16)
    category = fields.CharField(max_length=24)
    neighbourhood = fields.CharField(max_length=24, default="")

    class Meta:
        table = "proposal_term"
        unique_together = (("proposal", "term"),)
        indexes = (("term", "category", "neighbourhood"),)


class Poll(Model):
    """A quick poll: a question, 2 to 10 options, one tap to answer.

    The question and the options' labels are per language and fall back to
    Latvian. The audience is kept as data, as an announcement's is, and is
    resolved when the poll opens. Times are instants (UTC); the municipality's
    zone only reads and shows them.

    scheduled → open → closed, or cancelled before it opened. Each move is a
    compare-and-set on ``state``, so it happens once on any number of workers.
    """

    id = fields.IntField(primary_key=True)
    author = fields.CharField(max_length=96)  # "telegram:123" or "cli"
    question: dict[str, str] = fields.JSONField(default=dict)
    multiple = fields.BooleanField(default=False)
    audience: dict[str, Any] = fields.JSONField(default=dict)
    # The channels whose residents may answer; [] for every channel. A poll limited to
    # platform accounts leaves out the web chat, whose identities are cookies.
    channels: list[str] = fields.JSONField(default=list)
    opens_at = fields.DatetimeField(db_index=True)
    closes_at = fields.DatetimeField(db_index=True)
    # "after_answer": a resident sees the results once they answered; "at_close": only then.
    results = fields.CharField(max_length=16, default="after_answer")
    # Whether the voters get the final results when it closes (staff always do).
    tell_voters = fields.BooleanField(default=False)
    state = fields.CharField(max_length=16, default="scheduled", db_index=True)
    audience_size = fields.IntField(default=0)  # the residents invited when it opened
    reminders_sent = fields.IntField(default=0)  # reminders queued: a tap then cancels its own
    # The counts residents see while it is open, kept a few seconds: a big poll is not
    # counted again on every tap ({"ballots": n, "counts": [...]}, or {} before the first).
    snapshot: dict[str, Any] = fields.JSONField(default=dict)
    snapshot_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    opened_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    closed_by = fields.CharField(max_length=96, default="")  # "" when it closed on time
    cancelled_by = fields.CharField(max_length=96, default="")

    options: fields.ReverseRelation[PollOption]

    class Meta:
        table = "poll"
        indexes = (("state", "opens_at"), ("state", "closes_at"))


class PollOption(Model):
    """One answer of a poll, at its place in the poll's order (0, 1, …), its bit in a
    ballot's ``choices`` is ``1 << position``."""

    id = fields.IntField(primary_key=True)
    poll: fields.ForeignKeyRelation[Poll] = fields.ForeignKeyField(
        "models.Poll", related_name="options", on_delete=fields.CASCADE
    )
    position = fields.SmallIntField()
    labels: dict[str, str] = fields.JSONField(default=dict)

    class Meta:
        table = "poll_option"
        unique_together = (("poll", "position"),)


class PollReminder(Model):
    """A reminder of a poll, due at a moment: ``sent_at`` is set by the worker that claims
    it, so it fires once."""

    id = fields.IntField(primary_key=True)
    poll: fields.ForeignKeyRelation[Poll] = fields.ForeignKeyField(
        "models.Poll", related_name="reminders", on_delete=fields.CASCADE
    )
    before_seconds = fields.IntField()  # how long before the closing
    due_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    recipients = fields.IntField(default=0)

    class Meta:
        table = "poll_reminder"
        indexes = (("sent_at", "due_at"),)


class Ballot(Model):
    """One resident's answer to one poll: the chosen options as bits (option at position
    p is ``1 << p``), with the neighbourhood and channel as they were when it was cast,
    so a tally is one scan and a resident who moves later does not change a result.

    ``choices`` is 0 until a choice counts: on a multiple-choice poll taps toggle
    ``draft``, and "Done" copies it to ``choices``. The resident link is cut when they
    are forgotten; the ballot stays counted.
    """

    id = fields.BigIntField(primary_key=True)
    poll: fields.ForeignKeyRelation[Poll] = fields.ForeignKeyField(
        "models.Poll", related_name="ballots", on_delete=fields.CASCADE
    )
    resident: fields.ForeignKeyNullableRelation[Resident] = fields.ForeignKeyField(
        "models.Resident", related_name="ballots", null=True, on_delete=fields.SET_NULL
    )
    choices = fields.IntField(default=0)
    draft = fields.IntField(default=0)
    neighbourhood = fields.CharField(max_length=24, default="")
    channel = fields.CharField(max_length=16, default="")
    cast_at = fields.DatetimeField(null=True)  # when it first counted
    changed_at = fields.DatetimeField(null=True)  # when its choices last changed

    class Meta:
        table = "ballot"
        unique_together = (("poll", "resident"),)
        indexes = (("poll_id", "neighbourhood", "channel", "choices"),)
