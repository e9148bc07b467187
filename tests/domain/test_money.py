from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import (
    MAX_MINOR,
    MINOR_UNITS,
    AmountError,
    Money,
    is_currency,
    to_decimal,
    to_minor,
)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("12.50", "EUR", 1250), ("1000", "JPY", 1000), ("1.234", "KWD", 1234), ("0", "USD", 0)],
)
def test_to_minor_uses_the_currency_decimals(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor


@pytest.mark.parametrize(("amount", "currency"), [("12.505", "EUR"), ("1.5", "JPY"), ("x", "EUR")])
def test_to_minor_refuses_sub_minor_precision_and_garbage(amount: str, currency: str) -> None:
    with pytest.raises(AmountError):
        to_minor(amount, currency)


def test_to_minor_refuses_infinity() -> None:
    with pytest.raises(AmountError):
        to_minor(Decimal("Infinity"), "EUR")


@pytest.mark.parametrize(
    "amount", ["1E+1000000", "-1E+1000000", "1E-1000000", "10000000000000.01", "1E+30"]
)
def test_to_minor_refuses_amounts_out_of_range(amount: str) -> None:
    with pytest.raises(AmountError):
        to_minor(amount, "EUR")


def test_to_minor_takes_the_largest_amount() -> None:
    assert to_minor("10000000000000.00", "EUR") == MAX_MINOR  # 10**13 EUR
    assert to_minor("-10000000000000", "EUR") == -MAX_MINOR


def test_currency_codes_are_iso_4217() -> None:
    assert is_currency("EUR")
    assert is_currency("JPY")
    assert is_currency("KWD")
    assert not is_currency("XYZ")
    assert not is_currency("eur")
    assert not is_currency("EURO")


@given(st.sampled_from(sorted(MINOR_UNITS)), st.integers(-(10**15), 10**15))
def test_minor_units_round_trip_exactly(currency: str, minor: int) -> None:
    text = to_decimal(minor, currency)
    assert to_minor(text, currency) == minor
    assert Money(minor, currency).amount == text
    exponent = text.as_tuple().exponent
    assert isinstance(exponent, int)
    assert -exponent == MINOR_UNITS[currency]
