"""Mutations of commissions: rules, approvals, rejections and payouts (admins, or admin-made
APP tokens with programs:write). The domain audits each of them."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from api.commissions.inputs import (
    ApproveCommissionsInput,
    ArchiveCommissionRuleInput,
    CreateCommissionRuleInput,
    CreatePayoutBatchInput,
    MarkPayoutPaidInput,
    RejectCommissionsInput,
    UpdateCommissionRuleInput,
    commission_ids,
)
from api.commissions.types import Commission, CommissionRule, PayoutBatch
from api.context import Info
from api.errors import UserError, attempt
from api.permissions import can_write
from api.relay import parse_id
from domain.commissions import models, services
from domain.errors import DomainError, ErrorCode, not_found
from domain.money import AmountError, to_minor

ProgramsWrite = can_write("programs:write")
SHOWN = 100  # changed entries a CommissionsPayload shows, newest first


@strawberry.type
class CommissionRulePayload:
    commission_rule: CommissionRule | None
    user_errors: list[UserError]


@strawberry.type
class CommissionsPayload:
    commissions: list[Commission] = strawberry.field(
        description=f"The entries changed, newest first: at most {SHOWN} (count says how many)."
    )
    count: int = strawberry.field(description="How many entries changed in all.")
    user_errors: list[UserError]


@strawberry.type
class PayoutBatchPayload:
    payout_batch: PayoutBatch | None
    user_errors: list[UserError]


def _rule_payload(
    row: models.CommissionRule | None, errors: list[UserError]
) -> CommissionRulePayload:
    rule = CommissionRule.from_model(row) if row else None
    return CommissionRulePayload(commission_rule=rule, user_errors=errors)


async def _changed(changed: services.Changed | None, errors: list[UserError]) -> CommissionsPayload:
    if changed is None:
        return CommissionsPayload(commissions=[], count=0, user_errors=errors)
    shown = await services.commissions_by_ids(sorted(changed.ids, reverse=True)[:SHOWN])
    rows = [Commission.from_model(row) for row in shown if row is not None]
    return CommissionsPayload(commissions=rows, count=changed.count, user_errors=errors)


def _batch_payload(row: models.PayoutBatch | None, errors: list[UserError]) -> PayoutBatchPayload:
    return PayoutBatchPayload(
        payout_batch=PayoutBatch.from_model(row) if row else None, user_errors=errors
    )


async def _create_rule(info: Info, data: CreateCommissionRuleInput) -> models.CommissionRule:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await services.create_rule(info.context.principal.actor(), program_id, data.to_spec())


async def _update_rule(info: Info, data: UpdateCommissionRuleInput) -> models.CommissionRule:
    rule_id = parse_id(data.id, "CommissionRule", ["id"])
    return await services.update_rule(info.context.principal.actor(), rule_id, data.to_spec())


async def _archive_rule(info: Info, data: ArchiveCommissionRuleInput) -> models.CommissionRule:
    rule_id = parse_id(data.id, "CommissionRule", ["id"])
    return await services.archive_rule(info.context.principal.actor(), rule_id)


async def _approve(info: Info, data: ApproveCommissionsInput) -> services.Changed:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await services.approve(
        info.context.principal.actor(), program_id, data.commission_ids(), data.available_before
    )


async def _reject(info: Info, data: RejectCommissionsInput) -> services.Changed:
    ids = commission_ids(data.ids)
    return await services.reject(info.context.principal.actor(), ids, data.reason)


async def _minimum_minor(info: Info, program_id: int, amount: Decimal | None) -> int:
    """The minimum in minor units of the program's currency (the domain takes minor units)."""
    program = await info.context.loaders.program_by_id.load(program_id)
    if program is None:
        raise not_found(["programId"], "program")
    try:
        return 0 if amount is None else to_minor(amount, program.currency)
    except (AmountError, ArithmeticError) as exc:  # ArithmeticError: beyond Decimal's range
        raise DomainError(ErrorCode.INVALID, ["minimumAmount"], str(exc) or "too large") from None


async def _create_batch(info: Info, data: CreatePayoutBatchInput) -> models.PayoutBatch:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    minimum = await _minimum_minor(info, program_id, data.minimum_amount)
    batch = await services.create_payout_batch(info.context.principal.actor(), program_id, minimum)
    if batch is None:
        message = "no enrollment has approved entries that reach the minimum: nothing to pay"
        raise DomainError(ErrorCode.NOT_FOUND, ["programId"], message)
    return batch


async def _mark_paid(info: Info, data: MarkPayoutPaidInput) -> models.PayoutBatch:
    batch_id = parse_id(data.id, "PayoutBatch", ["id"])
    return await services.mark_payout_paid(info.context.principal.actor(), batch_id, data.reference)


@strawberry.type
class CommissionsMutation:
    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Add a commission rule (version 1); it prices conversions credited from "
        "now on (recomputeAttribution applies it to earlier ones).",
    )
    async def create_commission_rule(
        self, info: Info, input: CreateCommissionRuleInput
    ) -> CommissionRulePayload:
        return _rule_payload(*await attempt(_create_rule(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Change a rule: a new version; entries priced before keep the one they used. "
        "An archived rule cannot change (CONFLICT).",
    )
    async def update_commission_rule(
        self, info: Info, input: UpdateCommissionRuleInput
    ) -> CommissionRulePayload:
        return _rule_payload(*await attempt(_update_rule(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Stop a rule pricing new conversions; its entries and versions stay.",
    )
    async def archive_commission_rule(
        self, info: Info, input: ArchiveCommissionRuleInput
    ) -> CommissionRulePayload:
        return _rule_payload(*await attempt(_archive_rule(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Approve the PENDING entries that are due (see ApproveCommissionsInput).",
    )
    async def approve_commissions(
        self, info: Info, input: ApproveCommissionsInput
    ) -> CommissionsPayload:
        return await _changed(*await attempt(_approve(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Reject unpaid entries with a reason; a paid one (or one in a payout) is a "
        "CONFLICT: a REVERSAL or ADJUSTMENT corrects it instead.",
    )
    async def reject_commissions(
        self, info: Info, input: RejectCommissionsInput
    ) -> CommissionsPayload:
        return await _changed(*await attempt(_reject(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Gather the approved entries into a payout batch, in one transaction: no "
        "entry is ever in two batches. NOT_FOUND (programId) when nothing reaches the minimum.",
    )
    async def create_payout_batch(
        self, info: Info, input: CreatePayoutBatchInput
    ) -> PayoutBatchPayload:
        return _batch_payload(*await attempt(_create_batch(info, input)))

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="The batch was paid: its entries become PAID. The same reference again "
        "changes nothing; another one is a CONFLICT.",
    )
    async def mark_payout_paid(self, info: Info, input: MarkPayoutPaidInput) -> PayoutBatchPayload:
        return _batch_payload(*await attempt(_mark_paid(info, input)))
