"""Inputs of program and tier mutations, and their translation to domain specs."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from api.programs.types import (
    AttributionModelKind,
    FunnelRole,
    LeaderboardVisibility,
    ProgramStatus,
    RewardKind,
    TierMetric,
)
from domain.programs.rules import AttributionSettings, RewardOffer, TierSpec
from domain.programs.services import ProgramSpec

TIER_GRACE_DAYS = (
    "Days an enrollment may stay below its tier's qualification before evaluateTiers demotes "
    "it (0 to 365)."
)


@strawberry.input
class RoleWeightInput:
    role: FunnelRole
    weight: Decimal


@strawberry.input(description="An attribution model and its settings.")
class AttributionModelInput:
    model: AttributionModelKind
    lookback_days: int | None = None
    half_life_days: float | None = None
    first_weight: Decimal | None = None
    last_weight: Decimal | None = None
    role_weights: list[RoleWeightInput] | None = None
    code_wins: bool | None = strawberry.field(
        default=None,
        description="A referral code entered at checkout takes all the credit "
        "(left out: unchanged, or the program's choice in a preview).",
    )

    def to_settings(self) -> AttributionSettings:
        return AttributionSettings(
            model=self.model,
            lookback_days=self.lookback_days,
            half_life_days=self.half_life_days,
            first_weight=self.first_weight,
            last_weight=self.last_weight,
            role_weights=None
            if self.role_weights is None
            else {w.role: w.weight for w in self.role_weights},
            code_wins=self.code_wins,
        )


@strawberry.input
class RewardOfferInput:
    kind: RewardKind
    value: Decimal


def _reward(offer: RewardOfferInput | None) -> RewardOffer | None:
    return None if offer is None else RewardOffer(kind=offer.kind, value=offer.value)


@strawberry.input
class CreateProgramInput:
    name: str
    currency: str = strawberry.field(description="ISO 4217 code, such as EUR; fixed once set.")
    destination_url: str
    attribution: AttributionModelInput | None = None
    hold_days: int | None = None
    referee_reward: RewardOfferInput | None = None
    allowed_domains: list[str] | None = strawberry.field(
        default=None,
        description="Hosts referral links may lead to besides the destination's own host and "
        "its subdomains (at most 20; exact hosts).",
    )
    tier_grace_days: int | None = strawberry.field(
        default=None, description=TIER_GRACE_DAYS + " 30 if left out."
    )
    leaderboard_visibility: LeaderboardVisibility | None = strawberry.field(
        default=None, description="What partners see of the leaderboards; NAMES if left out."
    )

    def to_spec(self) -> ProgramSpec:
        return ProgramSpec(
            name=self.name,
            currency=self.currency,
            destination_url=self.destination_url,
            attribution=self.attribution.to_settings() if self.attribution else None,
            hold_days=self.hold_days,
            referee_reward=_reward(self.referee_reward),
            allowed_domains=self.allowed_domains,
            tier_grace_days=self.tier_grace_days,
            leaderboard_visibility=self.leaderboard_visibility,
        )


@strawberry.input(description="Changes to a program; fields left out keep their value.")
class UpdateProgramInput:
    id: strawberry.ID
    name: str | None = None
    destination_url: str | None = None
    attribution: AttributionModelInput | None = None
    hold_days: int | None = None
    status: ProgramStatus | None = None
    referee_reward: RewardOfferInput | None = strawberry.field(
        default=strawberry.UNSET, description="null ends the referee reward; left out keeps it."
    )
    allowed_domains: list[str] | None = strawberry.field(
        default=None,
        description="Replaces the hosts referral links may also lead to ([] removes them all; "
        "left out keeps them).",
    )
    tier_grace_days: int | None = strawberry.field(default=None, description=TIER_GRACE_DAYS)
    leaderboard_visibility: LeaderboardVisibility | None = strawberry.field(
        default=None, description="What partners see of the leaderboards; left out keeps it."
    )

    def to_spec(self) -> ProgramSpec:
        return ProgramSpec(
            name=self.name,
            destination_url=self.destination_url,
            attribution=self.attribution.to_settings() if self.attribution else None,
            hold_days=self.hold_days,
            status=self.status,
            referee_reward=_reward(self.referee_reward or None),
            clear_referee_reward=self.referee_reward is None,
            allowed_domains=self.allowed_domains,
            tier_grace_days=self.tier_grace_days,
            leaderboard_visibility=self.leaderboard_visibility,
        )


@strawberry.input
class CreateTierInput:
    program_id: strawberry.ID
    name: str
    rank: int = strawberry.field(description="Higher is better; unique in the program.")
    qualify_metric: TierMetric | None = None
    qualify_threshold: Decimal | None = None
    qualify_period_days: int | None = None

    def to_spec(self) -> TierSpec:
        return _tier_spec(self)


@strawberry.input
class UpdateTierInput:
    id: strawberry.ID
    name: str | None = None
    rank: int | None = None
    qualify_metric: TierMetric | None = None
    qualify_threshold: Decimal | None = None
    qualify_period_days: int | None = None

    def to_spec(self) -> TierSpec:
        return _tier_spec(self)


def _tier_spec(data: CreateTierInput | UpdateTierInput) -> TierSpec:
    return TierSpec(
        name=data.name,
        rank=data.rank,
        qualify_metric=data.qualify_metric,
        qualify_threshold=data.qualify_threshold,
        qualify_period_days=data.qualify_period_days,
    )
