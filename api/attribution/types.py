"""GraphQL types of attribution: what-if summaries and the data-driven models."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import strawberry

from api.context import Info
from api.money import Money
from api.partners.types import Enrollment
from domain.attribution import datadriven
from domain.attribution.services import CreditSummary as CreditSummaryRow

DataDrivenMethod = datadriven.DataDrivenMethod
strawberry.enum(DataDrivenMethod, description="A data-driven attribution model.")

PLACES = Decimal("0.000001")  # the contract: decimals of the data-driven models carry 6 places


def six_places(value: Fraction | float) -> Decimal:
    """Exact fractions and floats alike, rounded half-even to 6 places."""
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    else:
        exact = Decimal(repr(value))
    return exact.quantize(PLACES, rounding=ROUND_HALF_EVEN) + 0  # + 0: never "-0.000000"


def maybe_six_places(value: Fraction | float | None) -> Decimal | None:
    return None if value is None else six_places(value)


async def _enrollment(info: Info, pk: int) -> Enrollment:
    row = await info.context.loaders.enrollment_by_id.load(pk)
    assert row is not None  # admins only: every enrollment is visible
    return Enrollment.from_model(row)


@strawberry.type(
    description="What one enrollment would be credited under another model, over the same "
    "conversions, beside what it is credited now."
)
class CreditSummary:
    conversions: Decimal = strawberry.field(
        description="The sum of its shares under the previewed model (6 places)."
    )
    amount: Money = strawberry.field(description="Its credit under the previewed model.")
    current_conversions: Decimal = strawberry.field(
        description="The sum of its shares in its stored credits (6 places)."
    )
    current_amount: Money = strawberry.field(description="Its stored credit.")
    difference: Money = strawberry.field(description="amount - currentAmount.")
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: CreditSummaryRow) -> CreditSummary:
        return cls(
            conversions=six_places(row.conversions),
            amount=Money.of(row.amount_minor, row.currency),
            current_conversions=six_places(row.current_conversions),
            current_amount=Money.of(row.current_amount_minor, row.currency),
            difference=Money.of(row.amount_minor - row.current_amount_minor, row.currency),
            enrollment_pk=row.enrollment_id,
        )

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        return await _enrollment(info, self.enrollment_pk)


@strawberry.type(description="One enrollment's part in a data-driven model.")
class DataDrivenRow:
    removal_effect: Decimal | None = strawberry.field(
        description="MARKOV: 1 - P(conversion without it) / P(conversion)."
    )
    shapley_value: Decimal | None = strawberry.field(
        description="SHAPLEY: its Shapley value over the journeys' conversion rates."
    )
    share: Decimal = strawberry.field(description="Its part of the sum over all enrollments.")
    attributed_conversions: Decimal = strawberry.field(description="convertingJourneys x share.")
    enrollment_pk: strawberry.Private[int]

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        return await _enrollment(info, self.enrollment_pk)


@strawberry.type(description="Which partners truly drive conversions, by a data-driven model.")
class DataDrivenAttribution:
    method: DataDrivenMethod
    journeys: int = strawberry.field(description="Converting and non-converting journeys.")
    converting_journeys: int
    conversion_probability: Decimal | None = strawberry.field(
        description="MARKOV: the fitted chain's P(conversion), equal to convertingJourneys / "
        "journeys."
    )
    exact: bool = strawberry.field(description="False when the values had to be sampled.")
    rows: list[DataDrivenRow] = strawberry.field(
        description="One per enrollment seen on a journey, by share descending."
    )

    @classmethod
    def from_result(cls, result: datadriven.DataDrivenResult) -> DataDrivenAttribution:
        rows = []
        for row in result.rows:
            rows.append(
                DataDrivenRow(
                    removal_effect=maybe_six_places(row.removal_effect),
                    shapley_value=maybe_six_places(row.shapley_value),
                    share=six_places(row.share),
                    attributed_conversions=six_places(row.attributed_conversions),
                    enrollment_pk=row.enrollment_id,
                )
            )
        return cls(
            method=result.method,
            journeys=result.journeys,
            converting_journeys=result.converting_journeys,
            conversion_probability=maybe_six_places(result.conversion_probability),
            exact=result.exact,
            rows=rows,
        )
