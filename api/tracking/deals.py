"""Deal registration through GraphQL: the Deal type, registerDeal (partners for their own
enrollments, admins), approveDeal / rejectDeal and the program's deals (admins, or APP tokens
with partners:write for the decisions)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from api import policy
from api.context import Info
from api.errors import UserError, attempt, forbidden, unauthenticated
from api.money import Money
from api.partners.types import Enrollment
from api.permissions import IsAdmin, can_write
from api.principal import PrincipalKind
from api.relay import Connection, Node, connection, page_request, parse_id, to_global_id
from domain.errors import DomainError
from domain.tracking import deals, models

DealStatus = models.DealStatus
strawberry.enum(DealStatus, description="Where a deal registration stands.")

DealsDecide = can_write("partners:write")


class CanRegisterDeals(BasePermission):
    """A partner user (for its own enrollments), an admin, or an admin's APP token with
    partners:write; a partner's APP token reads only."""

    message = "not allowed: registering deals"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal.is_anonymous:
            raise unauthenticated()
        if principal.kind is PrincipalKind.PARTNER or policy.can_write(principal, "partners:write"):
            return True
        raise forbidden("registering deals")


@strawberry.type(
    description="A prospect a partner registered; once approved, it is theirs "
    "for the program's protection period."
)
class Deal(Node):
    company_name: str
    contact_email: str | None
    amount: Money | None = strawberry.field(description="Expected amount, if given.")
    status: DealStatus
    reason: str | None = strawberry.field(description="Why it was rejected.")
    created_at: datetime
    decided_at: datetime | None = strawberry.field(description="When it was approved/rejected.")
    protected_until: datetime | None = strawberry.field(
        description="Until when an approved deal owns its prospect."
    )
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Deal) -> Deal:
        return cls(
            id=to_global_id("Deal", row.pk),
            company_name=row.company_name,
            contact_email=row.contact_email,
            amount=None if row.amount_minor is None else Money.of(row.amount_minor, row.currency),
            status=row.status,
            reason=row.reason,
            created_at=row.created_at,
            decided_at=row.decided_at,
            protected_until=row.protected_until,
            enrollment_pk=row.enrollment_id,
        )

    @strawberry.field(description="The enrollment (partner in a program) that registered it.")
    async def enrollment(self, info: Info) -> Enrollment:
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        assert row is not None  # a visible deal's enrollment is visible
        return Enrollment.from_model(row)


@strawberry.input
class RegisterDealInput:
    enrollment_id: strawberry.ID
    company_name: str
    customer_id: str | None = strawberry.field(
        default=None, description="The merchant's customer ID, if the prospect has one."
    )
    contact_email: str | None = None
    amount: Decimal | None = strawberry.field(
        default=None, description="Expected amount, in the program's currency."
    )


@strawberry.input
class ApproveDealInput:
    id: strawberry.ID


@strawberry.input
class RejectDealInput:
    id: strawberry.ID
    reason: str


@strawberry.type
class DealPayload:
    deal: Deal | None
    user_errors: list[UserError]


def _payload(row: models.Deal | None, errors: list[UserError]) -> DealPayload:
    return DealPayload(deal=Deal.from_model(row) if row else None, user_errors=errors)


async def _register(info: Info, data: RegisterDealInput) -> models.Deal:
    return await deals.register_deal(
        info.context.principal.actor(),
        parse_id(data.enrollment_id, "Enrollment", ["enrollmentId"]),
        data.company_name,
        data.contact_email,
        data.amount,
        data.customer_id,
    )


async def _approve(info: Info, data: ApproveDealInput) -> models.Deal:
    return await deals.approve_deal(
        info.context.principal.actor(), parse_id(data.id, "Deal", ["id"])
    )


async def _reject(info: Info, data: RejectDealInput) -> models.Deal:
    deal_id = parse_id(data.id, "Deal", ["id"])
    return await deals.reject_deal(info.context.principal.actor(), deal_id, data.reason)


@strawberry.type
class DealsMutation:
    @strawberry.mutation(
        permission_classes=[CanRegisterDeals],
        description="Register a prospect for an enrollment (a partner: its own). CONFLICT if "
        "another partner's approved registration still protects it.",
    )
    async def register_deal(self, info: Info, input: RegisterDealInput) -> DealPayload:
        return _payload(*await attempt(_register(info, input)))

    @strawberry.mutation(
        permission_classes=[DealsDecide],
        description="Approve a PENDING deal: it owns its prospect for the program's protection "
        "period and becomes a DEAL touchpoint of its partner.",
    )
    async def approve_deal(self, info: Info, input: ApproveDealInput) -> DealPayload:
        return _payload(*await attempt(_approve(info, input)))

    @strawberry.mutation(permission_classes=[DealsDecide], description="Reject a PENDING deal.")
    async def reject_deal(self, info: Info, input: RejectDealInput) -> DealPayload:
        return _payload(*await attempt(_reject(info, input)))


@strawberry.type
class DealsQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="A program's deals, newest first (admins); partners read theirs through "
        "Enrollment.deals.",
    )
    async def deals(
        self,
        info: Info,
        program_id: strawberry.ID,
        status: DealStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Deal]:
        request = page_request(first, after)
        try:
            program = parse_id(program_id, "Program", ["programId"])
        except DomainError:
            program = 0  # not a program ID: no deal matches
        page = await deals.list_deals(program, status, request)
        return connection(page, Deal.from_model, after is not None)
