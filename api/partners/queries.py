"""Queries of partners."""

from __future__ import annotations

import strawberry

from api import policy
from api.context import Info
from api.partners.types import Partner
from api.permissions import can_read
from api.relay import Connection, connection, page_request, parse_optional_id
from domain.errors import DomainError
from domain.partners import services


@strawberry.type
class PartnersQuery:
    @strawberry.field(
        permission_classes=[can_read("Partner")],
        description="Partners, optionally of one program, searched by name or e-mail. "
        "A partner sees only itself.",
    )
    async def partners(
        self,
        info: Info,
        program_id: strawberry.ID | None = None,
        search: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Partner]:
        request = page_request(first, after)
        try:
            program = parse_optional_id(program_id, "Program", ["programId"])
        except DomainError:
            program = 0  # not a program ID: no partner matches
        page = await services.list_partners(
            policy.partner_scope(info.context.principal), request, program, search
        )
        return connection(page, Partner.from_model, after is not None)
