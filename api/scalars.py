"""Scalars of the contract: Decimal as a string, DateTime in ISO 8601 with an offset."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as PyDecimal
from decimal import InvalidOperation
from typing import NewType

import strawberry

# A string scalar: numbers as JSON floats would lose money to binary rounding.
Decimal = strawberry.scalar(
    NewType("Decimal", PyDecimal),
    name="Decimal",
    description='An exact decimal number, written as a string: "12.50".',
    serialize=lambda value: str(value),
    parse_value=lambda value: _parse_decimal(value),
)


def _parse_decimal(value: object) -> PyDecimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('write decimals as strings, such as "12.50"')
    try:
        parsed = PyDecimal(value) if isinstance(value, int) else PyDecimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("a decimal must be finite")
    return parsed


DateTime = strawberry.scalar(
    NewType("DateTime", datetime),
    name="DateTime",
    description="A point in time, ISO 8601 with an offset; the API answers in UTC.",
    serialize=lambda value: value.astimezone(UTC).isoformat(),
    parse_value=lambda value: _parse_datetime(value),
)


def _parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("write date-times as ISO 8601 strings")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("a date-time needs an offset, such as Z or +02:00")
    return parsed.astimezone(UTC)
