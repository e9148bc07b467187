from tortoise import migrations
from tortoise.migrations import operations as ops
from domain.identity.models import UserKind
from domain.partners.models import EnrollmentStatus, PartnerStatus
from domain.programs.models import AttributionModelKind, ProgramStatus, RewardKind, TierMetric
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor", fields.CharField(max_length=300)),
                ("action", fields.CharField(max_length=100)),
                ("entity_type", fields.CharField(null=True, max_length=50)),
                ("entity_pk", fields.IntField(null=True)),
                ("reason", fields.TextField(null=True, unique=False)),
                ("before", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ("after", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={
                "table": "audit_entries",
                "app": "partnergraph",
                "indexes": [Index(fields=["entity_type", "entity_pk"])],
                "pk_attr": "id",
                "table_description": "One recorded change, written in the transaction of the change itself. Never edited.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LoginFailure",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("key", fields.CharField(max_length=128)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "login_failures",
                "app": "partnergraph",
                "indexes": [Index(fields=["key", "at"])],
                "pk_attr": "id",
                "table_description": "A failed login, counted per account and per IP to throttle guessing across workers.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Partner",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=200)),
                ("email", fields.CharField(unique=True, max_length=254)),
                (
                    "status",
                    fields.CharEnumField(
                        default=PartnerStatus.ACTIVE,
                        description="ACTIVE: ACTIVE\nSUSPENDED: SUSPENDED",
                        enum_type=PartnerStatus,
                        max_length=16,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "partners",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "An organization or person that refers customers. Its users log in.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Program",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=200)),
                ("currency", fields.CharField(max_length=3)),
                ("destination_url", fields.CharField(max_length=2048)),
                (
                    "status",
                    fields.CharEnumField(
                        default=ProgramStatus.ACTIVE,
                        description="ACTIVE: ACTIVE\nPAUSED: PAUSED\nARCHIVED: ARCHIVED",
                        enum_type=ProgramStatus,
                        max_length=16,
                    ),
                ),
                (
                    "attribution_model",
                    fields.CharEnumField(
                        default=AttributionModelKind.LAST_TOUCH,
                        description="FIRST_TOUCH: FIRST_TOUCH\nLAST_TOUCH: LAST_TOUCH\nLINEAR: LINEAR\nTIME_DECAY: TIME_DECAY\nPOSITION_BASED: POSITION_BASED\nROLE_WEIGHTED: ROLE_WEIGHTED",
                        enum_type=AttributionModelKind,
                        max_length=32,
                    ),
                ),
                ("lookback_days", fields.IntField(default=30)),
                ("half_life_days", fields.FloatField(null=True)),
                ("first_weight", fields.DecimalField(null=True, max_digits=6, decimal_places=4)),
                ("last_weight", fields.DecimalField(null=True, max_digits=6, decimal_places=4)),
                ("role_weights", fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ("hold_days", fields.IntField(default=30)),
                (
                    "referee_reward_kind",
                    fields.CharEnumField(
                        null=True,
                        description="PERCENT_DISCOUNT: PERCENT_DISCOUNT\nFLAT_CREDIT: FLAT_CREDIT",
                        enum_type=RewardKind,
                        max_length=32,
                    ),
                ),
                (
                    "referee_reward_value",
                    fields.DecimalField(null=True, max_digits=18, decimal_places=4),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "programs",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "One partner program: currency, destination, attribution settings, hold period.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Tier",
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
                        related_name="tiers",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("rank", fields.IntField()),
                (
                    "qualify_metric",
                    fields.CharEnumField(
                        null=True,
                        description="REVENUE: REVENUE\nCONVERSIONS: CONVERSIONS\nREFERRED_CUSTOMERS: REFERRED_CUSTOMERS\nPOINTS: POINTS",
                        enum_type=TierMetric,
                        max_length=32,
                    ),
                ),
                (
                    "qualify_threshold",
                    fields.DecimalField(null=True, max_digits=20, decimal_places=4),
                ),
                ("qualify_period_days", fields.IntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "tiers",
                "app": "partnergraph",
                "unique_together": (("program", "rank"), ("program", "name")),
                "pk_attr": "id",
                "table_description": "A rank of partners inside a program (1 is the entry tier, the top tier is VIP).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Enrollment",
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
                        related_name="enrollments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "partner",
                    fields.ForeignKeyField(
                        "partnergraph.Partner",
                        source_field="partner_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="enrollments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "tier",
                    fields.ForeignKeyField(
                        "partnergraph.Tier",
                        source_field="tier_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="enrollments",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=EnrollmentStatus.ACTIVE,
                        description="ACTIVE: ACTIVE\nSUSPENDED: SUSPENDED",
                        enum_type=EnrollmentStatus,
                        max_length=16,
                    ),
                ),
                ("referral_code", fields.CharField(max_length=32)),
                ("code_key", fields.CharField(unique=True, max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "enrollments",
                "app": "partnergraph",
                "unique_together": (("program", "partner"),),
                "pk_attr": "id",
                "table_description": "One partner in one program, with its tier and referral code.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("email", fields.CharField(unique=True, max_length=254)),
                ("password_hash", fields.CharField(max_length=255)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="ADMIN: ADMIN\nPARTNER: PARTNER",
                        enum_type=UserKind,
                        max_length=16,
                    ),
                ),
                (
                    "partner",
                    fields.ForeignKeyField(
                        "partnergraph.Partner",
                        source_field="partner_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="users",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("is_active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "users",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "A person who logs in: an admin, or one of a partner organization's users.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=100)),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("prefix", fields.CharField(max_length=16)),
                ("last4", fields.CharField(max_length=4)),
                ("scopes", fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                (
                    "partner",
                    fields.ForeignKeyField(
                        "partnergraph.Partner",
                        source_field="partner_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="api_tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "created_by",
                    fields.ForeignKeyField(
                        "partnergraph.User",
                        source_field="created_by_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="api_tokens",
                        on_delete=OnDelete.SET_NULL,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "api_tokens",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "A token for a third-party app. Only a SHA-256 of its secret is kept.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RefreshToken",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "partnergraph.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refresh_tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("family", fields.CharField(db_index=True, max_length=32)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "refresh_tokens",
                "app": "partnergraph",
                "pk_attr": "id",
                "table_description": "One refresh token of a session (a session is a family that rotates on every use).",
            },
            bases=["Model"],
        ),
    ]
