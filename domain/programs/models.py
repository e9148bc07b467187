from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class ProgramStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    ARCHIVED = "ARCHIVED"


class AttributionModelKind(StrEnum):
    FIRST_TOUCH = "FIRST_TOUCH"
    LAST_TOUCH = "LAST_TOUCH"
    LINEAR = "LINEAR"
    TIME_DECAY = "TIME_DECAY"
    POSITION_BASED = "POSITION_BASED"
    ROLE_WEIGHTED = "ROLE_WEIGHTED"


class FunnelRole(StrEnum):
    SOURCE = "SOURCE"
    INFLUENCE = "INFLUENCE"
    CLOSE = "CLOSE"


class RewardKind(StrEnum):
    PERCENT_DISCOUNT = "PERCENT_DISCOUNT"
    FLAT_CREDIT = "FLAT_CREDIT"


class TierMetric(StrEnum):
    REVENUE = "REVENUE"
    CONVERSIONS = "CONVERSIONS"
    REFERRED_CUSTOMERS = "REFERRED_CUSTOMERS"
    POINTS = "POINTS"


class LeaderboardVisibility(StrEnum):
    NAMES = "NAMES"
    ANONYMIZED = "ANONYMIZED"
    OWN_RANK_ONLY = "OWN_RANK_ONLY"


class Program(Model):
    """One partner program: currency, destination, attribution settings, hold period."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    currency = fields.CharField(max_length=3)
    destination_url = fields.CharField(max_length=2048)
    status = fields.CharEnumField(ProgramStatus, max_length=16, default=ProgramStatus.ACTIVE)
    attribution_model = fields.CharEnumField(
        AttributionModelKind, max_length=32, default=AttributionModelKind.LAST_TOUCH
    )
    lookback_days = fields.IntField(default=30)
    half_life_days = fields.FloatField(null=True)
    first_weight = fields.DecimalField(max_digits=6, decimal_places=4, null=True)
    last_weight = fields.DecimalField(max_digits=6, decimal_places=4, null=True)
    # {"SOURCE": "0.5", ...}: Decimal strings, never floats
    role_weights = fields.JSONField[dict[str, str]](null=True)
    # a referral code entered at checkout takes all the credit
    code_wins = fields.BooleanField(default=False)
    # hosts referral links may lead to besides the destination's own (no open redirects)
    allowed_domains = fields.JSONField[list[str]](null=True)
    deal_protection_days = fields.IntField(default=90)  # how long an approved deal is owned
    hold_days = fields.IntField(default=30)
    leaderboard_visibility = fields.CharEnumField(
        LeaderboardVisibility, max_length=16, default=LeaderboardVisibility.NAMES
    )
    tier_grace_days = fields.IntField(default=30)  # how long below a tier before demotion
    referee_reward_kind = fields.CharEnumField(RewardKind, max_length=32, null=True)
    referee_reward_value = fields.DecimalField(max_digits=18, decimal_places=4, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "programs"

    def snapshot(self) -> dict[str, Any]:
        """The audited view of a program (JSON-safe)."""
        return {
            "name": self.name,
            "currency": self.currency,
            "destinationUrl": self.destination_url,
            "status": str(self.status),
            "attribution": {
                "model": str(self.attribution_model),
                "lookbackDays": self.lookback_days,
                "halfLifeDays": self.half_life_days,
                "firstWeight": _str(self.first_weight),
                "lastWeight": _str(self.last_weight),
                "roleWeights": self.role_weights,
                "codeWins": self.code_wins,
            },
            "holdDays": self.hold_days,
            "refereeReward": None
            if self.referee_reward_kind is None
            else {"kind": str(self.referee_reward_kind), "value": _str(self.referee_reward_value)},
        }


class Tier(Model):
    """A rank of partners inside a program (1 is the entry tier, the top tier is VIP)."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="tiers", on_delete=fields.CASCADE
    )
    program_id: int
    name = fields.CharField(max_length=100)
    rank = fields.IntField()
    qualify_metric = fields.CharEnumField(TierMetric, max_length=32, null=True)
    qualify_threshold = fields.DecimalField(max_digits=20, decimal_places=4, null=True)
    qualify_period_days = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "tiers"
        unique_together = (("program", "rank"), ("program", "name"))

    def snapshot(self) -> dict[str, Any]:
        return {
            "programId": self.program_id,
            "name": self.name,
            "rank": self.rank,
            "qualifyMetric": None if self.qualify_metric is None else str(self.qualify_metric),
            "qualifyThreshold": _str(self.qualify_threshold),
            "qualifyPeriodDays": self.qualify_period_days,
        }


def _str(value: object) -> str | None:
    return None if value is None else str(value)
