"""Ingestion: what merchants' backends and CRMs tell the program (identifyCustomer,
recordTouchpoint, recordConversion(s), refundConversion).

Idempotency lives in the database: a conversion is unique on (program, externalId), a
touchpoint on (program, externalId), a customer on (program, externalId), a visitor link on
(program, visitor). Every use case reads first, writes in one transaction, and on a unique
violation (a concurrent request won the race) runs again: the re-read then finds the winner's
row and compares it with the input (same input: its result; other input: CONFLICT).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.audit import services as audit
from domain.clock import epoch_us, utcnow
from domain.commissions import ledger
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.gamification import rewards, tiers
from domain.money import AmountError, to_minor
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import Program
from domain.programs.rules import RewardOffer
from domain.tracking import ingest_rules as rules
from domain.tracking import stitching
from domain.tracking.models import (
    Conversion,
    Customer,
    Refund,
    Touchpoint,
    TouchpointKind,
    VisitorCustomer,
)

T = TypeVar("T")
ATTEMPTS = 3  # a unique violation means another request just wrote: the re-read settles it


async def _retrying(run: Callable[[], Awaitable[T]]) -> T:
    for _ in range(ATTEMPTS - 1):
        try:
            return await run()
        except IntegrityError:
            continue
    return await run()


async def _program(program_id: int) -> Program:
    program = await Program.get_or_none(id=program_id)
    if program is None:
        raise not_found(["programId"], "program")
    return program


async def _codes(program: Program, codes: Iterable[str | None]) -> dict[str, int]:
    """Referral code (lower-case) -> its enrollment in the program, for the known ones. A
    suspended enrollment's code is unknown: it brings no new credit."""
    keys = sorted({c.lower() for c in codes if c})
    found: dict[str, int] = {}
    for start in range(0, len(keys), stitching.CHUNK):
        rows = await Enrollment.filter(
            program_id=program.pk,
            code_key__in=keys[start : start + stitching.CHUNK],
            status=EnrollmentStatus.ACTIVE,
        ).values_list("code_key", "id")
        found.update({str(k): int(i) for k, i in rows})
    return found


def _conflict(field: str, message: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, [field], message)


# --- identifyCustomer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identified:
    customer: Customer
    referee_reward: RewardOffer | None  # the offer of a double-sided program, if referred


async def identify_customer(actor: Actor, program_id: int, spec: rules.IdentifySpec) -> Identified:
    """Find or create the customer and tie the click, visitor or referral code to it: their
    touchpoints join its journey, its first referrer is remembered, a self-referral is
    excluded; a referred customer of a double-sided program is told its reward."""
    errors = ErrorCollector()
    email = rules.validate_identify(errors, spec)
    errors.raise_if_any()
    program = await _program(program_id)
    code = None
    if spec.referral_code is not None:
        code = (await _codes(program, [spec.referral_code])).get(spec.referral_code.lower())
        if code is None:
            raise not_found(["referralCode"], "referral code")
    return await _retrying(partial(_identify, program, spec, email, code))


async def _identify(
    program: Program, spec: rules.IdentifySpec, email: str | None, code: int | None
) -> Identified:
    async with in_transaction():
        want = stitching.Want(spec.customer_id, spec.visitor_id, spec.click_id)
        planned = await stitching.plan(program.pk, [want])
        if planned.refused:
            raise planned.refused[0]
        customer = (await stitching.customers(program.pk, [spec.customer_id]))[spec.customer_id]
        if email is not None and customer.email != email:
            customer.email = email
            await customer.save(update_fields=["email"])
        await stitching.apply(program.pk, planned, {spec.customer_id: customer})
        used = Touchpoint.filter(customer_id=customer.pk, enrollment_id=code, kind="CODE")
        if code is not None and not await used.exists():  # identifying again adds nothing
            await Touchpoint.create(
                program_id=program.pk,
                enrollment_id=code,
                kind=TouchpointKind.CODE,
                occurred_at=utcnow(),
                customer_id=customer.pk,
            )
        await stitching.exclude_self_referrals([customer])
        await stitching.remember_first_referrers([customer.pk])
        await customer.refresh_from_db()
        referred = await Touchpoint.filter(customer_id=customer.pk, excluded=False).exists()
    return Identified(customer, _offer(program) if referred else None)


def _offer(program: Program) -> RewardOffer | None:
    if program.referee_reward_kind is None or program.referee_reward_value is None:
        return None
    return RewardOffer(kind=program.referee_reward_kind, value=program.referee_reward_value)


# --- recordTouchpoint ------------------------------------------------------------------------


async def record_touchpoint(
    actor: Actor, program_id: int, spec: rules.TouchpointSpec
) -> Touchpoint:
    """A CRM's or partner tool's touchpoint, idempotent on externalId: the same input again
    answers the first touchpoint, another input under that externalId is a CONFLICT."""
    errors = ErrorCollector()
    rules.validate_touchpoint(errors, spec, utcnow())
    errors.raise_if_any()
    program = await _program(program_id)
    if spec.enrollment_id is not None:
        enrollment = await Enrollment.get_or_none(id=spec.enrollment_id, program_id=program.pk)
        if enrollment is None:
            raise not_found(["enrollmentId"], "enrollment")
        enrollment_id = enrollment.pk
    else:
        assert spec.referral_code is not None  # validated: exactly one of the two
        found = (await _codes(program, [spec.referral_code])).get(spec.referral_code.lower())
        if found is None:
            raise not_found(["referralCode"], "referral code")
        enrollment_id = found
    return await _retrying(partial(_touch, program, spec, enrollment_id))


async def _touch(program: Program, spec: rules.TouchpointSpec, enrollment_id: int) -> Touchpoint:
    if spec.external_id is not None:
        stored = await Touchpoint.get_or_none(program_id=program.pk, external_id=spec.external_id)
        if stored is not None:
            return await _repeated(program, stored, spec, enrollment_id)
    async with in_transaction():
        customer = await _touch_customer(program, spec)
        touchpoint = await Touchpoint.create(
            program_id=program.pk,
            enrollment_id=enrollment_id,
            kind=spec.kind,
            role=spec.role,
            occurred_at=spec.occurred_at or utcnow(),
            customer_id=None if customer is None else customer.pk,
            visitor_id=spec.visitor_id,
            external_id=spec.external_id,
        )
        if customer is not None:
            await stitching.exclude_self_referrals([customer])
            await stitching.remember_first_referrers([customer.pk])
            await touchpoint.refresh_from_db()
    return touchpoint


async def _touch_customer(program: Program, spec: rules.TouchpointSpec) -> Customer | None:
    """The touchpoint's customer: the one named (its visitor stitched to it), else the one its
    visitor is known to be."""
    if spec.customer_id is None:
        link = await VisitorCustomer.get_or_none(program_id=program.pk, visitor_id=spec.visitor_id)
        return None if link is None else await Customer.get(id=link.customer_id)
    want = stitching.Want(spec.customer_id, spec.visitor_id)
    planned = await stitching.plan(program.pk, [want])
    if planned.refused:
        raise planned.refused[0]
    customers = await stitching.customers(program.pk, [spec.customer_id])
    await stitching.apply(program.pk, planned, customers)
    return customers[spec.customer_id]


async def _repeated(
    program: Program, stored: Touchpoint, spec: rules.TouchpointSpec, enrollment_id: int
) -> Touchpoint:
    async def external(customer_id: int | None) -> str | None:
        row = None if customer_id is None else await Customer.get_or_none(id=customer_id)
        return None if row is None else row.external_id

    asked_customer = spec.customer_id
    if asked_customer is None:
        link = await VisitorCustomer.get_or_none(program_id=program.pk, visitor_id=spec.visitor_id)
        asked_customer = await external(None if link is None else link.customer_id)
    asked = rules.TouchpointFacts(
        spec.kind,
        enrollment_id,
        spec.role,
        asked_customer,
        spec.visitor_id,
        None if spec.occurred_at is None else epoch_us(spec.occurred_at),
    )
    facts = rules.TouchpointFacts(
        stored.kind,
        stored.enrollment_id,
        stored.role,
        await external(stored.customer_id),
        stored.visitor_id,
        stored.occurred_us,
    )
    if not rules.same_touchpoint(facts, asked):
        raise _conflict("externalId", "another touchpoint was recorded with this externalId")
    return stored


# --- recordConversion(s) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """Per item: the conversion (recorded now or before), or None where refused; the refusals
    carry the item's index in their field path."""

    conversions: list[Conversion | None]
    errors: list[DomainError]


async def record_conversion(
    actor: Actor, program_id: int, spec: rules.ConversionSpec
) -> Conversion:
    """One conversion: recorded and credited, or the first result of the same input."""
    outcome = await record_conversions(actor, [(program_id, spec)], prefix=None)
    if outcome.errors:
        errors = ErrorCollector()
        errors.errors = outcome.errors
        errors.raise_if_any()
    conversion = outcome.conversions[0]
    assert conversion is not None  # not refused
    return conversion


async def record_conversions(
    actor: Actor,
    items: Sequence[tuple[int, rules.ConversionSpec]],
    prefix: Sequence[str] | None = ("conversions",),
) -> BatchOutcome:
    """Up to MAX_BATCH conversions, each (program id, input). Per item: a refused item stores
    nothing and answers errors under `[*prefix, index, field]`; the accepted ones of a program
    are stored, with their credits by the program's model, in one transaction."""
    if len(items) > rules.MAX_BATCH:
        field = list(prefix or ["conversions"])
        message = f"at most {rules.MAX_BATCH} conversions per call"
        raise DomainError(ErrorCode.LIMIT_EXCEEDED, field, message)
    results: list[Conversion | None] = [None] * len(items)
    refusals: list[tuple[int, DomainError]] = []
    groups: dict[int, list[int]] = {}
    for index, (program_id, _) in enumerate(items):
        groups.setdefault(program_id, []).append(index)
    programs = {p.pk: p for p in await Program.filter(id__in=list(groups))}
    for program_id, indexes in groups.items():
        program = programs.get(program_id)
        if program is None:
            refusals += [(i, not_found(["programId"], "program")) for i in indexes]
            continue
        specs = [items[i][1] for i in indexes]
        done, refused = await _retrying(partial(_record, actor, program, specs))
        for k, index in enumerate(indexes):
            results[index] = done[k]
            refusals += [(index, error) for error in refused.get(k, [])]
    refusals.sort(key=lambda pair: pair[0])

    def at(index: int) -> list[str]:
        return [] if prefix is None else [*prefix, str(index)]

    errors = [DomainError(e.code, [*at(i), *(e.field or [])], e.message) for i, e in refusals]
    return BatchOutcome(results, errors)


@dataclass
class _Batch:
    """One program's items on their way: accepted (amount, fingerprint), refused, and which
    items record a new conversion or repeat an earlier item of the batch."""

    specs: list[rules.ConversionSpec]
    now: datetime
    accepted: dict[int, tuple[int, str]]
    refused: dict[int, list[DomainError]]
    done: list[Conversion | None]
    new: list[int]
    same_as: dict[int, int]


def _validated(program: Program, specs: list[rules.ConversionSpec]) -> _Batch:
    now = utcnow()
    batch = _Batch(specs, now, {}, {}, [None] * len(specs), [], {})
    for k, spec in enumerate(specs):
        errors = ErrorCollector()
        amount = rules.validate_conversion(errors, spec, program.currency, now)
        if amount is None:
            batch.refused[k] = errors.errors
        else:
            batch.accepted[k] = (amount, rules.conversion_fingerprint(spec, amount))
    return batch


async def _stored(program: Program, external_ids: Iterable[str]) -> dict[str, Conversion]:
    ids = sorted(set(external_ids))
    found: dict[str, Conversion] = {}
    for start in range(0, len(ids), stitching.CHUNK):
        part = ids[start : start + stitching.CHUNK]
        for row in await Conversion.filter(program_id=program.pk, external_id__in=part):
            found[row.external_id] = row
    return found


async def _with_ids(program: Program, rows: list[Conversion]) -> dict[str, Conversion]:
    """The rows just inserted, given their ids (bulk inserts do not read them back): ids
    alone are read, not a thousand rows."""
    by_external = {row.external_id: row for row in rows}
    ids = sorted(by_external)
    for start in range(0, len(ids), stitching.CHUNK):
        part = ids[start : start + stitching.CHUNK]
        pairs = await Conversion.filter(program_id=program.pk, external_id__in=part).values_list(
            "external_id", "id"
        )
        for external_id, pk in pairs:
            row = by_external[str(external_id)]
            row.pk = int(str(pk))
            row._saved_in_db = True
    return by_external


async def _sort_out(program: Program, batch: _Batch) -> None:
    """Each accepted item: the stored conversion of the same input, a CONFLICT, a repeat of
    an earlier item, or new."""
    specs = batch.specs
    stored = await _stored(program, (specs[k].external_id for k in batch.accepted))
    first: dict[str, int] = {}
    taken = "another conversion was recorded with this externalId"
    for k, (_, fingerprint) in batch.accepted.items():
        external_id = specs[k].external_id
        if external_id in stored:
            if stored[external_id].fingerprint == fingerprint:
                batch.done[k] = stored[external_id]
            else:
                batch.refused[k] = [_conflict("externalId", taken)]
        elif external_id in first:
            if batch.accepted[first[external_id]][1] == fingerprint:
                batch.same_as[k] = first[external_id]
            else:
                batch.refused[k] = [_conflict("externalId", "an earlier item has this externalId")]
        else:
            first[external_id] = k
            batch.new.append(k)


async def _record(
    actor: Actor, program: Program, specs: list[rules.ConversionSpec]
) -> tuple[list[Conversion | None], dict[int, list[DomainError]]]:
    batch = _validated(program, specs)
    await _sort_out(program, batch)
    codes = await _codes(program, (specs[k].identity.referral_code for k in batch.new))
    wants: list[stitching.Want | None] = [None] * len(specs)
    for k in batch.new:
        ident = specs[k].identity
        if ident.referral_code and ident.referral_code.lower() not in codes:
            batch.refused[k] = [not_found(["referralCode"], "referral code")]
        elif ident.customer_id is not None:
            wants[k] = stitching.Want(
                ident.customer_id, ident.visitor_id, ident.click_id, click_known=False
            )
    planned = await stitching.plan(program.pk, wants)
    for k, error in planned.refused.items():
        batch.refused[k] = [error]
    new = [k for k in batch.new if k not in batch.refused]
    if new:
        created = await _write(actor, program, batch, new, codes, planned)
        for k in new:
            batch.done[k] = created[specs[k].external_id]
    for k, first in batch.same_as.items():
        if first in batch.refused:
            batch.refused[k] = batch.refused[first]
        batch.done[k] = batch.done[first]
    return batch.done, batch.refused


async def _write(
    actor: Actor,
    program: Program,
    batch: _Batch,
    new: list[int],
    codes: dict[str, int],
    planned: stitching.Plan,
) -> dict[str, Conversion]:
    specs = batch.specs
    named = {specs[k].identity.customer_id for k in new} - {None}
    async with in_transaction():
        customers = await stitching.customers(program.pk, (c for c in named if c is not None))
        await stitching.apply(program.pk, planned, customers)
        rows = []
        for k in new:
            spec, ident = specs[k], specs[k].identity
            at = spec.occurred_at or batch.now
            customer = None if ident.customer_id is None else customers[ident.customer_id].pk
            code = None
            if ident.referral_code:  # the code entered at checkout: a touchpoint at the sale
                code = await Touchpoint.create(
                    program_id=program.pk,
                    enrollment_id=codes[ident.referral_code.lower()],
                    kind=TouchpointKind.CODE,
                    occurred_at=at,
                    customer_id=customer,
                )
            rows.append(
                Conversion(
                    program_id=program.pk,
                    external_id=spec.external_id,
                    kind=spec.kind,
                    amount_minor=batch.accepted[k][0],
                    currency=spec.currency,
                    occurred_at=at,
                    customer_id=customer,
                    visitor_id=ident.visitor_id,
                    click_id=ident.click_id,
                    code_touchpoint_id=None if code is None else code.pk,
                    fingerprint=batch.accepted[k][1],
                )
            )
        await Conversion.bulk_create(rows, batch_size=stitching.CHUNK)
        created = await _with_ids(program, rows)
        await stitching.exclude_self_referrals(customers.values())
        await stitching.remember_first_referrers([c.pk for c in customers.values()])
        ids = sorted(c.pk for c in created.values())
        await attribution.credit_conversions(program, ids)
        entries = await ledger.price_conversions(program, ids)
        if entries:  # the ledger's movements: one audit entry per call, not per entry
            await audit.record(actor, "recordConversions", program, after=ledger.summary(entries))
        await rewards.conversions_credited(program, ids, new=True)
        await tiers.promote_credited(actor, program, ids)  # after pricing: from the next one on
    return created


# --- refundConversion ------------------------------------------------------------------------


async def refund_conversion(
    actor: Actor, program_id: int, external_id: str, amount: Decimal | None
) -> Conversion:
    """Refund all that is left (no amount) or part of it; audited. The refund is kept apart so
    the commission ledger can reverse it."""
    program = await _program(program_id)
    found = await Conversion.get_or_none(program_id=program.pk, external_id=external_id)
    if found is None:
        raise not_found(["externalId"], "conversion")
    requested = None
    if amount is not None:
        try:
            requested = to_minor(amount, found.currency)
        except AmountError as exc:
            raise DomainError(ErrorCode.INVALID, ["amount"], str(exc)) from None
    async with in_transaction():
        conversion = await Conversion.select_for_update().get(id=found.pk)
        before = {"refundedMinor": conversion.refunded_minor, "status": str(conversion.status)}
        outcome = rules.refund(conversion.amount_minor, conversion.refunded_minor, requested)
        await Refund.create(
            conversion_id=conversion.pk,
            amount_minor=outcome.refund_minor,
            currency=conversion.currency,
            applied=True,
        )
        conversion.refunded_minor = outcome.refunded_minor
        conversion.status = outcome.status
        await conversion.save(update_fields=["refunded_minor", "status"])
        reversals = await ledger.reverse_refunds(program, [conversion.pk])
        await rewards.conversions_refunded(program, [conversion.pk])
        after = {
            "refundedMinor": outcome.refunded_minor,
            "status": str(outcome.status),
            "reversals": [[r.enrollment_id, r.amount_minor] for r in reversals],
        }
        await audit.record(actor, "refundConversion", conversion, before=before, after=after)
    return conversion
