"""Commission math against hand-worked examples and invariants.

Every expected value is worked out by hand in the comment beside it, from the module's
specification (`domain/commissions/rules.py`), never by calling the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.commissions.rules import (
    CreditFacts,
    RuleTerms,
    add_months,
    decay_factor,
    earn,
    month_of,
    position_target,
    referee_reward_minor,
    select_rule,
)

T0 = datetime(2026, 1, 15, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
ENROLLMENT, TIER = 10, 1


def rule(rule_id: int = 1, kind: str = "SALE", **terms: Any) -> RuleTerms:
    return RuleTerms(rule_id, 1, kind, **terms)


def facts(**overrides: Any) -> CreditFacts:
    values: dict[str, Any] = {
        "kind": "SALE",
        "conversion_minor": 10_000,
        "credited_minor": 10_000,
        "share": Fraction(1),
        "occurred_at": T0,
    }
    return CreditFacts(**(values | overrides))


def pick(rules: list[RuleTerms], kind: str = "SALE", at: datetime = T0) -> int | None:
    """The id of the rule chosen for ENROLLMENT (in TIER), whatever order the rules come in."""
    chosen = select_rule(rules, kind, ENROLLMENT, TIER, at)
    backwards = select_rule(list(reversed(rules)), kind, ENROLLMENT, TIER, at)
    assert chosen == backwards
    return None if chosen is None else chosen.rule_id


# select_rule: which rule prices a credit


@pytest.mark.parametrize("kind", ["LEAD", "SIGNUP", "SALE", "RENEWAL"])
def test_the_rule_for_the_conversions_kind_is_chosen(kind: str) -> None:
    rules = [rule(1, "LEAD"), rule(2, "SIGNUP"), rule(3, "SALE"), rule(4, "RENEWAL")]
    expected = {"LEAD": 1, "SIGNUP": 2, "SALE": 3, "RENEWAL": 4}[kind]
    assert pick(rules, kind) == expected


def test_a_rule_for_another_kind_does_not_apply() -> None:
    assert pick([rule(1, "LEAD"), rule(2, "RENEWAL")], "SALE") is None
    assert pick([rule(1, "SALE")], "SIGNUP") is None


def test_a_rule_is_in_force_from_its_start_inclusive() -> None:
    rules = [rule(1, starts_at=T0)]
    assert pick(rules, at=T0) == 1
    assert pick(rules, at=T0 - US) is None


def test_a_rule_is_no_longer_in_force_at_its_end() -> None:
    rules = [rule(1, ends_at=T0)]
    assert pick(rules, at=T0 - US) == 1
    assert pick(rules, at=T0) is None


def test_a_rule_replaced_at_an_instant_prices_before_it_and_its_successor_from_it() -> None:
    old, new = rule(1, ends_at=T0), rule(2, starts_at=T0)
    assert pick([old, new], at=T0 - US) == 1
    assert pick([old, new], at=T0) == 2


def test_an_archived_rule_prices_what_happened_before_its_end() -> None:
    # archiving sets endsAt: conversions before it keep the rule, later ones do not
    archived = rule(9, priority=100, enrollment_id=ENROLLMENT, archived=True, ends_at=T0)
    assert pick([archived, rule(1)], at=T0 - timedelta(seconds=1)) == 9
    assert pick([archived, rule(1)], at=T0) == 1
    assert pick([archived], at=T0) is None


def test_the_most_specific_rule_wins_whatever_the_priorities() -> None:
    program = rule(1, priority=100)
    tier = rule(2, priority=0, tier_id=TIER)
    enrollment = rule(3, priority=-5, enrollment_id=ENROLLMENT)
    assert pick([program, tier, enrollment]) == 3
    assert pick([program, tier]) == 2
    assert pick([program]) == 1


def test_at_the_same_scope_the_highest_priority_wins_over_a_newer_rule() -> None:
    assert pick([rule(1, priority=5), rule(2, priority=1)]) == 1
    assert pick([rule(1, priority=-1, tier_id=TIER), rule(2, priority=-3, tier_id=TIER)]) == 1


def test_at_the_same_scope_and_priority_the_newest_rule_wins() -> None:
    assert pick([rule(3), rule(8), rule(5)]) == 8


def test_a_sale_rule_without_recurring_months_does_not_price_a_renewal() -> None:
    assert pick([rule(1, "SALE")], "RENEWAL") is None
    assert pick([rule(1, "SALE", recurring_months=12)], "RENEWAL") == 1


def test_a_renewal_rule_does_not_price_a_sale() -> None:
    assert pick([rule(1, "RENEWAL")], "SALE") is None


def test_a_renewal_rule_beats_a_newer_recurring_sale_rule_of_equal_scope_and_priority() -> None:
    renewal = rule(1, "RENEWAL", priority=2)
    recurring_sale = rule(9, "SALE", priority=2, recurring_months=12)
    assert pick([renewal, recurring_sale], "RENEWAL") == 1
    # ...but the SALE rule still prices SALEs.
    assert pick([renewal, recurring_sale], "SALE") == 9


def test_a_recurring_sale_rule_wins_over_a_renewal_rule_by_priority_or_scope() -> None:
    renewal = rule(1, "RENEWAL", priority=2)
    assert pick([renewal, rule(2, "SALE", priority=3, recurring_months=12)], "RENEWAL") == 2
    assert pick([renewal, rule(3, "SALE", tier_id=TIER, recurring_months=12)], "RENEWAL") == 3


def test_rules_for_another_tier_or_enrollment_do_not_apply() -> None:
    program = rule(1)
    other_tier = rule(2, priority=9, tier_id=TIER + 1)
    other_enrollment = rule(3, priority=9, enrollment_id=ENROLLMENT + 1)
    assert pick([program, other_tier, other_enrollment]) == 1
    assert pick([other_tier, other_enrollment]) is None


def test_an_enrollment_without_a_tier_takes_no_tier_rule() -> None:
    rules = [rule(1), rule(2, tier_id=TIER)]
    chosen = select_rule(rules, "SALE", ENROLLMENT, None, T0)
    assert chosen is not None
    assert chosen.rule_id == 1


def test_no_rule_at_all_chooses_none() -> None:
    assert pick([]) is None


# earn: the base


def test_a_percentage_is_of_the_credited_amount() -> None:
    # 20 % of the credited 2 500 (not of the conversion's 10 000) = 500
    earned = earn(rule(percentage=Decimal("20")), facts(credited_minor=2_500))
    assert earned.amount_minor == 500


@pytest.mark.parametrize(
    ("percentage", "credited", "expected"),
    [
        ("20", 1_234, 247),  # 246.8 -> 247
        ("12.5", 20, 2),  # 2.5 -> 2 (half to even)
        ("12.5", 28, 4),  # 3.5 -> 4 (half to even)
        ("0.0001", 10_000_000, 10),  # 10 000 000 * 0.0001 / 100 = 10
        ("100", 9_999, 9_999),
        ("33.3333", 3, 1),  # 0.999999 -> 1
    ],
)
def test_percentages_are_exact_then_rounded_half_even(
    percentage: str, credited: int, expected: int
) -> None:
    earned = earn(rule(percentage=Decimal(percentage)), facts(credited_minor=credited))
    assert earned.amount_minor == expected


@pytest.mark.parametrize(
    ("flat", "share", "expected"),
    [
        (1_000, Fraction(1), 1_000),
        (1_000, Fraction(1, 3), 333),  # 333.33 -> 333
        (1_000, Fraction(2, 3), 667),  # 666.67 -> 667
        (5, Fraction(1, 2), 2),  # 2.5 -> 2 (half to even)
        (7, Fraction(1, 2), 4),  # 3.5 -> 4 (half to even)
        (1_000, Fraction(0), 0),
    ],
)
def test_a_flat_amount_is_split_by_the_share(flat: int, share: Fraction, expected: int) -> None:
    # the credited amount plays no part in a flat rule
    earned = earn(rule(flat_minor=flat), facts(credited_minor=1, share=share))
    assert earned.amount_minor == expected


# earn: the minimum


def test_a_conversion_below_the_minimum_earns_nothing() -> None:
    earned = earn(rule(percentage=Decimal("20"), minimum_minor=1_000), facts(conversion_minor=999))
    assert earned.amount_minor == 0


def test_a_conversion_at_the_minimum_earns() -> None:
    # 20 % of 1 000 = 200
    earned = earn(
        rule(percentage=Decimal("20"), minimum_minor=1_000),
        facts(conversion_minor=1_000, credited_minor=1_000),
    )
    assert earned.amount_minor == 200


def test_the_minimum_is_on_the_conversions_amount_not_the_credited_part() -> None:
    # the conversion (1 000) reaches the minimum of 500; the credited 400 is below it but
    # the rule prices the credit anyway: 20 % of 400 = 80
    earned = earn(
        rule(percentage=Decimal("20"), minimum_minor=500),
        facts(conversion_minor=1_000, credited_minor=400),
    )
    assert earned.amount_minor == 80


# earn: recurring commissions


def renewal(occurred_at: datetime, first_sale_at: datetime) -> CreditFacts:
    return facts(kind="RENEWAL", occurred_at=occurred_at, first_sale_at=first_sale_at)


def test_a_renewal_within_the_recurring_months_earns() -> None:
    # first sale 2025-03-15 12:00, 12 months: pays until 2026-03-15 12:00 (exclusive)
    first = datetime(2025, 3, 15, 12, tzinfo=UTC)
    terms = rule(kind="SALE", percentage=Decimal("10"), recurring_months=12)
    earned = earn(terms, renewal(datetime(2026, 3, 15, 11, 59, tzinfo=UTC), first))
    assert earned.amount_minor == 1_000  # 10 % of 10 000


def test_a_renewal_at_or_after_the_end_of_the_recurring_months_earns_nothing() -> None:
    first = datetime(2025, 3, 15, 12, tzinfo=UTC)
    terms = rule(kind="SALE", percentage=Decimal("10"), recurring_months=12)
    at_end = earn(terms, renewal(datetime(2026, 3, 15, 12, tzinfo=UTC), first))
    after = earn(terms, renewal(datetime(2027, 1, 1, tzinfo=UTC), first))
    assert (at_end.amount_minor, after.amount_minor) == (0, 0)
    assert any("2026-03-15T12:00:00" in step for step in at_end.steps)


@pytest.mark.parametrize(
    ("year", "last_day"),
    [(2023, 28), (2024, 29)],  # Jan 31 + 1 month is the last day of February
)
def test_the_recurring_window_ends_on_the_last_day_of_a_shorter_month(
    year: int, last_day: int
) -> None:
    first = datetime(year, 1, 31, 10, tzinfo=UTC)
    end = datetime(year, 2, last_day, 10, tzinfo=UTC)
    terms = rule(kind="RENEWAL", flat_minor=500, recurring_months=1)
    assert earn(terms, renewal(end - US, first)).amount_minor == 500
    assert earn(terms, renewal(end, first)).amount_minor == 0


def test_a_renewal_rule_without_recurring_months_pays_forever() -> None:
    first = datetime(2010, 1, 1, tzinfo=UTC)
    earned = earn(rule(kind="RENEWAL", flat_minor=500), renewal(T0, first))
    assert earned.amount_minor == 500


def test_a_recurring_sale_rule_still_prices_the_sale_itself() -> None:
    # the window only limits RENEWALs: a SALE long after another first sale still earns
    first = datetime(2010, 1, 1, tzinfo=UTC)
    terms = rule(kind="SALE", flat_minor=500, recurring_months=1)
    assert earn(terms, facts(first_sale_at=first)).amount_minor == 500


# earn: decay


def decayed(days: float, half_life: float, **terms: Any) -> int:
    referred = T0 - timedelta(days=days)
    return earn(rule(half_life_days=half_life, **terms), facts(referred_at=referred)).amount_minor


def test_one_half_life_halves_exactly() -> None:
    # 20 % of 10 000 = 2 000, one 30-day half-life later: 1 000
    assert decayed(30, 30.0, percentage=Decimal("20")) == 1_000


def test_two_half_lives_quarter() -> None:
    # 2 000 / 4 = 500
    assert decayed(60, 30.0, percentage=Decimal("20")) == 500


def test_half_a_half_life_divides_by_root_two() -> None:
    # 1 000 * 2 ** -0.5 = 1 000 * 0.70710678... = 707.1 -> 707
    assert decayed(5, 10.0, flat_minor=1_000) == 707


def test_no_time_elapsed_leaves_the_amount_unchanged() -> None:
    earned = earn(rule(percentage=Decimal("20"), half_life_days=30.0), facts(referred_at=T0))
    assert earned.amount_minor == 2_000
    assert not any("half-life" in step for step in earned.steps)


def test_without_a_referral_time_nothing_decays() -> None:
    earned = earn(rule(percentage=Decimal("20"), half_life_days=1.0), facts(referred_at=None))
    assert earned.amount_minor == 2_000


def test_decay_comes_before_the_cap() -> None:
    # 50 % of 10 000 = 5 000, halved = 2 500: under the cap of 3 000. (Capping first would
    # give 3 000 / 2 = 1 500.)
    assert decayed(30, 30.0, percentage=Decimal("50"), cap_minor=3_000) == 2_500


def test_rounding_happens_once_at_the_end() -> None:
    # flat 5 x share 1/2 = 2.5, two half-lives: 2.5 / 4 = 0.625 -> 1. Rounding the base first
    # would give 2 (half-even), then 0.5 -> 0.
    referred = T0 - timedelta(days=2)
    earned = earn(
        rule(flat_minor=5, half_life_days=1.0),
        facts(share=Fraction(1, 2), referred_at=referred),
    )
    assert earned.amount_minor == 1


# earn: caps


def test_the_per_conversion_cap_limits_the_amount() -> None:
    # 50 % of 10 000 = 5 000 > 3 000
    earned = earn(rule(percentage=Decimal("50"), cap_minor=3_000), facts())
    assert earned.amount_minor == 3_000
    assert any("capped at 3000" in step for step in earned.steps)


def test_an_amount_under_or_at_the_cap_is_unchanged() -> None:
    # 50 % of 4 000 = 2 000; 50 % of 6 000 = 3 000
    under = earn(rule(percentage=Decimal("50"), cap_minor=3_000), facts(credited_minor=4_000))
    at = earn(rule(percentage=Decimal("50"), cap_minor=3_000), facts(credited_minor=6_000))
    assert (under.amount_minor, at.amount_minor) == (2_000, 3_000)


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        (0, 2_000),  # room 5 000: the whole 20 % of 10 000
        (3_000, 2_000),  # room 2 000: exactly enough
        (4_000, 1_000),  # room 1 000
        (5_000, 0),  # fully used
        (7_000, 0),  # over-used earlier: still 0, never negative
    ],
)
def test_the_monthly_cap_leaves_what_earlier_conversions_did_not_use(
    used: int, expected: int
) -> None:
    earned = earn(rule(percentage=Decimal("20"), monthly_cap_minor=5_000), facts(), used)
    assert earned.amount_minor == expected


def test_explanation_names_the_rule_version_and_the_final_amount() -> None:
    # 20 % of 1 234 = 246.8 -> 247
    terms = RuleTerms(7, 3, "SALE", percentage=Decimal("20"))
    earned = earn(terms, facts(credited_minor=1_234))
    assert earned.steps[0] == "rule 7 v3"
    assert earned.steps[-1] == "= 247"
    assert earned.explanation == "; ".join(earned.steps)
    assert "1234" in earned.explanation


def test_explanation_of_the_monthly_cap_says_what_was_left() -> None:
    earned = earn(rule(percentage=Decimal("20"), monthly_cap_minor=5_000), facts(), 4_000)
    assert "monthly cap 5000: 1000 left" in earned.steps
    assert earned.steps[-1] == "= 1000"


@pytest.mark.parametrize(
    ("terms", "credit"),
    [
        (rule(flat_minor=500, minimum_minor=1_000), facts(conversion_minor=999)),
        (
            rule(kind="RENEWAL", flat_minor=500, recurring_months=1),
            facts(kind="RENEWAL", first_sale_at=T0 - timedelta(days=60)),
        ),
    ],
    ids=["below-minimum", "recurring-ended"],
)
def test_explanation_of_a_zero_still_ends_with_the_final_amount(
    terms: RuleTerms, credit: CreditFacts
) -> None:
    earned = earn(terms, credit)
    assert earned.amount_minor == 0
    assert earned.steps[-1] == "= 0"


# position_target: refunds


def test_without_a_refund_a_position_keeps_what_it_earned() -> None:
    assert position_target(700, 10_000, 0) == 700


def test_a_full_refund_reverses_everything() -> None:
    assert position_target(700, 10_000, 10_000) == 0
    assert position_target(700, 10_000, 10_001) == 0
    assert position_target(700, 10_000, 12_000) == 0


@pytest.mark.parametrize(
    ("earned", "amount", "refunded", "expected"),
    [
        (700, 10_000, 2_500, 525),  # 700 * 3/4
        (5, 10, 5, 2),  # 2.5 -> 2 (half to even)
        (7, 10, 5, 4),  # 3.5 -> 4 (half to even)
        (100, 999, 333, 67),  # 100 * 666/999 = 66.67 -> 67
        (100, 999, 666, 33),  # 100 * 333/999 = 33.33 -> 33
    ],
)
def test_a_partial_refund_reverses_in_proportion(
    earned: int, amount: int, refunded: int, expected: int
) -> None:
    assert position_target(earned, amount, refunded) == expected


def test_partial_refunds_in_thirds_reverse_exactly_what_was_earned() -> None:
    # targets 67, 33, 0 (see above): reversals 33, 34, 33 = 100, never more
    targets = [position_target(100, 999, refunded) for refunded in (0, 333, 666, 999)]
    assert targets == [100, 67, 33, 0]
    assert [a - b for a, b in zip(targets, targets[1:], strict=False)] == [33, 34, 33]


# referee_reward_minor


@pytest.mark.parametrize(
    ("kind", "value", "amount", "digits", "expected"),
    [
        ("PERCENT_DISCOUNT", "10", 12_345, 2, 1_234),  # 1 234.5 -> 1 234 (half to even)
        ("PERCENT_DISCOUNT", "10", 12_355, 2, 1_236),  # 1 235.5 -> 1 236 (half to even)
        ("PERCENT_DISCOUNT", "15", 2_000, 2, 300),
        ("PERCENT_DISCOUNT", "10", 1_235, 0, 124),  # ¥1 235 -> ¥123.5 -> ¥124
        ("PERCENT_DISCOUNT", "10", 1_225, 0, 122),  # ¥122.5 -> ¥122
        ("FLAT_CREDIT", "10", 99_999, 2, 1_000),  # 10.00 -> 1 000 cents, whatever the sale
        ("FLAT_CREDIT", "10.50", 1, 2, 1_050),
        ("FLAT_CREDIT", "0.125", 1, 2, 12),  # 12.5 cents -> 12
        ("FLAT_CREDIT", "0.135", 1, 2, 14),  # 13.5 cents -> 14
        ("FLAT_CREDIT", "500", 1, 0, 500),  # ¥500
        ("FLAT_CREDIT", "2.5", 1, 0, 2),  # ¥2.5 -> ¥2
        ("FLAT_CREDIT", "3.5", 1, 0, 4),  # ¥3.5 -> ¥4
    ],
)
def test_referee_rewards(kind: str, value: str, amount: int, digits: int, expected: int) -> None:
    assert referee_reward_minor(kind, Decimal(value), amount, digits) == expected


# add_months, month_of, decay_factor


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (datetime(2023, 1, 31, 10, tzinfo=UTC), 1, datetime(2023, 2, 28, 10, tzinfo=UTC)),
        (datetime(2024, 1, 31, 10, tzinfo=UTC), 1, datetime(2024, 2, 29, 10, tzinfo=UTC)),
        (datetime(2024, 3, 31, tzinfo=UTC), 1, datetime(2024, 4, 30, tzinfo=UTC)),
        (
            datetime(2024, 12, 15, 8, 30, 5, tzinfo=UTC),
            1,
            datetime(2025, 1, 15, 8, 30, 5, tzinfo=UTC),
        ),
        (datetime(2024, 2, 29, tzinfo=UTC), 12, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2023, 11, 30, tzinfo=UTC), 13, datetime(2024, 12, 30, tzinfo=UTC)),
        (datetime(2024, 3, 31, tzinfo=UTC), -1, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2024, 1, 15, tzinfo=UTC), -13, datetime(2022, 12, 15, tzinfo=UTC)),
        (datetime(2024, 5, 31, tzinfo=UTC), 0, datetime(2024, 5, 31, tzinfo=UTC)),
        (datetime(2025, 1, 1, tzinfo=UTC), 1200, datetime(2125, 1, 1, tzinfo=UTC)),
    ],
)
def test_add_months(start: datetime, months: int, expected: datetime) -> None:
    result = add_months(start, months)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2024, 3, 1, tzinfo=UTC), "2024-03"),
        (datetime(2023, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "2023-12"),
        (datetime(2024, 1, 1, tzinfo=UTC), "2024-01"),
        (datetime(999, 7, 4, tzinfo=UTC), "0999-07"),
    ],
)
def test_month_of(at: datetime, expected: str) -> None:
    assert month_of(at) == expected


def test_decay_factor_is_one_when_nothing_or_less_than_nothing_elapsed() -> None:
    assert decay_factor(timedelta(0), 30.0) == Decimal(1)
    assert decay_factor(timedelta(days=-3), 30.0) == Decimal(1)


@pytest.mark.parametrize(
    ("elapsed", "half_life", "expected"),
    [
        (timedelta(days=30), 30.0, Decimal("0.5")),
        (timedelta(days=60), 30.0, Decimal("0.25")),
        (timedelta(days=1), 0.5, Decimal("0.25")),
        (timedelta(hours=36), 0.5, Decimal("0.125")),
        # 2 ** -0.5 = 1/sqrt(2) = 0.70710678118654752440084436210484903928...: 34 digits
        (timedelta(days=5), 10.0, Decimal("0.7071067811865475244008443621048490")),
    ],
)
def test_decay_factor_values(elapsed: timedelta, half_life: float, expected: Decimal) -> None:
    assert decay_factor(elapsed, half_life) == expected


def test_a_microsecond_already_decays() -> None:
    assert decay_factor(US, 36_500.0) < 1


# invariants


@st.composite
def priced(draw: st.DrawFn) -> tuple[RuleTerms, CreditFacts, int]:
    conversion = draw(st.integers(0, 10**9))
    credited = draw(st.integers(0, conversion))
    percentage = draw(st.none() | st.decimals(Decimal("0.0001"), Decimal(100), places=4))
    kind = draw(st.sampled_from(["SALE", "RENEWAL"]))
    occurred = T0 + timedelta(seconds=draw(st.integers(-(10**8), 10**8)))
    before = st.integers(0, 5 * 10**7).map(lambda s: occurred - timedelta(seconds=s))
    terms = RuleTerms(
        rule_id=draw(st.integers(1, 10**6)),
        version=draw(st.integers(1, 50)),
        conversion_kind=kind,
        percentage=percentage,
        flat_minor=None if percentage is not None else draw(st.integers(0, 10**9)),
        recurring_months=draw(st.none() | st.integers(0, 1200)),
        half_life_days=draw(st.none() | st.floats(0.01, 36_500.0)),
        cap_minor=draw(st.none() | st.integers(0, 10**9)),
        monthly_cap_minor=draw(st.none() | st.integers(0, 10**9)),
        minimum_minor=draw(st.none() | st.integers(0, 10**6)),
    )
    credit = CreditFacts(
        kind=kind,
        conversion_minor=conversion,
        credited_minor=credited,
        share=Fraction(credited, conversion) if conversion else Fraction(0),
        occurred_at=occurred,
        referred_at=draw(st.none() | before),
        first_sale_at=draw(st.none() | before),
    )
    return terms, credit, draw(st.integers(0, 2 * 10**9))


@settings(max_examples=300, deadline=None)
@given(priced())
def test_earn_stays_within_its_bounds(case: tuple[RuleTerms, CreditFacts, int]) -> None:
    terms, credit, used = case
    earned = earn(terms, credit, used)
    assert type(earned.amount_minor) is int
    assert earned.amount_minor >= 0
    if terms.cap_minor is not None:
        assert earned.amount_minor <= terms.cap_minor
    if terms.monthly_cap_minor is not None:
        assert earned.amount_minor <= max(terms.monthly_cap_minor - used, 0)
    if terms.percentage is not None:
        assert earned.amount_minor <= credit.credited_minor
    assert earned.steps[0] == f"rule {terms.rule_id} v{terms.version}"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.lists(st.integers(1, 1_000), min_size=1, max_size=8),
)
def test_a_flat_amount_split_by_shares_pays_the_flat_amount_within_rounding(
    flat: int, points: list[int]
) -> None:
    total = sum(points)
    paid = sum(
        earn(rule(flat_minor=flat), facts(share=Fraction(p, total))).amount_minor for p in points
    )
    # each party's amount is within half a minor unit of its exact part
    assert abs(paid - flat) * 2 <= len(points)
    assert paid <= flat + len(points)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(1, 10**9),
    st.integers(-10, 10**9 + 10),
    st.integers(-10, 10**9 + 10),
)
def test_position_target_shrinks_as_refunds_grow(
    earned: int, amount: int, first: int, second: int
) -> None:
    low, high = sorted((first, second))
    at_low, at_high = position_target(earned, amount, low), position_target(earned, amount, high)
    assert 0 <= at_high <= at_low <= earned


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**7), st.integers(1, 10**7), st.lists(st.integers(1, 10**6), max_size=10))
def test_partial_refunds_never_reverse_more_than_was_earned(
    earned: int, amount: int, refunds: list[int]
) -> None:
    cumulative, target, reversed_total = 0, earned, 0
    for refund in refunds:
        cumulative += refund
        new_target = position_target(earned, amount, cumulative)
        assert new_target <= target
        reversed_total += target - new_target
        target = new_target
    assert reversed_total == earned - target <= earned
    if cumulative >= amount:
        assert reversed_total == earned


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 10 * 365 * 86_400 * 10**6),
    st.integers(0, 10 * 365 * 86_400 * 10**6),
    st.floats(0.01, 36_500.0),
)
def test_decay_factor_is_in_zero_to_one_and_falls_with_time(
    first_us: int, second_us: int, half_life: float
) -> None:
    shorter, longer = sorted((first_us, second_us))
    near = decay_factor(timedelta(microseconds=shorter), half_life)
    far = decay_factor(timedelta(microseconds=longer), half_life)
    assert 0 < far <= near <= 1
