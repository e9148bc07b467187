"""Recomputing stored credits with a program's current model (admins, programs:write)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.permissions import can_write
from api.relay import parse_id
from domain.attribution import services


@strawberry.input(description="Which of a program's conversions to credit again.")
class RecomputeAttributionInput:
    program_id: strawberry.ID
    from_: datetime | None = strawberry.field(name="from", default=None)
    to: datetime | None = None


@strawberry.type
class RecomputePayload:
    conversions_recomputed: int | None
    user_errors: list[UserError]


async def _recompute(info: Info, data: RecomputeAttributionInput) -> int:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await services.recompute(info.context.principal.actor(), program_id, data.from_, data.to)


@strawberry.type
class AttributionMutation:
    @strawberry.mutation(
        permission_classes=[can_write("programs:write")],
        description="Credit the program's conversions with from <= occurredAt < to again, with "
        "its current attribution model (after the model changed). Audited.",
    )
    async def recompute_attribution(
        self, info: Info, input: RecomputeAttributionInput
    ) -> RecomputePayload:
        count, errors = await attempt(_recompute(info, input))
        return RecomputePayload(conversions_recomputed=count, user_errors=errors)
