from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_claim_index')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Media',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('content_type', fields.CharField(max_length=32)),
                ('data', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'media', 'app': 'models', 'pk_attr': 'key', 'table_description': "An image the municipality sends (an announcement's photo), served at /media/KEY."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Announcement',
            name='image_media',
            field=fields.CharField(default='', max_length=64),
        ),
    ]
