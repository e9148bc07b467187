"""Which tier an enrollment has earned, and what to do about it: pure decisions.

A tier with a qualification (`qualify_metric` and `qualify_threshold`, over the trailing
`qualify_period_days` or all time) is *earned*: an enrollment qualifies for the highest-rank
earned tier whose criterion it meets. A tier without one is *manual*: only an admin grants it,
and nobody falls out of it. The program's lowest-rank tier, when it is manual, is the *entry*
tier: where a demotion lands when no earned tier below is met. An enrollment with no tier is
never put in a manual tier automatically (not even the entry tier); it rises only by earning.

- When conversions are credited, an enrollment is promoted to the tier it qualifies for if
  that tier ranks above its own: as soon as it qualifies, never demoted there.
- A periodic evaluation also demotes: an enrollment below its earned tier's qualification is
  marked (`unqualified_since`, the first evaluation that saw it) and demoted only once it has
  stayed below for the program's grace days; qualifying again clears the mark.
- Pinned enrollments are never changed automatically (the services leave them out).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.gamification.models import TierChangeReason


@dataclass(frozen=True, slots=True)
class TierCriterion:
    """A tier as its qualification sees it; `metric` None is a manual tier."""

    tier_id: int
    rank: int
    metric: str | None = None
    threshold: Decimal | None = None
    period_days: int | None = None

    @property
    def earned(self) -> bool:
        return self.metric is not None and self.threshold is not None

    @property
    def measure(self) -> tuple[str, int | None]:
        """What must be measured to judge it: (metric, trailing days or None for all time)."""
        assert self.metric is not None
        return self.metric, self.period_days


def meets(tier: TierCriterion, value: Decimal) -> bool:
    """Whether a measured value reaches the tier's threshold (a manual tier is never met)."""
    return tier.threshold is not None and tier.metric is not None and value >= tier.threshold


def qualified_tier(tiers: Sequence[TierCriterion], met: Collection[int]) -> TierCriterion | None:
    """The highest-rank earned tier among those whose criterion is met (`met`: tier ids)."""
    best = None
    for tier in tiers:
        if tier.earned and tier.tier_id in met and (best is None or tier.rank > best.rank):
            best = tier
    return best


def entry_tier(tiers: Sequence[TierCriterion]) -> TierCriterion | None:
    """The program's lowest-rank tier when it is manual: where demotions bottom out."""
    if not tiers:
        return None
    lowest = min(tiers, key=lambda t: t.rank)
    return None if lowest.earned else lowest


class Move(StrEnum):
    KEEP = "KEEP"
    PROMOTE = "PROMOTE"
    DEMOTE = "DEMOTE"
    MARK = "MARK"  # below its tier, within the grace period: remember since when
    CLEAR = "CLEAR"  # qualifies again: forget the mark


@dataclass(frozen=True, slots=True)
class Standing:
    """An enrollment's tier and since when it is below that tier's qualification."""

    enrollment_id: int
    tier_id: int | None
    unqualified_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    move: Move
    to_tier_id: int | None = None  # for PROMOTE and DEMOTE


KEEP = Decision(Move.KEEP)


def _rank(tier: TierCriterion | None) -> float:
    return float("-inf") if tier is None else tier.rank


def _current(tiers: Sequence[TierCriterion], tier_id: int | None) -> TierCriterion | None:
    return next((t for t in tiers if t.tier_id == tier_id), None)


def _below(current: TierCriterion | None, qualified: TierCriterion | None) -> bool:
    """Whether an enrollment holds an earned tier above what it qualifies for."""
    return current is not None and current.earned and _rank(qualified) < current.rank


def on_credit(tiers: Sequence[TierCriterion], standing: Standing, met: Collection[int]) -> Decision:
    """After new credits: promote to the qualified tier if it ranks higher; clear the mark of
    one that meets its own tier again; never demote."""
    current = _current(tiers, standing.tier_id)
    qualified = qualified_tier(tiers, met)
    if qualified is not None and qualified.rank > _rank(current):
        return Decision(Move.PROMOTE, qualified.tier_id)
    if standing.unqualified_since is not None and not _below(current, qualified):
        return Decision(Move.CLEAR)
    return KEEP


def judged_on_credit(tiers: Sequence[TierCriterion], standing: Standing) -> frozenset[int]:
    """The earned tiers worth measuring for `on_credit`: those ranking above the enrollment's
    tier, and its own tier while it is marked (meeting it clears the mark). `on_credit` decides
    the same on these alone as on all of them; one at the top, unmarked, needs nothing."""
    current = _current(tiers, standing.tier_id)
    floor = _rank(current)
    marked = standing.unqualified_since is not None
    return frozenset(
        t.tier_id for t in tiers if t.earned and (t.rank > floor or (marked and t == current))
    )


def demotion_target(
    tiers: Sequence[TierCriterion], current: TierCriterion, qualified: TierCriterion | None
) -> int | None:
    """Where a demotion from `current` lands: the tier it qualifies for, else the entry tier
    (when that ranks below), else no tier."""
    if qualified is not None:
        return qualified.tier_id
    entry = entry_tier(tiers)
    return entry.tier_id if entry is not None and entry.rank < current.rank else None


def on_evaluation(
    tiers: Sequence[TierCriterion],
    standing: Standing,
    met: Collection[int],
    at: datetime,
    grace_days: int,
) -> Decision:
    """The periodic evaluation at `at`: promote as on credit; below its earned tier, demote
    once it has been below for `grace_days` (counted from the first evaluation that saw it),
    else mark it; qualifying again clears the mark."""
    current = _current(tiers, standing.tier_id)
    qualified = qualified_tier(tiers, met)
    if qualified is not None and qualified.rank > _rank(current):
        return Decision(Move.PROMOTE, qualified.tier_id)
    if current is not None and _below(current, qualified):
        since = standing.unqualified_since or at
        if at - since >= timedelta(days=grace_days):
            return Decision(Move.DEMOTE, demotion_target(tiers, current, qualified))
        return KEEP if standing.unqualified_since is not None else Decision(Move.MARK)
    return KEEP if standing.unqualified_since is None else Decision(Move.CLEAR)


def manual_reason(
    from_tier: int | None, to_tier: int | None, was_pinned: bool, pinned: bool
) -> TierChangeReason | None:
    """Why an admin's setting is a change: PINNED when the result is pinned (a new tier, or
    the tier it has newly pinned), UNPINNED when a pin is lifted, SET for a new tier left
    unpinned; None when nothing changes."""
    if from_tier == to_tier and was_pinned == pinned:
        return None
    if pinned:
        return TierChangeReason.PINNED
    return TierChangeReason.UNPINNED if was_pinned else TierChangeReason.SET
