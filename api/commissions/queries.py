"""Queries of commissions: a program's payout batches. Partners read their entries and
balance through Enrollment.commissions and Enrollment.balance."""

from __future__ import annotations

import strawberry

from api import policy
from api.commissions.types import PayoutBatch
from api.context import Info
from api.relay import Connection, connection, page_request, parse_id
from domain.commissions import services
from domain.errors import DomainError


@strawberry.type
class CommissionsQuery:
    @strawberry.field(
        description="A program's payout batches, newest first. Admins, and admin-made APP "
        "tokens with reports:read (a batch lists every partner paid: never a partner's)."
    )
    async def payout_batches(
        self,
        info: Info,
        program_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[PayoutBatch]:
        policy.ensure_read(info.context.principal, "PayoutBatch")
        request = page_request(first, after)
        try:
            program = parse_id(program_id, "Program", ["programId"])
        except DomainError:
            program = 0  # not a program ID: no batch matches
        page = await services.payout_batches(program, request)
        return connection(page, PayoutBatch.from_model, after is not None)
