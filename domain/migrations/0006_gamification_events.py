from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.gamification.models import BadgeMetric, PointKind, TierChangeReason
from domain.programs.models import LeaderboardVisibility
from domain.tracking.models import ConversionKind
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("partnergraph", "0005_commissions_ledger_payouts")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Badge",
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
                        related_name="badges",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("code", fields.CharField(max_length=64)),
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
                ("image_url", fields.CharField(null=True, max_length=2048)),
                (
                    "metric",
                    fields.CharEnumField(
                        description="CLICKS: CLICKS\nLEADS: LEADS\nCONVERSIONS: CONVERSIONS\nREVENUE: REVENUE\nREFERRED_CUSTOMERS: REFERRED_CUSTOMERS\nPOINTS: POINTS\nACTIVE_MONTHS_STREAK: ACTIVE_MONTHS_STREAK",
                        enum_type=BadgeMetric,
                        max_length=32,
                    ),
                ),
                ("threshold", fields.DecimalField(max_digits=20, decimal_places=4)),
                ("period_days", fields.IntField(null=True)),
                ("points", fields.IntField(default=0)),
                ("bonus_minor", fields.BigIntField(null=True)),
                ("repeating", fields.BooleanField(default=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "badges",
                "app": "partnergraph",
                "unique_together": (("program", "code"),),
                "pk_attr": "id",
                "table_description": "A declarative achievement: `metric` reaching `threshold` (within `period_days`).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BadgeAward",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "badge",
                    fields.ForeignKeyField(
                        "partnergraph.Badge",
                        source_field="badge_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="awards",
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
                        related_name="badge_awards",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("sequence", fields.IntField(default=1)),
                ("value", fields.CharField(max_length=40)),
                ("awarded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "badge_awards",
                "app": "partnergraph",
                "unique_together": (("badge", "enrollment", "sequence"),),
                "indexes": [Index(fields=["enrollment_id", "id"])],
                "pk_attr": "id",
                "table_description": "One award of a badge to an enrollment. `sequence` counts a milestone's awards (1 for a",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("type", fields.CharField(max_length=64)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("program_id", fields.IntField(null=True)),
                ("partner_id", fields.IntField(null=True)),
                ("enrollment_id", fields.IntField(null=True)),
                ("data", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "events",
                "app": "partnergraph",
                "indexes": [Index(fields=["type", "id"]), Index(fields=["partner_id", "id"])],
                "pk_attr": "id",
                "table_description": "One event: its type (`badge.awarded`), when, and the object as the API shows it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointEntry",
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
                        related_name="point_entries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="CONVERSION: CONVERSION\nBADGE: BADGE\nREVERSAL: REVERSAL",
                        enum_type=PointKind,
                        max_length=16,
                    ),
                ),
                ("points", fields.IntField()),
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
                    "award",
                    fields.ForeignKeyField(
                        "partnergraph.BadgeAward",
                        source_field="award_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("reason", fields.CharField(null=True, max_length=500)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "point_entries",
                "app": "partnergraph",
                "indexes": [
                    Index(fields=["enrollment_id", "points"]),
                    Index(fields=["program_id", "created_at", "enrollment_id", "points"]),
                    Index(fields=["conversion_id", "enrollment_id"]),
                ],
                "pk_attr": "id",
                "table_description": "Points an enrollment earned or lost. Never edited: a refund appends a REVERSAL.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PointRule",
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
                        related_name="point_rules",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "conversion_kind",
                    fields.CharEnumField(
                        description="LEAD: LEAD\nSIGNUP: SIGNUP\nSALE: SALE\nRENEWAL: RENEWAL",
                        enum_type=ConversionKind,
                        max_length=16,
                    ),
                ),
                ("points_per_conversion", fields.IntField(default=0)),
                ("points_per_unit", fields.IntField(default=0)),
            ],
            options={
                "table": "point_rules",
                "app": "partnergraph",
                "unique_together": (("program", "conversion_kind"),),
                "pk_attr": "id",
                "table_description": "How many points a credited conversion of one kind earns in a program.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SigningKey",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("kid", fields.CharField(unique=True, max_length=64)),
                ("private_pem", fields.TextField(unique=False)),
                ("public_jwk", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "signing_keys",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "An RSA key that signs badge credentials, the private part encrypted with the service's",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="TierChange",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "enrollment",
                    fields.ForeignKeyField(
                        "partnergraph.Enrollment",
                        source_field="enrollment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tier_changes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "from_tier",
                    fields.ForeignKeyField(
                        "partnergraph.Tier",
                        source_field="from_tier_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "to_tier",
                    fields.ForeignKeyField(
                        "partnergraph.Tier",
                        source_field="to_tier_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "reason",
                    fields.CharEnumField(
                        description="PROMOTED: PROMOTED\nDEMOTED: DEMOTED\nPINNED: PINNED\nSET: SET\nUNPINNED: UNPINNED",
                        enum_type=TierChangeReason,
                        max_length=16,
                    ),
                ),
                ("actor", fields.CharField(max_length=300)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "tier_changes",
                "app": "partnergraph",
                "indexes": [Index(fields=["enrollment_id", "id"])],
                "pk_attr": "id",
                "table_description": "One change of an enrollment's tier, with why and by whom. Never edited.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Enrollment",
            name="tier_pinned",
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name="Enrollment",
            name="unqualified_since",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Program",
            name="leaderboard_visibility",
            field=fields.CharEnumField(
                default=LeaderboardVisibility.NAMES,
                description="NAMES: NAMES\nANONYMIZED: ANONYMIZED\nOWN_RANK_ONLY: OWN_RANK_ONLY",
                enum_type=LeaderboardVisibility,
                max_length=16,
            ),
        ),
        ops.AddField(
            model_name="Program",
            name="tier_grace_days",
            field=fields.IntField(default=30),
        ),
    ]
