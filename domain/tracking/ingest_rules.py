"""Pure rules of ingestion: what a valid customer, touchpoint, conversion or refund input is,
the fingerprint that makes a conversion idempotent, and how a refund changes a conversion.

No I/O here: the services (`ingest.py`) load, call these, and write.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.clock import epoch_us
from domain.errors import DomainError, ErrorCode, ErrorCollector
from domain.identity.rules import is_email, normalize_email
from domain.money import AmountError, is_currency, to_minor
from domain.programs.models import FunnelRole
from domain.tracking.models import ConversionKind, ConversionStatus, TouchpointKind

# Clocks of merchants' servers drift: an instant this far ahead of ours is still "now".
CLOCK_SKEW = timedelta(minutes=5)
MAX_BATCH = 1000
MAX_EXTERNAL_ID = 200  # conversions', touchpoints' and customers' external ids
MAX_VISITOR_ID = 64
MAX_CLICK_ID = 64
MAX_CODE = 64
# Touchpoint kinds an API client may record: CLICKs come only from the click route.
RECORDABLE_KINDS = frozenset(TouchpointKind) - {TouchpointKind.CLICK}


@dataclass(frozen=True, slots=True)
class Identity:
    """What names a customer's journey: the customer, and a visitor, click or code it used."""

    customer_id: str | None = None
    click_id: str | None = None
    visitor_id: str | None = None
    referral_code: str | None = None


@dataclass(frozen=True, slots=True)
class ConversionSpec:
    external_id: str
    kind: ConversionKind
    amount: Decimal
    currency: str
    identity: Identity = Identity()
    occurred_at: datetime | None = None  # None: when it is recorded


@dataclass(frozen=True, slots=True)
class TouchpointSpec:
    kind: TouchpointKind
    enrollment_id: int | None = None
    referral_code: str | None = None
    customer_id: str | None = None
    visitor_id: str | None = None
    role: FunnelRole | None = None
    occurred_at: datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class IdentifySpec:
    customer_id: str
    click_id: str | None = None
    visitor_id: str | None = None
    referral_code: str | None = None
    email: str | None = None


def ensure_text(
    errors: ErrorCollector, field: str, value: str | None, limit: int, required: bool = False
) -> None:
    """An identifier: 1..limit characters, not blank (None is fine unless required)."""
    if value is None:
        if required:
            errors.invalid([field], "is required")
        return
    if not value.strip():
        errors.invalid([field], "must not be blank")
    elif len(value) > limit:
        errors.invalid([field], f"must be at most {limit} characters")


def ensure_not_future(
    errors: ErrorCollector, field: str, at: datetime | None, now: datetime
) -> None:
    if at is not None and at > now + CLOCK_SKEW:
        errors.invalid([field], "must not be in the future")


def ensure_identity(errors: ErrorCollector, identity: Identity) -> None:
    ensure_text(errors, "customerId", identity.customer_id, MAX_EXTERNAL_ID)
    ensure_text(errors, "clickId", identity.click_id, MAX_CLICK_ID)
    ensure_text(errors, "visitorId", identity.visitor_id, MAX_VISITOR_ID)
    ensure_text(errors, "referralCode", identity.referral_code, MAX_CODE)


def validate_conversion(
    errors: ErrorCollector, spec: ConversionSpec, program_currency: str, now: datetime
) -> int | None:
    """The amount in minor units, or None after adding why the input is refused.

    The currency must be the program's; the amount >= 0 with at most its decimals.
    """
    ensure_text(errors, "externalId", spec.external_id, MAX_EXTERNAL_ID, required=True)
    ensure_identity(errors, spec.identity)
    ensure_not_future(errors, "occurredAt", spec.occurred_at, now)
    amount: int | None = None
    if not is_currency(spec.currency) or spec.currency != program_currency:
        errors.invalid(["currency"], f"must be the program's currency, {program_currency}")
    elif spec.amount < 0:
        errors.invalid(["amount"], "must not be negative")
    else:
        try:
            amount = to_minor(spec.amount, spec.currency)
        except AmountError as exc:
            errors.invalid(["amount"], str(exc))
    return amount if not errors.errors else None


def conversion_fingerprint(spec: ConversionSpec, amount_minor: int) -> str:
    """SHA-256 of the normalized input: equal for inputs that mean the same conversion
    ("10.5" and "10.50", codes in any case, one instant in any offset), so a retry matches
    and any other content under the same externalId is a CONFLICT. A missing occurredAt is
    part of the input as missing (a retry without it is the same input)."""
    ident = spec.identity
    normalized = [
        spec.external_id,
        str(spec.kind),
        amount_minor,
        spec.currency,
        ident.customer_id,
        ident.click_id,
        ident.visitor_id,
        None if ident.referral_code is None else ident.referral_code.lower(),
        None if spec.occurred_at is None else epoch_us(spec.occurred_at),
    ]
    text = json.dumps(normalized, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def validate_touchpoint(errors: ErrorCollector, spec: TouchpointSpec, now: datetime) -> None:
    """A CRM's touchpoint: not a CLICK, exactly one of enrollmentId and referralCode, someone
    to belong to (customerId or visitorId), identifiers in bounds, not in the future."""
    if spec.kind not in RECORDABLE_KINDS:
        errors.invalid(["kind"], "clicks are recorded by the click route only")
    if (spec.enrollment_id is None) == (spec.referral_code is None):
        errors.invalid(["enrollmentId"], "give exactly one of enrollmentId and referralCode")
    if spec.customer_id is None and spec.visitor_id is None:
        errors.invalid(["customerId"], "give a customerId, a visitorId, or both")
    ensure_text(errors, "referralCode", spec.referral_code, MAX_CODE)
    ensure_text(errors, "customerId", spec.customer_id, MAX_EXTERNAL_ID)
    ensure_text(errors, "visitorId", spec.visitor_id, MAX_VISITOR_ID)
    ensure_text(errors, "externalId", spec.external_id, MAX_EXTERNAL_ID)
    ensure_not_future(errors, "occurredAt", spec.occurred_at, now)


@dataclass(frozen=True, slots=True)
class TouchpointFacts:
    """What makes two recordTouchpoint inputs the same (for idempotency on externalId)."""

    kind: TouchpointKind
    enrollment_id: int
    role: FunnelRole | None
    customer_external_id: str | None
    visitor_id: str | None
    occurred_us: int | None  # None: not given (recorded at the time of the first call)


def same_touchpoint(stored: TouchpointFacts, asked: TouchpointFacts) -> bool:
    """Whether a repeated externalId carries the first input again: every field equal, the
    instant only when the repeat names one."""
    return stored == (
        asked if asked.occurred_us is not None else _with_instant(asked, stored.occurred_us)
    )


def _with_instant(facts: TouchpointFacts, occurred_us: int | None) -> TouchpointFacts:
    return TouchpointFacts(
        facts.kind,
        facts.enrollment_id,
        facts.role,
        facts.customer_external_id,
        facts.visitor_id,
        occurred_us,
    )


def validate_identify(errors: ErrorCollector, spec: IdentifySpec) -> str | None:
    """The customer's e-mail, lower-cased (None if not given), after checking the ids."""
    ensure_text(errors, "customerId", spec.customer_id, MAX_EXTERNAL_ID, required=True)
    ensure_text(errors, "clickId", spec.click_id, MAX_CLICK_ID)
    ensure_text(errors, "visitorId", spec.visitor_id, MAX_VISITOR_ID)
    ensure_text(errors, "referralCode", spec.referral_code, MAX_CODE)
    if spec.email is None:
        return None
    email = normalize_email(spec.email)
    if not is_email(email):
        errors.invalid(["email"], "is not an e-mail address")
        return None
    return email


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    refund_minor: int
    refunded_minor: int
    status: ConversionStatus


def refund(amount_minor: int, refunded_minor: int, requested_minor: int | None) -> RefundOutcome:
    """A refund of what is left (requested None) or of part of it; never more than is left,
    never nothing. The status follows the refunded total."""
    left = amount_minor - refunded_minor
    if left <= 0:
        raise DomainError(ErrorCode.INVALID, ["externalId"], "nothing is left to refund")
    value = left if requested_minor is None else requested_minor
    if value <= 0:
        raise DomainError(ErrorCode.INVALID, ["amount"], "must be more than zero")
    if value > left:
        raise DomainError(ErrorCode.INVALID, ["amount"], "is more than is left to refund")
    total = refunded_minor + value
    status = (
        ConversionStatus.REFUNDED if total == amount_minor else ConversionStatus.PARTIALLY_REFUNDED
    )
    return RefundOutcome(value, total, status)
