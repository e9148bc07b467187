"""Data-driven attribution: first-order Markov removal effects and exact Shapley values.

Pure functions over plain values (numpy for the Markov chain's linear algebra). No I/O, no ORM,
no framework. Callable from a notebook:

    markov([((1, 2, 3), True), ((1,), False), Journey((2, 3), conversions=4, nulls=6)])
    shapley([((1, 2), True), ((2,), False)])

A journey is a path of enrollment ids in time order that converted or not; a `Journey` carries
the counts of all the journeys that took one path. Empty paths, and rows counting no journey,
are ignored: they are not journeys and make no enrollment "seen".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple, TypeVar

import numpy as np
from numpy.typing import NDArray

SHARE_TIE_PLACES = 12  # Markov shares equal to 12 places tie (float noise) and sort by id

K = TypeVar("K", bound=Hashable)
Vector = NDArray[np.float64]


class DataDrivenMethod(StrEnum):
    MARKOV = "MARKOV"
    SHAPLEY = "SHAPLEY"


class Journey(NamedTuple):
    """The journeys that took one path: how many converted and how many did not."""

    path: tuple[int, ...]
    conversions: int = 0
    nulls: int = 0


JourneyInput = Journey | tuple[Sequence[int], bool]


class DataDrivenRow(NamedTuple):
    """One enrollment's credit: MARKOV fills `removal_effect` (floats), SHAPLEY fills
    `shapley_value` (exact fractions)."""

    enrollment_id: int
    removal_effect: float | None
    shapley_value: Fraction | None
    share: float | Fraction
    attributed_conversions: float | Fraction


@dataclass(frozen=True, slots=True)
class DataDrivenResult:
    method: DataDrivenMethod
    journeys: int
    converting_journeys: int
    conversion_probability: float | None  # MARKOV: the chain's P(conversion); None without data
    exact: bool  # nothing was sampled (always true: both methods are computed exactly)
    rows: tuple[DataDrivenRow, ...]  # one per enrollment seen, by share descending, then id


class _Counts(NamedTuple):
    conversions: int
    nulls: int


def merge_repeats(path: Iterable[int]) -> tuple[int, ...]:
    """The path with consecutive repeats of one enrollment merged (A > A > B > A: A > B > A):
    the same partner touching a customer twice in a row is one visit to its state."""
    merged: list[int] = []
    for state in path:
        if not merged or merged[-1] != state:
            merged.append(state)
    return tuple(merged)


def _aggregate(
    journeys: Iterable[JourneyInput], key: Callable[[Sequence[int]], K]
) -> dict[K, _Counts]:
    """Conversions and nulls per key of the path (merged path, set of enrollments)."""
    counts: dict[K, _Counts] = {}
    for journey in journeys:
        path: Sequence[int]
        if isinstance(journey, Journey):
            path, conversions, nulls = journey
        else:
            path, converted = journey
            conversions, nulls = (1, 0) if converted else (0, 1)
        if conversions < 0 or nulls < 0:
            raise ValueError(f"negative journey count on path {tuple(path)}")
        if not path or conversions + nulls == 0:
            continue
        k = key(path)
        seen = counts.get(k, _Counts(0, 0))
        counts[k] = _Counts(seen.conversions + conversions, seen.nulls + nulls)
    return counts


class _Chain(NamedTuple):
    states: list[int]  # enrollment ids, in the order of the vectors
    start: Vector  # s: P(START -> i)
    transient: Vector  # Q: P(i -> j) between enrollments
    convert: Vector  # r: P(i -> CONVERSION)


def _fit(paths: dict[tuple[int, ...], _Counts], total: int) -> _Chain:
    """Transition probabilities from counts: each in-path step weighs the path's journeys; the
    last state goes to CONVERSION with its conversions and to NULL with its nulls."""
    states = sorted({s for path in paths for s in path})
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    start, convert, ends = np.zeros(n), np.zeros(n), np.zeros(n)
    moves: dict[tuple[int, int], int] = {}
    for path, (conversions, nulls) in paths.items():
        steps = [index[s] for s in path]
        weight = conversions + nulls
        start[steps[0]] += weight
        for step in itertools.pairwise(steps):
            moves[step] = moves.get(step, 0) + weight
        convert[steps[-1]] += conversions
        ends[steps[-1]] += weight
    transient = np.zeros((n, n))
    if moves:
        rows, cols = zip(*moves, strict=True)
        transient[list(rows), list(cols)] = list(moves.values())
    out = transient.sum(axis=1) + ends  # every state is left: out > 0
    return _Chain(states, start / total, transient / out[:, None], convert / out)


def _removal_effects(chain: _Chain) -> tuple[float, Vector]:
    """P(conversion) and every state's removal effect from one dense LU solve.

    With M = (I - Q)^-1, x = M r (P(conversion) from each state) and P = s x. By the strong
    Markov property P(conversion, never visiting i) = P - h_i x_i, where h_i = (s M)_i / M_ii
    is the probability of ever visiting i; removing i (entries to i go to NULL) loses h_i x_i,
    so removal effect_i = h_i x_i / P. Dense numpy: a program's ~1000 enrollments make a
    1000 x 1000 solve (8 MB, well under a second) instead of n re-solves.
    """
    n = len(chain.states)
    fundamental = np.linalg.solve(np.eye(n) - chain.transient, np.eye(n))
    from_state = fundamental @ chain.convert
    probability = float(chain.start @ from_state)
    if probability <= 0.0:
        return 0.0, np.zeros(n)
    reach = (chain.start @ fundamental) / np.diag(fundamental)
    return probability, np.clip(reach * from_state / probability, 0.0, 1.0)


def markov(journeys: Iterable[JourneyInput]) -> DataDrivenResult:
    """First-order Markov attribution (Anderl et al. 2016), the absorbing chain solved exactly.

    `removal_effect` = 1 - P(conversion without the enrollment) / P(conversion); `share` = its
    removal effect over the sum of all; `attributed_conversions` = converting journeys x share.
    The chain's P(conversion) equals converting journeys / journeys (flow conservation). With no
    converting journey every removal effect and share is 0; with no journey at all the
    conversion probability is None (0/0) and there are no rows.
    """
    paths = _aggregate(journeys, merge_repeats)
    total = sum(c + n for c, n in paths.values())
    converting = sum(c for c, _ in paths.values())
    if total == 0:
        return DataDrivenResult(DataDrivenMethod.MARKOV, 0, 0, None, True, ())
    chain = _fit(paths, total)
    probability, effects = _removal_effects(chain)
    whole = float(effects.sum())
    shares = effects / whole if whole > 0.0 else np.zeros_like(effects)
    credits = sorted(
        zip(chain.states, effects.tolist(), shares.tolist(), strict=True),
        key=lambda c: (-round(c[2], SHARE_TIE_PLACES), c[0]),
    )
    rows = [
        DataDrivenRow(e, effect, None, share, converting * share) for e, effect, share in credits
    ]
    return DataDrivenResult(
        DataDrivenMethod.MARKOV, total, converting, probability, True, tuple(rows)
    )


def _shapley_values(rates: dict[frozenset[int], Fraction], players: list[int]) -> list[Fraction]:
    """Exact Shapley values of v(S) = rates[S] (0 for unseen S), linear in the input.

    v is a sum of indicator games c_T [S == T], whose Shapley value is w(|T| - 1) for i in T
    and -w(|T|) for i not in T, with w(s) = s! (n - s - 1)! / n! (w(n) = 0). Hence
    phi_i = sum over T containing i of c_T (w(|T| - 1) + w(|T|)) - sum over s of G(s) w(s),
    where G(s) sums c_T over the seen sets of size s.
    """
    n = len(players)
    w = [Fraction(1, n * math.comb(n - 1, size)) for size in range(n)] + [Fraction(0)]
    by_size: dict[int, Fraction] = {}
    present: dict[int, dict[int, Fraction]] = {p: {} for p in players}
    for coalition, rate in rates.items():
        if rate == 0:
            continue
        size = len(coalition)
        by_size[size] = by_size.get(size, Fraction(0)) + rate
        for player in coalition:
            sums = present[player]
            sums[size] = sums.get(size, Fraction(0)) + rate
    absent = sum((g * w[size] for size, g in by_size.items()), Fraction(0))
    values = []
    for player in players:
        inside = ((w[size - 1] + w[size]) * c for size, c in present[player].items())
        values.append(sum(inside, Fraction(0)) - absent)
    return values


def shapley(journeys: Iterable[JourneyInput]) -> DataDrivenResult:
    """Shapley attribution over enrollments, exact for any number of them (nothing sampled).

    v(S) = conversions / journeys of the journeys whose set of distinct enrollments is exactly S
    (0 when there is none, so v(empty) = 0); `shapley_value` = the Shapley value over v, an exact
    Fraction. `share` = shapley value over the sum of all, which is v(all enrollments) by
    efficiency: when that sum is 0 (no journey visited every enrollment, or none converted)
    every share is 0. Values and shares can be negative: v is not monotone.
    `attributed_conversions` = converting journeys x share.
    """
    sets = _aggregate(journeys, frozenset)
    total = sum(c + n for c, n in sets.values())
    converting = sum(c for c, _ in sets.values())
    players = sorted({p for coalition in sets for p in coalition})
    rates = {s: Fraction(c, c + n) for s, (c, n) in sets.items()}
    values = _shapley_values(rates, players)
    whole = sum(values, Fraction(0))
    shares = [value / whole if whole else Fraction(0) for value in values]
    credits = sorted(zip(players, values, shares, strict=True), key=lambda c: (-c[2], c[0]))
    rows = [DataDrivenRow(e, None, value, share, converting * share) for e, value, share in credits]
    return DataDrivenResult(DataDrivenMethod.SHAPLEY, total, converting, None, True, tuple(rows))
