"""GraphQL types of commissions: rules and their versions, ledger entries, balances, payouts.

Rules show their money in the program's currency; ledger entries and payouts in their own.
Every relation goes through the per-request loaders, which apply the policy: a partner reaches
its own entries and the rules that can apply to it, and never a payout batch.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from api import policy
from api.commissions.enums import CommissionKind, CommissionStatus, PayoutStatus
from api.context import Info
from api.money import Money
from api.partners.types import Enrollment
from api.programs.types import Program, Tier
from api.relay import Node, to_global_id
from api.scalars import plain
from api.tracking.types import Conversion, ConversionKind
from domain.commissions import models
from domain.commissions.services import Balance as BalanceRow

# The ids a rule version's terms name, as the global ids clients know.
_TERM_IDS = {"tierId": "Tier", "enrollmentId": "Enrollment"}


async def _enrollment(info: Info, pk: int) -> Enrollment:
    row = await info.context.loaders.enrollment_by_id.load(pk)
    assert row is not None  # a visible entry's (or item's) enrollment is visible
    return Enrollment.from_model(row)


@strawberry.type(description="The terms of one version of a commission rule, as they were.")
class CommissionRuleVersion:
    version: int
    terms: JSON = strawberry.field(
        description="Every term of the version by its input name; amounts in minor units of "
        "`currency` (flatMinor, capMinor, monthlyCapMinor, minimumMinor), percentage as a "
        "string, tierId and enrollmentId as global IDs."
    )
    created_at: datetime

    @classmethod
    def from_model(cls, row: models.CommissionRuleVersion) -> CommissionRuleVersion:
        terms: dict[str, Any] = dict(row.terms)
        for key, type_name in _TERM_IDS.items():
            if terms.get(key) is not None:
                terms[key] = to_global_id(type_name, int(terms[key]))
        if terms.get("percentage") is not None:  # stored "20.0000" or "20": shown as "20"
            terms["percentage"] = str(plain(Decimal(str(terms["percentage"]))))
        return cls(version=row.version, terms=cast(JSON, terms), created_at=row.created_at)


@strawberry.type(
    description="How a program pays for credited conversions of one kind: a percentage of "
    "the credited amount or a flat amount per conversion, for the whole program, a tier or "
    "one enrollment (the most specific applies, then priority), in force from startsAt until "
    "endsAt. Every change makes a new version; entries keep the version they used."
)
class CommissionRule(Node):
    name: str | None
    conversion_kind: ConversionKind
    percentage: Decimal | None = strawberry.field(description='Percent: "20" is 20 %.')
    priority: int = strawberry.field(description="Higher wins among rules of one scope.")
    starts_at: datetime | None
    ends_at: datetime | None = strawberry.field(description="Exclusive.")
    recurring_months: int | None = strawberry.field(
        description="RENEWALs earn for this many months after the customer's first SALE."
    )
    half_life_days: float | None = strawberry.field(
        description="The reward halves every half-life between the referral and the conversion."
    )
    archived: bool = strawberry.field(description="Archived rules price nothing new.")
    version: int = strawberry.field(description="Counts its changes, from 1.")
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]
    program_pk: strawberry.Private[int]
    tier_pk: strawberry.Private[int | None]
    enrollment_pk: strawberry.Private[int | None]
    minor: strawberry.Private[dict[str, int | None]]

    @classmethod
    def from_model(cls, row: models.CommissionRule) -> CommissionRule:
        return cls(
            id=to_global_id("CommissionRule", row.pk),
            name=row.name,
            conversion_kind=row.conversion_kind,
            percentage=plain(row.percentage),
            priority=row.priority,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            recurring_months=row.recurring_months,
            half_life_days=row.half_life_days,
            archived=row.archived,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            pk=row.pk,
            program_pk=row.program_id,
            tier_pk=row.tier_id,
            enrollment_pk=row.enrollment_id,
            minor={
                "flat": row.flat_minor,
                "cap": row.cap_minor,
                "monthly_cap": row.monthly_cap_minor,
                "minimum": row.minimum_minor,
            },
        )

    async def _money(self, info: Info, name: str) -> Money | None:
        amount = self.minor[name]
        if amount is None:
            return None
        program = await info.context.loaders.program_by_id.load(self.program_pk)
        assert program is not None  # a visible rule's program is visible
        return Money.of(amount, program.currency)

    @strawberry.field(description="Paid once per conversion, split like the credit.")
    async def flat_amount(self, info: Info) -> Money | None:
        return await self._money(info, "flat")

    @strawberry.field(description="At most this per conversion and enrollment.")
    async def cap_amount(self, info: Info) -> Money | None:
        return await self._money(info, "cap")

    @strawberry.field(description="At most this per enrollment in a calendar month (UTC).")
    async def monthly_cap_amount(self, info: Info) -> Money | None:
        return await self._money(info, "monthly_cap")

    @strawberry.field(description="Conversions below this amount earn nothing.")
    async def minimum_amount(self, info: Info) -> Money | None:
        return await self._money(info, "minimum")

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a visible rule's program is visible
        return Program.from_model(row)

    @strawberry.field(description="The tier it is for; null for the whole program.")
    async def tier(self, info: Info) -> Tier | None:
        if self.tier_pk is None:
            return None
        row = await info.context.loaders.tier_by_id.load(self.tier_pk)
        return None if row is None else Tier.from_model(row)

    @strawberry.field(description="The one enrollment it is for, if any.")
    async def enrollment(self, info: Info) -> Enrollment | None:
        if self.enrollment_pk is None:
            return None
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        return None if row is None else Enrollment.from_model(row)

    @strawberry.field(
        description="Its versions, oldest first (a partner sees those that could apply to it)."
    )
    async def versions(self, info: Info) -> list[CommissionRuleVersion]:
        rows = await info.context.loaders.rule_versions_by_rule.load(self.pk)
        return [CommissionRuleVersion.from_model(row) for row in rows]


@strawberry.type(
    description="One entry of an enrollment's ledger. Entries are never edited: a refund or a "
    "recompute appends a REVERSAL or ADJUSTMENT, with a negative amount where it takes back."
)
class Commission(Node):
    kind: CommissionKind
    amount: Money
    status: CommissionStatus
    available_at: datetime = strawberry.field(
        description="When its hold (the program's refund window) ends: due for approval then."
    )
    created_at: datetime
    decided_at: datetime | None = strawberry.field(
        description="When it was approved, rejected, reversed or paid."
    )
    reason: str | None = strawberry.field(
        description="How it was computed (rule, version and each step), or why it was "
        "reversed, adjusted or rejected."
    )
    rule_version: int | None = strawberry.field(
        description="The version of its rule it was priced with."
    )
    pk: strawberry.Private[int]
    enrollment_pk: strawberry.Private[int]
    conversion_pk: strawberry.Private[int | None]
    rule_pk: strawberry.Private[int | None]
    payout_item_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.Commission) -> Commission:
        return cls(
            id=to_global_id("Commission", row.pk),
            kind=row.kind,
            amount=Money.of(row.amount_minor, row.currency),
            status=row.status,
            available_at=row.available_at,
            created_at=row.created_at,
            decided_at=row.decided_at,
            reason=row.reason,
            rule_version=row.rule_version,
            pk=row.pk,
            enrollment_pk=row.enrollment_id,
            conversion_pk=row.conversion_id,
            rule_pk=row.rule_id,
            payout_item_pk=row.payout_item_id,
        )

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        return await _enrollment(info, self.enrollment_pk)

    @strawberry.field(description="The conversion it was earned on, if any.")
    async def conversion(self, info: Info) -> Conversion | None:
        if self.conversion_pk is None:
            return None
        row = await info.context.loaders.conversion_by_id.load(self.conversion_pk)
        return None if row is None else Conversion.from_model(row)

    @strawberry.field(
        description="The rule that priced it, as it is now (ruleVersion names the version "
        "used); null for a partner once the rule no longer applies to it."
    )
    async def rule(self, info: Info) -> CommissionRule | None:
        if self.rule_pk is None:
            return None
        row = await info.context.loaders.commission_rule_by_id.load(self.rule_pk)
        return None if row is None else CommissionRule.from_model(row)

    @strawberry.field(
        description="The payout batch it was gathered into: admins and admin-made APP tokens "
        "with reports:read; null for everyone else."
    )
    async def payout_batch(self, info: Info) -> PayoutBatch | None:
        if self.payout_item_pk is None or not policy.can_read(
            info.context.principal, "PayoutBatch"
        ):
            return None
        row = await info.context.loaders.payout_batch_by_item.load(self.payout_item_pk)
        return None if row is None else PayoutBatch.from_model(row)


def _sorted_money(totals: dict[str, int]) -> list[Money]:
    return [Money.of(amount, currency) for currency, amount in sorted(totals.items())]


@strawberry.type(
    description="What an enrollment has pending, approved and paid: always the sum of its "
    "entries, one Money per currency (by currency code); [] is zero."
)
class Balance:
    pending: list[Money]
    approved: list[Money] = strawberry.field(description="Due in the next payout.")
    paid: list[Money]

    @classmethod
    def from_row(cls, row: BalanceRow) -> Balance:
        return cls(
            pending=_sorted_money(row.pending),
            approved=_sorted_money(row.approved),
            paid=_sorted_money(row.paid),
        )


@strawberry.type(description="What one enrollment is paid in a batch: its gathered entries.")
class PayoutItem:
    amount: Money = strawberry.field(description="The sum of its entries.")
    enrollment_pk: strawberry.Private[int]
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.PayoutItem) -> PayoutItem:
        return cls(
            amount=Money.of(row.amount_minor, row.currency),
            enrollment_pk=row.enrollment_id,
            pk=row.pk,
        )

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        return await _enrollment(info, self.enrollment_pk)

    @strawberry.field(description="The entries it pays, oldest first.")
    async def commissions(self, info: Info) -> list[Commission]:
        rows = await info.context.loaders.commissions_by_payout_item.load(self.pk)
        return [Commission.from_model(row) for row in rows]


@strawberry.type(
    description="APPROVED entries gathered for payment, one item per enrollment whose total "
    "reached the minimum; markPayoutPaid makes them PAID."
)
class PayoutBatch(Node):
    status: PayoutStatus
    reference: str | None = strawberry.field(description="The payment provider's reference.")
    minimum_amount: Money = strawberry.field(description="What an item had to reach.")
    created_at: datetime
    paid_at: datetime | None
    pk: strawberry.Private[int]
    program_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.PayoutBatch) -> PayoutBatch:
        return cls(
            id=to_global_id("PayoutBatch", row.pk),
            status=row.status,
            reference=row.reference,
            minimum_amount=Money.of(row.minimum_minor, row.currency),
            created_at=row.created_at,
            paid_at=row.paid_at,
            pk=row.pk,
            program_pk=row.program_id,
        )

    @strawberry.field(description="The sum of its items, one Money per currency.")
    async def total(self, info: Info) -> list[Money]:
        totals: dict[str, int] = {}
        for item in await info.context.loaders.payout_items_by_batch.load(self.pk):
            totals[item.currency] = totals.get(item.currency, 0) + item.amount_minor
        return _sorted_money(totals)

    @strawberry.field(description="One per enrollment paid, in the order they were made.")
    async def items(self, info: Info) -> list[PayoutItem]:
        rows = await info.context.loaders.payout_items_by_batch.load(self.pk)
        return [PayoutItem.from_model(row) for row in rows]

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a batch's program stays while the batch does
        return Program.from_model(row)
