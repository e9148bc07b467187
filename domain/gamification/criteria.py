"""The rules of points, badges and milestones (pure: plain values in, plain values out).

Points of a credit. A credited enrollment earns, for a conversion of a kind with a point rule,

    earned = round_half_even(share * pointsPerConversion + pointsPerUnit * units)

where `share` is its fraction of the conversion's credit (exact, as the credit stores it) and
`units` is its credited amount in whole currency units, rounded down (12.99 EUR is 12 units).
A conversion of a kind without a rule earns nothing. One entry earns at most MAX_ENTRY_POINTS.

Points of a refund, like the money ledger: a *position* is an enrollment's points for one
conversion, `earned` the sum of its CONVERSION entries and `taken` the sum of its REVERSAL
entries. After refunds it is worth `round_half_even(earned * (amount - refunded) / amount)`
(never more than earned, 0 once all is refunded); a refund appends the REVERSAL that moves it
there. A recompute prices the position again (a CONVERSION entry for the difference) and moves
its reversals to match the new earnings. Entries are never edited.

Badges. A badge is reached when its metric's value reaches its threshold; a one-off badge is
awarded once (sequence 1), a repeating badge (a milestone) once per multiple of its threshold
reached (sequences 1 .. floor(value / threshold)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from domain.commissions.rules import position_target, round_half_even
from domain.errors import ErrorCode, ErrorCollector
from domain.gamification.models import BadgeMetric, PointKind
from domain.money import AmountError, to_minor
from domain.tracking.models import ConversionKind

MAX_RULE_POINTS = 1_000_000  # pointsPerConversion and pointsPerUnit
MAX_ENTRY_POINTS = 1_000_000_000  # one entry's points (the column holds 32-bit integers)
MAX_BADGE_POINTS = 1_000_000
MAX_BADGES = 200  # per program: every ingested batch evaluates them
MAX_PERIOD_DAYS = 3650
MAX_THRESHOLD = Decimal(10) ** 15
MAX_NEW_SEQUENCES = 100  # a milestone's awards per evaluation: a later event awards the rest
MAX_DESCRIPTION = 2000
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
COUNTED = frozenset(BadgeMetric) - {BadgeMetric.REVENUE}  # whole numbers


# --- points ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointTerms:
    """A program's point rule for one conversion kind."""

    conversion_kind: ConversionKind
    per_conversion: int = 0
    per_unit: int = 0


@dataclass(frozen=True, slots=True)
class CreditPoints:
    earned: int
    explanation: str


def points_for_credit(
    terms: PointTerms | None, share: Fraction, credited_minor: int, digits: int
) -> CreditPoints:
    """What a credit earns (see the module's docstring), with how."""
    if terms is None:
        return CreditPoints(0, "no point rule for this kind")
    units = max(credited_minor, 0) // 10**digits
    earned = min(round_half_even(share * terms.per_conversion + terms.per_unit * units),
                 MAX_ENTRY_POINTS)  # fmt: skip
    explanation = (
        f"{terms.conversion_kind}: share {share} x {terms.per_conversion} per conversion "
        f"+ {units} units x {terms.per_unit} per unit = {earned}"
    )
    return CreditPoints(earned, explanation)


@dataclass(frozen=True, slots=True)
class Position:
    """One enrollment's points for one conversion so far."""

    earned: int = 0  # CONVERSION entries
    taken: int = 0  # REVERSAL entries (zero or negative)

    @property
    def net(self) -> int:
        return self.earned + self.taken


def settle_credit(
    position: Position, earned: int, amount_minor: int, refunded_minor: int
) -> list[tuple[PointKind, int]]:
    """The entries that move a position to a credit now earning `earned` (a new credit, or a
    recompute), the conversion's refunds so far taken back in proportion."""
    moves = []
    if earned != position.earned:
        moves.append((PointKind.CONVERSION, earned - position.earned))
    target = position_target(earned, amount_minor, refunded_minor)
    taken = target - earned - position.taken
    if taken:
        moves.append((PointKind.REVERSAL, taken))
    return moves


def settle_refund(position: Position, amount_minor: int, refunded_minor: int) -> int:
    """The REVERSAL a refund appends (negative), or 0: never more than was earned."""
    target = position_target(position.earned, amount_minor, refunded_minor)
    return min(target - position.net, 0)


def ensure_point_rules(errors: ErrorCollector, rules: list[PointTerms]) -> None:
    """One rule per conversion kind, points whole and from 0 to MAX_RULE_POINTS."""
    if len(rules) > len(ConversionKind):
        message = f"at most {len(ConversionKind)} rules: one per conversion kind"
        errors.add(ErrorCode.LIMIT_EXCEEDED, ["rules"], message)
        return
    seen: set[ConversionKind] = set()
    for index, rule in enumerate(rules):
        path = ["rules", str(index)]
        if rule.conversion_kind in seen:
            errors.invalid([*path, "conversionKind"], "one rule per conversion kind")
        seen.add(rule.conversion_kind)
        for name, value in (("pointsPerConversion", rule.per_conversion),
                            ("pointsPerUnit", rule.per_unit)):  # fmt: skip
            if not 0 <= value <= MAX_RULE_POINTS:
                errors.invalid([*path, name], f"must be 0 to {MAX_RULE_POINTS}")


# --- badges ---------------------------------------------------------------------------------


def sequences_due(value: Decimal, threshold: Decimal, repeating: bool, awarded: int) -> list[int]:
    """The award sequences a value reaches that are not awarded yet (`awarded`: the highest
    sequence already awarded, 0 for none); at most MAX_NEW_SEQUENCES at once."""
    if threshold <= 0 or value < threshold:
        return []
    if not repeating:
        return [] if awarded >= 1 else [1]
    reached = int(value // threshold)
    return list(range(awarded + 1, min(reached, awarded + MAX_NEW_SEQUENCES) + 1))


@dataclass(frozen=True)
class BadgeSpec:
    """A badge as an admin gives it: threshold and bonus in currency units for money."""

    code: str
    name: str
    metric: BadgeMetric
    threshold: Decimal
    description: str | None = None
    image_url: str | None = None
    period_days: int | None = None
    points: int | None = None
    bonus_amount: Decimal | None = None
    repeating: bool = False


def _ensure_threshold(errors: ErrorCollector, spec: BadgeSpec, currency: str) -> None:
    threshold = spec.threshold
    if not threshold.is_finite() or threshold <= 0 or threshold >= MAX_THRESHOLD:
        errors.invalid(["threshold"], f"must be more than 0 and less than {MAX_THRESHOLD}")
    elif spec.metric in COUNTED and threshold != threshold.to_integral_value():
        errors.invalid(["threshold"], f"{spec.metric} counts: a whole number")
    elif spec.metric is BadgeMetric.REVENUE:
        try:
            to_minor(threshold, currency)
        except AmountError as exc:
            errors.invalid(["threshold"], str(exc))
    elif threshold.as_tuple().exponent < -4:  # type: ignore[operator]
        errors.invalid(["threshold"], "at most 4 decimals")


def _ensure_image(errors: ErrorCollector, url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or len(url) > 2048:
        errors.invalid(["imageUrl"], "must be an https URL with a host")
    elif any(c.isspace() for c in url) or parts.username or parts.password:
        errors.invalid(["imageUrl"], "must not contain spaces or credentials")


def badge_columns(errors: ErrorCollector, spec: BadgeSpec, currency: str) -> dict[str, Any]:
    """The badge's column values, adding what is wrong to `errors`."""
    code, name = spec.code.strip(), spec.name.strip()
    if not CODE.fullmatch(code):
        errors.invalid(["code"], "1 to 64 letters, digits, '-', '_' or '.', starting with a "
                       "letter or digit")  # fmt: skip
    if not 1 <= len(name) <= 200:
        errors.invalid(["name"], "must be 1 to 200 characters")
    description = (spec.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        errors.invalid(["description"], f"at most {MAX_DESCRIPTION} characters")
    _ensure_image(errors, spec.image_url)
    _ensure_threshold(errors, spec, currency)
    if spec.period_days is not None:
        if not 1 <= spec.period_days <= MAX_PERIOD_DAYS:
            errors.invalid(["periodDays"], f"must be 1 to {MAX_PERIOD_DAYS}")
        elif spec.metric is BadgeMetric.ACTIVE_MONTHS_STREAK:
            errors.invalid(["periodDays"], "a streak counts months up to now: no period")
        elif spec.repeating:
            errors.invalid(["periodDays"], "a milestone counts all time: no period")
    points = 0 if spec.points is None else spec.points
    if not 0 <= points <= MAX_BADGE_POINTS:
        errors.invalid(["points"], f"must be 0 to {MAX_BADGE_POINTS}")
    bonus = None
    if spec.bonus_amount is not None:
        try:
            bonus = to_minor(spec.bonus_amount, currency)
        except AmountError as exc:
            errors.add(ErrorCode.INVALID, ["bonusAmount"], str(exc))
        else:
            if bonus <= 0:
                errors.invalid(["bonusAmount"], "must be more than 0 (leave it out for none)")
    return {
        "code": code,
        "name": name,
        "description": description,
        "image_url": spec.image_url,
        "metric": spec.metric,
        "threshold": spec.threshold,
        "period_days": spec.period_days,
        "points": points,
        "bonus_minor": bonus,
        "repeating": spec.repeating,
    }
