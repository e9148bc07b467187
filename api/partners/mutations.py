"""Mutations of partners and enrollments (admins, or APP tokens with partners:write)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.partners.types import Enrollment, EnrollmentStatus, Partner, PartnerStatus
from api.permissions import can_write
from api.relay import parse_id, parse_optional_id
from domain.identity import services as identity
from domain.partners import models, services

PartnersWrite = can_write("partners:write")


@strawberry.input
class CreatePartnerInput:
    name: str
    email: str
    password: str | None = strawberry.field(
        default=None, description="Also creates the partner's first user, to log in with."
    )


@strawberry.input(description="Changes to a partner; fields left out keep their value.")
class UpdatePartnerInput:
    id: strawberry.ID
    name: str | None = None
    email: str | None = None
    status: PartnerStatus | None = None


@strawberry.input(description="Another user of a partner organization.")
class CreatePartnerUserInput:
    partner_id: strawberry.ID
    email: str
    password: str


@strawberry.input
class EnrollPartnerInput:
    program_id: strawberry.ID
    partner_id: strawberry.ID
    tier_id: strawberry.ID | None = None
    referral_code: str | None = strawberry.field(
        default=None, description="A vanity code (3-32 letters, digits, - or _); else generated."
    )


@strawberry.input
class UpdateEnrollmentInput:
    id: strawberry.ID
    status: EnrollmentStatus | None = None
    tier_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="null removes the tier; left out keeps it."
    )


@strawberry.type
class PartnerPayload:
    partner: Partner | None
    user_errors: list[UserError]


@strawberry.type
class EnrollmentPayload:
    enrollment: Enrollment | None
    user_errors: list[UserError]


async def _update_partner(info: Info, data: UpdatePartnerInput) -> models.Partner:
    partner_id = parse_id(data.id, "Partner", ["id"])
    return await services.update_partner(
        info.context.principal.actor(), partner_id, data.name, data.email, data.status
    )


async def _create_partner_user(info: Info, data: CreatePartnerUserInput) -> models.Partner:
    partner_id = parse_id(data.partner_id, "Partner", ["partnerId"])
    return await identity.add_partner_user(
        info.context.principal.actor(), partner_id, data.email, data.password
    )


async def _enroll(info: Info, data: EnrollPartnerInput) -> models.Enrollment:
    return await services.enroll_partner(
        info.context.principal.actor(),
        program_id=parse_id(data.program_id, "Program", ["programId"]),
        partner_id=parse_id(data.partner_id, "Partner", ["partnerId"]),
        tier_id=parse_optional_id(data.tier_id, "Tier", ["tierId"]),
        referral_code=data.referral_code,
    )


async def _update_enrollment(info: Info, data: UpdateEnrollmentInput) -> models.Enrollment:
    tier = data.tier_id if data.tier_id is not strawberry.UNSET else None
    return await services.update_enrollment(
        info.context.principal.actor(),
        parse_id(data.id, "Enrollment", ["id"]),
        status=data.status,
        tier_id=parse_optional_id(tier, "Tier", ["tierId"]),
        clear_tier=data.tier_id is None,
    )


@strawberry.type
class PartnersMutation:
    @strawberry.mutation(permission_classes=[PartnersWrite], description="Add a partner.")
    async def create_partner(self, info: Info, input: CreatePartnerInput) -> PartnerPayload:
        row, errors = await attempt(
            services.create_partner(
                info.context.principal.actor(), input.name, input.email, input.password
            )
        )
        return PartnerPayload(partner=Partner.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[PartnersWrite], description="Change a partner.")
    async def update_partner(self, info: Info, input: UpdatePartnerInput) -> PartnerPayload:
        row, errors = await attempt(_update_partner(info, input))
        return PartnerPayload(partner=Partner.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[PartnersWrite], description="Add a partner's user.")
    async def create_partner_user(
        self, info: Info, input: CreatePartnerUserInput
    ) -> PartnerPayload:
        row, errors = await attempt(_create_partner_user(info, input))
        return PartnerPayload(partner=Partner.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[PartnersWrite], description="Enroll a partner in a program."
    )
    async def enroll_partner(self, info: Info, input: EnrollPartnerInput) -> EnrollmentPayload:
        row, errors = await attempt(_enroll(info, input))
        return EnrollmentPayload(
            enrollment=Enrollment.from_model(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[PartnersWrite], description="Change an enrollment's status or tier."
    )
    async def update_enrollment(
        self, info: Info, input: UpdateEnrollmentInput
    ) -> EnrollmentPayload:
        row, errors = await attempt(_update_enrollment(info, input))
        return EnrollmentPayload(
            enrollment=Enrollment.from_model(row) if row else None, user_errors=errors
        )
