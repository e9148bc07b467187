from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.tracking.models import DealStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0002_tracking_and_credits")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Deal",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "program",
                    fields.ForeignKeyField(
                        "partnergraph.Program",
                        source_field="program_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "enrollment",
                    fields.ForeignKeyField(
                        "partnergraph.Enrollment",
                        source_field="enrollment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deals",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("company_name", fields.CharField(max_length=200)),
                ("company_key", fields.CharField(max_length=200)),
                ("customer_external_id", fields.CharField(null=True, max_length=200)),
                ("contact_email", fields.CharField(null=True, max_length=254)),
                ("amount_minor", fields.BigIntField(null=True)),
                ("currency", fields.CharField(max_length=3)),
                (
                    "status",
                    fields.CharEnumField(
                        default=DealStatus.PENDING,
                        description="PENDING: PENDING\nAPPROVED: APPROVED\nREJECTED: REJECTED",
                        enum_type=DealStatus,
                        max_length=16,
                    ),
                ),
                ("reason", fields.CharField(null=True, max_length=500)),
                ("decided_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "protected_until",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "touchpoint",
                    fields.ForeignKeyField(
                        "partnergraph.Touchpoint",
                        source_field="touchpoint_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "deals",
                "app": "partnergraph",
                "indexes": [
                    Index(fields=["program_id", "company_key"]),
                    Index(fields=["enrollment_id", "id"]),
                ],
                "pk_attr": "id",
                "table_description": "A prospect a partner registered. The first approved registration owns the prospect for",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ReferralLink",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "program",
                    fields.ForeignKeyField(
                        "partnergraph.Program",
                        source_field="program_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "enrollment",
                    fields.ForeignKeyField(
                        "partnergraph.Enrollment",
                        source_field="enrollment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="links",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("code", fields.CharField(max_length=64)),
                ("code_key", fields.CharField(unique=True, max_length=64)),
                ("destination_url", fields.CharField(null=True, max_length=2048)),
                ("utm_source", fields.CharField(null=True, max_length=200)),
                ("utm_medium", fields.CharField(null=True, max_length=200)),
                ("utm_campaign", fields.CharField(null=True, max_length=200)),
                ("disabled", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "referral_links",
                "app": "partnergraph",
                "indexes": [Index(fields=["enrollment_id", "id"])],
                "pk_attr": "id",
                "table_description": "A partner's shareable link: `/r/{code}` redirects to its destination with UTM defaults.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Refund",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "conversion",
                    fields.ForeignKeyField(
                        "partnergraph.Conversion",
                        source_field="conversion_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refunds",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("amount_minor", fields.BigIntField()),
                ("currency", fields.CharField(max_length=3)),
                ("applied", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "refunds",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "One refund of a conversion (full or partial), kept so the commission ledger can reverse",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="VisitorCustomer",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "program",
                    fields.ForeignKeyField(
                        "partnergraph.Program",
                        source_field="program_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("visitor_id", fields.CharField(max_length=64)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "partnergraph.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="visitors",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "visitor_customers",
                "app": "partnergraph",
                "unique_together": (("program", "visitor_id"),),
                "pk_attr": "id",
                "table_description": "Identity stitching: a visitor (cookie) is this customer, so its clicks, before and after,",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Conversion",
            name="fingerprint",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Conversion",
            name="verified",
            field=fields.BooleanField(default=True),
        ),
        ops.AddField(
            model_name="Program",
            name="allowed_domains",
            field=fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads),
        ),
        ops.AddField(
            model_name="Program",
            name="deal_protection_days",
            field=fields.IntField(default=90),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="exclusion_reason",
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="ip_hash",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="link",
            field=fields.ForeignKeyField(
                "partnergraph.ReferralLink",
                source_field="link_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="clicks",
                on_delete=OnDelete.SET_NULL,
            ),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="referrer",
            field=fields.CharField(null=True, max_length=512),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="ua_class",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="utm_campaign",
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="utm_medium",
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.AddField(
            model_name="Touchpoint",
            name="utm_source",
            field=fields.CharField(null=True, max_length=200),
        ),
    ]
