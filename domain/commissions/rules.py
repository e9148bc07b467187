"""Commission math: plain functions over plain values, no I/O.

How one enrollment's credit for one conversion becomes money, step by step (each step is
written into the entry's explanation so a partner can follow it):

1. **The rule.** Of the program's rules for the conversion's kind that are in force at its
   `occurredAt` (`startsAt <= occurredAt < endsAt`: archiving a rule ends it), the most
   specific wins (enrollment, then tier, then the whole program), then the highest `priority`,
   then the newest rule. A RENEWAL also takes SALE rules that set `recurringMonths` (a
   "recurring commission"); a RENEWAL rule wins over them at the same scope and priority.
2. **The minimum.** A conversion whose amount is below the rule's minimum earns nothing.
3. **Recurring.** A rule with `recurringMonths` pays a RENEWAL only while it is less than that
   many calendar months after the customer's first SALE; a RENEWAL rule without it pays forever.
4. **The base.** A percentage (`"20"` is 20 %) of the credited amount, or the flat amount
   times the enrollment's share of the conversion (so a flat amount is paid once per
   conversion, split like the credit).
5. **Decay.** With `halfLifeDays`, the amount halves every half-life between the referral (the
   first touchpoint of the conversion's journey) and the conversion.
6. **Caps.** At most `capAmount` per conversion (for each enrollment credited on it), and
   at most `monthlyCapAmount` per enrollment and rule in a calendar month (UTC) of
   `occurredAt`, counting what earlier conversions used.
7. **Rounding.** Every step above is exact (fractions; the decay factor to 34 significant
   digits); the result is rounded half-even to minor units once, at the end.

Refunds reverse in proportion: after a refund an entry's position (all of one enrollment's
entries for one conversion) is worth `round_half_even(earned * (amount - refunded) / amount)`,
computed from the cumulative refund so partial refunds never drift and a full refund reverses
exactly what was earned.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from fractions import Fraction

KINDS = ("LEAD", "SIGNUP", "SALE", "RENEWAL")
_DECAY_CONTEXT = Context(prec=34)
_DAY_US = 86_400_000_000
_LN2 = Decimal(2).ln(Context(prec=40))


@dataclass(frozen=True, slots=True)
class RuleTerms:
    """One version of a commission rule, as plain values (money in the program's minor units)."""

    rule_id: int
    version: int
    conversion_kind: str
    percentage: Decimal | None = None  # percent: "20" is 20 %
    flat_minor: int | None = None
    tier_id: int | None = None
    enrollment_id: int | None = None
    priority: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    recurring_months: int | None = None
    half_life_days: float | None = None
    cap_minor: int | None = None
    monthly_cap_minor: int | None = None
    minimum_minor: int | None = None
    archived: bool = False  # archiving ends a rule (its endsAt): its past stays priced

    @property
    def scope(self) -> int:
        """How specific the rule is: 2 for one enrollment, 1 for a tier, 0 for the program."""
        return 2 if self.enrollment_id is not None else 1 if self.tier_id is not None else 0


def in_force(rule: RuleTerms, at: datetime) -> bool:
    if rule.starts_at is not None and at < rule.starts_at:
        return False
    return rule.ends_at is None or at < rule.ends_at


def applies_to(rule: RuleTerms, kind: str, enrollment_id: int, tier_id: int | None) -> bool:
    if rule.enrollment_id is not None and rule.enrollment_id != enrollment_id:
        return False
    if rule.tier_id is not None and rule.tier_id != tier_id:
        return False
    if rule.conversion_kind == kind:
        return True
    return (
        kind == "RENEWAL" and rule.conversion_kind == "SALE" and rule.recurring_months is not None
    )


def select_rule(
    rules: Iterable[RuleTerms], kind: str, enrollment_id: int, tier_id: int | None, at: datetime
) -> RuleTerms | None:
    """The rule that prices this enrollment's credit for a conversion of `kind` at `at`."""
    candidates = [
        r for r in rules if in_force(r, at) and applies_to(r, kind, enrollment_id, tier_id)
    ]
    if not candidates:
        return None
    return max(
        candidates, key=lambda r: (r.scope, r.priority, r.conversion_kind == kind, r.rule_id)
    )


def add_months(at: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later (the month's last day if shorter)."""
    index = at.month - 1 + months
    year, month = at.year + index // 12, index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def month_of(at: datetime) -> str:
    """The calendar month (UTC) a monthly cap counts in, as `YYYY-MM`."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}"


def round_half_even(value: Fraction) -> int:
    """Round an exact amount of minor units half to even (Python's `round` on a Fraction)."""
    return round(value)


def _round_ratio(num: int, den: int) -> int:
    """`round_half_even(Fraction(num, den))` for a positive `den`, without building one."""
    quotient, rest = divmod(num, den)
    twice = 2 * rest
    if twice > den or (twice == den and quotient % 2):
        quotient += 1
    return quotient


def decay_factor(elapsed: timedelta, half_life_days: float) -> Decimal:
    """`2 ** -(elapsed / half-life)` to 34 significant digits; 1 when nothing has elapsed.

    Whole half-lives halve exactly; the rest is `exp(-fraction * ln 2)` (ln 2 to 40 digits).
    """
    elapsed_us = elapsed // timedelta(microseconds=1)
    if elapsed_us <= 0:
        return Decimal(1)
    half_life_us = Decimal(repr(float(half_life_days))) * _DAY_US
    halvings = _DECAY_CONTEXT.divide(Decimal(elapsed_us), half_life_us)
    whole = int(halvings)
    rest = _DECAY_CONTEXT.subtract(halvings, Decimal(whole))
    factor = _DECAY_CONTEXT.exp(_DECAY_CONTEXT.multiply(-rest, _LN2)) if rest else Decimal(1)
    return _DECAY_CONTEXT.divide(factor, Decimal(2) ** whole)


@dataclass(frozen=True, slots=True)
class CreditFacts:
    """What the rule needs to know about one enrollment's credit for one conversion."""

    kind: str
    conversion_minor: int  # the conversion's whole amount
    credited_minor: int  # this enrollment's credited part of it
    share: Fraction  # this enrollment's share of the conversion (points / total)
    occurred_at: datetime
    referred_at: datetime | None = None  # the first touchpoint of the conversion's journey
    first_sale_at: datetime | None = None  # the customer's first SALE, for renewals


@dataclass(frozen=True, slots=True)
class Earned:
    """What a credit earns under a rule, with the steps that led there."""

    amount_minor: int
    steps: tuple[str, ...]

    @property
    def explanation(self) -> str:
        return "; ".join(self.steps)


def earn(rule: RuleTerms, facts: CreditFacts, month_used_minor: int = 0) -> Earned:
    """What `facts` earn under `rule`, given what the enrollment already earned under it in the
    conversion's month (for the monthly cap). See the module's documentation for the steps."""
    steps = [f"rule {rule.rule_id} v{rule.version}"]
    if rule.minimum_minor is not None and facts.conversion_minor < rule.minimum_minor:
        steps.append(f"amount {facts.conversion_minor} below the minimum {rule.minimum_minor}")
        return Earned(0, (*steps, "= 0"))
    if facts.kind == "RENEWAL" and rule.recurring_months is not None:
        start = facts.first_sale_at or facts.referred_at or facts.occurred_at
        until = add_months(start, rule.recurring_months)
        if facts.occurred_at >= until:
            steps.append(f"recurring for {rule.recurring_months} months: ended {until.isoformat()}")
            return Earned(0, (*steps, "= 0"))
        steps.append(f"recurring until {until.isoformat()}")
    # the exact amount as the fraction num / den (plain integers: this runs for every credit)
    if rule.percentage is not None:
        p_num, p_den = rule.percentage.as_integer_ratio()
        num, den = facts.credited_minor * p_num, p_den * 100
        steps.append(f"{rule.percentage.normalize():f} % of {facts.credited_minor}")
    else:
        num = (rule.flat_minor or 0) * facts.share.numerator
        den = facts.share.denominator
        steps.append(f"flat {rule.flat_minor} x share {facts.share}")
    if rule.half_life_days is not None and facts.referred_at is not None:
        factor = decay_factor(facts.occurred_at - facts.referred_at, rule.half_life_days)
        if factor != 1:
            f_num, f_den = factor.as_integer_ratio()
            num, den = num * f_num, den * f_den
            days = (facts.occurred_at - facts.referred_at) / timedelta(days=1)
            steps.append(f"half-life {rule.half_life_days} d over {days:.2f} d: x {factor:.6f}")
    if rule.cap_minor is not None and num > rule.cap_minor * den:
        num, den = rule.cap_minor, 1
        steps.append(f"capped at {rule.cap_minor} per conversion")
    result = _round_ratio(num, den)
    if rule.monthly_cap_minor is not None:
        room = max(rule.monthly_cap_minor - month_used_minor, 0)
        if result > room:
            result = room
            steps.append(f"monthly cap {rule.monthly_cap_minor}: {room} left")
    steps.append(f"= {result}")
    return Earned(result, tuple(steps))


def position_target(earned_minor: int, conversion_minor: int, refunded_minor: int) -> int:
    """What a position earning `earned_minor` is worth after `refunded_minor` of the conversion
    has been refunded: in proportion, rounded half-even, never more than earned, never below 0
    for a positive amount."""
    if conversion_minor <= 0 or refunded_minor <= 0:
        return earned_minor
    if refunded_minor >= conversion_minor:
        return 0
    kept = Fraction(conversion_minor - refunded_minor, conversion_minor)
    return round_half_even(Fraction(earned_minor) * kept)


def referee_reward_minor(kind: str, value: Decimal, conversion_minor: int, digits: int) -> int:
    """The cost of a double-sided program's reward on the referred customer's first sale: a
    percent discount of the sale's amount, or a flat credit (`value` in currency units, with
    `digits` minor digits), rounded half-even."""
    if kind == "PERCENT_DISCOUNT":
        return round_half_even(Fraction(conversion_minor) * Fraction(value) / 100)
    return round_half_even(Fraction(value) * 10**digits)
