from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Announcement',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('author', fields.CharField(max_length=96)),
                ('texts', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('image', fields.CharField(default='', max_length=512)),
                ('audience', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('urgent', fields.BooleanField(default=False)),
                ('send_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('state', fields.CharField(default='scheduled', db_index=True, max_length=16)),
                ('recipients', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('released_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'announcement', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A staff message to everyone, some neighbourhoods or some topics.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Delivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('announcement', fields.ForeignKeyField('models.Announcement', source_field='announcement_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('resident', fields.ForeignKeyField('models.Resident', source_field='resident_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharField(max_length=16)),
                ('external_id', fields.CharField(max_length=64)),
                ('text', fields.TextField(unique=False)),
                ('image', fields.CharField(default='', max_length=512)),
                ('urgent', fields.BooleanField(default=False)),
                ('state', fields.CharField(default='queued', max_length=16)),
                ('not_before', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField(default=0)),
                ('claimed_by', fields.CharField(default='', max_length=64)),
                ('claimed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('error', fields.CharField(default='', max_length=256)),
            ],
            options={'table': 'delivery', 'app': 'models', 'unique_together': (('announcement', 'resident', 'channel'),), 'indexes': [Index(fields=['state', 'channel', 'not_before'])], 'pk_attr': 'id', 'table_description': 'One push to one resident on one channel: the durable outbox.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='DialogState',
            options={'table': 'dialog_state', 'app': 'models', 'pk_attr': 'resident_id', 'table_description': 'Where the conversation of a resident stands: a row, so any worker can resume it.'},
        ),
    ]
