"""Money in integer minor units with an ISO 4217 currency. Never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# ISO 4217 active codes with their minor units (digits after the decimal point).
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD "
    "FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
    "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD "
    "NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP "
    "SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UZS VED VES "
    "WST XCD XCG YER ZAR ZMW ZWG"
)
MINOR_UNITS: dict[str, int] = {
    **{code: 0 for code in _ZERO.split()},
    **{code: 2 for code in _TWO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 4 for code in _FOUR.split()},
}


def is_currency(code: str) -> bool:
    return code in MINOR_UNITS


def minor_units(currency: str) -> int:
    return MINOR_UNITS[currency]


MAX_MINOR = 10**15  # the largest amount accepted, in minor units


class AmountError(ValueError):
    """An amount that is not a number, or has more decimals than its currency allows."""


def to_minor(amount: Decimal | str, currency: str) -> int:
    """Parse a decimal amount into integer minor units, refusing sub-minor precision."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(amount)
    except InvalidOperation:
        raise AmountError(f"{amount!r} is not a decimal number") from None
    if not value.is_finite():
        raise AmountError("amount must be a finite number")
    try:
        scaled = value.scaleb(minor_units(currency))
        whole = scaled.to_integral_value()
    except ArithmeticError:  # an exponent beyond what Decimal's context allows
        raise AmountError(f"{amount!r} is out of range") from None
    if scaled != whole:
        raise AmountError(f"{currency} allows at most {minor_units(currency)} decimals")
    if abs(whole) > MAX_MINOR:  # sums of many must still fit a 64-bit column
        raise AmountError(f"at most {MAX_MINOR} minor units (of {currency})")
    return int(scaled)


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """Minor units back to a Decimal with exactly the currency's decimals ("12.50")."""
    digits = minor_units(currency)
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    @property
    def amount(self) -> Decimal:
        return to_decimal(self.amount_minor, self.currency)
