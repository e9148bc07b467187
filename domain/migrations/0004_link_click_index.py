from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0003_links_clicks_deals_refunds")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Touchpoint",
            index=Index(fields=["link_id", "kind", "excluded"]),
        ),
    ]
