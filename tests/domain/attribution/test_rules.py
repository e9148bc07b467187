"""The attribution engine against hand-worked examples, reference vectors and invariants."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.attribution.rules import (
    MICROSECONDS_PER_DAY,
    TIME_DECAY_BITS,
    Conversion,
    ModelSettings,
    Touchpoint,
    attribute,
    decay_points,
    journey,
    split_minor,
    touch_weights,
)
from domain.programs.models import AttributionModelKind as Model
from domain.programs.models import FunnelRole

VECTORS = json.loads((Path(__file__).parents[2] / "data" / "rounding_vectors.json").read_text())
T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)


def tp(id_: int, enrollment: int, days_before: float, **kw: object) -> Touchpoint:
    return Touchpoint(id_, enrollment, T0 - timedelta(days=days_before), **kw)  # type: ignore[arg-type]


def shares(settings: ModelSettings, path: list[Touchpoint]) -> list[Fraction]:
    return touch_weights(journey(path, T0, settings.lookback_days), T0, settings)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["case"])
def test_split_matches_the_reference_largest_remainder(case: dict[str, object]) -> None:
    weights = [Fraction(w) for w in case["weights"]]  # type: ignore[union-attr,attr-defined]
    total = sum(weights, Fraction(0))
    keys = list(case["keys"])  # type: ignore[call-overload]
    parts = split_minor(case["total_minor_units"], [w / total for w in weights], keys)  # type: ignore[arg-type]
    assert dict(zip(keys, parts, strict=True)) == case["largest_remainder"]


def test_first_and_last_touch() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 30, 1)]
    assert shares(ModelSettings(Model.FIRST_TOUCH), path) == [1, 0, 0]
    assert shares(ModelSettings(Model.LAST_TOUCH), path) == [0, 0, 1]


def test_linear_gives_equal_credit_and_one_partners_touches_add_up() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 10, 1)]
    credits = attribute(path, Conversion(T0, 10_000), ModelSettings(Model.LINEAR))
    assert {c.enrollment_id: (c.share, c.amount_minor) for c in credits} == {
        10: (Fraction(2, 3), 6667),
        20: (Fraction(1, 3), 3333),
    }
    assert [tw.touchpoint_id for tw in credits[-1].touchpoints] == [1, 3]


def test_time_decay_halves_every_half_life() -> None:
    path = [tp(1, 10, 14), tp(2, 20, 7), tp(3, 30, 0)]
    got = shares(ModelSettings(Model.TIME_DECAY, half_life_days=7), path)
    # weights 1/4, 1/2, 1 -> 1/7, 2/7, 4/7
    assert [float(s) for s in got] == pytest.approx([1 / 7, 2 / 7, 4 / 7], abs=1e-30)
    assert sum(got) == 1


def test_time_decay_weights_are_fixed_point_relative_to_the_youngest_touchpoint() -> None:
    day = float(MICROSECONDS_PER_DAY)
    one = 1 << TIME_DECAY_BITS
    assert decay_points(0, 7 * day) == one
    assert decay_points(7 * MICROSECONDS_PER_DAY, 7 * day) == one // 2
    assert decay_points(70 * MICROSECONDS_PER_DAY, 7 * day) == one >> 10
    assert decay_points(41 * MICROSECONDS_PER_DAY, day) == 0  # less than 1: nothing
    # a year-old journey with a 1-hour half-life: the youngest touch still weighs 2^K, so
    # the older ones lose their credit to it instead of every weight underflowing to 0
    path = [tp(1, 10, 300), tp(2, 20, 200)]
    assert shares(
        ModelSettings(Model.TIME_DECAY, lookback_days=365, half_life_days=1 / 24), path
    ) == [0, 1]


@given(st.integers(0, 400 * MICROSECONDS_PER_DAY), st.floats(1e-3, 1e4))
def test_time_decay_points_are_within_one_of_the_exact_power(
    elapsed: int, half_life: float
) -> None:
    half_life_us = half_life * MICROSECONDS_PER_DAY
    exact = 2.0 ** (TIME_DECAY_BITS - elapsed / half_life_us)
    assert abs(decay_points(elapsed, half_life_us) - exact) <= 1 + exact * 1e-14


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        ("0.4", "0.4", [Fraction(1, 2), Fraction(1, 2)]),
        ("0.2", "0.6", [Fraction(1, 4), Fraction(3, 4)]),
    ],
)
def test_position_based_with_two_touchpoints_splits_in_proportion(
    first: str, last: str, expected: list[Fraction]
) -> None:
    settings = ModelSettings(
        Model.POSITION_BASED, first_weight=Decimal(first), last_weight=Decimal(last)
    )
    assert shares(settings, [tp(1, 10, 2), tp(2, 20, 1)]) == expected


def test_position_based_spreads_the_rest_over_the_middle_and_one_takes_all() -> None:
    settings = ModelSettings(Model.POSITION_BASED)
    path = [tp(i, 10 * i, 10 - i) for i in range(1, 6)]
    assert shares(settings, path) == [Fraction(2, 5)] + [Fraction(1, 15)] * 3 + [Fraction(2, 5)]
    assert shares(settings, path[:1]) == [1]


def test_role_weighted_shares_a_role_among_its_touchpoints_and_hands_on_absent_roles() -> None:
    weights = {
        FunnelRole.SOURCE: Decimal("0.5"),
        FunnelRole.INFLUENCE: Decimal("0.2"),
        FunnelRole.CLOSE: Decimal("0.3"),
    }
    settings = ModelSettings(Model.ROLE_WEIGHTED, role_weights=weights)
    path = [
        tp(1, 10, 5, role=FunnelRole.SOURCE),
        tp(2, 20, 4, role=FunnelRole.INFLUENCE),
        tp(3, 30, 3, role=FunnelRole.INFLUENCE),
        tp(4, 40, 1, role=FunnelRole.CLOSE),
    ]
    assert shares(settings, path) == [
        Fraction(1, 2),
        Fraction(1, 10),
        Fraction(1, 10),
        Fraction(3, 10),
    ]
    # no INFLUENCE on the journey: its 0.2 goes to SOURCE and CLOSE in proportion (5:3)
    assert shares(settings, [path[0], path[3]]) == [Fraction(5, 8), Fraction(3, 8)]


def test_the_journey_keeps_the_window_and_drops_excluded_and_later_touchpoints() -> None:
    path = [
        tp(1, 10, 31),  # outside a 30-day window
        tp(2, 20, 30),  # on its edge: in
        tp(3, 30, 1, excluded=True),  # a bot or a flagged touch
        tp(4, 40, -1),  # after the conversion
        tp(6, 60, 0),  # at the conversion's instant (a code at checkout)
        tp(5, 50, 0),  # same instant: ordered by id
    ]
    assert [t.id for t in journey(path, T0, 30)] == [2, 5, 6]


def test_a_code_wins_all_when_the_program_says_so() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 0, kind="CODE")]
    settings = ModelSettings(Model.LINEAR, code_wins=True)
    credits = attribute(path, Conversion(T0, 5000), settings)
    assert [(c.enrollment_id, c.amount_minor) for c in credits] == [(20, 5000)]


def test_no_touchpoint_in_the_window_means_no_credit() -> None:
    assert attribute([tp(1, 10, 90)], Conversion(T0, 5000), ModelSettings(Model.LINEAR)) == []


def test_jpy_has_no_decimals_and_the_later_touch_wins_the_tie() -> None:
    credits = attribute(
        [tp(1, 10, 2), tp(2, 20, 1)], Conversion(T0, 1), ModelSettings(Model.LINEAR)
    )
    assert [(c.enrollment_id, c.amount_minor) for c in credits] == [(10, 0), (20, 1)]


touch_strategy = st.lists(
    st.tuples(
        st.integers(1, 6),  # enrollment
        st.floats(-2, 40, allow_nan=False),  # days before the conversion
        st.sampled_from([None, *FunnelRole]),
        st.sampled_from(["CLICK", "LEAD", "CODE"]),
        st.booleans(),  # excluded
    ),
    max_size=20,
)
settings_strategy = st.builds(
    ModelSettings,
    model=st.sampled_from(list(Model)),
    lookback_days=st.integers(1, 365),
    half_life_days=st.one_of(st.none(), st.floats(0.1, 60)),
    first_weight=st.sampled_from([None, Decimal("0"), Decimal("0.3"), Decimal("0.5")]),
    last_weight=st.sampled_from([None, Decimal("0"), Decimal("0.2"), Decimal("0.5")]),
    role_weights=st.sampled_from(
        [
            None,
            {FunnelRole.SOURCE: Decimal("0.6"), FunnelRole.CLOSE: Decimal("0.4")},
            {FunnelRole.INFLUENCE: Decimal("0")},
        ]
    ),
    code_wins=st.booleans(),
)


def _touchpoints(raw: list[tuple[int, float, FunnelRole | None, str, bool]]) -> list[Touchpoint]:
    return [
        Touchpoint(i, e, T0 - timedelta(days=d), kind, role, excluded)
        for i, (e, d, role, kind, excluded) in enumerate(raw, start=1)
    ]


@given(touch_strategy, settings_strategy, st.integers(-(10**9), 10**9))
def test_credits_always_sum_exactly_and_a_refund_mirrors_them(
    raw: list[tuple[int, float, FunnelRole | None, str, bool]], settings: ModelSettings, amount: int
) -> None:
    touchpoints = _touchpoints(raw)
    credits = attribute(touchpoints, Conversion(T0, amount), settings)
    if not journey(touchpoints, T0, settings.lookback_days):
        assert credits == []
        return
    assert sum(c.share for c in credits) == 1
    assert sum(c.amount_minor for c in credits) == amount
    assert all(c.share >= 0 for c in credits)
    assert len({c.enrollment_id for c in credits}) == len(credits)
    for c in credits:
        assert sum(tw.weight for tw in c.touchpoints) == c.share
        assert abs(c.amount_minor - amount * c.share) < 1
    refund = attribute(touchpoints, Conversion(T0, -amount), settings)
    assert [(c.enrollment_id, -c.amount_minor) for c in refund] == [
        (c.enrollment_id, c.amount_minor) for c in credits
    ]


@given(touch_strategy, settings_strategy, st.integers(0, 10**7), st.randoms())
def test_the_result_does_not_depend_on_the_order_touchpoints_arrive_in(
    raw: list[tuple[int, float, FunnelRole | None, str, bool]],
    settings: ModelSettings,
    amount: int,
    rng: object,
) -> None:
    touchpoints = _touchpoints(raw)
    shuffled = list(touchpoints)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert attribute(shuffled, Conversion(T0, amount), settings) == attribute(
        touchpoints, Conversion(T0, amount), settings
    )
