"""Admin queries of attribution: a what-if over another model, and the data-driven models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.attribution.types import CreditSummary, DataDrivenAttribution, DataDrivenMethod
from api.context import Info
from api.errors import ApiError, user_errors
from api.permissions import IsAdmin
from api.programs.inputs import AttributionModelInput
from api.relay import parse_id
from domain.attribution import services
from domain.errors import DomainError, DomainErrors


def _refused(exc: DomainError | DomainErrors) -> ApiError:
    """A query has no payload for user errors: the first one becomes a BAD_USER_INPUT error."""
    error = user_errors(exc)[0]
    where = ".".join(error.field or [])
    message = f"{where}: {error.message}" if where else error.message
    return ApiError(message, "BAD_USER_INPUT" if error.code.name != "NOT_FOUND" else "NOT_FOUND")


@strawberry.type
class AttributionQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="What each enrollment would have been credited under another model over "
        "the program's conversions with from <= occurredAt < to, beside what it is credited "
        "now. Writes nothing. Admins only.",
    )
    async def attribution_preview(
        self,
        info: Info,
        program_id: strawberry.ID,
        model: AttributionModelInput,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> list[CreditSummary]:
        try:
            pk = parse_id(program_id, "Program", ["programId"])
            rows = await services.preview(pk, model.to_settings(), from_, to)
        except (DomainError, DomainErrors) as exc:
            raise _refused(exc) from None
        return [CreditSummary.from_row(row) for row in rows]

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Markov removal effects or Shapley values of the enrollments over the "
        "program's journeys in the range: which partners truly drive conversions. Admins only.",
    )
    async def data_driven_attribution(
        self,
        info: Info,
        program_id: strawberry.ID,
        method: DataDrivenMethod,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> DataDrivenAttribution:
        try:
            pk = parse_id(program_id, "Program", ["programId"])
            result = await services.data_driven(pk, method, from_, to)
        except (DomainError, DomainErrors) as exc:
            raise _refused(exc) from None
        return DataDrivenAttribution.from_result(result)
