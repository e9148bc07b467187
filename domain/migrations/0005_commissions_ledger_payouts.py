from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.commissions.models import CommissionKind, CommissionStatus, PayoutStatus
from domain.tracking.models import ConversionKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0004_link_click_index")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CommissionRule",
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
                        related_name="commission_rules",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(null=True, max_length=200)),
                (
                    "conversion_kind",
                    fields.CharEnumField(
                        description="LEAD: LEAD\nSIGNUP: SIGNUP\nSALE: SALE\nRENEWAL: RENEWAL",
                        enum_type=ConversionKind,
                        max_length=16,
                    ),
                ),
                ("percentage", fields.DecimalField(null=True, max_digits=9, decimal_places=4)),
                ("flat_minor", fields.BigIntField(null=True)),
                (
                    "tier",
                    fields.ForeignKeyField(
                        "partnergraph.Tier",
                        source_field="tier_id",
                        null=True,
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
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("priority", fields.IntField(default=0)),
                ("starts_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("ends_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("recurring_months", fields.IntField(null=True)),
                ("half_life_days", fields.FloatField(null=True)),
                ("cap_minor", fields.BigIntField(null=True)),
                ("monthly_cap_minor", fields.BigIntField(null=True)),
                ("minimum_minor", fields.BigIntField(null=True)),
                ("archived", fields.BooleanField(default=False)),
                ("version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "commission_rules",
                "app": "partnergraph",
                "indexes": [Index(fields=["program_id", "conversion_kind"])],
                "pk_attr": "id",
                "table_description": "How a program pays for credited conversions. `version` counts its edits.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CommissionRuleVersion",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "rule",
                    fields.ForeignKeyField(
                        "partnergraph.CommissionRule",
                        source_field="rule_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="versions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("terms", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "commission_rule_versions",
                "app": "partnergraph",
                "unique_together": (("rule", "version"),),
                "pk_attr": "id",
                "table_description": "The terms of one version of a rule, as they were: entries name the version they used.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PayoutBatch",
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
                        related_name="payout_batches",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=PayoutStatus.PENDING,
                        description="PENDING: PENDING\nPAID: PAID",
                        enum_type=PayoutStatus,
                        max_length=16,
                    ),
                ),
                ("currency", fields.CharField(max_length=3)),
                ("minimum_minor", fields.BigIntField(default=0)),
                ("reference", fields.CharField(null=True, max_length=200)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("paid_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "payout_batches",
                "app": "partnergraph",
                "indexes": [Index(fields=["program_id", "id"])],
                "pk_attr": "id",
                "table_description": "APPROVED entries gathered for payment, one item per enrollment, paid together.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PayoutItem",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "batch",
                    fields.ForeignKeyField(
                        "partnergraph.PayoutBatch",
                        source_field="batch_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="items",
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
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("amount_minor", fields.BigIntField()),
                ("currency", fields.CharField(max_length=3)),
            ],
            options={
                "table": "payout_items",
                "app": "partnergraph",
                "unique_together": (("batch", "enrollment"),),
                "pk_attr": "id",
                "table_description": "What one enrollment is paid in a batch: the sum of its gathered entries.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Commission",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
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
                        related_name="commissions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "conversion",
                    fields.ForeignKeyField(
                        "partnergraph.Conversion",
                        source_field="conversion_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="COMMISSION: COMMISSION\nBONUS: BONUS\nREFEREE_REWARD: REFEREE_REWARD\nREVERSAL: REVERSAL\nADJUSTMENT: ADJUSTMENT",
                        enum_type=CommissionKind,
                        max_length=16,
                    ),
                ),
                ("amount_minor", fields.BigIntField()),
                ("currency", fields.CharField(max_length=3)),
                (
                    "status",
                    fields.CharEnumField(
                        description="PENDING: PENDING\nAPPROVED: APPROVED\nPAID: PAID\nREVERSED: REVERSED\nREJECTED: REJECTED",
                        enum_type=CommissionStatus,
                        max_length=16,
                    ),
                ),
                ("available_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "rule",
                    fields.ForeignKeyField(
                        "partnergraph.CommissionRule",
                        source_field="rule_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("rule_version", fields.IntField(null=True)),
                ("credit_id", fields.BigIntField(null=True)),
                ("credited_minor", fields.BigIntField(null=True)),
                ("earned_minor", fields.BigIntField(null=True)),
                ("month", fields.CharField(null=True, max_length=7)),
                ("reason", fields.TextField(null=True, unique=False)),
                (
                    "payout_item",
                    fields.ForeignKeyField(
                        "partnergraph.PayoutItem",
                        source_field="payout_item_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="commissions",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("decided_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "commissions",
                "app": "partnergraph",
                "indexes": [
                    Index(fields=["enrollment_id", "status", "kind", "currency", "amount_minor"]),
                    Index(fields=["program_id", "status", "available_at"]),
                    Index(fields=["conversion_id", "enrollment_id"]),
                    Index(fields=["enrollment_id", "rule_id", "month"]),
                ],
                "pk_attr": "id",
                "table_description": "One ledger entry of one enrollment. Amounts never change: a later entry corrects.",
            },
            bases=["Model"],
        ),
    ]
