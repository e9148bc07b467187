"""Ingestion mutations: identifyCustomer, recordTouchpoint, recordConversion(s),
refundConversion. Admins, or APP tokens an admin made with tracking:write (a partner-made
token never has write scopes)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry

from api.context import Info
from api.errors import UserError, attempt, user_errors
from api.permissions import can_write
from api.programs.types import FunnelRole, RewardOffer
from api.relay import from_global_id, parse_id, parse_optional_id
from api.scalars import plain
from api.tracking.customers import Customer
from api.tracking.types import Conversion, ConversionKind, Touchpoint, TouchpointKind
from domain.errors import DomainErrors
from domain.programs.rules import RewardOffer as Offer
from domain.tracking import ingest, models
from domain.tracking import ingest_rules as rules

TrackingWrite = can_write("tracking:write")


@strawberry.input(description="Tie a click, a visitor or a referral code to your customer.")
class IdentifyCustomerInput:
    program_id: strawberry.ID
    customer_id: str = strawberry.field(description="Your ID of the customer (1-200 chars).")
    click_id: str | None = strawberry.field(default=None, description="`pg_click` you got.")
    visitor_id: str | None = strawberry.field(default=None, description="The `pg_vid` cookie.")
    referral_code: str | None = strawberry.field(default=None, description="A partner's code.")
    email: str | None = strawberry.field(
        default=None, description="Stored lower-case; a partner's own e-mail is a self-referral."
    )

    def to_spec(self) -> rules.IdentifySpec:
        return rules.IdentifySpec(
            self.customer_id, self.click_id, self.visitor_id, self.referral_code, self.email
        )


@strawberry.input(description="A touchpoint from a CRM or a partner tool (not a click).")
class RecordTouchpointInput:
    program_id: strawberry.ID
    kind: TouchpointKind = strawberry.field(description="Any kind but CLICK.")
    enrollment_id: strawberry.ID | None = strawberry.field(
        default=None, description="Whose touchpoint: this, or referralCode (exactly one)."
    )
    referral_code: str | None = None
    customer_id: str | None = strawberry.field(
        default=None, description="Your customer's ID; this, visitorId, or both."
    )
    visitor_id: str | None = None
    role: FunnelRole | None = None
    occurred_at: datetime | None = strawberry.field(
        default=None, description="Default now; at most 5 minutes ahead of the server's clock."
    )
    external_id: str | None = strawberry.field(
        default=None, description="Your ID: recording it again answers the first touchpoint."
    )


@strawberry.input(description="A conversion, idempotent on (programId, externalId).")
class RecordConversionInput:
    program_id: strawberry.ID
    external_id: str = strawberry.field(description="Your ID of it (1-200 chars).")
    kind: ConversionKind
    amount: Decimal = strawberry.field(description=">= 0, at most the currency's decimals.")
    currency: str = strawberry.field(description="The program's currency.")
    customer_id: str | None = None
    click_id: str | None = None
    visitor_id: str | None = None
    referral_code: str | None = strawberry.field(
        default=None, description="A code entered at checkout: a CODE touchpoint at the sale."
    )
    occurred_at: datetime | None = strawberry.field(
        default=None, description="Default now; at most 5 minutes ahead of the server's clock."
    )

    def to_spec(self) -> rules.ConversionSpec:
        identity = rules.Identity(
            self.customer_id, self.click_id, self.visitor_id, self.referral_code
        )
        return rules.ConversionSpec(
            self.external_id, self.kind, self.amount, self.currency, identity, self.occurred_at
        )

    def program_pk(self) -> int:
        """0 (no program) for an ID that is not a program's: refused as not found."""
        parsed = from_global_id(self.program_id)
        return parsed[1] if parsed is not None and parsed[0] == "Program" else 0


@strawberry.input(description="Up to 1000 conversions at once.")
class RecordConversionsInput:
    conversions: list[RecordConversionInput]


@strawberry.input(description="Refund a conversion: all that is left, or part of it.")
class RefundConversionInput:
    program_id: strawberry.ID
    external_id: str
    amount: Decimal | None = strawberry.field(default=None, description="None: a full refund.")


@strawberry.type
class IdentifyCustomerPayload:
    customer: Customer | None
    referee_reward: RewardOffer | None = strawberry.field(
        description="What the customer gets if a partner referred it (double-sided programs)."
    )
    user_errors: list[UserError]


@strawberry.type
class TouchpointPayload:
    touchpoint: Touchpoint | None
    user_errors: list[UserError]


@strawberry.type
class ConversionPayload:
    conversion: Conversion | None
    user_errors: list[UserError]


@strawberry.type
class ConversionsPayload:
    conversions: list[Conversion | None] = strawberry.field(
        description="One per input item, in order; null where the item was refused (its "
        "userErrors' field starts with its index)."
    )
    user_errors: list[UserError]


async def _identify(info: Info, data: IdentifyCustomerInput) -> ingest.Identified:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await ingest.identify_customer(
        info.context.principal.actor(), program_id, data.to_spec()
    )


async def _touch(info: Info, data: RecordTouchpointInput) -> models.Touchpoint:
    spec = rules.TouchpointSpec(
        kind=data.kind,
        enrollment_id=parse_optional_id(data.enrollment_id, "Enrollment", ["enrollmentId"]),
        referral_code=data.referral_code,
        customer_id=data.customer_id,
        visitor_id=data.visitor_id,
        role=data.role,
        occurred_at=data.occurred_at,
        external_id=data.external_id,
    )
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await ingest.record_touchpoint(info.context.principal.actor(), program_id, spec)


async def _refund(info: Info, data: RefundConversionInput) -> models.Conversion:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    actor = info.context.principal.actor()
    return await ingest.refund_conversion(actor, program_id, data.external_id, data.amount)


def _offer(offer: Offer | None) -> RewardOffer | None:
    return None if offer is None else RewardOffer(kind=offer.kind, value=plain(offer.value))


@strawberry.type
class TrackingMutation:
    @strawberry.mutation(
        permission_classes=[TrackingWrite],
        description="Tie a click, visitor or referral code to your customer (find or create).",
    )
    async def identify_customer(
        self, info: Info, input: IdentifyCustomerInput
    ) -> IdentifyCustomerPayload:
        done, errors = await attempt(_identify(info, input))
        if done is None:
            return IdentifyCustomerPayload(customer=None, referee_reward=None, user_errors=errors)
        customer = Customer.from_model(done.customer)
        return IdentifyCustomerPayload(
            customer=customer, referee_reward=_offer(done.referee_reward), user_errors=[]
        )

    @strawberry.mutation(permission_classes=[TrackingWrite], description="Record a touchpoint.")
    async def record_touchpoint(
        self, info: Info, input: RecordTouchpointInput
    ) -> TouchpointPayload:
        row, errors = await attempt(_touch(info, input))
        touchpoint = Touchpoint.from_model(row) if row else None
        return TouchpointPayload(touchpoint=touchpoint, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[TrackingWrite],
        description="Record a conversion and credit it; the same input again changes nothing.",
    )
    async def record_conversion(
        self, info: Info, input: RecordConversionInput
    ) -> ConversionPayload:
        actor = info.context.principal.actor()
        row, errors = await attempt(
            ingest.record_conversion(actor, input.program_pk(), input.to_spec())
        )
        conversion = Conversion.from_model(row) if row else None
        return ConversionPayload(conversion=conversion, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[TrackingWrite],
        description="Record up to 1000 conversions: each valid item is stored and credited, "
        "each refused one stores nothing.",
    )
    async def record_conversions(
        self, info: Info, input: RecordConversionsInput
    ) -> ConversionsPayload:
        items = [(item.program_pk(), item.to_spec()) for item in input.conversions]
        outcome, errors = await attempt(
            ingest.record_conversions(info.context.principal.actor(), items)
        )
        if outcome is None:
            return ConversionsPayload(conversions=[], user_errors=errors)
        rows = [None if r is None else Conversion.from_model(r) for r in outcome.conversions]
        return ConversionsPayload(
            conversions=rows, user_errors=user_errors(DomainErrors(outcome.errors))
        )

    @strawberry.mutation(permission_classes=[TrackingWrite], description="Refund a conversion.")
    async def refund_conversion(
        self, info: Info, input: RefundConversionInput
    ) -> ConversionPayload:
        row, errors = await attempt(_refund(info, input))
        conversion = Conversion.from_model(row) if row else None
        return ConversionPayload(conversion=conversion, user_errors=errors)
