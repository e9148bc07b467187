"""GraphQL types of points and badges: PointRule, Badge and BadgeAward, and the resolvers of
Program.pointRules, Program.badges, Enrollment.points and Enrollment.badges.

Every relation goes through `context.loaders.badges`, which applies the policy: a partner
sees the badges of its programs and its own enrollments' awards and points.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from api.context import Context, Info
from api.money import Money
from api.partners.types import Enrollment
from api.policy import ensure_read, owns
from api.programs.types import Program
from api.relay import Node, to_global_id
from api.scalars import plain
from api.tracking.types import ConversionKind
from domain.gamification import models

BadgeMetric = models.BadgeMetric
strawberry.enum(
    BadgeMetric,
    description="What a badge measures of an enrollment in its program: counted CLICKS; "
    "credited LEADS and CONVERSIONS (any kind); REVENUE, its credited SALE and RENEWAL "
    "amounts less refunds in currency units; REFERRED_CUSTOMERS with a credited SALE; "
    "POINTS; ACTIVE_MONTHS_STREAK, calendar months (UTC) in a row up to now with a credited "
    "conversion.",
)


@strawberry.type(
    description="How many points a credited conversion of one kind earns each credited "
    "enrollment: round_half_even(share x pointsPerConversion + pointsPerUnit x whole currency "
    "units of its credited amount). A refund takes points back in proportion."
)
class PointRule:
    conversion_kind: ConversionKind
    points_per_conversion: int = strawberry.field(
        description="Per conversion, split like the credit."
    )
    points_per_unit: int = strawberry.field(
        description="Per whole currency unit credited (rounded down: 12.99 is 12 units)."
    )

    @classmethod
    def from_model(cls, row: models.PointRule) -> PointRule:
        return cls(
            conversion_kind=row.conversion_kind,
            points_per_conversion=row.points_per_conversion,
            points_per_unit=row.points_per_unit,
        )


@strawberry.type(
    description="An achievement: its metric reaching its threshold (within the trailing "
    "periodDays, if set). Awarded automatically with the event that crosses the threshold, "
    "once; a repeating badge (a milestone) again at every multiple of its threshold. Refunds "
    "take back points, never an award."
)
class Badge(Node):
    code: str = strawberry.field(description="Unique in its program.")
    name: str
    description: str
    image_url: str | None
    metric: BadgeMetric
    threshold: Decimal = strawberry.field(description="REVENUE in currency units.")
    period_days: int | None = strawberry.field(
        description="Only what happened in this many trailing days counts; null: all time."
    )
    points: int = strawberry.field(description="Points each award adds.")
    repeating: bool = strawberry.field(
        description="A milestone: awarded at every multiple of the threshold."
    )
    created_at: datetime
    pk: strawberry.Private[int]
    program_pk: strawberry.Private[int]
    bonus_minor: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.Badge) -> Badge:
        return cls(
            id=to_global_id("Badge", row.pk),
            code=row.code,
            name=row.name,
            description=row.description,
            image_url=row.image_url,
            metric=row.metric,
            threshold=plain(row.threshold),
            period_days=row.period_days,
            points=row.points,
            repeating=row.repeating,
            created_at=row.created_at,
            pk=row.pk,
            program_pk=row.program_id,
            bonus_minor=row.bonus_minor,
        )

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a visible badge's program is visible
        return Program.from_model(row)

    @strawberry.field(
        description="Paid with each award as a BONUS ledger entry (PENDING for the program's "
        "hold); null: none."
    )
    async def bonus_amount(self, info: Info) -> Money | None:
        if self.bonus_minor is None:
            return None
        program = await info.context.loaders.program_by_id.load(self.program_pk)
        assert program is not None  # a visible badge's program is visible
        return Money.of(self.bonus_minor, program.currency)

    @strawberry.field(description="How many enrollments hold it.")
    async def holders(self, info: Info) -> int:
        return await info.context.loaders.badges.holders_by_badge.load(self.pk)


@strawberry.type(description="One award of a badge to an enrollment.")
class BadgeAward(Node):
    awarded_at: datetime
    sequence: int = strawberry.field(
        description="Which award of the badge it is: 1 for a one-off badge; a milestone's n-th "
        "multiple of its threshold."
    )
    value: Decimal = strawberry.field(description="The metric's value when it was awarded.")
    pk: strawberry.Private[int]
    badge_pk: strawberry.Private[int]
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.BadgeAward) -> BadgeAward:
        return cls(
            id=to_global_id("BadgeAward", row.pk),
            awarded_at=row.awarded_at,
            sequence=row.sequence,
            value=Decimal(row.value),
            pk=row.pk,
            badge_pk=row.badge_id,
            enrollment_pk=row.enrollment_id,
        )

    @strawberry.field
    async def badge(self, info: Info) -> Badge:
        row = await info.context.loaders.badges.badge_by_id.load(self.badge_pk)
        assert row is not None  # a visible award's badge is of a visible program
        return Badge.from_model(row)

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        assert row is not None  # a visible award's enrollment is visible
        return Enrollment.from_model(row)

    @strawberry.field(
        description="The award as an Open Badges 3.0 credential anyone can verify: JSON-LD, or "
        "a signed JWT with `Accept: application/vc+jwt`."
    )
    def credential_url(self, info: Info) -> str:
        return f"{info.context.public_url.rstrip('/')}/badges/{self.id}"


# --- fields of Program and Enrollment, and node(id:) --------------------------------------


async def program_point_rules(info: Info, program_pk: int) -> list[PointRule]:
    rows = await info.context.loaders.badges.point_rules_by_program.load(program_pk)
    return [PointRule.from_model(row) for row in rows]


async def program_badges(info: Info, program_pk: int) -> list[Badge]:
    rows = await info.context.loaders.badges.badges_by_program.load(program_pk)
    return [Badge.from_model(row) for row in rows]


async def enrollment_points(info: Info, enrollment_pk: int, partner_pk: int) -> int:
    """Enrollment.points: whoever reads the enrollment, a partner only its own."""
    principal = info.context.principal
    ensure_read(principal, "Enrollment")
    if not owns(principal, partner_pk):
        return 0
    return await info.context.loaders.badges.points_by_enrollment.load(enrollment_pk)


async def enrollment_badges(info: Info, enrollment_pk: int, partner_pk: int) -> list[BadgeAward]:
    """Enrollment.badges, in the order they were awarded; a partner only its own."""
    principal = info.context.principal
    ensure_read(principal, "BadgeAward")
    if not owns(principal, partner_pk):
        return []
    rows = await info.context.loaders.badges.awards_by_enrollment.load(enrollment_pk)
    return [BadgeAward.from_model(row) for row in rows]


async def fetch_badge(context: Context, pk: int) -> Node | None:
    row = await context.loaders.badges.badge_by_id.load(pk)
    return None if row is None else Badge.from_model(row)


async def fetch_award(context: Context, pk: int) -> Node | None:
    row = await context.loaders.badges.award_by_id.load(pk)
    return None if row is None else BadgeAward.from_model(row)
