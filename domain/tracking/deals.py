"""Deal registration: a partner registers a prospect; the first approved registration owns it
for the program's protection period and becomes a DEAL touchpoint of the registering partner.

Ownership is decided at approval, under a lock on the program row (PostgreSQL; SQLite runs one
write transaction at a time): two approvals of one prospect never both pass.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.clock import utcnow
from domain.errors import DomainError, ErrorCode, not_found
from domain.pagination import Page, PageRequest, by_ids, in_list, paginate, select_where
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import FunnelRole, Program
from domain.tracking import deal_rules as rules
from domain.tracking.models import Customer, Deal, DealStatus, Touchpoint, TouchpointKind

# The deal's enrollment is the partner's ({} is the partner's id).
_OWN = (
    'EXISTS (SELECT 1 FROM "enrollments" AS "e" '
    'WHERE "e"."id" = "deals"."enrollment_id" AND "e"."partner_id" = {})'
)


def snapshot(deal: Deal) -> dict[str, Any]:
    """The audited view of a deal (JSON-safe)."""
    return {
        "enrollmentId": deal.enrollment_id,
        "companyName": deal.company_name,
        "companyKey": deal.company_key,
        "customerId": deal.customer_external_id,
        "contactEmail": deal.contact_email,
        "amountMinor": deal.amount_minor,
        "currency": deal.currency,
        "status": str(deal.status),
        "reason": deal.reason,
        "protectedUntil": None
        if deal.protected_until is None
        else deal.protected_until.isoformat(),
        "touchpointId": deal.touchpoint_id,
    }


async def register_deal(
    actor: Actor,
    enrollment_id: int,
    company_name: str,
    contact_email: str | None = None,
    amount: Decimal | None = None,
    customer_id: str | None = None,
) -> Deal:
    """Register a prospect for an enrollment: a partner for its own ACTIVE enrollment (another
    partner's is NOT_FOUND), an admin for any.

    CONFLICT when another enrollment's approved registration of the same prospect is still
    protected (the message says until when, never who), or when this enrollment already has
    it PENDING, or APPROVED and still protected.
    """
    enrollment = await Enrollment.get_or_none(id=enrollment_id).select_related("program")
    if enrollment is None or (
        actor.partner_id is not None and enrollment.partner_id != actor.partner_id
    ):
        raise not_found(["enrollmentId"], "enrollment")
    if actor.partner_id is not None and enrollment.status is not EnrollmentStatus.ACTIVE:
        raise DomainError(ErrorCode.INVALID, ["enrollmentId"], "the enrollment is not active")
    program: Program = enrollment.program
    checked = rules.check_registration(
        company_name, contact_email, amount, program.currency, customer_id
    )
    async with in_transaction():
        # one registration of an enrollment at a time: the same prospect is never stored twice
        await Enrollment.filter(id=enrollment.pk).select_for_update().first()
        await _ensure_free(program.pk, checked.company_key, enrollment.pk)
        deal = await Deal.create(
            program_id=program.pk,
            enrollment_id=enrollment.pk,
            company_name=checked.company_name,
            company_key=checked.company_key,
            customer_external_id=checked.customer_external_id,
            contact_email=checked.contact_email,
            amount_minor=checked.amount_minor,
            currency=program.currency,
        )
        await audit.record(actor, "registerDeal", deal, after=snapshot(deal))
    return deal


async def _ensure_free(program_id: int, key: str, enrollment_id: int) -> None:
    now = utcnow()
    for other in await Deal.filter(program_id=program_id, company_key=key).exclude(
        status=DealStatus.REJECTED
    ):
        protecting = rules.is_protecting(other.status, other.protected_until, now)
        if other.enrollment_id != enrollment_id and protecting:
            assert other.protected_until is not None  # protecting
            raise rules.owned_elsewhere(other.protected_until)
        if other.enrollment_id == enrollment_id and (
            protecting or other.status is DealStatus.PENDING
        ):
            raise DomainError(
                ErrorCode.CONFLICT,
                ["companyName"],
                f"you already registered this prospect ({other.status})",
            )


async def _locked_pending(deal_id: int) -> tuple[Deal, Program]:
    """The deal and its program, both locked; only a PENDING deal may be decided."""
    deal = await Deal.get_or_none(id=deal_id)
    if deal is None:
        raise not_found(["id"], "deal")
    program = await Program.filter(id=deal.program_id).select_for_update().first()
    deal = await Deal.filter(id=deal_id).select_for_update().first()
    assert deal is not None  # deleted only with its program, which is locked
    assert program is not None
    rules.ensure_decidable(deal.status)
    return deal, program


async def approve_deal(actor: Actor, deal_id: int) -> Deal:
    """Approve a PENDING deal: it owns its prospect for the program's protection period from
    now, unless another enrollment's approved deal still does (CONFLICT: the first approved
    owns it). The approval is a DEAL touchpoint (role SOURCE) of the registering enrollment,
    dated at approval time (when the program accepted the partner's claim), of the customer
    named by the registration's customerId (found or created)."""
    async with in_transaction():
        deal, program = await _locked_pending(deal_id)
        before = snapshot(deal)
        now = utcnow()
        for other in await Deal.filter(
            program_id=program.pk, company_key=deal.company_key, status=DealStatus.APPROVED
        ).exclude(enrollment_id=deal.enrollment_id):
            if rules.is_protecting(other.status, other.protected_until, now):
                assert other.protected_until is not None
                raise rules.owned_elsewhere(other.protected_until)
        customer = None
        if deal.customer_external_id is not None:
            customer = await _customer(program.pk, deal.customer_external_id)
        touchpoint = Touchpoint(
            program_id=program.pk,
            enrollment_id=deal.enrollment_id,
            kind=TouchpointKind.DEAL,
            role=FunnelRole.SOURCE,
            occurred_at=now,
            customer_id=None if customer is None else customer.pk,
        )
        await touchpoint.save()  # keeps occurred_us
        deal.status = DealStatus.APPROVED
        deal.decided_at = now
        deal.protected_until = rules.protected_until(now, program.deal_protection_days)
        deal.touchpoint_id = touchpoint.pk
        await deal.save(update_fields=["status", "decided_at", "protected_until", "touchpoint_id"])
        await audit.record(actor, "approveDeal", deal, before, snapshot(deal))
    return deal


async def reject_deal(actor: Actor, deal_id: int, reason: str) -> Deal:
    """Reject a PENDING deal, saying why (the partner reads the reason)."""
    text = rules.check_reason(reason)
    async with in_transaction():
        deal, _ = await _locked_pending(deal_id)
        before = snapshot(deal)
        deal.status = DealStatus.REJECTED
        deal.reason = text
        deal.decided_at = utcnow()
        await deal.save(update_fields=["status", "reason", "decided_at"])
        await audit.record(actor, "rejectDeal", deal, before, snapshot(deal), reason=text)
    return deal


async def _customer(program_id: int, external_id: str) -> Customer:
    customer = await Customer.get_or_none(program_id=program_id, external_id=external_id)
    if customer is None:
        customer = await Customer.create(program_id=program_id, external_id=external_id)
    return customer


# Reading ------------------------------------------------------------------------------------


async def deals_by_ids(ids: list[int], partner_id: int | None = None) -> list[Deal | None]:
    """Deals by id, in the order of `ids`; with a partner, only its own (others are None)."""
    if partner_id is None:
        return await by_ids(Deal, ids)
    return await by_ids(Deal, ids, _OWN, [partner_id])


async def deals_by_enrollments(
    enrollment_ids: list[int], partner_id: int | None = None
) -> list[list[Deal]]:
    """Each enrollment's deals, newest first; with a partner, only its own enrollments'."""
    unique = sorted(set(enrollment_ids))
    if not unique:
        return []
    where = f'"enrollment_id" IN ({in_list(len(unique))})'
    params: list[Any] = list(unique)
    if partner_id is not None:
        where += f" AND {_OWN}"
        params.append(partner_id)
    rows = await select_where(Deal, where, params, order_by='"id" DESC')
    grouped: dict[int, list[Deal]] = {}
    for row in rows:
        grouped.setdefault(row.enrollment_id, []).append(row)
    return [grouped.get(i, []) for i in enrollment_ids]


async def list_deals(program_id: int, status: DealStatus | None, page: PageRequest) -> Page[Deal]:
    """A program's deals, newest first, optionally of one status (admins)."""
    queryset = Deal.filter(program_id=program_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    return await paginate(queryset, PageRequest(page.limit, page.after, descending=True))
