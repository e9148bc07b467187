"""The pure tier decisions: which tier an enrollment qualifies for, promotion on credit, and the
periodic evaluation's marks, grace and demotions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.gamification.models import TierChangeReason
from domain.gamification.tier_rules import (
    Decision,
    Move,
    Standing,
    TierCriterion,
    entry_tier,
    judged_on_credit,
    manual_reason,
    meets,
    on_credit,
    on_evaluation,
    qualified_tier,
)

T = datetime(2026, 5, 1, tzinfo=UTC)
# Bronze: the entry tier (manual, lowest rank). Silver and Gold are earned; Ambassador is a
# manual tier between them that only admins grant.
BRONZE = TierCriterion(1, 1)
SILVER = TierCriterion(2, 2, "REVENUE", Decimal("100"))
AMBASSADOR = TierCriterion(3, 3)
GOLD = TierCriterion(4, 4, "REVENUE", Decimal("500"), 30)
TIERS = [BRONZE, SILVER, AMBASSADOR, GOLD]


def standing(tier: TierCriterion | None, since: datetime | None = None) -> Standing:
    return Standing(7, None if tier is None else tier.tier_id, since)


def test_a_threshold_is_met_from_its_value_on() -> None:
    assert meets(SILVER, Decimal("100"))
    assert not meets(SILVER, Decimal("99.99"))
    assert not meets(BRONZE, Decimal("1000000"))  # a manual tier is never met


def test_the_highest_rank_met_wins_and_manual_tiers_never_qualify() -> None:
    assert qualified_tier(TIERS, {SILVER.tier_id, GOLD.tier_id}) == GOLD
    assert qualified_tier(TIERS, {SILVER.tier_id}) == SILVER
    assert qualified_tier(TIERS, {BRONZE.tier_id, AMBASSADOR.tier_id}) is None
    assert qualified_tier(TIERS, set()) is None


def test_the_entry_tier_is_the_lowest_rank_when_it_is_manual() -> None:
    assert entry_tier(TIERS) == BRONZE
    assert entry_tier([SILVER, GOLD]) is None  # the lowest is earned: no entry tier
    assert entry_tier([]) is None


def test_on_credit_promotes_to_the_highest_tier_met() -> None:
    assert on_credit(TIERS, standing(BRONZE), {SILVER.tier_id}) == Decision(Move.PROMOTE, 2)
    assert on_credit(TIERS, standing(None), {SILVER.tier_id, GOLD.tier_id}) == Decision(
        Move.PROMOTE, 4
    )


def test_on_credit_never_demotes_nor_moves_sideways() -> None:
    assert on_credit(TIERS, standing(GOLD), {SILVER.tier_id}).move is Move.KEEP
    assert on_credit(TIERS, standing(GOLD), set()).move is Move.KEEP
    assert on_credit(TIERS, standing(SILVER), {SILVER.tier_id}).move is Move.KEEP


def test_on_credit_gives_no_tier_to_one_that_meets_nothing() -> None:
    assert on_credit(TIERS, standing(None), set()).move is Move.KEEP


def test_a_manual_tier_above_what_is_earned_is_kept() -> None:
    assert on_credit(TIERS, standing(AMBASSADOR), {SILVER.tier_id}).move is Move.KEEP
    assert on_credit(TIERS, standing(AMBASSADOR), {GOLD.tier_id}) == Decision(Move.PROMOTE, 4)


def test_on_credit_clears_the_mark_of_one_meeting_its_tier_again() -> None:
    marked = standing(GOLD, T - timedelta(days=3))
    assert on_credit(TIERS, marked, {GOLD.tier_id}).move is Move.CLEAR
    assert on_credit(TIERS, marked, {SILVER.tier_id}).move is Move.KEEP


def test_evaluation_marks_the_first_time_below() -> None:
    decision = on_evaluation(TIERS, standing(GOLD), {SILVER.tier_id}, T, 10)
    assert decision.move is Move.MARK


def test_evaluation_keeps_a_marked_tier_within_the_grace_days() -> None:
    marked = standing(GOLD, T - timedelta(days=10) + timedelta(seconds=1))
    assert on_evaluation(TIERS, marked, {SILVER.tier_id}, T, 10).move is Move.KEEP


def test_evaluation_demotes_after_the_grace_days_to_the_tier_still_met() -> None:
    marked = standing(GOLD, T - timedelta(days=10))
    assert on_evaluation(TIERS, marked, {SILVER.tier_id}, T, 10) == Decision(Move.DEMOTE, 2)


def test_a_demotion_skips_manual_tiers_and_lands_on_the_entry_tier() -> None:
    marked = standing(GOLD, T - timedelta(days=30))
    assert on_evaluation(TIERS, marked, set(), T, 10) == Decision(Move.DEMOTE, BRONZE.tier_id)


def test_without_an_entry_tier_a_demotion_leaves_no_tier() -> None:
    marked = Standing(7, SILVER.tier_id, T - timedelta(days=30))
    assert on_evaluation([SILVER, GOLD], marked, set(), T, 10) == Decision(Move.DEMOTE, None)


def test_no_grace_demotes_at_the_first_evaluation() -> None:
    assert on_evaluation(TIERS, standing(GOLD), set(), T, 0) == Decision(Move.DEMOTE, 1)


def test_evaluation_clears_the_mark_of_one_that_qualifies_again() -> None:
    marked = standing(GOLD, T - timedelta(days=30))
    assert on_evaluation(TIERS, marked, {GOLD.tier_id}, T, 10).move is Move.CLEAR


def test_evaluation_promotes_like_credits_do() -> None:
    assert on_evaluation(TIERS, standing(BRONZE), {SILVER.tier_id}, T, 10) == Decision(
        Move.PROMOTE, 2
    )


def test_manual_and_entry_tiers_are_never_below_their_qualification() -> None:
    for tier in (BRONZE, AMBASSADOR):
        assert on_evaluation(TIERS, standing(tier), set(), T, 0).move is Move.KEEP


def test_an_earlier_mark_than_at_is_not_moved_and_a_later_one_waits() -> None:
    later = standing(GOLD, T + timedelta(days=1))  # evaluating an instant before the mark
    assert on_evaluation(TIERS, later, set(), T, 0).move is Move.KEEP


def test_on_credit_measures_only_the_tiers_above_and_a_marked_own_tier() -> None:
    assert judged_on_credit(TIERS, standing(None)) == {SILVER.tier_id, GOLD.tier_id}
    assert judged_on_credit(TIERS, standing(AMBASSADOR)) == {GOLD.tier_id}
    assert judged_on_credit(TIERS, standing(GOLD)) == set()
    assert judged_on_credit(TIERS, standing(GOLD, T)) == {GOLD.tier_id}


@pytest.mark.parametrize(
    ("before", "after", "was_pinned", "pinned", "reason"),
    [
        (1, 4, False, True, TierChangeReason.PINNED),
        (4, 4, False, True, TierChangeReason.PINNED),  # pinning the tier it has
        (4, 4, True, False, TierChangeReason.UNPINNED),
        (4, 2, True, False, TierChangeReason.UNPINNED),
        (4, None, False, False, TierChangeReason.SET),
        (None, 2, False, False, TierChangeReason.SET),
        (4, 2, True, True, TierChangeReason.PINNED),
        (4, 4, True, True, None),
        (None, None, False, False, None),
    ],
)
def test_why_an_admins_setting_is_a_change(
    before: int | None,
    after: int | None,
    was_pinned: bool,
    pinned: bool,
    reason: TierChangeReason | None,
) -> None:
    assert manual_reason(before, after, was_pinned, pinned) == reason


ranks = st.lists(st.integers(0, 20), min_size=1, max_size=6, unique=True)


def drawn_tiers(tier_ranks: list[int], data: st.DataObject) -> list[TierCriterion]:
    """Tiers of these ranks, each earned (POINTS >= 1) or manual at random."""
    tiers = []
    for rank in tier_ranks:
        earned = data.draw(st.booleans())
        metric, threshold = ("POINTS", Decimal(1)) if earned else (None, None)
        tiers.append(TierCriterion(rank + 100, rank, metric, threshold))
    return tiers


@given(ranks, st.data())
def test_promotion_only_ever_raises_the_rank(tier_ranks: list[int], data: st.DataObject) -> None:
    tiers = drawn_tiers(tier_ranks, data)
    current = data.draw(st.sampled_from([None, *tiers]))
    met = data.draw(st.sets(st.sampled_from([t.tier_id for t in tiers])))
    decision = on_credit(tiers, standing(current), met)
    if decision.move is Move.PROMOTE:
        target = next(t for t in tiers if t.tier_id == decision.to_tier_id)
        assert target.earned
        assert target.tier_id in met
        assert current is None or target.rank > current.rank
    else:
        assert decision.move is Move.KEEP


@given(ranks, st.data())
def test_a_demotion_always_lowers_the_rank(tier_ranks: list[int], data: st.DataObject) -> None:
    tiers = drawn_tiers(tier_ranks, data)
    current = data.draw(st.sampled_from(tiers))
    met = data.draw(st.sets(st.sampled_from([t.tier_id for t in tiers])))
    decision = on_evaluation(tiers, standing(current, T - timedelta(days=99)), met, T, 10)
    if decision.move is Move.DEMOTE:
        assert current.earned
        if decision.to_tier_id is not None:
            target = next(t for t in tiers if t.tier_id == decision.to_tier_id)
            assert target.rank < current.rank


@given(ranks, st.data())
def test_on_credit_decides_alike_on_the_judged_tiers_alone(
    tier_ranks: list[int], data: st.DataObject
) -> None:
    tiers = drawn_tiers(tier_ranks, data)
    current = data.draw(st.sampled_from([None, *tiers]))
    since = data.draw(st.sampled_from([None, T]))
    met = data.draw(st.sets(st.sampled_from([t.tier_id for t in tiers])))
    position = standing(current, since)
    judged = judged_on_credit(tiers, position)
    assert on_credit(tiers, position, met & judged) == on_credit(tiers, position, met)
