"""Per-request DataLoaders, scoped to the principal's partner: no list resolves one query per
item, and no nested path reaches another partner's rows, nor a type the principal's scopes do
not cover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from api import policy
from api.policy import partner_scope
from api.principal import Principal
from domain.attribution import queries as credits
from domain.attribution.models import AttributionCredit
from domain.identity.models import ApiToken
from domain.identity.services import api_tokens_by_ids
from domain.partners import services as partners
from domain.partners.models import Enrollment, Partner
from domain.programs import services as programs
from domain.programs.models import Program, Tier
from domain.tracking import deals, links
from domain.tracking import queries as tracking
from domain.tracking.models import Conversion, Deal, ReferralLink, Touchpoint

V = TypeVar("V")


def _readable(
    principal: Principal, type_name: str, load: Callable[[list[int]], Awaitable[list[V]]]
) -> Callable[[list[int]], Awaitable[list[V]]]:
    """`load`, after the policy's read check: nested fields (Enrollment.program, ...) obey the
    same scopes as `node(id:)` and the list queries (an APP token with partners:read alone
    reads no program)."""

    async def checked(ids: list[int]) -> list[V]:
        policy.ensure_read(principal, type_name)
        return await load(ids)

    return checked


class Loaders:
    """Made on first use: a request builds only the loaders its query needs."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.scope = partner_scope(principal)

    @cached_property
    def program_by_id(self) -> DataLoader[int, Program | None]:
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "Program", lambda ids: programs.programs_by_ids(ids, scope))
        )

    @cached_property
    def tier_by_id(self) -> DataLoader[int, Tier | None]:
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "Tier", lambda ids: programs.tiers_by_ids(ids, scope))
        )

    @cached_property
    def tiers_by_program(self) -> DataLoader[int, list[Tier]]:
        return DataLoader(_readable(self.principal, "Tier", programs.tiers_by_programs))

    @cached_property
    def partner_by_id(self) -> DataLoader[int, Partner | None]:
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "Partner", lambda ids: partners.partners_by_ids(ids, scope))
        )

    @cached_property
    def enrollment_by_id(self) -> DataLoader[int, Enrollment | None]:
        scope = self.scope
        return DataLoader(
            _readable(
                self.principal, "Enrollment", lambda ids: partners.enrollments_by_ids(ids, scope)
            )
        )

    @cached_property
    def enrollments_by_partner(self) -> DataLoader[int, list[Enrollment]]:
        return DataLoader(_readable(self.principal, "Enrollment", partners.enrollments_by_partners))

    @cached_property
    def conversion_by_id(self) -> DataLoader[int, Conversion | None]:
        """A partner's only if one of its enrollments is credited with it."""
        scope = self.scope
        return DataLoader(
            _readable(
                self.principal, "Conversion", lambda ids: tracking.conversions_by_ids(ids, scope)
            )
        )

    @cached_property
    def touchpoint_by_id(self) -> DataLoader[int, Touchpoint | None]:
        scope = self.scope
        return DataLoader(
            _readable(
                self.principal, "Touchpoint", lambda ids: tracking.touchpoints_by_ids(ids, scope)
            )
        )

    @cached_property
    def credits_by_conversion(self) -> DataLoader[int, list[AttributionCredit]]:
        """A partner's own credits only, also on a conversion shared with other partners."""
        scope = self.scope
        return DataLoader(
            _readable(
                self.principal,
                "AttributionCredit",
                lambda ids: credits.credits_by_conversions(ids, scope),
            )
        )

    @cached_property
    def deal_by_id(self) -> DataLoader[int, Deal | None]:
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "Deal", lambda ids: deals.deals_by_ids(ids, scope))
        )

    @cached_property
    def deals_by_enrollment(self) -> DataLoader[int, list[Deal]]:
        """Newest first; a partner's own enrollments' only."""
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "Deal", lambda ids: deals.deals_by_enrollments(ids, scope))
        )

    @cached_property
    def link_by_id(self) -> DataLoader[int, ReferralLink | None]:
        scope = self.scope
        return DataLoader(
            _readable(self.principal, "ReferralLink", lambda ids: links.links_by_ids(ids, scope))
        )

    @cached_property
    def links_by_enrollment(self) -> DataLoader[int, list[ReferralLink]]:
        """Each enrollment's links, newest first; a partner's own enrollments' only."""
        scope = self.scope
        return DataLoader(
            _readable(
                self.principal,
                "ReferralLink",
                lambda ids: links.links_by_enrollments(ids, scope),
            )
        )

    @cached_property
    def clicks_by_link(self) -> DataLoader[int, int]:
        """Counted clicks of links already loaded through the scoped loaders above."""
        return DataLoader(_readable(self.principal, "ReferralLink", links.click_counts))

    @cached_property
    def destination_by_program(self) -> DataLoader[int, str]:
        """A program's destination, for the links that lead there (readable with the link,
        without programs:read)."""
        return DataLoader(_readable(self.principal, "ReferralLink", links.program_destinations))

    @cached_property
    def api_token_by_id(self) -> DataLoader[int, ApiToken | None]:
        scope, is_admin = self.scope, self.principal.is_admin
        return DataLoader(
            _readable(self.principal, "ApiToken", lambda ids: _tokens(ids, scope, is_admin))
        )


async def _tokens(ids: list[int], scope: int | None, is_admin: bool) -> list[ApiToken | None]:
    rows = await api_tokens_by_ids(ids)
    if is_admin:
        return rows
    return [row if row is not None and row.partner_id == scope else None for row in rows]
