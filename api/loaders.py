"""Per-request DataLoaders, scoped to the principal's partner: no list resolves one query per
item, and no nested path reaches another partner's rows, nor a type the principal's scopes do
not cover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from api import policy
from api.gamification.badge_loaders import BadgeLoaders
from api.policy import PartnerReach, partner_scope
from api.principal import Principal
from domain.attribution import queries as credits
from domain.attribution.models import AttributionCredit
from domain.commissions import services as commissions
from domain.commissions.models import (
    Commission,
    CommissionRule,
    CommissionRuleVersion,
    PayoutBatch,
    PayoutItem,
)
from domain.gamification import tiers
from domain.gamification.models import TierChange
from domain.identity.models import ApiToken
from domain.identity.services import api_tokens_by_ids
from domain.pagination import by_ids
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
    def tier_changes_by_enrollment(self) -> DataLoader[int, list[TierChange]]:
        """An enrollment's tier history, newest first (Enrollment.tierHistory checks owner)."""
        load = tiers.tier_history_by_enrollments
        return DataLoader(_readable(self.principal, "Enrollment", load))

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

    # --- commissions: a partner's only through its reach (its enrollments, programs, tiers) --

    @cached_property
    def reach_by_partner(self) -> DataLoader[int, PartnerReach]:
        """What a partner's commission data may name; read only to scope the loaders below."""

        async def load(partner_ids: list[int]) -> list[PartnerReach]:
            found = await partners.enrollments_by_partners(partner_ids)
            return [
                PartnerReach.of((e.pk, e.program_id, e.tier_id) for e in rows) for rows in found
            ]

        return DataLoader(load)

    async def reach(self) -> PartnerReach | None:
        """The principal's partner's reach; None for whoever sees every partner's."""
        return None if self.scope is None else await self.reach_by_partner.load(self.scope)

    @cached_property
    def badges(self) -> BadgeLoaders:
        """Points and badges (api/gamification/badge_loaders.py), scoped by the same reach."""
        return BadgeLoaders(self.principal, self.reach)

    @cached_property
    def commission_by_id(self) -> DataLoader[int, Commission | None]:
        """A partner's own enrollments' entries only (never a program's referee reward)."""

        async def load(ids: list[int]) -> list[Commission | None]:
            rows, reach = await commissions.commissions_by_ids(ids), await self.reach()
            if reach is None:
                return rows
            return [
                row
                if row is not None and policy.can_see_entry(reach, row.enrollment_id, str(row.kind))
                else None
                for row in rows
            ]

        return DataLoader(_readable(self.principal, "Commission", load))

    @cached_property
    def commission_rule_by_id(self) -> DataLoader[int, CommissionRule | None]:
        """A partner's only if it can apply to it (policy.can_see_rule), archived or not."""

        async def load(ids: list[int]) -> list[CommissionRule | None]:
            rows, reach = await commissions.rules_by_ids(ids), await self.reach()
            if reach is None:
                return rows
            return [row if row is not None and _rule_visible(reach, row) else None for row in rows]

        return DataLoader(_readable(self.principal, "CommissionRule", load))

    @cached_property
    def commission_rules_by_program(self) -> DataLoader[int, list[CommissionRule]]:
        """Each program's rules, oldest first: all of them for whoever sees every partner's; a
        partner's, only the unarchived ones that can apply to it."""

        async def load(program_ids: list[int]) -> list[list[CommissionRule]]:
            reach = await self.reach()
            found = []
            for program_id in program_ids:  # the domain reads one program's rules at a time
                rows = await commissions.rules_of(program_id, include_archived=reach is None)
                if reach is not None:
                    rows = [row for row in rows if _rule_visible(reach, row)]
                found.append(rows)
            return found

        return DataLoader(_readable(self.principal, "CommissionRule", load))

    @cached_property
    def rule_versions_by_rule(self) -> DataLoader[int, list[CommissionRuleVersion]]:
        """Each visible rule's versions, oldest first; a partner's, only the versions whose
        scope could apply to it (a rule may have been another enrollment's before)."""

        async def load(rule_ids: list[int]) -> list[list[CommissionRuleVersion]]:
            reach = await self.reach()
            found = []
            for rule_id in rule_ids:  # the domain reads one rule's versions at a time
                rows = await commissions.rule_versions(rule_id)
                if reach is not None:
                    rows = [row for row in rows if _version_visible(reach, row)]
                found.append(rows)
            return found

        return DataLoader(_readable(self.principal, "CommissionRule", load))

    @cached_property
    def balance_by_enrollment(self) -> DataLoader[int, commissions.Balance]:
        """Enrollments already known to be visible (Enrollment.balance checks the owner)."""

        async def load(ids: list[int]) -> list[commissions.Balance]:
            found = await commissions.balances(ids)
            return [found[i] for i in ids]

        return DataLoader(_readable(self.principal, "Commission", load))

    @cached_property
    def payout_batch_by_id(self) -> DataLoader[int, PayoutBatch | None]:
        return DataLoader(
            _readable(self.principal, "PayoutBatch", commissions.payout_batches_by_ids)
        )

    @cached_property
    def payout_batch_by_item(self) -> DataLoader[int, PayoutBatch | None]:
        """The batch a ledger entry's payout item belongs to."""

        async def load(item_ids: list[int]) -> list[PayoutBatch | None]:
            items = await by_ids(PayoutItem, item_ids)  # the domain has no items-by-id reader
            batch_ids = {item.pk: item.batch_id for item in items if item is not None}
            batches = await commissions.payout_batches_by_ids(sorted(set(batch_ids.values())))
            by_pk = {batch.pk: batch for batch in batches if batch is not None}
            return [by_pk.get(batch_ids.get(i, 0)) for i in item_ids]

        return DataLoader(_readable(self.principal, "PayoutBatch", load))

    @cached_property
    def payout_items_by_batch(self) -> DataLoader[int, list[PayoutItem]]:
        async def load(batch_ids: list[int]) -> list[list[PayoutItem]]:
            found = await commissions.payout_items(batch_ids)
            return [found.get(i, []) for i in batch_ids]

        return DataLoader(_readable(self.principal, "PayoutBatch", load))

    @cached_property
    def commissions_by_payout_item(self) -> DataLoader[int, list[Commission]]:
        async def load(item_ids: list[int]) -> list[list[Commission]]:
            found = await commissions.item_commissions(item_ids)
            return [found.get(i, []) for i in item_ids]

        return DataLoader(_readable(self.principal, "PayoutBatch", load))


def _rule_visible(reach: PartnerReach, rule: CommissionRule) -> bool:
    return policy.can_see_rule(reach, rule.program_id, rule.tier_id, rule.enrollment_id)


def _version_visible(reach: PartnerReach, version: CommissionRuleVersion) -> bool:
    terms = version.terms
    return policy.can_see_rule_scope(reach, terms.get("tierId"), terms.get("enrollmentId"))


async def _tokens(ids: list[int], scope: int | None, is_admin: bool) -> list[ApiToken | None]:
    rows = await api_tokens_by_ids(ids)
    if is_admin:
        return rows
    return [row if row is not None and row.partner_id == scope else None for row in rows]
