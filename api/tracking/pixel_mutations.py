"""confirmConversion: an admin or an app (tracking:write) confirms a conversion the pixel
recorded unverified, so it is credited."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.permissions import can_write
from api.relay import parse_id
from api.tracking.types import Conversion
from domain.tracking import models, pixel


@strawberry.input
class ConfirmConversionInput:
    program_id: strawberry.ID
    external_id: str


@strawberry.type
class ConfirmConversionPayload:
    conversion: Conversion | None
    user_errors: list[UserError]


async def _confirm(info: Info, data: ConfirmConversionInput) -> models.Conversion:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await pixel.confirm_conversion(
        info.context.principal.actor(), program_id, data.external_id
    )


@strawberry.type
class PixelMutation:
    @strawberry.mutation(
        permission_classes=[can_write("tracking:write")],
        description="Confirm a conversion the pixel recorded (unverified, since anyone can "
        "load a pixel): it is then credited with the program's model. Idempotent.",
    )
    async def confirm_conversion(
        self, info: Info, input: ConfirmConversionInput
    ) -> ConfirmConversionPayload:
        row, errors = await attempt(_confirm(info, input))
        return ConfirmConversionPayload(
            conversion=Conversion.from_model(row) if row else None, user_errors=errors
        )
