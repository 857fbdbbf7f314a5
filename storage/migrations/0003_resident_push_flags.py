from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_outbox')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Resident',
            name='announcements_muted',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Resident',
            name='pushes_held',
            field=fields.BooleanField(default=False),
        ),
    ]
