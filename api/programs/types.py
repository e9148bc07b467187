"""GraphQL types of programs and tiers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.context import Info
from api.policy import ensure_read, partner_scope
from api.relay import Connection, Node, connection, page_request, to_global_id
from api.scalars import plain
from domain.partners import services as partner_services
from domain.programs import models

if TYPE_CHECKING:
    from api.commissions.types import CommissionRule
    from api.gamification.badges import Badge, PointRule
    from api.partners.types import Enrollment

ProgramStatus = models.ProgramStatus
strawberry.enum(ProgramStatus, description="Whether a program runs.")
AttributionModelKind = models.AttributionModelKind
strawberry.enum(AttributionModelKind, description="How credit for a conversion is split.")
FunnelRole = models.FunnelRole
strawberry.enum(FunnelRole, description="A touchpoint's part in a deal.")
RewardKind = models.RewardKind
strawberry.enum(RewardKind, description="What a referred customer gets.")
TierMetric = models.TierMetric
strawberry.enum(TierMetric, description="What a tier qualifies on.")
LeaderboardVisibility = models.LeaderboardVisibility
strawberry.enum(
    LeaderboardVisibility,
    description="What a program's partners see of its leaderboards: NAMES, others' names; "
    "ANONYMIZED, others without names; OWN_RANK_ONLY, their own entry alone.",
)


@strawberry.type(description="The weight of one funnel role (ROLE_WEIGHTED attribution).")
class RoleWeight:
    role: FunnelRole
    weight: Decimal


@strawberry.type(description="How a program splits credit between the partners of a journey.")
class AttributionSettings:
    model: AttributionModelKind
    lookback_days: int = strawberry.field(description="Touchpoints older than this are ignored.")
    half_life_days: float | None = strawberry.field(description="TIME_DECAY's half-life.")
    first_weight: Decimal | None
    last_weight: Decimal | None
    role_weights: list[RoleWeight] | None
    code_wins: bool = strawberry.field(
        description="A referral code entered at checkout takes all the credit."
    )


@strawberry.type(description="What a referred customer is offered (double-sided programs).")
class RewardOffer:
    kind: RewardKind
    value: Decimal


@strawberry.type(description="A partner program: its currency, destination and rules.")
class Program(Node):
    name: str
    currency: str = strawberry.field(description="ISO 4217 code of all its money.")
    destination_url: str = strawberry.field(description="Where referral links lead by default.")
    status: ProgramStatus
    attribution: AttributionSettings
    hold_days: int = strawberry.field(description="Days commissions stay PENDING (refunds).")
    tier_grace_days: int = strawberry.field(
        description="Days an enrollment may stay below its tier's qualification before a "
        "periodic evaluation (evaluateTiers) demotes it."
    )
    referee_reward: RewardOffer | None
    leaderboard_visibility: LeaderboardVisibility = strawberry.field(
        description="What partners see of the leaderboards (admins always see names)."
    )
    allowed_domains: list[str] = strawberry.field(
        description="Hosts referral links may lead to besides the destination's own host and "
        "its subdomains."
    )
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Program) -> Program:
        weights = None
        if row.role_weights:
            weights = [
                RoleWeight(role=models.FunnelRole(role), weight=Decimal(value))
                for role, value in row.role_weights.items()
            ]
        reward = None
        if row.referee_reward_kind is not None and row.referee_reward_value is not None:
            reward = RewardOffer(
                kind=row.referee_reward_kind, value=plain(row.referee_reward_value)
            )
        return cls(
            id=to_global_id("Program", row.pk),
            pk=row.pk,
            name=row.name,
            currency=row.currency,
            destination_url=row.destination_url,
            status=row.status,
            attribution=AttributionSettings(
                model=row.attribution_model,
                lookback_days=row.lookback_days,
                half_life_days=row.half_life_days,
                first_weight=plain(row.first_weight),
                last_weight=plain(row.last_weight),
                role_weights=weights,
                code_wins=row.code_wins,
            ),
            hold_days=row.hold_days,
            tier_grace_days=row.tier_grace_days,
            referee_reward=reward,
            leaderboard_visibility=row.leaderboard_visibility,
            allowed_domains=list(row.allowed_domains or []),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @strawberry.field(description="The program's tiers, lowest rank first.")
    async def tiers(self, info: Info) -> list[Tier]:
        rows = await info.context.loaders.tiers_by_program.load(self.pk)
        return [Tier.from_model(row) for row in rows]

    @strawberry.field(
        description="The program's commission rules, oldest first. Admins (and their APP "
        "tokens) see every rule, archived ones too; a partner sees the unarchived rules that "
        "can apply to it (the program's, its tier's and its own enrollment's), never another "
        "enrollment's (an archived one stays reachable through the entries it priced)."
    )
    async def commission_rules(
        self, info: Info
    ) -> list[Annotated[CommissionRule, strawberry.lazy("api.commissions.types")]]:
        from api.commissions.types import CommissionRule

        rows = await info.context.loaders.commission_rules_by_program.load(self.pk)
        return [CommissionRule.from_model(row) for row in rows]

    @strawberry.field(description="What credited conversions earn in points, by kind.")
    async def point_rules(
        self, info: Info
    ) -> list[Annotated[PointRule, strawberry.lazy("api.gamification.badges")]]:
        from api.gamification.badges import program_point_rules

        return await program_point_rules(info, self.pk)

    @strawberry.field(description="The program's badges and milestones, oldest first.")
    async def badges(
        self, info: Info
    ) -> list[Annotated[Badge, strawberry.lazy("api.gamification.badges")]]:
        from api.gamification.badges import program_badges

        return await program_badges(info, self.pk)

    @strawberry.field(
        description="Enrollments of the program, searched by referral code or partner name "
        "(a partner sees only its own)."
    )
    async def enrollments(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> Connection[Annotated[Enrollment, strawberry.lazy("api.partners.types")]]:
        from api.partners.types import Enrollment

        ensure_read(info.context.principal, "Enrollment")
        page = await partner_services.list_enrollments(
            partner_scope(info.context.principal),
            page_request(first, after),
            program_id=self.pk,
            search=search,
        )
        return connection(page, Enrollment.from_model, after is not None)


@strawberry.type(description="A rank of partners in a program; the top tier is VIP status.")
class Tier(Node):
    name: str
    rank: int
    qualify_metric: TierMetric | None
    qualify_threshold: Decimal | None
    qualify_period_days: int | None
    program_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Tier) -> Tier:
        return cls(
            id=to_global_id("Tier", row.pk),
            name=row.name,
            rank=row.rank,
            qualify_metric=row.qualify_metric,
            qualify_threshold=plain(row.qualify_threshold),
            qualify_period_days=row.qualify_period_days,
            program_pk=row.program_id,
        )

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a visible tier's program is visible
        return Program.from_model(row)
