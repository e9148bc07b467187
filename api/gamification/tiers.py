"""GraphQL of the tiers partners earn: an enrollment's tier history, setEnrollmentTier and
evaluateTiers (admins, or admin-made APP tokens with programs:write). The domain decides,
records the history, audits and records the `tier.changed` events."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.partners.mutations import EnrollmentPayload
from api.partners.types import Enrollment
from api.permissions import can_write
from api.policy import ensure_read, owns
from api.programs.types import Tier
from api.relay import parse_id, parse_optional_id
from domain.gamification import models
from domain.gamification import tiers as services
from domain.partners.models import Enrollment as EnrollmentRow

ProgramsWrite = can_write("programs:write")


async def _tier(info: Info, pk: int | None) -> Tier | None:
    if pk is None:
        return None
    row = await info.context.loaders.tier_by_id.load(pk)
    return None if row is None else Tier.from_model(row)


@strawberry.type(description="One change of an enrollment's tier: from which, to which, why.")
class TierChange:
    at: datetime = strawberry.field(description="When the tier changed.")
    reason: str = strawberry.field(
        description="PROMOTED or DEMOTED (automatic: as credits arrive, or by evaluateTiers), "
        "PINNED, SET or UNPINNED (an admin's setEnrollmentTier)."
    )
    from_pk: strawberry.Private[int | None]
    to_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.TierChange) -> TierChange:
        return cls(
            at=row.at, reason=str(row.reason), from_pk=row.from_tier_id, to_pk=row.to_tier_id
        )

    @strawberry.field(name="from", description="The tier before; null: none.")
    async def from_(self, info: Info) -> Tier | None:
        return await _tier(info, self.from_pk)

    @strawberry.field(description="The tier after; null: none.")
    async def to(self, info: Info) -> Tier | None:
        return await _tier(info, self.to_pk)


async def tier_history(info: Info, enrollment_pk: int, partner_pk: int) -> list[TierChange]:
    """Enrollment.tierHistory: whoever reads the enrollment, a partner only its own."""
    principal = info.context.principal
    ensure_read(principal, "Enrollment")
    if not owns(principal, partner_pk):
        return []
    rows = await info.context.loaders.tier_changes_by_enrollment.load(enrollment_pk)
    return [TierChange.from_model(row) for row in rows]


@strawberry.input(description="Set an enrollment's tier by hand, pinned or not.")
class SetEnrollmentTierInput:
    enrollment_id: strawberry.ID
    tier_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="A tier of the enrollment's program; null: no tier; left out: keep it.",
    )
    pinned: bool | None = strawberry.field(
        default=None,
        description="true: automatic promotions and demotions leave the tier alone; false: "
        "they resume; left out: as it was.",
    )


@strawberry.input(description="Evaluate a program's tiers as of `at` (default now).")
class EvaluateTiersInput:
    program_id: strawberry.ID
    at: datetime | None = strawberry.field(
        default=None, description="Not later than now: judges the trailing periods ending then."
    )


@strawberry.type
class EvaluateTiersPayload:
    promoted: list[Enrollment] = strawberry.field(description="Moved up to a tier they earned.")
    demoted: list[Enrollment] = strawberry.field(
        description="Below their tier for the program's tierGraceDays or longer: moved down."
    )
    user_errors: list[UserError]


async def _set(info: Info, data: SetEnrollmentTierInput) -> EnrollmentRow:
    keep = data.tier_id is strawberry.UNSET
    return await services.set_enrollment_tier(
        info.context.principal.actor(),
        parse_id(data.enrollment_id, "Enrollment", ["enrollmentId"]),
        tier_id=None if keep else parse_optional_id(data.tier_id, "Tier", ["tierId"]),
        pinned=data.pinned,
        keep_tier=keep,
    )


async def _evaluate(info: Info, data: EvaluateTiersInput) -> services.Evaluation:
    program_id = parse_id(data.program_id, "Program", ["programId"])
    return await services.evaluate_tiers(info.context.principal.actor(), program_id, data.at)


@strawberry.type
class TiersMutation:
    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="Set an enrollment's tier by hand (history, audit and a tier.changed "
        "event); setting what it has changes nothing.",
    )
    async def set_enrollment_tier(
        self, info: Info, input: SetEnrollmentTierInput
    ) -> EnrollmentPayload:
        row, errors = await attempt(_set(info, input))
        return EnrollmentPayload(
            enrollment=Enrollment.from_model(row) if row else None, user_errors=errors
        )

    @strawberry.mutation(
        permission_classes=[ProgramsWrite],
        description="The periodic evaluation of a program's tiers: promote who qualifies "
        "higher, demote who has stayed below its tier for the program's tierGraceDays (the "
        "first evaluation that finds it below starts the count); pinned tiers are left alone.",
    )
    async def evaluate_tiers(self, info: Info, input: EvaluateTiersInput) -> EvaluateTiersPayload:
        done, errors = await attempt(_evaluate(info, input))
        if done is None:
            return EvaluateTiersPayload(promoted=[], demoted=[], user_errors=errors)
        return EvaluateTiersPayload(
            promoted=[Enrollment.from_model(row) for row in done.promoted],
            demoted=[Enrollment.from_model(row) for row in done.demoted],
            user_errors=errors,
        )
