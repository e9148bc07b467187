"""GraphQL types of tracking: conversions and touchpoints.

No visitor or customer identifiers and no IP hash are shown: a partner learns which of its
touchpoints counted, never who its customers are.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.context import Info
from api.money import Money
from api.partners.types import Enrollment
from api.programs.types import FunnelRole, Program
from api.relay import Node, to_global_id
from domain.tracking import models

if TYPE_CHECKING:
    from api.attribution.credits import AttributionCredit

ConversionKind = models.ConversionKind
strawberry.enum(ConversionKind, description="What a merchant reported.")
ConversionStatus = models.ConversionStatus
strawberry.enum(ConversionStatus, description="Whether a conversion was refunded.")
TouchpointKind = models.TouchpointKind
strawberry.enum(TouchpointKind, description="How a partner met a (future) customer.")


@strawberry.type(
    description="A lead, signup, sale or renewal the merchant reported, once per externalId."
)
class Conversion(Node):
    external_id: str = strawberry.field(description="The merchant's ID, unique in the program.")
    kind: ConversionKind
    amount: Money
    refunded: Money = strawberry.field(description="How much of the amount was refunded.")
    occurred_at: datetime
    status: ConversionStatus
    verified: bool = strawberry.field(
        description="False for a conversion pixel's until an admin or an app confirms it; "
        "unverified conversions earn no credit."
    )
    created_at: datetime = strawberry.field(description="When it was recorded.")
    pk: strawberry.Private[int]
    program_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Conversion) -> Conversion:
        return cls(
            id=to_global_id("Conversion", row.pk),
            pk=row.pk,
            program_pk=row.program_id,
            external_id=row.external_id,
            kind=row.kind,
            amount=Money.of(row.amount_minor, row.currency),
            refunded=Money.of(row.refunded_minor, row.currency),
            occurred_at=row.occurred_at,
            status=row.status,
            verified=row.verified,
            created_at=row.created_at,
        )

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a visible conversion's program is visible
        return Program.from_model(row)

    @strawberry.field(
        description="Who was credited with it, in the order the credits were computed. "
        "A partner sees only its own credits."
    )
    async def credits(
        self, info: Info
    ) -> list[Annotated[AttributionCredit, strawberry.lazy("api.attribution.credits")]]:
        from api.attribution.credits import AttributionCredit

        rows = await info.context.loaders.credits_by_conversion.load(self.pk)
        return [AttributionCredit.from_model(row) for row in rows]


@strawberry.type(description="One contact between a partner and a (future) customer.")
class Touchpoint(Node):
    kind: TouchpointKind
    role: FunnelRole | None = strawberry.field(description="Its part in a deal, if known.")
    occurred_at: datetime
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Touchpoint) -> Touchpoint:
        return cls(
            id=to_global_id("Touchpoint", row.pk),
            kind=row.kind,
            role=row.role,
            occurred_at=row.occurred_at,
            enrollment_pk=row.enrollment_id,
        )

    @strawberry.field(description="The enrollment (partner in a program) that made it happen.")
    async def enrollment(self, info: Info) -> Enrollment:
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        assert row is not None  # a visible touchpoint's enrollment is visible
        return Enrollment.from_model(row)
