"""`node(id:)`: any object by its global ID, through the same policy and loaders as the rest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry

from api import policy
from api.audit.types import AuditEntry
from api.commissions.types import Commission, CommissionRule, PayoutBatch
from api.context import Context, Info
from api.errors import unauthenticated
from api.gamification.badges import fetch_award, fetch_badge
from api.identity.types import ApiToken
from api.partners.types import Enrollment, Partner
from api.programs.types import Program, Tier
from api.relay import Node, from_global_id
from api.tracking.customers import fetch_customer
from api.tracking.links import ReferralLink
from api.tracking.types import Conversion, Touchpoint
from domain.audit import services as audit

Fetch = Callable[[Context, int], Awaitable[Node | None]]


def _via(loader: str, convert: Callable[[Any], Node]) -> Fetch:
    async def fetch(context: Context, pk: int) -> Node | None:
        row = await getattr(context.loaders, loader).load(pk)
        return convert(row) if row is not None else None

    return fetch


async def _audit_entry(context: Context, pk: int) -> Node | None:
    row = (await audit.entries_by_ids([pk]))[0]
    return AuditEntry.from_model(row) if row is not None else None


async def _deal(context: Context, pk: int) -> Node | None:
    from api.tracking.deals import Deal

    row = await context.loaders.deal_by_id.load(pk)
    return Deal.from_model(row) if row is not None else None


FETCHERS: dict[str, Fetch] = {
    "Program": _via("program_by_id", Program.from_model),
    "Tier": _via("tier_by_id", Tier.from_model),
    "Partner": _via("partner_by_id", Partner.from_model),
    "Enrollment": _via("enrollment_by_id", Enrollment.from_model),
    "ApiToken": _via("api_token_by_id", ApiToken.from_model),
    "AuditEntry": _audit_entry,
    "Conversion": _via("conversion_by_id", Conversion.from_model),
    "Touchpoint": _via("touchpoint_by_id", Touchpoint.from_model),
    "Customer": fetch_customer,
    "ReferralLink": _via("link_by_id", ReferralLink.from_model),
    "Deal": _deal,
    "Commission": _via("commission_by_id", Commission.from_model),
    "CommissionRule": _via("commission_rule_by_id", CommissionRule.from_model),
    "PayoutBatch": _via("payout_batch_by_id", PayoutBatch.from_model),
    "Badge": fetch_badge,
    "BadgeAward": fetch_award,
}


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description="Any object by its ID; null if it does not exist or is not yours."
    )
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        principal = info.context.principal
        if principal.is_anonymous:
            raise unauthenticated()
        parsed = from_global_id(id)
        if parsed is None:
            return None
        type_name, pk = parsed
        fetch = FETCHERS.get(type_name)
        if fetch is None or not policy.can_read(principal, type_name):
            return None
        return await fetch(info.context, pk)
