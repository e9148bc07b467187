"""GraphQL types of stored credits: what each enrollment earned of a conversion, and why."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from api.attribution.types import six_places
from api.context import Info
from api.money import Money
from api.partners.types import Enrollment
from api.programs.types import AttributionModelKind
from api.tracking.types import Conversion, Touchpoint
from domain.attribution import models, queries


@strawberry.type(description="One touchpoint's part in a credit: why the partner earned it.")
class CreditTouchpoint:
    touchpoint: Touchpoint
    weight: Decimal = strawberry.field(
        description="The touchpoint's share of the whole conversion (6 places, half-even); "
        "the weights of a credit's touchpoints add up to its share (up to that rounding)."
    )
    amount: Money = strawberry.field(
        description="Its part of the credit's amount, split by weight (largest remainder): "
        "the amounts of a credit's touchpoints add up to its amount exactly."
    )


@strawberry.type(description="What one enrollment earned of one conversion, and why.")
class AttributionCredit:
    share: Decimal = strawberry.field(
        description="The enrollment's share of the conversion (6 places, half-even); the "
        "shares of a conversion add up to 1 (up to that rounding)."
    )
    amount: Money = strawberry.field(
        description="Its part of the conversion's amount: a conversion's credits add up to "
        "its amount exactly."
    )
    model: AttributionModelKind = strawberry.field(description="The model that computed it.")
    created_at: datetime = strawberry.field(description="When it was computed.")
    row: strawberry.Private[models.AttributionCredit]

    @classmethod
    def from_model(cls, row: models.AttributionCredit) -> AttributionCredit:
        return cls(
            share=six_places(queries.share(row)),
            amount=Money.of(row.amount_minor, row.currency),
            model=row.model,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        row = await info.context.loaders.enrollment_by_id.load(self.row.enrollment_id)
        assert row is not None  # a visible credit's enrollment is visible
        return Enrollment.from_model(row)

    @strawberry.field
    async def conversion(self, info: Info) -> Conversion:
        row = await info.context.loaders.conversion_by_id.load(self.row.conversion_id)
        assert row is not None  # a visible credit's conversion is visible
        return Conversion.from_model(row)

    @strawberry.field(
        description="The explanation: the enrollment's touchpoints counted on the journey, in "
        "time order, with their weights."
    )
    async def touchpoints(self, info: Info) -> list[CreditTouchpoint]:
        parts = queries.explain(self.row)
        rows = await info.context.loaders.touchpoint_by_id.load_many(
            [part.touchpoint_id for part in parts]
        )
        currency = self.row.currency
        return [
            CreditTouchpoint(
                touchpoint=Touchpoint.from_model(row),
                weight=six_places(part.weight),
                amount=Money.of(part.amount_minor, currency),
            )
            for part, row in zip(parts, rows, strict=True)
            if row is not None
        ]
