"""The attribution engine: pure functions over plain values. No I/O, no ORM, no framework.

Shares are exact fractions summing to 1; amounts are integer minor units summing exactly to
the conversion's amount (largest remainder). Callable from a notebook:

    attribute(touchpoints, Conversion(at, 10_000), ModelSettings(AttributionModelKind.LINEAR))
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from fractions import Fraction

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


@dataclass(frozen=True, slots=True)
class TouchWeight:
    touchpoint_id: int
    at: datetime
    weight: Fraction  # this touchpoint's share of the whole conversion


@dataclass(frozen=True, slots=True)
class Credit:
    """One enrollment's credit, with the touchpoints and weights that explain it."""

    enrollment_id: int
    share: Fraction
    amount_minor: int
    model: AttributionModelKind
    touchpoints: tuple[TouchWeight, ...] = field(default=())


def journey(
    touchpoints: Iterable[Touchpoint], conversion_at: datetime, lookback_days: int
) -> list[Touchpoint]:
    """The touchpoints that count: inside the lookback window before the conversion (the
    conversion's own instant included), not excluded, in time order (ties by id)."""
    start = conversion_at - timedelta(days=lookback_days)
    kept = [t for t in touchpoints if not t.excluded and start <= t.at <= conversion_at]
    return sorted(kept, key=lambda t: (t.at, t.id))


def _fraction(value: Decimal | float) -> Fraction:
    return Fraction(value) if isinstance(value, Decimal) else Fraction(Decimal(repr(value)))


def _normalize(weights: Sequence[Fraction]) -> list[Fraction]:
    total = sum(weights, Fraction(0))
    if total == 0:  # every weight vanished: fall back to equal credit
        return [Fraction(1, len(weights))] * len(weights)
    return [w / total for w in weights]


def _time_decay(path: Sequence[Touchpoint], at: datetime, half_life: float) -> list[Fraction]:
    """2^(-age / half-life), computed to 40 digits, then exact from there on."""
    weights = []
    with localcontext() as ctx:
        ctx.prec = 40
        hl = Decimal(repr(half_life))
        for t in path:
            age_days = Decimal((at - t.at).total_seconds()) / Decimal(86_400)
            weights.append(Fraction(Decimal(2) ** (-age_days / hl)))
    return weights


def _position(path: Sequence[Touchpoint], first: Fraction, last: Fraction) -> list[Fraction]:
    n = len(path)
    if n == 1:
        return [Fraction(1)]
    if n == 2:  # in proportion to first and last weight (40/40 -> 50/50, 20/60 -> 25/75)
        if first + last == 0:
            return [Fraction(1, 2), Fraction(1, 2)]
        return [first / (first + last), last / (first + last)]
    middle = (1 - first - last) / (n - 2)
    return [first, *([middle] * (n - 2)), last]


def _roles(path: Sequence[Touchpoint], weights: dict[FunnelRole, Decimal]) -> list[Fraction]:
    """A role's weight shared equally among its touchpoints; absent roles hand theirs to the
    present ones in proportion. Touchpoints without a role share what no role claims."""
    present = {t.role for t in path if t.role is not None}
    role_weight = {r: _fraction(w) for r, w in weights.items() if r in present}
    claimed = sum(role_weight.values(), Fraction(0))
    if claimed == 0:
        return [Fraction(1)] * len(path)
    counts = {r: sum(1 for t in path if t.role is r) for r in present}
    # scaling the present roles to the whole hands absent roles' weight over in proportion
    return [
        role_weight.get(t.role, Fraction(0)) / claimed / counts[t.role]
        if t.role is not None
        else Fraction(0)
        for t in path
    ]


def touch_weights(
    path: Sequence[Touchpoint], conversion_at: datetime, settings: ModelSettings
) -> list[Fraction]:
    """Each touchpoint's exact share of the conversion under the model; they sum to 1."""
    if not path:
        return []
    model = settings.model
    if settings.code_wins and any(t.kind == CODE for t in path):
        codes = [t for t in path if t.kind == CODE]
        winner = codes[-1]
        return [Fraction(1) if t is winner else Fraction(0) for t in path]
    n = len(path)
    if model is AttributionModelKind.FIRST_TOUCH:
        raw = [Fraction(1)] + [Fraction(0)] * (n - 1)
    elif model is AttributionModelKind.LAST_TOUCH:
        raw = [Fraction(0)] * (n - 1) + [Fraction(1)]
    elif model is AttributionModelKind.LINEAR:
        raw = [Fraction(1)] * n
    elif model is AttributionModelKind.TIME_DECAY:
        raw = _time_decay(path, conversion_at, settings.half_life_days or DEFAULT_HALF_LIFE_DAYS)
    elif model is AttributionModelKind.POSITION_BASED:
        first = _fraction(
            settings.first_weight if settings.first_weight is not None else DEFAULT_POSITION_WEIGHT
        )
        last = _fraction(
            settings.last_weight if settings.last_weight is not None else DEFAULT_POSITION_WEIGHT
        )
        raw = _position(path, first, last)
    else:
        raw = _roles(path, settings.role_weights or {})
    return _normalize(raw)


def split_minor(total: int, shares: Sequence[Fraction], keys: Sequence[str | int]) -> list[int]:
    """Split `total` minor units by exact `shares` (in time order) with the largest-remainder
    method. Ties: larger exact share, then the later item, then the smaller key. A negative
    total (a refund) is split as its mirror, so a full refund reverses each credit exactly."""
    if total < 0:
        return [-part for part in split_minor(-total, shares, keys)]
    exact = [total * s for s in shares]
    parts = [int(e) for e in exact]  # floor: exact values are non-negative
    left = total - sum(parts)
    order = sorted(
        range(len(shares)),
        key=lambda i: (-(exact[i] - parts[i]), -shares[i], -i, keys[i]),
    )
    for i in order[:left]:
        parts[i] += 1
    return parts


def attribute(
    touchpoints: Iterable[Touchpoint], conversion: Conversion, settings: ModelSettings
) -> list[Credit]:
    """Credits per enrollment for one conversion: shares sum to 1 and amounts to the amount.

    No touchpoint in the window: no credit (the conversion is unattributed).
    """
    path = journey(touchpoints, conversion.at, settings.lookback_days)
    weights = touch_weights(path, conversion.at, settings)
    by_enrollment: dict[int, list[TouchWeight]] = {}
    last_index: dict[int, int] = {}
    for index, (t, w) in enumerate(zip(path, weights, strict=True)):
        by_enrollment.setdefault(t.enrollment_id, []).append(TouchWeight(t.id, t.at, w))
        last_index[t.enrollment_id] = index
    ordered = sorted(by_enrollment, key=lambda e: (last_index[e], e))
    shares = [sum((tw.weight for tw in by_enrollment[e]), Fraction(0)) for e in ordered]
    amounts = split_minor(conversion.amount_minor, shares, ordered)
    return [
        Credit(e, share, amount, settings.model, tuple(by_enrollment[e]))
        for e, share, amount in zip(ordered, shares, amounts, strict=True)
        if share > 0 or amount != 0
    ]
