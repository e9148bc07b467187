"""Queries of programs."""

from __future__ import annotations

import strawberry

from api import policy
from api.context import Info
from api.permissions import can_read
from api.programs.types import Program
from api.relay import Connection, connection, page_request
from domain.programs import services


@strawberry.type
class ProgramsQuery:
    @strawberry.field(
        permission_classes=[can_read("Program")],
        description="Programs; a partner sees the programs it is enrolled in.",
    )
    async def programs(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> Connection[Program]:
        page = await services.list_programs(
            policy.partner_scope(info.context.principal), page_request(first, after), search
        )
        return connection(page, Program.from_model, after is not None)
