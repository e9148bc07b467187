"""The attribution engine: pure functions over plain values. No I/O, no ORM, no framework.

Shares are exact fractions summing to 1; amounts are integer minor units summing exactly to
the conversion's amount (largest remainder). Callable from a notebook:

    attribute(touchpoints, Conversion(at, 10_000), ModelSettings(AttributionModelKind.LINEAR))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from domain.programs.models import AttributionModelKind, FunnelRole
from domain.programs.rules import DEFAULT_HALF_LIFE_DAYS, DEFAULT_POSITION_WEIGHT

DEFAULT_LOOKBACK_DAYS = 30
CODE = "CODE"


@dataclass(frozen=True, slots=True)
class Touchpoint:
    id: int
    enrollment_id: int
    at: datetime
    kind: str = "CLICK"
    role: FunnelRole | None = None
    excluded: bool = False  # flagged, bot or self-referral: never credited


@dataclass(frozen=True, slots=True)
class Conversion:
    at: datetime
    amount_minor: int


@dataclass(frozen=True, slots=True)
class ModelSettings:
    model: AttributionModelKind
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    half_life_days: float | None = None
    first_weight: Decimal | None = None
    last_weight: Decimal | None = None
    role_weights: dict[FunnelRole, Decimal] | None = None
    code_wins: bool = False  # a referral code entered at checkout takes all the credit


class TouchWeight(NamedTuple):
    touchpoint_id: int
    at: datetime
    points: int  # its weight, in proportion to the conversion's `total`
    total: int

    @property
    def weight(self) -> Fraction:
        """This touchpoint's exact share of the whole conversion."""
        return Fraction(self.points, self.total)


class Credit(NamedTuple):
    """One enrollment's credit, with the touchpoints and weights that explain it."""

    enrollment_id: int
    points: int  # the sum of its touchpoints' weights, in proportion to `total`
    total: int
    amount_minor: int
    model: AttributionModelKind
    touchpoints: tuple[TouchWeight, ...] = ()

    @property
    def share(self) -> Fraction:
        """The enrollment's exact share of the conversion."""
        return Fraction(self.points, self.total)


def journey(
    touchpoints: Iterable[Touchpoint], conversion_at: datetime, lookback_days: int
) -> list[Touchpoint]:
    """The touchpoints that count: inside the lookback window before the conversion (the
    conversion's own instant included), not excluded, in time order (ties by id)."""
    start = conversion_at - timedelta(days=lookback_days)
    kept = [t for t in touchpoints if not t.excluded and start <= t.at <= conversion_at]
    return sorted(kept, key=lambda t: (t.at, t.id))


def _integers(weights: Sequence[Fraction]) -> list[int]:
    """Rational weights as integers over their common denominator (same proportions)."""
    denominator = math.lcm(*(w.denominator for w in weights))
    return [w.numerator * (denominator // w.denominator) for w in weights]


TIME_DECAY_BITS = 40  # the youngest touchpoint of a journey weighs exactly 2^40
_DECAY_STEPS = 256  # 2^(-f) for f in [0, 1): a table of 2^(-j/256), then a polynomial
DECAY_TABLE: tuple[float, ...] = tuple(2.0 ** (-j / _DECAY_STEPS) for j in range(_DECAY_STEPS))
# Taylor coefficients of 2^(-r) = e^(-r ln 2) for r in [0, 1/256): degree 4 errs < 2e-15
_LN2 = math.log(2.0)
DECAY_POLY: tuple[float, float, float, float] = (
    -_LN2,
    _LN2**2 / 2.0,
    -(_LN2**3) / 6.0,
    _LN2**4 / 24.0,
)
MICROSECONDS_PER_DAY = 86_400_000_000
_MICROSECOND = timedelta(microseconds=1)


def decay_points(elapsed_us: int, half_life_us: float) -> int:
    """The integer weight 2^K * 2^(-elapsed / half-life), K = TIME_DECAY_BITS, truncated.

    `elapsed_us` is the touchpoint's age minus the journey's youngest touchpoint's age (>= 0),
    so the youngest weighs exactly 2^K and the weights never all round to 0. Precision: each
    weight is within 1 of 2^K times the exact power (the float error, ~1e-15, is far below), so
    a share is within n * 2^-K (~1e-12 per touchpoint) of the exact exponential share and an
    amount within one minor unit of it for amounts below 2^K / n (~5e10 with 20 touchpoints):
    plenty for money split to the cent. 40 bits keep a journey's total below 2^53 up to 8192
    touchpoints, which the batch engine's integer arithmetic needs.

    Computed with a fixed sequence of IEEE-754 double operations (a division, a table of
    2^(-j/256) and a degree-4 polynomial, multiplications by powers of two) rather than `pow`
    or `exp2`, whose last bit differs between C libraries and SIMD code: the batch engine
    (`domain.attribution.batch`) performs the very same operations on arrays and so gets the
    very same integers.
    """
    t = elapsed_us / half_life_us  # half-lives elapsed
    if not t < TIME_DECAY_BITS + 1:  # weighs less than 1 (or NaN): 0
        return 0
    k = math.floor(t)
    f = t - k  # exact
    j = int(f * 256.0)
    r = f - j * 0.00390625  # exact, in [0, 1/256)
    c1, c2, c3, c4 = DECAY_POLY
    v = DECAY_TABLE[j] * ((((c4 * r + c3) * r + c2) * r + c1) * r + 1.0)
    return int(math.ldexp(v, TIME_DECAY_BITS - k))  # exact scaling, then truncation


def _time_decay(path: Sequence[Touchpoint], half_life_days: float) -> list[int]:
    """2^(-age / half-life) in proportion: relative to the youngest touchpoint (the last one),
    as K-bit fixed-point integers (see `decay_points`); exact from there on."""
    half_life_us = half_life_days * float(MICROSECONDS_PER_DAY)
    youngest = path[-1].at
    return [decay_points((youngest - t.at) // _MICROSECOND, half_life_us) for t in path]


def _position(n: int, first: Fraction, last: Fraction) -> list[Fraction]:
    if n == 1:
        return [Fraction(1)]
    if n == 2:  # in proportion to first and last weight (40/40 -> 50/50, 20/60 -> 25/75)
        if first + last == 0:
            return [Fraction(1), Fraction(1)]
        return [first, last]
    middle = (1 - first - last) / (n - 2)
    return [first, *([middle] * (n - 2)), last]


def _roles(path: Sequence[Touchpoint], weights: dict[FunnelRole, Decimal]) -> list[Fraction]:
    """A role's weight shared equally among its touchpoints; absent roles hand theirs to the
    present ones in proportion (the weights are normalized afterwards). Touchpoints without a
    role get nothing while a role is present."""
    present = {t.role for t in path if t.role is not None}
    role_weight = {r: Fraction(w) for r, w in weights.items() if r in present}
    if not any(role_weight.values()):
        return [Fraction(1)] * len(path)
    counts = {r: sum(1 for t in path if t.role is r) for r in present}
    return [
        role_weight.get(t.role, Fraction(0)) / counts[t.role] if t.role is not None else Fraction(0)
        for t in path
    ]


def raw_weights(
    path: Sequence[Touchpoint], conversion_at: datetime, settings: ModelSettings
) -> list[int]:
    """Each touchpoint's weight under the model, as non-negative integers in proportion
    (not all zero); its share is its weight over their sum."""
    n = len(path)
    if settings.code_wins and any(t.kind == CODE for t in path):
        winner = max(i for i, t in enumerate(path) if t.kind == CODE)
        return [int(i == winner) for i in range(n)]
    model = settings.model
    if model is AttributionModelKind.FIRST_TOUCH:
        return [1] + [0] * (n - 1)
    if model is AttributionModelKind.LAST_TOUCH:
        return [0] * (n - 1) + [1]
    if model is AttributionModelKind.LINEAR:
        return [1] * n
    if model is AttributionModelKind.TIME_DECAY:
        decay = _time_decay(path, settings.half_life_days or DEFAULT_HALF_LIFE_DAYS)
        return decay if any(decay) else [1] * n  # only with a NaN half-life
    if model is AttributionModelKind.POSITION_BASED:
        # an explicit 0 is a weight, not "unset"
        first, last = (
            Fraction(DEFAULT_POSITION_WEIGHT if w is None else w)
            for w in (settings.first_weight, settings.last_weight)
        )
        weights = _integers(_position(n, first, last))
    else:
        weights = _integers(_roles(path, settings.role_weights or {}))
    return weights if any(weights) else [1] * n


def touch_weights(
    path: Sequence[Touchpoint], conversion_at: datetime, settings: ModelSettings
) -> list[Fraction]:
    """Each touchpoint's exact share of the conversion under the model; they sum to 1."""
    if not path:
        return []
    weights = raw_weights(path, conversion_at, settings)
    total = sum(weights)
    return [Fraction(w, total) for w in weights]


def _split(total: int, weights: Sequence[int], keys: Sequence[str | int]) -> list[int]:
    """Largest remainder over integer weights (all exact: no fraction is ever built)."""
    if total < 0:
        return [-part for part in _split(-total, weights, keys)]
    whole = sum(weights)
    parts, remainders = [], []
    for w in weights:
        part, remainder = divmod(total * w, whole)
        parts.append(part)
        remainders.append(remainder)
    left = total - sum(parts)
    if left:
        order = sorted(
            range(len(weights)), key=lambda i: (-remainders[i], -weights[i], -i, keys[i])
        )
        for i in order[:left]:
            parts[i] += 1
    return parts


def split_minor(total: int, shares: Sequence[Fraction], keys: Sequence[str | int]) -> list[int]:
    """Split `total` minor units by exact `shares` (in time order) with the largest-remainder
    method. Ties: larger exact share, then the later item, then the smaller key. A negative
    total (a refund) is split as its mirror, so a full refund reverses each credit exactly."""
    return _split(total, _integers(shares), keys)


def attribute(
    touchpoints: Iterable[Touchpoint], conversion: Conversion, settings: ModelSettings
) -> list[Credit]:
    """Credits per enrollment for one conversion: shares sum to 1 and amounts to the amount.

    No touchpoint in the window: no credit (the conversion is unattributed).
    """
    path = journey(touchpoints, conversion.at, settings.lookback_days)
    if not path:
        return []
    weights = raw_weights(path, conversion.at, settings)
    whole = sum(weights)
    by_enrollment: dict[int, list[tuple[Touchpoint, int]]] = {}
    for t, w in zip(path, weights, strict=True):
        by_enrollment.setdefault(t.enrollment_id, []).append((t, w))
    # in the order of each enrollment's last touchpoint: the later one wins a tie
    ordered = sorted(
        by_enrollment, key=lambda e: (by_enrollment[e][-1][0].at, by_enrollment[e][-1][0].id)
    )
    sums = [sum(w for _, w in by_enrollment[e]) for e in ordered]
    amounts = _split(conversion.amount_minor, sums, ordered)
    return [
        Credit(
            e,
            weight,
            whole,
            amount,
            settings.model,
            tuple(TouchWeight(t.id, t.at, w, whole) for t, w in by_enrollment[e]),
        )
        for e, weight, amount in zip(ordered, sums, amounts, strict=True)
        if weight > 0 or amount != 0
    ]
