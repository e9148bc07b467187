"""Mutations of programs and tiers (admins, or APP tokens with programs:write)."""

from __future__ import annotations

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.permissions import can_write
from api.programs.inputs import (
    CreateProgramInput,
    CreateTierInput,
    UpdateProgramInput,
    UpdateTierInput,
)
from api.programs.types import Program, Tier
from api.relay import parse_id
from domain.programs import models, services

ProgramsWrite = can_write("programs:write")


@strawberry.type
class ProgramPayload:
    program: Program | None
    user_errors: list[UserError]


@strawberry.type
class TierPayload:
    tier: Tier | None
    user_errors: list[UserError]


async def _update_program(info: Info, data: UpdateProgramInput) -> models.Program:
    return await services.update_program(
        info.context.principal.actor(), parse_id(data.id, "Program", ["id"]), data.to_spec()
    )


async def _create_tier(info: Info, data: CreateTierInput) -> models.Tier:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await services.create_tier(info.context.principal.actor(), program_id, data.to_spec())


async def _update_tier(info: Info, data: UpdateTierInput) -> models.Tier:
    tier_id = parse_id(data.id, "Tier", ["id"])
    return await services.update_tier(info.context.principal.actor(), tier_id, data.to_spec())


@strawberry.type
class ProgramsMutation:
    @strawberry.mutation(permission_classes=[ProgramsWrite], description="Start a program.")
    async def create_program(self, info: Info, input: CreateProgramInput) -> ProgramPayload:
        row, errors = await attempt(
            services.create_program(info.context.principal.actor(), input.to_spec())
        )
        return ProgramPayload(program=Program.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[ProgramsWrite], description="Change a program.")
    async def update_program(self, info: Info, input: UpdateProgramInput) -> ProgramPayload:
        row, errors = await attempt(_update_program(info, input))
        return ProgramPayload(program=Program.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[ProgramsWrite], description="Add a tier.")
    async def create_tier(self, info: Info, input: CreateTierInput) -> TierPayload:
        row, errors = await attempt(_create_tier(info, input))
        return TierPayload(tier=Tier.from_model(row) if row else None, user_errors=errors)

    @strawberry.mutation(permission_classes=[ProgramsWrite], description="Change a tier.")
    async def update_tier(self, info: Info, input: UpdateTierInput) -> TierPayload:
        row, errors = await attempt(_update_tier(info, input))
        return TierPayload(tier=Tier.from_model(row) if row else None, user_errors=errors)
