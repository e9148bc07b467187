"""Data-driven attribution against the reference vectors, independent oracles (an exact-fraction
re-solve of the chain, a brute-force Shapley value) and the invariants they must keep."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Hashable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.attribution.datadriven import (
    DataDrivenMethod,
    DataDrivenResult,
    DataDrivenRow,
    Journey,
    markov,
    merge_repeats,
    shapley,
)

DATA = Path(__file__).parents[2] / "data"
MARKOV_VECTORS = json.loads((DATA / "markov_examples.json").read_text())
SHAPLEY_VECTORS = json.loads((DATA / "shapley_vectors.json").read_text())

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
Row = tuple[tuple[int, ...], int, int]  # path, conversions, nulls
Game = Callable[[frozenset[int]], Fraction]


def exact(text: str) -> Fraction:
    """'p/q = decimal' (or a plain number) from the reference files."""
    return Fraction(str(text).split(" = ")[0])


def channel_ids(paths: Sequence[str]) -> dict[str, int]:
    names = sorted({name for path in paths for name in path.split(" > ")})
    return {name: i for i, name in enumerate(names, start=1)}


def reference_journeys(rows: list[dict[str, object]], ids: dict[str, int]) -> list[Journey]:
    journeys = []
    for row in rows:
        path = tuple(ids[name] for name in str(row["path"]).split(" > "))
        conversions = row.get("total_conversions", row.get("conversions"))
        nulls = row.get("total_null", row.get("nulls"))
        journeys.append(Journey(path, int(str(conversions)), int(str(nulls))))
    return journeys


# --- the Markov oracle: the chain rebuilt with exact fractions and re-solved per removal ---


def exact_transitions(rows: Sequence[Row]) -> dict[Hashable, dict[Hashable, Fraction]]:
    weights: dict[Hashable, dict[Hashable, int]] = {}
    for path, conversions, nulls in rows:
        if not path or conversions + nulls == 0:
            continue
        states = [START, *(state for state, _ in itertools.groupby(path))]
        for a, b in itertools.pairwise(states):
            weights.setdefault(a, {}).setdefault(b, 0)
            weights[a][b] += conversions + nulls
        for end, count in ((CONVERSION, conversions), (NULL, nulls)):
            if count:
                weights.setdefault(states[-1], {}).setdefault(end, 0)
                weights[states[-1]][end] += count
    return {
        a: {b: Fraction(w, sum(out.values())) for b, w in out.items()} for a, out in weights.items()
    }


def exact_conversion(rows: Sequence[Row], removed: Hashable | None = None) -> Fraction:
    """P(START reaches CONVERSION) by Gauss-Jordan over fractions; a removed state absorbs
    into NULL."""
    chain = exact_transitions(rows)
    states = [s for s in chain if s not in (START, removed)]
    if not states:
        return Fraction(0)
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    # (I - Q) x = r, augmented
    matrix = [[Fraction(int(i == j)) for j in range(n)] + [Fraction(0)] for i in range(n)]
    for s in states:
        for t, p in chain[s].items():
            if t == CONVERSION:
                matrix[index[s]][n] += p
            elif t in index:
                matrix[index[s]][index[t]] -= p
    for col in range(n):
        pivot = next(r for r in range(col, n) if matrix[r][col] != 0)
        matrix[col], matrix[pivot] = matrix[pivot], matrix[col]
        top = matrix[col][col]
        matrix[col] = [v / top for v in matrix[col]]
        for r in range(n):
            if r != col and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [v - factor * w for v, w in zip(matrix[r], matrix[col], strict=True)]
    return sum(
        (p * matrix[index[t]][n] for t, p in chain[START].items() if t in index), Fraction(0)
    )


# --- the Shapley oracle: every coalition enumerated ---


def brute_force_shapley(players: Sequence[int], v: Game) -> dict[int, Fraction]:
    n = len(players)
    values = {}
    for i in players:
        others = [p for p in players if p != i]
        total = Fraction(0)
        for size in range(n):
            weight = Fraction(
                math.factorial(size) * math.factorial(n - size - 1), math.factorial(n)
            )
            for coalition in itertools.combinations(others, size):
                s = frozenset(coalition)
                total += weight * (v(s | {i}) - v(s))
        values[i] = total
    return values


def exact_set_rate_game(rows: Sequence[Row]) -> Game:
    counts: dict[frozenset[int], tuple[int, int]] = {}
    for path, conversions, nulls in rows:
        if path and conversions + nulls:
            c, t = counts.get(frozenset(path), (0, 0))
            counts[frozenset(path)] = (c + conversions, t + conversions + nulls)

    def v(s: frozenset[int]) -> Fraction:
        c, t = counts.get(s, (0, 0))
        return Fraction(c, t) if t else Fraction(0)

    return v


def as_rows(journeys: Sequence[Journey]) -> list[Row]:
    return [(j.path, j.conversions, j.nulls) for j in journeys]


def by_enrollment(result: DataDrivenResult) -> dict[int, DataDrivenRow]:
    return {r.enrollment_id: r for r in result.rows}


journeys_strategy = st.lists(
    st.builds(
        Journey,
        st.lists(st.integers(1, 6), max_size=6).map(tuple),
        st.integers(0, 4),
        st.integers(0, 4),
    ),
    max_size=8,
)


# --- merging repeats ---


@pytest.mark.parametrize(
    ("path", "merged"),
    [
        ((), ()),
        ((1,), (1,)),
        ((1, 1, 1), (1,)),
        ((1, 1, 2, 1), (1, 2, 1)),
        ((3, 2, 2, 3, 3), (3, 2, 3)),
    ],
)
def test_merge_repeats_merges_only_consecutive_visits(
    path: tuple[int, ...], merged: tuple[int, ...]
) -> None:
    assert merge_repeats(path) == merged


# --- MARKOV ---


@pytest.mark.parametrize("name", sorted(MARKOV_VECTORS["sets"]))
def test_markov_matches_the_reference_exact_values(name: str) -> None:
    case = MARKOV_VECTORS["sets"][name]
    ids = channel_ids([row["path"] for row in case["input"]])
    result = markov(reference_journeys(case["input"], ids))
    expected = case["exact"]
    assert result.method is DataDrivenMethod.MARKOV
    assert result.exact
    assert result.conversion_probability == pytest.approx(
        float(exact(expected["p_conversion"])), abs=1e-12
    )
    rows = by_enrollment(result)
    assert set(rows) == {ids[c] for c in expected["removal_effect"]}
    for channel, effect in expected["removal_effect"].items():
        row = rows[ids[channel]]
        assert row.removal_effect == pytest.approx(float(exact(effect)), abs=1e-9)
        total = exact(expected["total_conversions"][channel])
        assert row.attributed_conversions == pytest.approx(float(total), abs=1e-9)
        assert row.shapley_value is None


@pytest.mark.parametrize("name", sorted(MARKOV_VECTORS["sets"]))
def test_the_oracle_chain_matches_the_reference_transitions_and_removal_effects(
    name: str,
) -> None:
    case = MARKOV_VECTORS["sets"][name]
    rows = [
        (tuple(r["path"].split(" > ")), r["total_conversions"], r["total_null"])
        for r in case["input"]
    ]
    expected = case["exact"]
    chain = exact_transitions(rows)
    assert chain == {
        a: {b: exact(p) for b, p in out.items()}
        for a, out in expected["transition_probabilities"].items()
    }
    p = exact_conversion(rows)
    assert p == exact(expected["p_conversion"])
    for channel, effect in expected["removal_effect"].items():
        assert 1 - exact_conversion(rows, channel) / p == exact(effect)


@settings(max_examples=60)
@given(journeys_strategy)
def test_markov_conversion_probability_is_converting_journeys_over_journeys(
    journeys: list[Journey],
) -> None:
    result = markov(journeys)
    counted = [j for j in journeys if j.path]
    assert result.journeys == sum(j.conversions + j.nulls for j in counted)
    assert result.converting_journeys == sum(j.conversions for j in counted)
    if result.journeys == 0:
        assert result.conversion_probability is None
        assert result.rows == ()
        return
    assert result.conversion_probability == pytest.approx(
        result.converting_journeys / result.journeys, abs=1e-12
    )


@settings(max_examples=60)
@given(journeys_strategy)
def test_markov_removal_effects_match_a_naive_exact_re_solve_per_removed_state(
    journeys: list[Journey],
) -> None:
    result = markov(journeys)
    rows = as_rows(journeys)
    p = exact_conversion(rows)
    seen = {s for path, c, n in rows if c + n for s in path}
    assert {r.enrollment_id for r in result.rows} == seen
    for row in result.rows:
        expected = 1 - exact_conversion(rows, row.enrollment_id) / p if p else Fraction(0)
        assert row.removal_effect == pytest.approx(float(expected), abs=1e-9)


@settings(max_examples=60)
@given(journeys_strategy)
def test_markov_shares_sum_to_one_and_attribute_every_converting_journey(
    journeys: list[Journey],
) -> None:
    result = markov(journeys)
    shares = [float(r.share) for r in result.rows]
    attributed = sum(float(r.attributed_conversions) for r in result.rows)
    if result.converting_journeys:
        assert sum(shares) == pytest.approx(1.0, abs=1e-12)
        assert attributed == pytest.approx(result.converting_journeys, abs=1e-9)
    else:
        assert all(r.removal_effect == 0 and r.share == 0 for r in result.rows)
        assert attributed == 0
    keys = [(-round(s, 12), r.enrollment_id) for s, r in zip(shares, result.rows, strict=True)]
    assert keys == sorted(keys)


def test_markov_without_journeys_has_no_probability_and_no_rows() -> None:
    for journeys in ([], [((), True)], [Journey((1, 2), 0, 0)]):
        result = markov(journeys)
        assert (result.journeys, result.converting_journeys) == (0, 0)
        assert result.conversion_probability is None
        assert result.rows == ()


def test_markov_without_a_conversion_credits_nobody() -> None:
    result = markov([((1, 2), False), ((2,), False), ((2, 1, 2), False)])
    assert result.conversion_probability == 0
    assert [(r.enrollment_id, r.removal_effect, r.share) for r in result.rows] == [
        (1, 0, 0),
        (2, 0, 0),
    ]
    assert all(r.attributed_conversions == 0 for r in result.rows)


def test_markov_single_enrollment_takes_every_conversion() -> None:
    result = markov([((7, 7), True), ((7,), False), ((7,), True)])
    assert result.conversion_probability == pytest.approx(2 / 3)
    assert result.rows == ((7, 1.0, None, 1.0, 2.0),)


def test_markov_loop_a_b_a_is_solved_not_cut() -> None:
    # START > A; A > B 1/2, A > CONVERSION 1/2; B > A: P = 1. Without B: 1/2; without A: 0.
    result = markov([((1, 2, 1), True)])
    assert result.conversion_probability == pytest.approx(1.0)
    assert [(r.enrollment_id, r.removal_effect, r.share) for r in result.rows] == [
        (1, pytest.approx(1.0), pytest.approx(2 / 3)),
        (2, pytest.approx(0.5), pytest.approx(1 / 3)),
    ]


def test_markov_journeys_of_one_state_credit_the_converting_state_only() -> None:
    result = markov([((1,), True), ((1,), False), ((2,), False)])
    assert result.conversion_probability == pytest.approx(1 / 3)
    assert [(r.enrollment_id, r.removal_effect, r.share) for r in result.rows] == [
        (1, pytest.approx(1.0), pytest.approx(1.0)),
        (2, 0.0, 0.0),
    ]


def test_markov_counted_journeys_equal_the_same_journeys_one_by_one() -> None:
    counted = [Journey((1, 2, 3), 2, 1), Journey((2, 3), 0, 2), Journey((3,), 1, 0)]
    one_by_one: list[tuple[Sequence[int], bool]] = [
        (list(j.path), converted)
        for j in counted
        for converted in [True] * j.conversions + [False] * j.nulls
    ]
    assert markov(counted) == markov(one_by_one)
    assert shapley(counted) == shapley(one_by_one)


def test_markov_ties_sort_by_enrollment_id() -> None:
    case = MARKOV_VECTORS["sets"]["bryl_3_paths"]
    ids = {"c1": 30, "c2": 20, "c3": 10}  # c2 and c3 tie at 2/5
    result = markov(reference_journeys(case["input"], ids))
    assert [r.enrollment_id for r in result.rows] == [10, 20, 30]


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        markov([Journey((1,), -1, 2)])
    with pytest.raises(ValueError, match="negative"):
        shapley([Journey((1,), 1, -2)])


def test_markov_scales_to_a_thousand_enrollments_with_one_solve() -> None:
    rng = random.Random(20_261_101)
    journeys = [
        Journey(
            tuple(rng.randrange(1000) for _ in range(rng.randint(1, 6))),
            rng.randint(0, 2),
            rng.randint(0, 5),
        )
        for _ in range(4000)
    ]
    result = markov(journeys)
    assert len(result.rows) > 990
    assert result.conversion_probability == pytest.approx(
        result.converting_journeys / result.journeys, abs=1e-12
    )
    # a few removal effects against a naive float re-solve without the state
    chain = exact_transitions(as_rows(journeys))
    states = sorted(s for s in chain if s != START)
    index = {s: i for i, s in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    r = np.zeros(len(states))
    s0 = np.zeros(len(states))
    for a, out in chain.items():
        for b, p in out.items():
            if a == START:
                s0[index[b]] = p
            elif b == CONVERSION:
                r[index[a]] = p
            elif b != NULL:
                q[index[a], index[b]] = p
    p_all = float(s0 @ np.linalg.solve(np.eye(len(states)) - q, r))
    rows = by_enrollment(result)
    for state in rng.sample(states, 3):
        keep = [i for i in range(len(states)) if i != index[state]]
        reduced = np.eye(len(keep)) - q[np.ix_(keep, keep)]
        p_without = float(s0[keep] @ np.linalg.solve(reduced, r[keep]))
        effect = rows[state].removal_effect
        assert effect == pytest.approx(1 - p_without / p_all, abs=1e-9)


# --- SHAPLEY ---

SHAPLEY_ROWS = [
    (tuple(r["path"].split(" > ")), r["conversions"], r["nulls"])
    for r in SHAPLEY_VECTORS["input_paths"]
]


def test_shapley_matches_the_reference_conversion_rate_game_exactly() -> None:
    ids = channel_ids([r["path"] for r in SHAPLEY_VECTORS["input_paths"]])
    result = shapley(reference_journeys(SHAPLEY_VECTORS["input_paths"], ids))
    expected = {
        ids[c]: exact(v["exact"])
        for c, v in SHAPLEY_VECTORS["shapley_conversion_rate_v_exact_set"].items()
    }
    assert list(expected.values()) == [
        Fraction(883, 6300),
        Fraction(673, 6300),
        Fraction(167, 3150),
    ]
    assert result.method is DataDrivenMethod.SHAPLEY
    assert result.exact
    assert result.conversion_probability is None
    assert (result.journeys, result.converting_journeys) == (350, 46)
    assert [(r.enrollment_id, r.shapley_value) for r in result.rows] == list(expected.items())
    # efficiency: the values sum to v(ABC) = 6/20, so the shares are the values over 3/10
    assert [r.share for r in result.rows] == [v / Fraction(3, 10) for v in expected.values()]
    assert [r.attributed_conversions for r in result.rows] == [46 * r.share for r in result.rows]
    assert all(r.removal_effect is None for r in result.rows)


def test_the_brute_force_oracle_matches_the_textbook_game() -> None:
    game = SHAPLEY_VECTORS["textbook_3_player_game"]
    names = {"A": 1, "B": 2, "C": 3}
    table = {
        frozenset(names[c] for c in key.strip("{}")): Fraction(value)
        for key, value in game["v"].items()
    }
    values = brute_force_shapley([1, 2, 3], table.__getitem__)
    assert values == {names[c]: exact(v["exact"]) for c, v in game["shapley"].items()}


def test_the_brute_force_oracle_matches_the_reference_subset_sum_game() -> None:
    # v(S) = conversions of the journeys whose channel set is a subset of S
    names = {"A": 1, "B": 2, "C": 3}
    rows = [(frozenset(names[c] for c in path), c) for path, c, _ in SHAPLEY_ROWS]

    def v(s: frozenset[int]) -> Fraction:
        return Fraction(sum(c for t, c in rows if t <= s))

    expected = SHAPLEY_VECTORS["full_shapley_v_subset_sum"]
    assert brute_force_shapley([1, 2, 3], v) == {
        names[c]: exact(value["exact"]) for c, value in expected.items()
    }


small_games = st.lists(
    st.builds(
        Journey,
        st.lists(st.integers(1, 7), min_size=1, max_size=7).map(tuple),
        st.integers(0, 5),
        st.integers(0, 5),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=50)
@given(small_games)
def test_shapley_equals_the_brute_force_value_exactly(journeys: list[Journey]) -> None:
    result = shapley(journeys)
    rows = as_rows(journeys)
    players = sorted({p for path, c, n in rows if c + n for p in path})
    expected = brute_force_shapley(players, exact_set_rate_game(rows))
    assert {r.enrollment_id: r.shapley_value for r in result.rows} == expected
    assert all(isinstance(r.shapley_value, Fraction) for r in result.rows)


@settings(max_examples=50)
@given(small_games)
def test_shapley_is_efficient_and_its_shares_sum_to_one(journeys: list[Journey]) -> None:
    result = shapley(journeys)
    players = frozenset(r.enrollment_id for r in result.rows)
    whole = exact_set_rate_game(as_rows(journeys))(players)
    assert sum((r.shapley_value or Fraction(0) for r in result.rows), Fraction(0)) == whole
    shares = sum((Fraction(r.share) for r in result.rows), Fraction(0))
    assert shares == (1 if whole else 0)
    assert [(-r.share, r.enrollment_id) for r in result.rows] == sorted(
        (-Fraction(r.share), r.enrollment_id) for r in result.rows
    )


@settings(max_examples=50)
@given(small_games, st.integers(1, 7), st.integers(1, 7))
def test_shapley_gives_symmetric_enrollments_equal_values(
    journeys: list[Journey], i: int, j: int
) -> None:
    swap = {i: j, j: i}
    mirrored = [Journey(tuple(swap.get(p, p) for p in x.path), *x[1:]) for x in journeys]
    values = {r.enrollment_id: r.shapley_value for r in shapley(journeys + mirrored).rows}
    assert values.get(i) == values.get(j)


@settings(max_examples=50)
@given(small_games)
def test_a_null_enrollment_gets_nothing_and_changes_nobody(journeys: list[Journey]) -> None:
    # enrollment 99 rides along on a copy of every journey: v(S + 99) = v(S) for every S
    riders = [Journey((*j.path, 99), *j[1:]) for j in journeys]
    before = {r.enrollment_id: r.shapley_value for r in shapley(journeys).rows}
    after = {r.enrollment_id: r.shapley_value for r in shapley(journeys + riders).rows}
    assert after.pop(99, 0) == 0  # (not seen at all when no journey counts)
    assert after == before


def test_shapley_without_a_journey_through_every_enrollment_shares_nothing() -> None:
    # v(all) = 0: the values sum to 0 by efficiency, so no share can be defined
    result = shapley([((1,), True), ((2,), False), ((1, 2, 1), True), ((3,), True)])
    assert sum((r.shapley_value or Fraction(0) for r in result.rows), Fraction(0)) == 0
    assert any(r.shapley_value for r in result.rows)
    assert all(r.share == 0 and r.attributed_conversions == 0 for r in result.rows)


def test_shapley_without_journeys_or_conversions() -> None:
    empty = shapley([])
    assert (empty.journeys, empty.converting_journeys, empty.rows) == (0, 0, ())
    result = shapley([((1, 2), False), ((2,), False)])
    assert [(r.enrollment_id, r.shapley_value, r.share) for r in result.rows] == [
        (1, 0, 0),
        (2, 0, 0),
    ]


def test_shapley_single_enrollment_gets_its_conversion_rate_and_everything() -> None:
    result = shapley([((4, 4), True), ((4,), False), ((4,), False)])
    assert result.rows == ((4, None, Fraction(1, 3), Fraction(1), Fraction(1)),)


def test_shapley_loops_count_the_set_of_enrollments_once() -> None:
    loop = shapley([((1, 2, 1), True), ((2,), False)])
    straight = shapley([((1, 2), True), ((2,), False)])
    assert loop == straight
    # v(A) = 0, v(B) = 0, v(AB) = 1: A gets 1/2, B gets 1/2
    assert [r.shapley_value for r in loop.rows] == [Fraction(1, 2), Fraction(1, 2)]


def test_shapley_is_exact_for_a_thousand_enrollments() -> None:
    rng = random.Random(7)
    journeys = [
        Journey(
            tuple(rng.randrange(1000) for _ in range(rng.randint(1, 5))),
            rng.randint(0, 3),
            rng.randint(1, 5),
        )
        for _ in range(3000)
    ]
    everyone = sorted({p for j in journeys for p in j.path})
    journeys.append(Journey(tuple(everyone), 3, 7))  # v(all) = 3/10
    result = shapley(journeys)
    assert result.exact
    assert len(result.rows) == len(everyone)
    assert sum((r.shapley_value or Fraction(0) for r in result.rows), Fraction(0)) == Fraction(
        3, 10
    )
    assert sum((Fraction(r.share) for r in result.rows), Fraction(0)) == 1
