"""Per-request DataLoaders, scoped to the principal's partner: no list resolves one query per
item, and no nested path reaches another partner's rows."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from api.policy import partner_scope
from api.principal import Principal
from domain.identity.models import ApiToken
from domain.identity.services import api_tokens_by_ids
from domain.partners import services as partners
from domain.partners.models import Enrollment, Partner
from domain.programs import services as programs
from domain.programs.models import Program, Tier


class Loaders:
    def __init__(self, principal: Principal) -> None:
        scope = partner_scope(principal)
        self.program_by_id = DataLoader[int, Program | None](
            lambda ids: programs.programs_by_ids(list(ids), scope)
        )
        self.tier_by_id = DataLoader[int, Tier | None](
            lambda ids: programs.tiers_by_ids(list(ids), scope)
        )
        self.tiers_by_program = DataLoader[int, list[Tier]](
            lambda ids: programs.tiers_by_programs(list(ids))
        )
        self.partner_by_id = DataLoader[int, Partner | None](
            lambda ids: partners.partners_by_ids(list(ids), scope)
        )
        self.enrollment_by_id = DataLoader[int, Enrollment | None](
            lambda ids: partners.enrollments_by_ids(list(ids), scope)
        )
        self.enrollments_by_partner = DataLoader[int, list[Enrollment]](
            lambda ids: partners.enrollments_by_partners(list(ids))
        )
        self.api_token_by_id = DataLoader[int, ApiToken | None](
            lambda ids: _tokens(list(ids), scope, principal.is_admin)
        )


async def _tokens(ids: list[int], scope: int | None, is_admin: bool) -> list[ApiToken | None]:
    rows = await api_tokens_by_ids(ids)
    if is_admin:
        return rows
    return [row if row is not None and row.partner_id == scope else None for row in rows]
