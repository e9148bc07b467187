"""Per-request DataLoaders, scoped to the principal's partner: no list resolves one query per
item, and no nested path reaches another partner's rows, nor a type the principal's scopes do
not cover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry.dataloader import DataLoader

from api import policy
from api.policy import partner_scope
from api.principal import Principal
from domain.identity.models import ApiToken
from domain.identity.services import api_tokens_by_ids
from domain.partners import services as partners
from domain.partners.models import Enrollment, Partner
from domain.programs import services as programs
from domain.programs.models import Program, Tier

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
    def __init__(self, principal: Principal) -> None:
        scope = partner_scope(principal)
        self.program_by_id = DataLoader[int, Program | None](
            _readable(principal, "Program", lambda ids: programs.programs_by_ids(ids, scope))
        )
        self.tier_by_id = DataLoader[int, Tier | None](
            _readable(principal, "Tier", lambda ids: programs.tiers_by_ids(ids, scope))
        )
        self.tiers_by_program = DataLoader[int, list[Tier]](
            _readable(principal, "Tier", programs.tiers_by_programs)
        )
        self.partner_by_id = DataLoader[int, Partner | None](
            _readable(principal, "Partner", lambda ids: partners.partners_by_ids(ids, scope))
        )
        self.enrollment_by_id = DataLoader[int, Enrollment | None](
            _readable(principal, "Enrollment", lambda ids: partners.enrollments_by_ids(ids, scope))
        )
        self.enrollments_by_partner = DataLoader[int, list[Enrollment]](
            _readable(principal, "Enrollment", partners.enrollments_by_partners)
        )
        self.api_token_by_id = DataLoader[int, ApiToken | None](
            _readable(principal, "ApiToken", lambda ids: _tokens(ids, scope, principal.is_admin))
        )


async def _tokens(ids: list[int], scope: int | None, is_admin: bool) -> list[ApiToken | None]:
    rows = await api_tokens_by_ids(ids)
    if is_admin:
        return rows
    return [row if row is not None and row.partner_id == scope else None for row in rows]
