"""Badges: creating them, reading them and their awards, and which programs have CLICKS badges.

A badge is declarative: a metric (`metrics.py`) reaching a threshold, all time or within a
trailing period of days. A one-off badge is awarded once; a repeating badge is a milestone,
awarded again at every multiple of its threshold. Awarding is `awards.py`. A refund does not
take an award back (the points it took back may leave a POINTS badge's holder below its
threshold): an award records that the threshold was reached, and its bonus may be paid.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.db import select
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.gamification import criteria
from domain.gamification.models import Badge, BadgeAward, BadgeMetric
from domain.pagination import by_ids, in_list
from domain.programs.models import Program

CLICK_BADGES_SECONDS = 5.0  # a new CLICKS badge counts clicks on every worker within this


def _snapshot(badge: Badge) -> dict[str, object]:
    return {
        "code": badge.code,
        "name": badge.name,
        "description": badge.description,
        "imageUrl": badge.image_url,
        "metric": str(badge.metric),
        "threshold": str(badge.threshold),
        "periodDays": badge.period_days,
        "points": badge.points,
        "bonusMinor": badge.bonus_minor,
        "repeating": badge.repeating,
    }


async def create_badge(actor: Actor, program_id: int, spec: criteria.BadgeSpec) -> Badge:
    """A new badge of a program (its code unique in the program); audited. It is awarded from
    the next event that moves its metric on (an enrollment already past the threshold gets it
    then)."""
    program = await Program.get_or_none(id=program_id)
    if program is None:
        raise not_found(["programId"], "program")
    errors = ErrorCollector()
    columns = criteria.badge_columns(errors, spec, program.currency)
    errors.raise_if_any()
    taken = DomainError(ErrorCode.CONFLICT, ["code"], "the program has a badge with this code")
    try:
        async with in_transaction():
            await Program.filter(id=program.pk).select_for_update().first()
            if await Badge.filter(program_id=program.pk).count() >= criteria.MAX_BADGES:
                message = f"a program has at most {criteria.MAX_BADGES} badges"
                raise DomainError(ErrorCode.LIMIT_EXCEEDED, ["programId"], message)
            if await Badge.filter(program_id=program.pk, code=columns["code"]).exists():
                raise taken
            badge = await Badge.create(program_id=program.pk, **columns)
            await audit.record(actor, "createBadge", badge, None, _snapshot(badge))
    except IntegrityError:  # a concurrent createBadge took the code
        raise taken from None
    return badge


async def badges_by_programs(program_ids: list[int]) -> list[list[Badge]]:
    """Each program's badges, oldest first."""
    found: dict[int, list[Badge]] = defaultdict(list)
    for row in await Badge.filter(program_id__in=program_ids).order_by("id"):
        found[row.program_id].append(row)
    return [found[p] for p in program_ids]


async def badges_by_ids(ids: list[int]) -> list[Badge | None]:
    return await by_ids(Badge, ids)


async def awards_by_ids(ids: list[int]) -> list[BadgeAward | None]:
    return await by_ids(BadgeAward, ids)


async def awards_by_enrollments(enrollment_ids: list[int]) -> list[list[BadgeAward]]:
    """Each enrollment's awards, in the order they were made."""
    found: dict[int, list[BadgeAward]] = defaultdict(list)
    for row in await BadgeAward.filter(enrollment_id__in=enrollment_ids).order_by("id"):
        found[row.enrollment_id].append(row)
    return [found[e] for e in enrollment_ids]


async def holders(badge_ids: list[int]) -> dict[int, int]:
    """How many distinct enrollments hold each badge."""
    found = dict.fromkeys(badge_ids, 0)
    unique = sorted(set(badge_ids))
    if unique:
        rows = await select(
            "SELECT badge_id, COUNT(DISTINCT enrollment_id) FROM badge_awards WHERE badge_id IN "
            f"({in_list(len(unique))}) GROUP BY badge_id",
            unique,
        )
        found.update({badge: int(count) for badge, count in rows})
    return found


class ClickBadges:
    """Which programs have CLICKS badges, remembered for `ttl` seconds per program: the click
    path asks for every batch and must not query for each."""

    def __init__(
        self, ttl: float = CLICK_BADGES_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._known: dict[int, tuple[bool, float]] = {}

    def clear(self) -> None:
        self._known.clear()

    async def programs_with(self, program_ids: Iterable[int]) -> set[int]:
        now = self.clock()
        wanted = set(program_ids)
        if len(self._known) > 10_000:  # simple bound: a refill costs one query
            self._known.clear()
        stale = sorted(p for p in wanted if (hit := self._known.get(p)) is None or hit[1] <= now)
        if stale:
            rows = await select(
                "SELECT DISTINCT program_id FROM badges WHERE metric = {} AND program_id IN "
                f"({in_list(len(stale))})",
                [BadgeMetric.CLICKS.value, *stale],
            )
            having = {int(row[0]) for row in rows}
            for program_id in stale:
                self._known[program_id] = (program_id in having, now + self.ttl)
        return {p for p in wanted if self._known[p][0]}
