"""Commission rules (with their history), the append-only ledger, and payout batches.

Money is integer minor units in the program's currency. Ledger entries are never edited or
deleted: only their status moves (PENDING -> APPROVED -> PAID, or REJECTED, or REVERSED when an
unpaid entry is offset in full by a later one), and the payout they were gathered into is noted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from domain.tracking.models import ConversionKind

if TYPE_CHECKING:
    from domain.partners.models import Enrollment
    from domain.programs.models import Program, Tier
    from domain.tracking.models import Conversion


class CommissionKind(StrEnum):
    COMMISSION = "COMMISSION"
    BONUS = "BONUS"
    REFEREE_REWARD = "REFEREE_REWARD"
    REVERSAL = "REVERSAL"
    ADJUSTMENT = "ADJUSTMENT"


class CommissionStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    PAID = "PAID"
    REVERSED = "REVERSED"
    REJECTED = "REJECTED"


class PayoutStatus(StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"


class CommissionRule(Model):
    """How a program pays for credited conversions. `version` counts its edits."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="commission_rules", on_delete=fields.CASCADE
    )
    program_id: int
    name = fields.CharField(max_length=200, null=True)
    conversion_kind = fields.CharEnumField(ConversionKind, max_length=16)
    percentage = fields.DecimalField(max_digits=9, decimal_places=4, null=True)  # "20" is 20 %
    flat_minor = fields.BigIntField(null=True)
    tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "partnergraph.Tier", related_name=False, null=True, on_delete=fields.CASCADE
    )
    tier_id: int | None
    enrollment: fields.ForeignKeyNullableRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name=False, null=True, on_delete=fields.CASCADE
    )
    enrollment_id: int | None
    priority = fields.IntField(default=0)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    recurring_months = fields.IntField(null=True)
    half_life_days = fields.FloatField(null=True)
    cap_minor = fields.BigIntField(null=True)
    monthly_cap_minor = fields.BigIntField(null=True)
    minimum_minor = fields.BigIntField(null=True)
    archived = fields.BooleanField(default=False)
    version = fields.IntField(default=1)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "commission_rules"
        indexes = (("program_id", "conversion_kind"),)


class CommissionRuleVersion(Model):
    """The terms of one version of a rule, as they were: entries name the version they used."""

    id = fields.IntField(primary_key=True)
    rule: fields.ForeignKeyRelation[CommissionRule] = fields.ForeignKeyField(
        "partnergraph.CommissionRule", related_name="versions", on_delete=fields.CASCADE
    )
    rule_id: int
    version = fields.IntField()
    terms = fields.JSONField[dict[str, Any]]()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "commission_rule_versions"
        unique_together = (("rule", "version"),)


class PayoutBatch(Model):
    """APPROVED entries gathered for payment, one item per enrollment, paid together."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="payout_batches", on_delete=fields.CASCADE
    )
    program_id: int
    status = fields.CharEnumField(PayoutStatus, max_length=16, default=PayoutStatus.PENDING)
    currency = fields.CharField(max_length=3)
    minimum_minor = fields.BigIntField(default=0)
    reference = fields.CharField(max_length=200, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    paid_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payout_batches"
        indexes = (("program_id", "id"),)


class PayoutItem(Model):
    """What one enrollment is paid in a batch: the sum of its gathered entries."""

    id = fields.IntField(primary_key=True)
    batch: fields.ForeignKeyRelation[PayoutBatch] = fields.ForeignKeyField(
        "partnergraph.PayoutBatch", related_name="items", on_delete=fields.CASCADE
    )
    batch_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name=False, on_delete=fields.CASCADE
    )
    enrollment_id: int
    amount_minor = fields.BigIntField()
    currency = fields.CharField(max_length=3)

    class Meta:
        table = "payout_items"
        unique_together = (("batch", "enrollment"),)


class Commission(Model):
    """One ledger entry of one enrollment. Amounts never change: a later entry corrects.

    `earned_minor` is set on the entries a rule priced, as what the enrollment's position on the
    conversion (all its entries for it) was worth before refunds when the entry was made.
    """

    id = fields.BigIntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name=False, on_delete=fields.CASCADE
    )
    program_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="commissions", on_delete=fields.CASCADE
    )
    enrollment_id: int
    conversion: fields.ForeignKeyNullableRelation[Conversion] = fields.ForeignKeyField(
        "partnergraph.Conversion", related_name=False, null=True, on_delete=fields.CASCADE
    )
    conversion_id: int | None
    kind = fields.CharEnumField(CommissionKind, max_length=16)
    amount_minor = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    status = fields.CharEnumField(CommissionStatus, max_length=16)
    available_at = fields.DatetimeField()
    rule: fields.ForeignKeyNullableRelation[CommissionRule] = fields.ForeignKeyField(
        "partnergraph.CommissionRule", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    rule_id: int | None
    rule_version = fields.IntField(null=True)
    credit_id = fields.BigIntField(null=True)  # the credit it priced (credits are replaced)
    credited_minor = fields.BigIntField(null=True)  # that credit's amount
    earned_minor = fields.BigIntField(null=True)
    month = fields.CharField(max_length=7, null=True)  # YYYY-MM of the conversion (monthly cap)
    reason = fields.TextField(null=True)
    payout_item: fields.ForeignKeyNullableRelation[PayoutItem] = fields.ForeignKeyField(
        "partnergraph.PayoutItem", related_name="commissions", null=True, on_delete=fields.SET_NULL
    )
    payout_item_id: int | None
    decided_at = fields.DatetimeField(null=True)  # approved, rejected or paid
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "commissions"
        indexes = (
            ("enrollment_id", "status", "kind", "currency", "amount_minor"),
            ("program_id", "status", "available_at"),
            ("conversion_id", "enrollment_id"),
            ("enrollment_id", "rule_id", "month"),
            ("payout_item_id",),
        )
