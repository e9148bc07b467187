from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0006_gamification_events")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Commission",
            index=Index(fields=["payout_item_id"]),
        ),
    ]
