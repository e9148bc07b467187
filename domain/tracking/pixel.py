"""The conversion pixel, for merchants without a backend, and the confirmation that makes its
conversions count.

Anyone can load a pixel URL, so what it records is unverified: the conversion is stored with
`verified=False` and no credits, and a referral code it names becomes a CODE touchpoint
excluded as UNVERIFIED (it must not credit the customer's other conversions either). An admin
or an app confirms it (`confirm_conversion`): then it is verified, its code counts, and it is
credited with the program's model over its journey, as a recorded conversion would be.

The pixel is idempotent on (program, external id): a repeat, or other content under a known
external id, stores nothing (a pixel cannot answer a CONFLICT; the page must not break).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.attribution.services import credit_conversions
from domain.audit import services as audit
from domain.clock import utcnow
from domain.commissions import ledger
from domain.errors import DomainError, DomainErrors, ErrorCollector, not_found
from domain.gamification import rewards, tiers
from domain.money import AmountError, to_minor
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import Program
from domain.tracking.models import (
    Conversion,
    ConversionKind,
    Customer,
    Touchpoint,
    TouchpointKind,
)

UNVERIFIED = "UNVERIFIED"  # exclusion reason of a pixel's code touchpoint until confirmed
MAX_EXTERNAL_ID = 200
MAX_ID = 64  # click, visitor ids and codes


class PixelOutcome(StrEnum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # this external id is already known: nothing stored
    REFUSED = "refused"  # bad input or unknown program: nothing stored


@dataclass(frozen=True, slots=True)
class PixelHit:
    """The pixel's query parameters, as sent (strings or None)."""

    program_id: int | None
    external_id: str | None
    kind: str | None = None  # default SALE
    amount: str | None = None  # default 0
    currency: str | None = None  # default the program's; if given, must be it
    click_id: str | None = None
    visitor_id: str | None = None
    referral_code: str | None = None
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Checked:
    external_id: str
    kind: ConversionKind
    amount_minor: int
    click_id: str | None
    visitor_id: str | None
    referral_code: str | None
    customer_id: str | None
    fingerprint: str


def _text(errors: ErrorCollector, field: str, value: str | None, limit: int) -> str | None:
    text = None if value is None else value.strip()
    if not text:
        return None
    if len(text) > limit:
        errors.invalid([field], f"at most {limit} characters")
    return text


def check_hit(hit: PixelHit, currency: str) -> _Checked:
    """Validate a pixel's parameters against its program's currency (pure)."""
    errors = ErrorCollector()
    external_id = _text(errors, "external_id", hit.external_id, MAX_EXTERNAL_ID)
    if external_id is None:
        errors.invalid(["external_id"], "required")
    kind = ConversionKind.SALE
    if hit.kind:
        try:
            kind = ConversionKind(hit.kind.strip().upper())
        except ValueError:
            errors.invalid(["kind"], f"one of {', '.join(ConversionKind)}")
    if hit.currency and hit.currency.strip().upper() != currency:
        errors.invalid(["currency"], f"the program's currency is {currency}")
    amount_minor = 0
    try:
        amount_minor = to_minor(Decimal((hit.amount or "0").strip()), currency)
    except (InvalidOperation, AmountError) as exc:
        errors.invalid(["amount"], str(exc) if isinstance(exc, AmountError) else "not a number")
    if amount_minor < 0:
        errors.invalid(["amount"], "must not be negative")
    click = _text(errors, "click_id", hit.click_id, MAX_ID)
    visitor = _text(errors, "visitor_id", hit.visitor_id, MAX_ID)
    code = _text(errors, "referral_code", hit.referral_code, MAX_ID)
    customer = _text(errors, "customer_id", hit.customer_id, MAX_EXTERNAL_ID)
    errors.raise_if_any()
    assert external_id is not None
    normalized = [external_id, str(kind), amount_minor, currency, click, visitor, code, customer]
    digest = hashlib.sha256(json.dumps(["pixel", *normalized]).encode()).hexdigest()
    return _Checked(external_id, kind, amount_minor, click, visitor, code, customer, digest)


async def record_pixel(hit: PixelHit) -> PixelOutcome:
    """Record an unverified conversion from a pixel; never raises for bad input."""
    program = None if hit.program_id is None else await Program.get_or_none(id=hit.program_id)
    if program is None:
        return PixelOutcome.REFUSED
    try:
        checked = check_hit(hit, program.currency)
    except (DomainError, DomainErrors):
        return PixelOutcome.REFUSED
    if await Conversion.exists(program_id=program.pk, external_id=checked.external_id):
        return PixelOutcome.DUPLICATE
    try:
        async with in_transaction():
            await _store(program, checked)
    except IntegrityError:  # a concurrent pixel with the same external id won
        return PixelOutcome.DUPLICATE
    return PixelOutcome.RECORDED


async def _store(program: Program, checked: _Checked) -> Conversion:
    now = utcnow()
    customer = None
    if checked.customer_id is not None:
        customer = await Customer.get_or_none(
            program_id=program.pk, external_id=checked.customer_id
        )
        if customer is None:
            customer = await Customer.create(program_id=program.pk, external_id=checked.customer_id)
    code_touchpoint = None
    if checked.referral_code is not None:
        enrollment = await Enrollment.get_or_none(
            program_id=program.pk,
            code_key=checked.referral_code.lower(),
            status=EnrollmentStatus.ACTIVE,
        )
        if enrollment is not None:  # an unknown code is kept out of the journey, not refused
            code_touchpoint = Touchpoint(
                program_id=program.pk,
                enrollment_id=enrollment.pk,
                kind=TouchpointKind.CODE,
                occurred_at=now,
                customer_id=None if customer is None else customer.pk,
                visitor_id=checked.visitor_id,
                excluded=True,
                exclusion_reason=UNVERIFIED,
            )
            await code_touchpoint.save()
    return await Conversion.create(
        program_id=program.pk,
        external_id=checked.external_id,
        kind=checked.kind,
        amount_minor=checked.amount_minor,
        currency=program.currency,
        occurred_at=now,
        customer_id=None if customer is None else customer.pk,
        visitor_id=checked.visitor_id,
        click_id=checked.click_id,
        code_touchpoint_id=None if code_touchpoint is None else code_touchpoint.pk,
        verified=False,
        fingerprint=checked.fingerprint,
    )


async def confirm_conversion(actor: Actor, program_id: int, external_id: str) -> Conversion:
    """Confirm a pixel's conversion: it is verified, its code touchpoint counts, and it is
    credited with the program's current model. Confirming a verified conversion changes
    nothing. Audited."""
    async with in_transaction():
        program = await Program.filter(id=program_id).select_for_update().first()
        if program is None:
            raise not_found(["programId"], "program")
        conversion = (
            await Conversion.filter(program_id=program.pk, external_id=external_id.strip())
            .select_for_update()
            .first()
        )
        if conversion is None:
            raise not_found(["externalId"], "conversion")
        if conversion.verified:
            return conversion
        conversion.verified = True
        await conversion.save(update_fields=["verified"])
        if conversion.code_touchpoint_id is not None:
            await Touchpoint.filter(
                id=conversion.code_touchpoint_id, exclusion_reason=UNVERIFIED
            ).update(excluded=False, exclusion_reason=None)
        await credit_conversions(program, [conversion.pk])
        entries = await ledger.price_conversions(program, [conversion.pk])
        after = {"verified": True, **ledger.summary(entries)}
        await audit.record(actor, "confirmConversion", conversion, {"verified": False}, after)
        await rewards.conversions_credited(program, [conversion.pk], new=True)
        await tiers.promote_credited(actor, program, [conversion.pk])
    return conversion
