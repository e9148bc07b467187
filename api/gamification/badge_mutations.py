"""Mutations of points and badges: createBadge and setPointRules (admins, or admin-made APP
tokens with programs:write). The domain validates and audits them."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.gamification.badges import Badge, BadgeMetric
from api.permissions import can_write
from api.programs.mutations import ProgramPayload
from api.programs.types import Program
from api.relay import parse_id
from api.tracking.types import ConversionKind
from domain.gamification import badges, points
from domain.gamification.criteria import BadgeSpec, PointTerms
from domain.gamification.models import Badge as BadgeRow
from domain.programs.models import Program as ProgramRow

ProgramsWrite = can_write("programs:write")


@strawberry.input(
    description="A new badge of a program. Money (threshold of REVENUE, bonusAmount) in the "
    "program's currency units."
)
class CreateBadgeInput:
    program_id: strawberry.ID
    code: str = strawberry.field(
        description="Unique in the program: 1 to 64 letters, digits, '-', '_' or '.'."
    )
    name: str
    description: str | None = None
    image_url: str | None = strawberry.field(default=None, description="An https URL.")
    metric: BadgeMetric
    threshold: Decimal = strawberry.field(
        description="More than 0; a whole number for the metrics that count."
    )
    period_days: int | None = strawberry.field(
        default=None, description="Count only the trailing days (1 to 3650); not for streaks "
        "or milestones."
    )  # fmt: skip
    points: int | None = strawberry.field(default=None, description="0 if left out.")
    bonus_amount: Decimal | None = strawberry.field(
        default=None, description="Paid with each award as a BONUS ledger entry."
    )
    repeating: bool | None = strawberry.field(
        default=None,
        description="A milestone: awarded again at every multiple of the threshold (false if "
        "left out).",
    )

    def to_spec(self) -> BadgeSpec:
        return BadgeSpec(
            code=self.code,
            name=self.name,
            metric=self.metric,
            threshold=self.threshold,
            description=self.description,
            image_url=self.image_url,
            period_days=self.period_days,
            points=self.points,
            bonus_amount=self.bonus_amount,
            repeating=bool(self.repeating),
        )


@strawberry.input(description="What credited conversions of one kind earn; 0 if left out.")
class PointRuleInput:
    conversion_kind: ConversionKind
    points_per_conversion: int | None = None
    points_per_unit: int | None = strawberry.field(
        default=None, description="Per whole currency unit credited."
    )


@strawberry.input(description="A program's point rules: they replace all of its rules.")
class SetPointRulesInput:
    program_id: strawberry.ID
    rules: list[PointRuleInput] = strawberry.field(description="At most one per kind.")

    def terms(self) -> list[PointTerms]:
        return [
            PointTerms(r.conversion_kind, r.points_per_conversion or 0, r.points_per_unit or 0)
            for r in self.rules
        ]


@strawberry.type
class BadgePayload:
    badge: Badge | None
    user_errors: list[UserError]


async def _create_badge(info: Info, data: CreateBadgeInput) -> BadgeRow:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await badges.create_badge(info.context.principal.actor(), program_id, data.to_spec())


async def _set_point_rules(info: Info, data: SetPointRulesInput) -> ProgramRow:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    actor = info.context.principal.actor()
    return await points.set_point_rules(actor, program_id, data.terms())


@strawberry.type
class BadgesMutation:
    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Add a badge (or a milestone, repeating). It is awarded from the next event "
        "that moves its metric: an enrollment already past the threshold gets it then.",
    )
    async def create_badge(self, info: Info, input: CreateBadgeInput) -> BadgePayload:
        row, errors = await attempt(_create_badge(info, input))
        return BadgePayload(badge=Badge.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Replace a program's point rules. They price conversions credited from now "
        "on (recomputeAttribution applies them to earlier ones).",
    )
    async def set_point_rules(self, info: Info, input: SetPointRulesInput) -> ProgramPayload:
        row, errors = await attempt(_set_point_rules(info, input))
        return ProgramPayload(program=Program.from_model(row) if row else None, user_errors=errors)
