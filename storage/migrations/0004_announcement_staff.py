from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_resident_push_flags')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Announcement',
            name='approved_by',
            field=fields.CharField(default='', max_length=96),
        ),
        ops.AddField(
            model_name='Announcement',
            name='cancelled_by',
            field=fields.CharField(default='', max_length=96),
        ),
        ops.AddField(
            model_name='Announcement',
            name='image_channel',
            field=fields.CharField(default='', max_length=16),
        ),
        ops.AddField(
            model_name='Announcement',
            name='report',
            field=fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Announcement',
            name='report_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
