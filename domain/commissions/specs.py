"""What a valid commission rule looks like (pure: checks plain values, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import ErrorCollector
from domain.money import AmountError, to_minor

MAX_PRIORITY = 1_000_000
MAX_RECURRING_MONTHS = 1200
MAX_HALF_LIFE_DAYS = 36_500.0
UNSET: Any = object()  # an update that leaves a field as it is


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the admin gives it: amounts in currency units, as Decimals.

    In an update, a field left UNSET keeps its value and `None` clears it.
    """

    conversion_kind: Any = UNSET
    name: Any = UNSET
    percentage: Any = UNSET
    flat_amount: Any = UNSET
    tier_id: Any = UNSET
    enrollment_id: Any = UNSET
    priority: Any = UNSET
    starts_at: Any = UNSET
    ends_at: Any = UNSET
    recurring_months: Any = UNSET
    half_life_days: Any = UNSET
    cap_amount: Any = UNSET
    monthly_cap_amount: Any = UNSET
    minimum_amount: Any = UNSET

    def given(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not UNSET
        }


# the rule's stored columns, by the spec's names
MONEY = {"flat_amount": "flat_minor", "cap_amount": "cap_minor",
         "monthly_cap_amount": "monthly_cap_minor", "minimum_amount": "minimum_minor"}  # fmt: skip
PLAIN = ("conversion_kind", "name", "percentage", "tier_id", "enrollment_id", "priority",
         "starts_at", "ends_at", "recurring_months", "half_life_days")  # fmt: skip


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def columns(errors: ErrorCollector, values: dict[str, Any], currency: str) -> dict[str, Any]:
    """The given fields as column values (money in minor units), adding what is wrong to
    `errors`. Checks each field alone; `check_whole` checks the rule they make together."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        path = [camel(name)]
        if name in MONEY:
            column = MONEY[name]
            if value is None:
                out[column] = None
                continue
            try:
                minor = to_minor(Decimal(value), currency)
            except (AmountError, ArithmeticError, ValueError) as exc:
                errors.invalid(path, str(exc))
                continue
            if minor < 0:
                errors.invalid(path, "must not be negative")
            out[column] = minor
            continue
        out[name] = value
        if value is None:
            continue
        if name == "name" and not (1 <= len(str(value).strip()) <= 200):
            errors.invalid(path, "must be 1 to 200 characters")
        elif name == "name":
            out[name] = str(value).strip()
        elif name == "percentage":
            if not isinstance(value, Decimal) or not value.is_finite():
                errors.invalid(path, "must be a number")
            elif not (0 < value <= 100):
                errors.invalid(path, "must be more than 0 and at most 100 (percent)")
            elif value != value.quantize(Decimal("0.0001")):
                errors.invalid(path, "at most 4 decimals")
        elif name == "priority" and not (-MAX_PRIORITY <= value <= MAX_PRIORITY):
            errors.invalid(path, f"must be between -{MAX_PRIORITY} and {MAX_PRIORITY}")
        elif name == "recurring_months" and not (0 <= value <= MAX_RECURRING_MONTHS):
            errors.invalid(path, f"must be 0 to {MAX_RECURRING_MONTHS}")
        elif name == "half_life_days" and not (0 < value <= MAX_HALF_LIFE_DAYS):
            errors.invalid(path, f"must be more than 0 and at most {MAX_HALF_LIFE_DAYS:g}")
        elif name in ("starts_at", "ends_at") and (
            not isinstance(value, datetime) or value.tzinfo is None
        ):
            errors.invalid(path, "must be a date-time with a time zone")
    return out


def check_whole(errors: ErrorCollector, rule: dict[str, Any]) -> None:
    """The rule's fields together: one of percentage or flat amount, one scope, a real period.
    A field already refused by `columns` is not judged again."""
    refused = {tuple(error.field or ()) for error in errors.errors}
    has_percentage = rule.get("percentage") is not None
    has_flat = rule.get("flat_minor") is not None
    if has_percentage == has_flat and not refused & {("percentage",), ("flatAmount",)}:
        errors.invalid(["percentage"], "give exactly one of percentage and flatAmount")
    if rule.get("tier_id") is not None and rule.get("enrollment_id") is not None:
        errors.invalid(["enrollmentId"], "a rule is for a tier or for one enrollment, not both")
    starts, ends = rule.get("starts_at"), rule.get("ends_at")
    if (
        isinstance(starts, datetime)
        and isinstance(ends, datetime)
        and starts.tzinfo
        and ends.tzinfo
        and ends <= starts
    ):
        errors.invalid(["endsAt"], "must be after startsAt")


def terms_json(rule: dict[str, Any], currency: str) -> dict[str, Any]:
    """A version's terms as JSON-safe values, in the API's names (amounts in minor units)."""
    out: dict[str, Any] = {"currency": currency}
    for key, value in sorted(rule.items()):
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = format(value.normalize(), "f")
        elif value is not None and not isinstance(value, (int, float, str, bool)):
            value = str(value)
        out[camel(key)] = value
    return out
