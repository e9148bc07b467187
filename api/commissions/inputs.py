"""Inputs of commission mutations, and their translation to domain values.

Amounts are Decimals in the program's currency; the domain turns them into minor units.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry

from api.relay import parse_id
from api.tracking.types import ConversionKind
from domain.commissions import specs

# The rule's input fields, by the domain spec's names.
_RULE_FIELDS = (
    "conversion_kind", "name", "percentage", "flat_amount", "tier_id", "enrollment_id",
    "priority", "starts_at", "ends_at", "recurring_months", "half_life_days", "cap_amount",
    "monthly_cap_amount", "minimum_amount",
)  # fmt: skip
_RULE_IDS = {"tier_id": ("Tier", "tierId"), "enrollment_id": ("Enrollment", "enrollmentId")}


def _rule_spec(data: Any, omitted: object) -> specs.RuleSpec:
    """The input as a domain spec; a field equal to `omitted` is left out of it."""
    values: dict[str, Any] = {}
    for name in _RULE_FIELDS:
        value = getattr(data, name)
        if value is omitted:
            continue
        if name in _RULE_IDS and value is not None:
            type_name, field = _RULE_IDS[name]
            value = parse_id(value, type_name, [field])
        values[name] = value
    return specs.RuleSpec(**values)


@strawberry.input(
    description="A new commission rule: exactly one of percentage and flatAmount; amounts in "
    "the program's currency; for the whole program unless tierId or enrollmentId is given."
)
class CreateCommissionRuleInput:
    program_id: strawberry.ID
    conversion_kind: ConversionKind
    percentage: Decimal | None = strawberry.field(
        default=None, description='Percent of the credited amount: "20" is 20 %.'
    )
    flat_amount: Decimal | None = strawberry.field(
        default=None, description="Per conversion, split like the credit."
    )
    tier_id: strawberry.ID | None = None
    enrollment_id: strawberry.ID | None = None
    name: str | None = None
    priority: int | None = strawberry.field(default=None, description="0 if left out.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    recurring_months: int | None = None
    half_life_days: float | None = None
    cap_amount: Decimal | None = None
    monthly_cap_amount: Decimal | None = None
    minimum_amount: Decimal | None = None

    def to_spec(self) -> specs.RuleSpec:
        return _rule_spec(self, None)


@strawberry.input(
    description="Changes to a commission rule, as a new version: a field left out keeps its "
    "value, an explicit null clears it."
)
class UpdateCommissionRuleInput:
    id: strawberry.ID
    conversion_kind: ConversionKind | None = strawberry.UNSET
    percentage: Decimal | None = strawberry.UNSET
    flat_amount: Decimal | None = strawberry.UNSET
    tier_id: strawberry.ID | None = strawberry.UNSET
    enrollment_id: strawberry.ID | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    priority: int | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    recurring_months: int | None = strawberry.UNSET
    half_life_days: float | None = strawberry.UNSET
    cap_amount: Decimal | None = strawberry.UNSET
    monthly_cap_amount: Decimal | None = strawberry.UNSET
    minimum_amount: Decimal | None = strawberry.UNSET

    def to_spec(self) -> specs.RuleSpec:
        return _rule_spec(self, strawberry.UNSET)


@strawberry.input
class ArchiveCommissionRuleInput:
    id: strawberry.ID


@strawberry.input(
    description="Approve a program's PENDING entries whose hold has ended (availableAt at or "
    "before now, or before availableBefore if earlier); with ids, those entries, even inside "
    "their hold (and, with availableBefore too, only those available by then)."
)
class ApproveCommissionsInput:
    program_id: strawberry.ID
    ids: list[strawberry.ID] | None = None
    available_before: datetime | None = None

    def commission_ids(self) -> list[int] | None:
        return None if self.ids is None else commission_ids(self.ids)


@strawberry.input(
    description="Reject unpaid entries; rejecting a COMMISSION rejects the rest of its "
    "conversion's unpaid entries for that enrollment too."
)
class RejectCommissionsInput:
    ids: list[strawberry.ID]
    reason: str = strawberry.field(description="Shown to the partner; 1 to 1000 characters.")


@strawberry.input(
    description="Gather every APPROVED entry not yet paid out, per enrollment whose total "
    "reaches minimumAmount (in the program's currency; 0 if left out)."
)
class CreatePayoutBatchInput:
    program_id: strawberry.ID
    minimum_amount: Decimal | None = None


@strawberry.input
class MarkPayoutPaidInput:
    id: strawberry.ID
    reference: str = strawberry.field(description="The payment provider's reference.")


def commission_ids(ids: list[strawberry.ID]) -> list[int]:
    return [parse_id(value, "Commission", ["ids", str(i)]) for i, value in enumerate(ids)]
