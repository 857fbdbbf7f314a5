import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("actor", fields.CharField(max_length=96)),
                ("action", fields.CharField(max_length=64)),
                (
                    "detail",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "created_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True),
                ),
            ],
            options={
                "table": "audit_entry",
                "app": "models",
                "pk_attr": "id",
                "table_description": "Who on the staff did what, when. Staff accounts are named, residents are not.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Neighbourhood",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=24)),
                (
                    "names",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("active", fields.BooleanField(default=True)),
            ],
            options={
                "table": "neighbourhood",
                "app": "models",
                "pk_attr": "id",
                "table_description": "Mirrors the configuration, so residents can point at a row.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ProcessedEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("channel", fields.CharField(max_length=16)),
                ("event_id", fields.CharField(max_length=64)),
                (
                    "processed_at",
                    fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True),
                ),
            ],
            options={
                "table": "processed_event",
                "app": "models",
                "unique_together": (("channel", "event_id"),),
                "pk_attr": "id",
                "table_description": "Platform event ids already handled: a duplicate delivery has one effect.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Resident",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("language", fields.CharField(default="", max_length=8)),
                (
                    "neighbourhood",
                    fields.ForeignKeyField(
                        "models.Neighbourhood",
                        source_field="neighbourhood_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="residents",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "privacy_accepted_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "onboarded_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "last_seen_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "throttle_window_start",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("throttle_count", fields.IntField(default=0)),
                ("throttle_warned", fields.BooleanField(default=False)),
            ],
            options={
                "table": "resident",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A person talking to the bot, whatever channels they use.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ChannelIdentity",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "resident",
                    fields.ForeignKeyField(
                        "models.Resident",
                        source_field="resident_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("channel", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(max_length=64)),
                (
                    "unreachable_since",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "channel_identity",
                "app": "models",
                "unique_together": (("channel", "external_id"),),
                "pk_attr": "id",
                "table_description": "One platform account of a resident (a resident may later link several).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DialogState",
            fields=[
                (
                    "resident",
                    fields.OneToOneField(
                        "models.Resident",
                        source_field="resident_id",
                        primary_key=True,
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="dialog_state",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("state", fields.CharField(default="", max_length=64)),
                (
                    "data",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "dialog_state",
                "app": "models",
                "pk_attr": "resident_id",
                "table_description": "Where the conversation of a resident stands: a row, so any worker can resume it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Setting",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("value", fields.TextField(unique=False)),
            ],
            options={
                "table": "setting",
                "app": "models",
                "pk_attr": "key",
                "table_description": "Small values the whole deployment shares, such as the cookie secret.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StaffMember",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("channel", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(max_length=64)),
                ("role", fields.CharField(max_length=16)),
                ("granted_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "staff_member",
                "app": "models",
                "unique_together": (("channel", "external_id"),),
                "pk_attr": "id",
                "table_description": "A platform account with a staff role.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Topic",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(unique=True, max_length=24)),
                (
                    "names",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("active", fields.BooleanField(default=True)),
            ],
            options={"table": "topic", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Subscription",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "resident",
                    fields.ForeignKeyField(
                        "models.Resident",
                        source_field="resident_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscriptions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "topic",
                    fields.ForeignKeyField(
                        "models.Topic",
                        source_field="topic_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscriptions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "subscription",
                "app": "models",
                "unique_together": (("resident", "topic"),),
                "pk_attr": "id",
                "table_description": "A resident follows a topic.",
            },
            bases=["Model"],
        ),
    ]
