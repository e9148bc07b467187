"""Leaderboards: `Query.leaderboard` and its entries."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry

from api import policy
from api.context import Info
from api.errors import bad_argument
from api.partners.types import Enrollment
from api.relay import from_global_id
from domain.gamification import leaderboard as domain

LeaderboardMetric = domain.LeaderboardMetric
strawberry.enum(
    LeaderboardMetric,
    description="What a leaderboard ranks by: POINTS, REVENUE (credited sales and renewals "
    "less refunds, in the program's currency), CONVERSIONS (credited conversions) or "
    "REFERRED_CUSTOMERS (distinct customers with a credited sale).",
)
LeaderboardPeriod = domain.LeaderboardPeriod
strawberry.enum(
    LeaderboardPeriod,
    description="What a leaderboard counts: THIS_MONTH (since the start of the UTC calendar "
    "month), LAST_30_DAYS or ALL_TIME.",
)
DEFAULT_FIRST = 10


@strawberry.type(description="One enrollment's place on a leaderboard.")
class LeaderboardEntry:
    rank: int = strawberry.field(
        description="1 + how many enrollments have a greater value: ties share a rank."
    )
    name: str | None = strawberry.field(
        description="The partner's name; null for other partners when the program's "
        "leaderboardVisibility is ANONYMIZED (admins always see names)."
    )
    value: Decimal = strawberry.field(
        description="The metric's value: a count, points, or an amount in the program's currency."
    )
    is_viewer: bool = strawberry.field(description="Whether this is the asking partner's entry.")
    enrollment_pk: strawberry.Private[int]

    @classmethod
    def from_entry(cls, entry: domain.LeaderboardEntry) -> LeaderboardEntry:
        return cls(
            rank=entry.rank,
            name=entry.name,
            value=entry.value,
            is_viewer=entry.is_viewer,
            enrollment_pk=entry.enrollment_id,
        )

    @strawberry.field(
        description="The enrollment: a partner's own entry only (null on others'); admins and "
        "APP tokens with partners:read reach every one."
    )
    async def enrollment(self, info: Info) -> Enrollment | None:
        if not self.is_viewer and policy.partner_scope(info.context.principal) is not None:
            return None  # another partner's (the scoped loader would not find it either)
        row = await info.context.loaders.enrollment_by_id.load(self.enrollment_pk)
        return Enrollment.from_model(row) if row is not None else None


@strawberry.type
class LeaderboardQuery:
    @strawberry.field(
        description="A program's active enrollments ranked by a metric over a period, the top "
        "`first` (0 to 100) by value (ties in order of enrollment); enrollments with a value of "
        "0 are not listed. A partner also gets its own entry, after the top when it is not in "
        "it, and sees others' entries as the program's leaderboardVisibility allows (NAMES, "
        "ANONYMIZED: no names, OWN_RANK_ONLY: its own entry alone); a program it is not "
        "actively enrolled in has no entries. Admins and APP tokens with reports:read see "
        "every name."
    )
    async def leaderboard(
        self,
        info: Info,
        program_id: strawberry.ID,
        metric: LeaderboardMetric,
        period: LeaderboardPeriod | None = LeaderboardPeriod.ALL_TIME,
        first: Annotated[int | None, strawberry.argument(description="0 to 100.")] = DEFAULT_FIRST,
    ) -> list[LeaderboardEntry]:
        principal = info.context.principal
        policy.ensure_read(principal, "LeaderboardEntry")
        limit = DEFAULT_FIRST if first is None else first
        if not 0 <= limit <= domain.MAX_ENTRIES:
            raise bad_argument(f"first must be between 0 and {domain.MAX_ENTRIES}")
        parsed = from_global_id(program_id)
        if parsed is None or parsed[0] != "Program":
            return []  # not a program ID: no program has this leaderboard
        entries = await domain.leaderboard(
            parsed[1],
            metric,
            period or LeaderboardPeriod.ALL_TIME,
            limit,
            policy.partner_scope(principal),
        )
        return [LeaderboardEntry.from_entry(entry) for entry in entries]
