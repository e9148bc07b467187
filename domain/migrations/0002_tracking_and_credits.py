from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.programs.models import AttributionModelKind, FunnelRole
from domain.tracking.models import ConversionKind, ConversionStatus, TouchpointKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Customer",
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
                        related_name="customers",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("external_id", fields.CharField(max_length=200)),
                ("email", fields.CharField(null=True, max_length=254)),
                (
                    "first_enrollment",
                    fields.ForeignKeyField(
                        "partnergraph.Enrollment",
                        source_field="first_enrollment_id",
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
                "table": "customers",
                "app": "partnergraph",
                "unique_together": (("program", "external_id"),),
                "pk_attr": "id",
                "table_description": "The merchant's customer, by the merchant's own id, remembering who referred it first.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Touchpoint",
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
                        related_name="touchpoints",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="CLICK: CLICK\nCODE: CODE\nLEAD: LEAD\nDEAL: DEAL\nWEBINAR: WEBINAR\nMEETING: MEETING\nCUSTOM: CUSTOM",
                        enum_type=TouchpointKind,
                        max_length=16,
                    ),
                ),
                (
                    "role",
                    fields.CharEnumField(
                        null=True,
                        description="SOURCE: SOURCE\nINFLUENCE: INFLUENCE\nCLOSE: CLOSE",
                        enum_type=FunnelRole,
                        max_length=16,
                    ),
                ),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("occurred_us", fields.BigIntField()),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "partnergraph.Customer",
                        source_field="customer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="touchpoints",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("visitor_id", fields.CharField(null=True, max_length=64)),
                ("click_id", fields.CharField(null=True, unique=True, max_length=64)),
                ("external_id", fields.CharField(null=True, max_length=200)),
                ("excluded", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "touchpoints",
                "app": "partnergraph",
                "unique_together": (("program", "external_id"),),
                "indexes": [
                    Index(
                        fields=[
                            "customer_id",
                            "occurred_us",
                            "enrollment_id",
                            "kind",
                            "role",
                            "excluded",
                        ]
                    ),
                    Index(
                        fields=[
                            "program_id",
                            "visitor_id",
                            "occurred_us",
                            "enrollment_id",
                            "kind",
                            "role",
                            "excluded",
                        ]
                    ),
                    Index(fields=["program_id", "occurred_us"]),
                ],
                "pk_attr": "id",
                "table_description": "One contact between a partner and a (future) customer: a click, a code, a lead, a deal.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Conversion",
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
                        related_name="conversions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("external_id", fields.CharField(max_length=200)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="LEAD: LEAD\nSIGNUP: SIGNUP\nSALE: SALE\nRENEWAL: RENEWAL",
                        enum_type=ConversionKind,
                        max_length=16,
                    ),
                ),
                ("amount_minor", fields.BigIntField()),
                ("refunded_minor", fields.BigIntField(default=0)),
                ("currency", fields.CharField(max_length=3)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "status",
                    fields.CharEnumField(
                        default=ConversionStatus.CONFIRMED,
                        description="CONFIRMED: CONFIRMED\nPARTIALLY_REFUNDED: PARTIALLY_REFUNDED\nREFUNDED: REFUNDED",
                        enum_type=ConversionStatus,
                        max_length=24,
                    ),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "partnergraph.Customer",
                        source_field="customer_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="conversions",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("visitor_id", fields.CharField(null=True, max_length=64)),
                ("click_id", fields.CharField(null=True, max_length=64)),
                (
                    "code_touchpoint",
                    fields.ForeignKeyField(
                        "partnergraph.Touchpoint",
                        source_field="code_touchpoint_id",
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
                "table": "conversions",
                "app": "partnergraph",
                "unique_together": (("program", "external_id"),),
                "indexes": [
                    Index(fields=["program_id", "occurred_at"]),
                    Index(fields=["customer_id", "kind", "occurred_at"]),
                ],
                "pk_attr": "id",
                "table_description": "A lead, signup, sale or renewal the merchant reported, once per `external_id`.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AttributionCredit",
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
                        related_name="credits",
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
                        related_name="credits",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "model",
                    fields.CharEnumField(
                        description="FIRST_TOUCH: FIRST_TOUCH\nLAST_TOUCH: LAST_TOUCH\nLINEAR: LINEAR\nTIME_DECAY: TIME_DECAY\nPOSITION_BASED: POSITION_BASED\nROLE_WEIGHTED: ROLE_WEIGHTED",
                        enum_type=AttributionModelKind,
                        max_length=32,
                    ),
                ),
                ("points", fields.CharField(max_length=80)),
                ("total", fields.CharField(max_length=80)),
                ("amount_minor", fields.BigIntField()),
                ("currency", fields.CharField(max_length=3)),
                ("touchpoints", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "attribution_credits",
                "app": "partnergraph",
                "unique_together": (("conversion", "enrollment"),),
                "indexes": [Index(fields=["enrollment_id", "id"])],
                "pk_attr": "id",
                "table_description": "One enrollment's credit for one conversion under the model in force.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Program",
            name="code_wins",
            field=fields.BooleanField(default=False),
        ),
    ]
