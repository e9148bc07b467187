"""The Money type: a Decimal amount with exactly its currency's decimals, and the currency."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from domain.money import to_decimal


@strawberry.type(description="An amount of money in one currency (ISO 4217).")
class Money:
    amount: Decimal = strawberry.field(description="With exactly the currency's decimals.")
    currency: str

    @classmethod
    def of(cls, amount_minor: int, currency: str) -> Money:
        return cls(amount=to_decimal(amount_minor, currency), currency=currency)
