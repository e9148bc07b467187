"""What the events of tracking earn in points and badges: the calls ingestion, pixel
confirmation, recomputes, refunds and the click writer make, inside their own transaction.

- Conversions credited (recorded, confirmed or recomputed): their credits' points are settled
  (`points.py`), then the program's conversion badges (LEADS, CONVERSIONS, REVENUE,
  REFERRED_CUSTOMERS, ACTIVE_MONTHS_STREAK, POINTS) are evaluated for the enrollments they
  credit, or credited before a recompute.
- A refund takes back points in proportion; it takes back no award (`badges.py`).
- Clicks stored: the CLICKS badges of their programs, for the enrollments clicked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.gamification import awards, points
from domain.gamification.awards import Awarded
from domain.gamification.models import BadgeMetric
from domain.gamification.points import NewPoints
from domain.programs.models import Program


@dataclass(frozen=True, slots=True)
class Rewarded:
    points: list[NewPoints] = field(default_factory=list)
    awards: list[Awarded] = field(default_factory=list)


async def conversions_credited(
    program: Program, conversion_ids: Sequence[int], *, new: bool
) -> Rewarded:
    """Points and badges for conversions just credited (`new`: recorded or confirmed now, so
    they have no points yet) or credited again (a recompute)."""
    if not conversion_ids:
        return Rewarded()
    rules = await points.rules_by_kind(program.pk)
    badges = await awards.program_badges(program.pk)
    if new and not rules and not badges:
        return Rewarded()
    credits = await points.credits_of(conversion_ids)
    entries = []
    if rules or not new:
        entries = await points.settle_credits(program, conversion_ids, credits, rules, new)
    touched = {c.enrollment_id for c in credits} | {e.enrollment_id for e in entries}
    made = await awards.award_badges(program, touched, awards.CONVERSION_METRICS, badges)
    return Rewarded(entries, made)


async def conversions_refunded(program: Program, conversion_ids: Sequence[int]) -> Rewarded:
    """The points these conversions' refunds take back."""
    return Rewarded(await points.reverse_refunds(program, conversion_ids))


async def clicks_stored(clicked: Mapping[int, set[int]]) -> list[Awarded]:
    """CLICKS badges for the enrollments clicked, by program (programs with CLICKS badges)."""
    made = []
    for program in await Program.filter(id__in=sorted(clicked)).order_by("id"):
        made += await awards.award_badges(program, clicked[program.pk], {BadgeMetric.CLICKS})
    return made
