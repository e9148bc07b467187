"""GraphQL types of partners and enrollments."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from api.commissions.enums import CommissionStatus
from api.context import Info
from api.policy import ensure_read, owns, partner_scope
from api.programs.types import Program, Tier
from api.relay import Connection, Node, connection, page_request, to_global_id
from domain.attribution import queries as credit_queries
from domain.commissions import models as commission_models
from domain.commissions import services as commissions
from domain.pagination import Page
from domain.partners import models

if TYPE_CHECKING:
    from api.attribution.credits import AttributionCredit
    from api.commissions.types import Balance, Commission
    from api.gamification.badges import BadgeAward
    from api.gamification.tiers import TierChange
    from api.tracking.deals import Deal
    from api.tracking.links import ReferralLink

PartnerStatus = models.PartnerStatus
strawberry.enum(PartnerStatus, description="Whether a partner may act.")
EnrollmentStatus = models.EnrollmentStatus
strawberry.enum(EnrollmentStatus, description="Whether an enrollment earns.")


@strawberry.type(description="An organization or person that refers customers.")
class Partner(Node):
    name: str
    email: str
    status: PartnerStatus
    created_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, row: models.Partner) -> Partner:
        return cls(
            id=to_global_id("Partner", row.pk),
            pk=row.pk,
            name=row.name,
            email=row.email,
            status=row.status,
            created_at=row.created_at,
        )

    @strawberry.field(description="The partner's enrollments, oldest first.")
    async def enrollments(self, info: Info) -> list[Enrollment]:
        rows = await info.context.loaders.enrollments_by_partner.load(self.pk)
        return [Enrollment.from_model(row) for row in rows]


@strawberry.type(description="One partner in one program, with its tier and referral code.")
class Enrollment(Node):
    status: EnrollmentStatus
    referral_code: str = strawberry.field(description="Unique, case-insensitive.")
    created_at: datetime
    tier_pinned: bool = strawberry.field(
        description="Set by an admin (setEnrollmentTier): automatic tier changes leave it alone."
    )
    pk: strawberry.Private[int]
    program_pk: strawberry.Private[int]
    partner_pk: strawberry.Private[int]
    tier_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.Enrollment) -> Enrollment:
        return cls(
            id=to_global_id("Enrollment", row.pk),
            status=row.status,
            referral_code=row.referral_code,
            created_at=row.created_at,
            tier_pinned=row.tier_pinned,
            pk=row.pk,
            program_pk=row.program_id,
            partner_pk=row.partner_id,
            tier_pk=row.tier_id,
        )

    @strawberry.field
    async def program(self, info: Info) -> Program:
        row = await info.context.loaders.program_by_id.load(self.program_pk)
        assert row is not None  # a visible enrollment's program is visible
        return Program.from_model(row)

    @strawberry.field
    async def partner(self, info: Info) -> Partner:
        row = await info.context.loaders.partner_by_id.load(self.partner_pk)
        assert row is not None  # a visible enrollment's partner is visible
        return Partner.from_model(row)

    @strawberry.field
    async def tier(self, info: Info) -> Tier | None:
        if self.tier_pk is None:
            return None
        row = await info.context.loaders.tier_by_id.load(self.tier_pk)
        return Tier.from_model(row) if row is not None else None

    @strawberry.field(description="The enrollment's tier changes, newest first.")
    async def tier_history(
        self, info: Info
    ) -> list[Annotated[TierChange, strawberry.lazy("api.gamification.tiers")]]:
        from api.gamification.tiers import tier_history

        return await tier_history(info, self.pk, self.partner_pk)

    @strawberry.field(description="The sum of its points entries (a partner: its own).")
    async def points(self, info: Info) -> int:
        from api.gamification.badges import enrollment_points

        return await enrollment_points(info, self.pk, self.partner_pk)

    @strawberry.field(description="Its badge awards, in the order they were made.")
    async def badges(
        self, info: Info
    ) -> list[Annotated[BadgeAward, strawberry.lazy("api.gamification.badges")]]:
        from api.gamification.badges import enrollment_badges

        return await enrollment_badges(info, self.pk, self.partner_pk)

    @strawberry.field(description="The enrollment's referral links, newest first.")
    async def links(
        self, info: Info
    ) -> list[Annotated[ReferralLink, strawberry.lazy("api.tracking.links")]]:
        from api.tracking.links import ReferralLink

        rows = await info.context.loaders.links_by_enrollment.load(self.pk)
        return [ReferralLink.from_model(row) for row in rows]

    @strawberry.field(description="What the enrollment was credited with, newest first.")
    async def credits(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[AttributionCredit, strawberry.lazy("api.attribution.credits")]]:
        from api.attribution.credits import AttributionCredit

        principal = info.context.principal
        ensure_read(principal, "AttributionCredit")
        page = await credit_queries.list_credits(
            partner_scope(principal), page_request(first, after), self.pk
        )
        return connection(page, AttributionCredit.from_model, after is not None)

    @strawberry.field(description="The prospects this enrollment registered, newest first.")
    async def deals(
        self, info: Info
    ) -> list[Annotated[Deal, strawberry.lazy("api.tracking.deals")]]:
        from api.tracking.deals import Deal

        rows = await info.context.loaders.deals_by_enrollment.load(self.pk)
        return [Deal.from_model(row) for row in rows]

    @strawberry.field(
        description="The enrollment's ledger entries, newest first (referee rewards, a "
        "program's cost, are not listed)."
    )
    async def commissions(
        self,
        info: Info,
        status: CommissionStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Commission, strawberry.lazy("api.commissions.types")]]:
        from api.commissions.types import Commission

        principal = info.context.principal
        ensure_read(principal, "Commission")
        request = page_request(first, after)
        if not owns(principal, self.partner_pk):
            return connection(_nothing(), Commission.from_model, after is not None)
        page = await commissions.commissions_of(self.pk, status, request)
        return connection(page, Commission.from_model, after is not None)

    @strawberry.field(description="Pending, approved and paid: the sums of its entries.")
    async def balance(
        self, info: Info
    ) -> Annotated[Balance, strawberry.lazy("api.commissions.types")]:
        from api.commissions.types import Balance

        ensure_read(info.context.principal, "Commission")
        if not owns(info.context.principal, self.partner_pk):
            return Balance(pending=[], approved=[], paid=[])
        return Balance.from_row(await info.context.loaders.balance_by_enrollment.load(self.pk))


def _nothing() -> Page[commission_models.Commission]:
    async def count() -> int:
        return 0

    return Page(items=[], has_next=False, count=count)
