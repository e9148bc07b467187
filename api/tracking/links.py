"""Referral links: the type, and creating and changing them (admins, admin apps with
partners:write, and partner users for their own enrollments)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from api import policy
from api.context import Info
from api.errors import UserError, attempt
from api.partners.types import Enrollment
from api.principal import PrincipalKind
from api.relay import Node, parse_id, to_global_id
from domain.tracking import links as services
from domain.tracking import models


class CanManageLinks(BasePermission):
    """A partner user for its own enrollments (the service scopes it), or an admin-level
    writer with partners:write; a partner-made app token only reads."""

    message = "not allowed: managing referral links"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        if principal.kind is not PrincipalKind.PARTNER:
            policy.ensure_write(principal, "partners:write")
        return True


@strawberry.type(description="A partner's shareable link: `url` redirects to its destination.")
class ReferralLink(Node):
    code: str = strawberry.field(description="Unique, case-insensitive; the end of `url`.")
    utm_source: str | None = strawberry.field(description="UTM default added on redirect.")
    utm_medium: str | None
    utm_campaign: str | None
    disabled: bool = strawberry.field(description="A disabled link answers 404.")
    created_at: datetime
    pk: strawberry.Private[int]
    own_destination: strawberry.Private[str | None]
    program_pk: strawberry.Private[int]
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.ReferralLink) -> ReferralLink:
        return cls(
            id=to_global_id("ReferralLink", row.pk),
            code=row.code,
            utm_source=row.utm_source,
            utm_medium=row.utm_medium,
            utm_campaign=row.utm_campaign,
            disabled=row.disabled,
            created_at=row.created_at,
            pk=row.pk,
            own_destination=row.destination_url,
            program_pk=row.program_id,
            enrollment_pk=row.enrollment_id,
        )

    @strawberry.field(description="The link to share: {public URL}/r/{code}.")
    def url(self, info: Info) -> str:
        return f"{info.context.public_url.rstrip('/')}/r/{self.code}"

    @strawberry.field(description="Where it leads: its own destination, or the program's.")
    async def destination_url(self, info: Info) -> str:
        if self.own_destination is not None:
            return self.own_destination
        return await info.context.loaders.destination_by_program.load(self.program_pk)

    @strawberry.field(description="Counted clicks (bots, repeats and flagged ones excluded).")
    async def clicks(self, info: Info) -> int:
        return await info.context.loaders.clicks_by_link.load(self.pk)

    @strawberry.field
    async def enrollment(self, info: Info) -> Enrollment:
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        assert row is not None  # a visible link's enrollment is visible
        return Enrollment.from_model(row)


@strawberry.input(
    description="A new link; no code: a generated one; no destination: the program's."
)
class CreateReferralLinkInput:
    enrollment_id: strawberry.ID
    code: str | None = strawberry.field(
        default=None, description="A vanity code: 3 to 64 letters, digits, '-' or '_'."
    )
    destination_url: str | None = strawberry.field(
        default=None,
        description="On the program's host (or a subdomain) or an allowed domain.",
    )
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    def to_spec(self) -> services.LinkSpec:
        return services.LinkSpec(
            code=self.code,
            destination_url=self.destination_url,
            utm_source=self.utm_source,
            utm_medium=self.utm_medium,
            utm_campaign=self.utm_campaign,
        )


@strawberry.input(
    description="Changes to a link; fields left out keep their value, null clears them "
    "(a cleared destination is the program's)."
)
class UpdateReferralLinkInput:
    id: strawberry.ID
    destination_url: str | None = strawberry.UNSET
    utm_source: str | None = strawberry.UNSET
    utm_medium: str | None = strawberry.UNSET
    utm_campaign: str | None = strawberry.UNSET
    disabled: bool | None = None

    def to_changes(self) -> services.LinkChanges:
        given = {
            "destination_url": self.destination_url,
            "utm_source": self.utm_source,
            "utm_medium": self.utm_medium,
            "utm_campaign": self.utm_campaign,
        }
        values = {k: v for k, v in given.items() if v is not strawberry.UNSET}
        return services.LinkChanges(
            **values,
            disabled=self.disabled,
            clear=frozenset(k for k, v in values.items() if v is None),
        )


@strawberry.type
class ReferralLinkPayload:
    referral_link: ReferralLink | None
    user_errors: list[UserError]


async def _create(info: Info, data: CreateReferralLinkInput) -> models.ReferralLink:
    enrollment_id = parse_id(data.enrollment_id, "Enrollment", ["enrollmentId"])
    return await services.create_link(info.context.principal.actor(), enrollment_id, data.to_spec())


async def _update(info: Info, data: UpdateReferralLinkInput) -> models.ReferralLink:
    link_id = parse_id(data.id, "ReferralLink", ["id"])
    return await services.update_link(info.context.principal.actor(), link_id, data.to_changes())


def _payload(row: models.ReferralLink | None, errors: list[UserError]) -> ReferralLinkPayload:
    return ReferralLinkPayload(
        referral_link=ReferralLink.from_model(row) if row else None, user_errors=errors
    )


@strawberry.type
class LinksMutation:
    @strawberry.mutation(
        permission_classes=[CanManageLinks],
        description="A referral link for an enrollment (a partner: only its own).",
    )
    async def create_referral_link(
        self, info: Info, input: CreateReferralLinkInput
    ) -> ReferralLinkPayload:
        return _payload(*await attempt(_create(info, input)))

    @strawberry.mutation(
        permission_classes=[CanManageLinks],
        description="Change a link's destination, UTM defaults or disable it (a partner: only "
        "its own).",
    )
    async def update_referral_link(
        self, info: Info, input: UpdateReferralLinkInput
    ) -> ReferralLinkPayload:
        return _payload(*await attempt(_update(info, input)))
