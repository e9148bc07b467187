"""Pure rules of deal registration: who a prospect is, what a registration may say, and how
long an approved registration owns its prospect.

A prospect is known by its `company_key`, so "ACME, Inc." and "acme inc" are one company:
- letters lose their accents (NFKD, combining marks dropped) and case (casefold);
- dots and apostrophes vanish ("S.A." is "sa", "O'Neil" is "oneil"), so does a slash between
  two single letters ("A/S" is "as"); "&" reads "and";
  every other run of non-alphanumeric characters is one space;
- trailing legal-form words (`LEGAL_SUFFIXES`: Inc, Ltd, LLC, GmbH, SA, ...) are dropped, as
  many as there are, with an "and" they leave dangling ("Müller GmbH & Co. KG" is
  "muller"), but never the last word left ("Co" stays "co").
The key is idempotent: a key's key is itself.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.errors import DomainError, ErrorCode, ErrorCollector
from domain.identity import rules as identity_rules
from domain.money import AmountError, to_minor
from domain.tracking.models import DealStatus

NAME_MAX = 200
REASON_MAX = 500
CUSTOMER_ID_MAX = 200

# Legal forms dropped from the end of a company name (after punctuation is removed).
LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "co",
        "company",
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "ab",
        "oy",
        "as",
        "pty",
        "and",  # left dangling by "& Co.": "Smith & Co." is "smith"
    }
)
# Any run of characters that are not letters or digits (of any script).
_NON_WORD = re.compile(r"[\W_]+")
# A slash between two single letters: "A/S" is "as".
_INITIALS = re.compile(r"\b(\w)/(\w)\b")
# Letters NFKD does not decompose into plain ones, spelled the usual way.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})


def company_key(name: str) -> str:
    """The prospect a company name designates (see the module docstring); "" if none.

    Applied until nothing changes (twice at most in practice), so the key of a key is itself
    whatever Unicode does on a second pass.
    """
    key = _key_once(name)
    for _ in range(8):
        again = _key_once(key)
        if again == key:
            break
        key = again
    return key


def _key_once(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_FOLD)
    plain = re.sub(r"[.'\u2019]", "", plain.replace("&", " and "))
    plain = _INITIALS.sub(r"\1\2", plain)
    words = _NON_WORD.sub(" ", plain)[:NAME_MAX].split()
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration's checked values, ready to store."""

    company_name: str
    company_key: str
    contact_email: str | None
    amount_minor: int | None
    customer_external_id: str | None


def check_registration(
    company_name: str,
    contact_email: str | None,
    amount: Decimal | None,
    currency: str,
    customer_id: str | None,
) -> Registration:
    """Validate a registration; every problem at once, as INVALID user errors.

    The amount is in the program's currency, with at most its decimals, and not negative.
    """
    errors = ErrorCollector()
    name = company_name.strip()
    key = company_key(name)
    if not 1 <= len(name) <= NAME_MAX:
        errors.invalid(["companyName"], f"must be 1 to {NAME_MAX} characters")
    elif not key:
        errors.invalid(["companyName"], "must contain letters or digits")
    email = None
    if contact_email is not None and contact_email.strip():
        email = identity_rules.normalize_email(contact_email)
        if not identity_rules.is_email(email):
            errors.invalid(["contactEmail"], "not an e-mail address")
    amount_minor = None
    if amount is not None:
        try:
            amount_minor = to_minor(amount, currency)
        except AmountError as exc:
            errors.invalid(["amount"], str(exc))
        else:
            if amount_minor < 0:
                errors.invalid(["amount"], "must not be negative")
    customer = customer_id.strip() if customer_id is not None else None
    if customer is not None and not 1 <= len(customer) <= CUSTOMER_ID_MAX:
        errors.invalid(["customerId"], f"must be 1 to {CUSTOMER_ID_MAX} characters")
    errors.raise_if_any()
    return Registration(name, key, email, amount_minor, customer or None)


def check_reason(reason: str) -> str:
    text = reason.strip()
    if not 1 <= len(text) <= REASON_MAX:
        raise DomainError(ErrorCode.INVALID, ["reason"], f"must be 1 to {REASON_MAX} characters")
    return text


def protected_until(approved_at: datetime, protection_days: int) -> datetime:
    """An approved deal owns its prospect for the program's protection period from approval."""
    return approved_at + timedelta(days=protection_days)


def is_protecting(status: DealStatus, until: datetime | None, now: datetime) -> bool:
    """Whether a deal owns its prospect at `now`: approved, and its protection not over."""
    return status is DealStatus.APPROVED and until is not None and until > now


def owned_elsewhere(until: datetime) -> DomainError:
    """Another partner owns the prospect: say until when, never who."""
    return DomainError(
        ErrorCode.CONFLICT,
        ["companyName"],
        f"this prospect is registered by another partner until {until.isoformat()}",
    )


def ensure_decidable(status: DealStatus) -> None:
    """Only a PENDING deal is approved or rejected; a decision is final."""
    if status is not DealStatus.PENDING:
        raise DomainError(
            ErrorCode.CONFLICT, ["id"], f"only PENDING deals can be decided (this one is {status})"
        )
