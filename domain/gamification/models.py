"""Points (an append-only ledger like money), badges and their awards, and tier history."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from domain.tracking.models import ConversionKind

if TYPE_CHECKING:
    from domain.partners.models import Enrollment
    from domain.programs.models import Program, Tier
    from domain.tracking.models import Conversion


class BadgeMetric(StrEnum):
    CLICKS = "CLICKS"
    LEADS = "LEADS"
    CONVERSIONS = "CONVERSIONS"
    REVENUE = "REVENUE"
    REFERRED_CUSTOMERS = "REFERRED_CUSTOMERS"
    POINTS = "POINTS"
    ACTIVE_MONTHS_STREAK = "ACTIVE_MONTHS_STREAK"


class PointKind(StrEnum):
    CONVERSION = "CONVERSION"  # earned by a credited conversion
    BADGE = "BADGE"  # carried by a badge award
    REVERSAL = "REVERSAL"  # taken back by a refund


class TierChangeReason(StrEnum):
    PROMOTED = "PROMOTED"
    DEMOTED = "DEMOTED"
    PINNED = "PINNED"  # an admin set and pinned the tier
    SET = "SET"  # an admin set the tier without pinning it
    UNPINNED = "UNPINNED"


class PointRule(Model):
    """How many points a credited conversion of one kind earns in a program."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="point_rules", on_delete=fields.CASCADE
    )
    program_id: int
    conversion_kind = fields.CharEnumField(ConversionKind, max_length=16)
    points_per_conversion = fields.IntField(default=0)
    points_per_unit = fields.IntField(default=0)  # per whole currency unit credited

    class Meta:
        table = "point_rules"
        unique_together = (("program", "conversion_kind"),)


class Badge(Model):
    """A declarative achievement: `metric` reaching `threshold` (within `period_days`)."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="badges", on_delete=fields.CASCADE
    )
    program_id: int
    code = fields.CharField(max_length=64)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    image_url = fields.CharField(max_length=2048, null=True)
    metric = fields.CharEnumField(BadgeMetric, max_length=32)
    threshold = fields.DecimalField(max_digits=20, decimal_places=4)
    period_days = fields.IntField(null=True)
    points = fields.IntField(default=0)
    bonus_minor = fields.BigIntField(null=True)
    repeating = fields.BooleanField(default=False)  # a milestone: again at every multiple
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "badges"
        unique_together = (("program", "code"),)


class BadgeAward(Model):
    """One award of a badge to an enrollment. `sequence` counts a milestone's awards (1 for a
    one-off badge), and is unique with the badge and enrollment: never awarded twice."""

    id = fields.IntField(primary_key=True)
    badge: fields.ForeignKeyRelation[Badge] = fields.ForeignKeyField(
        "partnergraph.Badge", related_name="awards", on_delete=fields.CASCADE
    )
    badge_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="badge_awards", on_delete=fields.CASCADE
    )
    enrollment_id: int
    sequence = fields.IntField(default=1)
    value = fields.CharField(max_length=40)  # the metric's value when it was awarded
    awarded_at = fields.DatetimeField()

    class Meta:
        table = "badge_awards"
        unique_together = (("badge", "enrollment", "sequence"),)
        indexes = (("enrollment_id", "id"),)


class PointEntry(Model):
    """Points an enrollment earned or lost. Never edited: a refund appends a REVERSAL."""

    id = fields.BigIntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="point_entries", on_delete=fields.CASCADE
    )
    enrollment_id: int
    kind = fields.CharEnumField(PointKind, max_length=16)
    points = fields.IntField()
    conversion: fields.ForeignKeyNullableRelation[Conversion] = fields.ForeignKeyField(
        "partnergraph.Conversion", related_name=False, null=True, on_delete=fields.CASCADE
    )
    conversion_id: int | None
    award: fields.ForeignKeyNullableRelation[BadgeAward] = fields.ForeignKeyField(
        "partnergraph.BadgeAward", related_name=False, null=True, on_delete=fields.CASCADE
    )
    award_id: int | None
    reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "point_entries"
        indexes = (
            ("enrollment_id", "points"),
            ("program_id", "created_at", "enrollment_id", "points"),
            ("conversion_id", "enrollment_id"),
        )


class TierChange(Model):
    """One change of an enrollment's tier, with why and by whom. Never edited."""

    id = fields.IntField(primary_key=True)
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="tier_changes", on_delete=fields.CASCADE
    )
    enrollment_id: int
    from_tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "partnergraph.Tier", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    from_tier_id: int | None
    to_tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "partnergraph.Tier", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    to_tier_id: int | None
    reason = fields.CharEnumField(TierChangeReason, max_length=16)
    actor = fields.CharField(max_length=300)
    at = fields.DatetimeField()

    class Meta:
        table = "tier_changes"
        indexes = (("enrollment_id", "id"),)


class SigningKey(Model):
    """An RSA key that signs badge credentials, the private part encrypted with the service's
    secret key. `kid` names it in `/.well-known/jwks.json`."""

    id = fields.IntField(primary_key=True)
    kid = fields.CharField(max_length=64, unique=True)
    private_pem = fields.TextField()
    public_jwk = fields.JSONField[dict[str, str]]()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "signing_keys"
