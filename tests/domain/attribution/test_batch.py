"""The batch engine against `attribute`, conversion by conversion, and hand-worked examples."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.attribution import rules
from domain.attribution.batch import (
    INT64_MIN,
    BatchAttribution,
    ConversionColumns,
    TouchpointColumns,
    _lexorder,
    _muldiv,
    attribute_batch,
    columns,
    decay_points,
    micros,
)
from domain.attribution.rules import (
    MICROSECONDS_PER_DAY,
    Conversion,
    Credit,
    ModelSettings,
    Touchpoint,
    attribute,
)
from domain.programs.models import AttributionModelKind as Model
from domain.programs.models import FunnelRole

T0 = datetime(2026, 11, 1, 12, tzinfo=UTC)
INT64_MAX = 2**63 - 1

Key = list[tuple[int, Fraction, int, list[tuple[int, datetime, Fraction]]]]


def key(credits: list[Credit]) -> Key:
    """What must be equal: enrollments in order, exact shares, amounts, touchpoint weights."""
    return [
        (
            c.enrollment_id,
            c.share,
            c.amount_minor,
            [(t.touchpoint_id, t.at, t.weight) for t in c.touchpoints],
        )
        for c in credits
    ]


def check(
    journeys: list[list[Touchpoint]],
    conversions: list[Conversion],
    settings: ModelSettings,
    **kw: int,
) -> BatchAttribution:
    touchpoints, convs = columns(journeys, conversions)
    result = attribute_batch(touchpoints, convs, settings, **kw)
    got = result.credit_lists()
    assert len(got) == len(conversions)
    for i, (path, conversion) in enumerate(zip(journeys, conversions, strict=True)):
        assert key(got[i]) == key(attribute(path, conversion, settings)), f"conversion {i}"
    return result


# -- random journeys, amounts and settings ----------------------------------------------------

days = st.one_of(
    st.sampled_from([0.0, 1.0, 2.5, 30.0, -0.5]),  # shared instants, window edge, after
    st.floats(-2, 40, allow_nan=False),
    st.integers(0, 5).map(lambda us: us / 86_400e6),  # microseconds apart
)
touch = st.tuples(
    st.integers(1, 6),  # enrollment
    days,  # before the conversion
    st.sampled_from([None, *FunnelRole]),
    st.sampled_from(["CLICK", "LEAD", "CODE"]),
    st.booleans(),  # excluded
    st.integers(0, 30),  # 0: a duplicate id
)
amounts = st.one_of(
    st.integers(-(10**6), 10**6),
    st.sampled_from([0, 1, -1, 3, 12_345, 10**9, 2**53 + 1, 2**62, INT64_MAX, -INT64_MAX]),
    st.integers(-INT64_MAX, INT64_MAX),  # most overflow amount * total
)
weights = st.sampled_from(
    [Decimal("0"), Decimal("0.1"), Decimal("0.25"), Decimal("0.3"), Decimal("0.4"),
     Decimal("0.5"), Decimal("0.3333"), Decimal("0.0001"), Decimal("1")]
)  # fmt: skip


@st.composite
def valid_settings(draw: st.DrawFn, model: Model | None = None) -> ModelSettings:
    first, last = draw(st.one_of(st.none(), weights)), draw(st.one_of(st.none(), weights))
    f = Decimal("0.4") if first is None else first
    if f + (Decimal("0.4") if last is None else last) > 1:
        last = 1 - f
    roles = draw(st.dictionaries(st.sampled_from(list(FunnelRole)), weights, max_size=3))
    while sum(roles.values(), Decimal(0)) > 1:
        roles.pop(next(iter(roles)))
    return ModelSettings(
        model=draw(st.sampled_from(list(Model))) if model is None else model,
        lookback_days=draw(st.sampled_from([1, 7, 30, 365])),
        half_life_days=draw(st.one_of(st.none(), st.floats(0.01, 60), st.sampled_from([1, 7.0]))),
        first_weight=first,
        last_weight=last,
        role_weights=draw(st.one_of(st.none(), st.just(roles))),
        code_wins=draw(st.booleans()),
    )


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[list[Touchpoint]], list[Conversion]]:
    journeys, conversions = [], []
    next_id = 100
    for _ in range(draw(st.integers(0, 6))):
        at = T0 + timedelta(microseconds=draw(st.integers(-5, 5)))
        path = []
        for enrollment, before, role, kind, excluded, id_ in draw(st.lists(touch, max_size=14)):
            next_id += 1
            touched = at - timedelta(days=before)
            path.append(
                Touchpoint(next_id if id_ else 7, enrollment, touched, kind, role, excluded)
            )
        journeys.append(path)
        conversions.append(Conversion(at, draw(amounts)))
    return journeys, conversions


@settings(max_examples=300, deadline=None)
@given(batches(), valid_settings(), st.sampled_from([1, 2, 3, 1 << 13]))
def test_the_batch_engine_gives_attributes_credits(
    batch: tuple[list[list[Touchpoint]], list[Conversion]], settings: ModelSettings, chunk: int
) -> None:
    check(*batch, settings, chunk=chunk)


@settings(max_examples=60, deadline=None)
@given(batches(), valid_settings(), st.randoms())
def test_rows_in_any_order_and_rows_point_at_the_input(
    batch: tuple[list[list[Touchpoint]], list[Conversion]], settings: ModelSettings, rng: object
) -> None:
    journeys, conversions = batch
    touchpoints, convs = columns(journeys, conversions)
    shuffled = np.arange(len(touchpoints))
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    moved = touchpoints.take(shuffled)
    result = attribute_batch(moved, convs, settings)
    # `attribute` on the journeys in the order their rows now come in
    flat = [t for path in journeys for t in path]
    reordered: list[list[Touchpoint]] = [[] for _ in conversions]
    for row in shuffled.tolist():
        reordered[int(touchpoints.conversion[row])].append(flat[row])
    for got, path, conversion in zip(result.credit_lists(), reordered, conversions, strict=True):
        assert key(got) == key(attribute(path, conversion, settings))
    tw = result.touch_weights
    assert (tw.touchpoint_id == moved.id[tw.row]).all()
    assert (tw.enrollment_id == moved.enrollment_id[tw.row]).all()
    assert (tw.conversion == moved.conversion[tw.row]).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(touch, min_size=1, max_size=20), valid_settings(), amounts)
def test_every_model_on_one_journey(
    raw: list[tuple[int, float, FunnelRole | None, str, bool, int]],
    settings: ModelSettings,
    amount: int,
) -> None:
    path = [
        Touchpoint(i, e, T0 - timedelta(days=d), kind, role, excluded)
        for i, (e, d, role, kind, excluded, _) in enumerate(raw, start=1)
    ]
    for model in Model:
        check([path], [Conversion(T0, amount)], dataclasses.replace(settings, model=model))


# -- the building blocks ----------------------------------------------------------------------


@given(
    st.lists(st.integers(0, 400 * MICROSECONDS_PER_DAY), min_size=1, max_size=20),
    st.one_of(st.floats(1e-4, 1e5), st.sampled_from([1.0, 7.0, 1 / 24, 1e-9, 1e300])),
)
def test_time_decay_points_are_bit_for_bit_those_of_the_rules(
    elapsed: list[int], half_life_days: float
) -> None:
    half_life_us = half_life_days * float(MICROSECONDS_PER_DAY)
    got = decay_points(np.array(elapsed, dtype=np.int64), half_life_us).tolist()
    assert got == [rules.decay_points(e, half_life_us) for e in elapsed]


@given(st.data())
def test_the_multiply_divide_is_exact(data: st.DataObject) -> None:
    total = data.draw(st.integers(1, 2**53))
    points = data.draw(st.lists(st.integers(0, total), min_size=1, max_size=8))
    amount = data.draw(st.integers(0, INT64_MAX))
    q, r = _muldiv(
        np.full(len(points), amount, dtype=np.int64),
        np.array(points, dtype=np.int64),
        np.full(len(points), total, dtype=np.int64),
    )
    assert list(zip(q.tolist(), r.tolist(), strict=True)) == [
        divmod(amount * p, total) for p in points
    ]


# -- hand-worked examples ---------------------------------------------------------------------


def tp(id_: int, enrollment: int, days_before: float, **kw: object) -> Touchpoint:
    return Touchpoint(id_, enrollment, T0 - timedelta(days=days_before), **kw)  # type: ignore[arg-type]


def test_linear_by_hand_in_columns() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 10, 1)]
    result = check(
        [path, []], [Conversion(T0, 10_000), Conversion(T0, 5)], ModelSettings(Model.LINEAR)
    )
    credits = result.credits
    assert credits.conversion.tolist() == [0, 0]
    assert credits.enrollment_id.tolist() == [20, 10]  # ordered by their last touchpoint
    assert [Fraction(p, t) for p, t in zip(credits.points, credits.total, strict=True)] == [
        Fraction(1, 3),
        Fraction(2, 3),
    ]
    assert credits.amount_minor.tolist() == [3333, 6667]
    assert credits.conversion_total.tolist() == [3, 0]  # no journey, no total
    tw = result.touch_weights
    assert tw.credit.tolist() == [0, 1, 1]
    assert tw.touchpoint_id.tolist() == [2, 1, 3]
    assert tw.row.tolist() == [1, 0, 2]
    assert tw.points.tolist() == [1, 1, 1]
    assert tw.conversion.tolist() == [0, 0, 0]


def test_first_and_last_touch_credit_only_the_winner_with_all_its_touchpoints() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 10, 1), tp(4, 30, 40)]
    for model, winner, touches in [
        (Model.FIRST_TOUCH, 10, [(1, 1), (3, 0)]),
        (Model.LAST_TOUCH, 10, [(1, 0), (3, 1)]),
    ]:
        result = check([path], [Conversion(T0, -999)], ModelSettings(model))
        assert result.credits.enrollment_id.tolist() == [winner]
        assert result.credits.amount_minor.tolist() == [-999]
        tw = result.touch_weights
        assert list(zip(tw.touchpoint_id.tolist(), tw.points.tolist(), strict=True)) == touches


def test_an_amount_whose_products_overflow_int64_is_still_split_exactly() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 30, 1)]
    settings = ModelSettings(Model.TIME_DECAY, half_life_days=1.3)
    result = check([path], [Conversion(T0, INT64_MAX)], settings)
    assert len(result.scalar_conversions) == 0  # vectorized (see _muldiv)
    assert sum(result.credits.amount_minor.tolist()) == INT64_MAX


def test_what_the_vectorized_path_cannot_do_goes_through_attribute() -> None:
    # the amount -2^63 (its mirror does not fit), two touchpoints with the same instant and id
    clash = [tp(5, 10, 1), tp(5, 20, 1), tp(6, 30, 2)]
    result = check(
        [[tp(1, 10, 1)], clash, [tp(2, 10, 2), tp(3, 20, 1)]],
        [Conversion(T0, INT64_MIN), Conversion(T0, 100), Conversion(T0, 100)],
        ModelSettings(Model.LINEAR),
    )
    assert result.scalar_conversions.tolist() == [0, 1]
    assert result.credits.conversion.tolist() == [0, 1, 1, 1, 2, 2]
    # settings the program rules refuse: everything goes through `attribute`
    refused = ModelSettings(
        Model.POSITION_BASED, first_weight=Decimal("0.7"), last_weight=Decimal("0.7")
    )
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 30, 1)]
    assert check([path], [Conversion(T0, 100)], refused).scalar_conversions.tolist() == [0]


def test_a_total_too_large_for_the_vectorized_path() -> None:
    # role weights with 18 digits: lcm of the role counts times 10^18 exceeds 2^53
    weights = {FunnelRole.SOURCE: Decimal("0.123456789012345678"), FunnelRole.CLOSE: Decimal("0.5")}
    path = [tp(i, i % 4, i, role=list(FunnelRole)[i % 3]) for i in range(1, 8)]
    result = check(
        [path], [Conversion(T0, 10**6)], ModelSettings(Model.ROLE_WEIGHTED, role_weights=weights)
    )
    assert result.scalar_conversions.tolist() == [0]


def test_columns_from_numpy_arrays_with_datetime64_and_rows_out_of_conversion_order() -> None:
    at = np.array(
        ["2026-10-30T12:00", "2026-10-31T12:00", "2026-10-29T12:00"], dtype="datetime64[m]"
    )
    touchpoints = TouchpointColumns.of(
        conversion=[1, 0, 1], id=[1, 2, 3], enrollment_id=[10, 20, 30], at=at
    )
    conversions = ConversionColumns.of(
        at=np.array([T0.replace(tzinfo=None)] * 2, dtype="datetime64[us]"), amount_minor=[100, 101]
    )
    result = attribute_batch(touchpoints, conversions, ModelSettings(Model.LINEAR))
    credits = result.credits
    assert credits.conversion.tolist() == [0, 1, 1]
    assert credits.enrollment_id.tolist() == [20, 30, 10]
    assert credits.amount_minor.tolist() == [100, 50, 51]  # a tie: the later enrollment wins
    assert result.touch_weights.row.tolist() == [1, 2, 0]
    assert micros(T0) == int(conversions.at[0])


def test_no_conversions_and_no_touchpoints() -> None:
    result = check([], [], ModelSettings(Model.LINEAR))
    assert len(result.credits) == len(result.touch_weights) == 0
    result = check(
        [[], []], [Conversion(T0, 1), Conversion(T0, 0)], ModelSettings(Model.TIME_DECAY)
    )
    assert len(result.credits) == 0
    assert result.credits.conversion_total.tolist() == [0, 0]


def test_bad_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="rows"):
        TouchpointColumns.of(conversion=[0], id=[1, 2], enrollment_id=[1], at=[0])
    with pytest.raises(ValueError, match="roles"):
        TouchpointColumns.of(conversion=[0], id=[1], enrollment_id=[1], at=[0], role=[3])
    touchpoints = TouchpointColumns.of(conversion=[1], id=[1], enrollment_id=[1], at=[0])
    with pytest.raises(ValueError, match="indexes"):
        attribute_batch(
            touchpoints, ConversionColumns.of(at=[0], amount_minor=[1]), ModelSettings(Model.LINEAR)
        )


def test_edges_of_the_packed_sorts() -> None:
    # a 100-year window: (conversion, instant, position) no longer fit in 64 bits
    far = [tp(3, 10, 20_000), tp(1, 20, 5), tp(2, 30, 5)]
    check([far], [Conversion(T0, 100)], ModelSettings(Model.LINEAR, lookback_days=36_500))
    # enrollment ids 2^63 apart: (conversion, enrollment, position) neither
    huge = [tp(1, 2**62, 3), tp(2, -(2**62), 2), tp(3, 2**62, 1)]
    check([huge], [Conversion(T0, 100)], ModelSettings(Model.TIME_DECAY))
    # POSITION_BASED at 0 and 0: two touchpoints share equally
    zero = ModelSettings(Model.POSITION_BASED, first_weight=Decimal(0), last_weight=Decimal(0))
    check([[tp(1, 10, 2), tp(2, 20, 1)]], [Conversion(T0, 101)], zero)


def test_settings_outside_the_program_rules() -> None:
    path = [tp(1, 10, 3), tp(2, 20, 2), tp(3, 10, 1)]
    for odd in [
        ModelSettings(Model.LINEAR, lookback_days=-1),
        ModelSettings(Model.TIME_DECAY, half_life_days=-0.5),
        ModelSettings(Model.TIME_DECAY, half_life_days=float("inf")),
        ModelSettings(Model.ROLE_WEIGHTED, role_weights={FunnelRole.SOURCE: Decimal("-1")}),
    ]:
        result = check([path, []], [Conversion(T0, 1000), Conversion(T0, INT64_MIN)], odd)
        assert result.scalar_conversions.tolist() == [0, 1]
    nan = ModelSettings(Model.POSITION_BASED, first_weight=Decimal("NaN"))
    with pytest.raises(ValueError, match="NaN"):
        attribute(path, Conversion(T0, 1), nan)
    with pytest.raises(ValueError, match="NaN"):
        check([path], [Conversion(T0, 1)], nan)
    # weights that need more than 63 bits even reduced: refused rather than rounded
    digits = ModelSettings(
        Model.ROLE_WEIGHTED,
        role_weights={
            FunnelRole.SOURCE: Decimal("0." + "3" * 30),
            FunnelRole.CLOSE: Decimal("0.5"),
        },
    )
    roles = [tp(1, 10, 3, role=FunnelRole.SOURCE), tp(2, 20, 2, role=FunnelRole.CLOSE)]
    with pytest.raises(OverflowError):
        attribute_batch(*columns([roles], [Conversion(T0, 1)]), digits)


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 2**40), st.integers(-(2**63), 2**63 - 1)),
        max_size=30,
    )
)
def test_the_packed_lexicographic_order_is_numpys(rows: list[tuple[int, int, int]]) -> None:
    a, b, c = (
        (np.array(col, dtype=np.int64).reshape(-1) for col in zip(*rows, strict=True))
        if rows
        else (np.zeros(0, np.int64),) * 3
    )
    expected = np.lexsort([c, b, a]).tolist()
    assert _lexorder([(a, 2), (b, 41), (c, None)]).tolist() == expected
    assert _lexorder([(c, None), (a, 2)]).tolist() == np.lexsort([a, c]).tolist()


def test_narrow_integer_columns_are_widened_before_any_arithmetic() -> None:
    # int32 conversion indexes shifted into packed keys would overflow: they become int64
    path = [tp(i, 10 + i % 3, 20 - i, role=list(FunnelRole)[i % 3]) for i in range(1, 15)]
    wide, conversions = columns([path, path], [Conversion(T0, 10**6), Conversion(T0, 7)])
    narrow = TouchpointColumns(
        wide.conversion.astype(np.int32),
        wide.id.astype(np.int16),
        wide.enrollment_id.astype(np.int32),
        wide.at.astype("datetime64[us]"),  # type: ignore[arg-type]
        wide.is_code.astype(np.int8),  # type: ignore[arg-type]
        wide.role.astype(np.int8),  # type: ignore[arg-type]
        wide.excluded,
    )
    for model in Model:
        settings = ModelSettings(model, role_weights={FunnelRole.SOURCE: Decimal("0.7")})
        expected = attribute_batch(wide, conversions, settings).credit_lists()
        assert attribute_batch(narrow, conversions, settings).credit_lists() == expected
