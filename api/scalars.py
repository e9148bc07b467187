"""Scalars of the contract: Decimal as a string, DateTime in ISO 8601 with an offset.

Types use plain `decimal.Decimal` and `datetime.datetime`; SCALAR_MAP tells the schema how.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import overload

import strawberry
from strawberry.types.scalar import ScalarDefinition


def _parse_decimal(value: object) -> Decimal:
    # A string scalar: numbers sent as JSON floats would lose money to binary rounding.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('write decimals as strings, such as "12.50"')
    try:
        parsed = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("a decimal must be finite")
    return parsed


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


def _serialize_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


SCALAR_MAP: dict[object, ScalarDefinition] = {
    Decimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number, written as a string: "12.50".',
        serialize=str,
        parse_value=_parse_decimal,
    ),
    datetime: strawberry.scalar(
        name="DateTime",
        description="A point in time, ISO 8601 with an offset; the API answers in UTC.",
        serialize=_serialize_datetime,
        parse_value=_parse_datetime,
    ),
}


@overload
def plain(value: Decimal) -> Decimal: ...
@overload
def plain(value: None) -> None: ...
def plain(value: Decimal | None) -> Decimal | None:
    """A setting without storage padding: "0.4000" and "0.4" both answer "0.4"."""
    if value is None:
        return None
    return Decimal(format(value.normalize(), "f"))
