"""Queries of tracking: a program's conversions (a report)."""

from __future__ import annotations

import strawberry

from api import policy
from api.context import Info
from api.relay import Connection, connection, page_request, parse_id
from api.tracking.types import Conversion
from domain.errors import DomainError
from domain.tracking import queries


@strawberry.type
class TrackingQuery:
    @strawberry.field(
        description="A program's conversions, the last recorded first (by ID, descending). "
        "Admins, and APP tokens with reports:read (a token a partner made lists only the "
        "conversions its partner is credited with); partners read theirs through "
        "Enrollment.credits."
    )
    async def conversions(
        self,
        info: Info,
        program_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Conversion]:
        principal = info.context.principal
        policy.ensure_report(principal, "Conversion")
        request = page_request(first, after)
        try:
            program = parse_id(program_id, "Program", ["programId"])
        except DomainError:
            program = 0  # not a program ID: no conversion matches
        page = await queries.list_conversions(policy.partner_scope(principal), request, program)
        loader = info.context.loaders.conversion_by_id  # credit.conversion: no second query
        for row in page.items:
            loader.prime(row.pk, row)
        return connection(page, Conversion.from_model, after is not None)
