"""Use cases of commissions: rules and their history, approvals, rejections, payouts, balances.

Every change is audited with who made it, in the transaction of the change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.clock import utcnow
from domain.commissions import ledger, specs
from domain.commissions.models import (
    Commission,
    CommissionKind,
    CommissionRule,
    CommissionRuleVersion,
    CommissionStatus,
    PayoutBatch,
    PayoutItem,
    PayoutStatus,
)
from domain.db import select
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.pagination import Page, PageRequest, by_ids, chunks, in_list, paginate
from domain.partners.models import Enrollment
from domain.programs.models import Program, Tier

CHUNK = 500
MAX_REASON = 1000
MAX_REFERENCE = 200
UNPAID = (CommissionStatus.PENDING, CommissionStatus.APPROVED)


async def _program(program_id: int, field: str = "programId") -> Program:
    program = await Program.filter(id=program_id).first()
    if program is None:
        raise not_found([field], "program")
    return program


# --- rules ----------------------------------------------------------------------------------


def _rule_values(rule: CommissionRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in (*specs.PLAIN, *specs.MONEY.values(), "archived")}


async def _check_scope(errors: ErrorCollector, program: Program, values: dict[str, Any]) -> None:
    tier_id, enrollment_id = values.get("tier_id"), values.get("enrollment_id")
    if tier_id is not None and not await Tier.filter(id=tier_id, program_id=program.pk).exists():
        errors.add(ErrorCode.NOT_FOUND, ["tierId"], "tier not found in this program")
    if (
        enrollment_id is not None
        and not await Enrollment.filter(id=enrollment_id, program_id=program.pk).exists()
    ):
        errors.add(ErrorCode.NOT_FOUND, ["enrollmentId"], "enrollment not found in this program")


async def _save_version(actor: Actor, action: str, rule: CommissionRule,
                        before: dict[str, Any] | None, currency: str) -> None:  # fmt: skip
    terms = specs.terms_json(_rule_values(rule), currency)
    await CommissionRuleVersion.create(rule_id=rule.pk, version=rule.version, terms=terms)
    before_json = None if before is None else specs.terms_json(before, currency)
    await audit.record(actor, action, rule, before_json, {**terms, "version": rule.version})


async def create_rule(actor: Actor, program_id: int, spec: specs.RuleSpec) -> CommissionRule:
    """A new rule (version 1). It prices conversions credited from now on; a recompute
    applies it to earlier ones."""
    program = await _program(program_id)
    errors = ErrorCollector()
    given = spec.given()
    if given.get("conversion_kind") is None:
        errors.invalid(["conversionKind"], "required")
    values = specs.columns(errors, given, program.currency)
    specs.check_whole(errors, values)
    await _check_scope(errors, program, values)
    errors.raise_if_any()
    async with in_transaction():
        rule = await CommissionRule.create(program_id=program.pk, version=1, **values)
        await _save_version(actor, "createCommissionRule", rule, None, program.currency)
    return rule


async def update_rule(actor: Actor, rule_id: int, spec: specs.RuleSpec) -> CommissionRule:
    """Change a rule: a new version; entries priced before keep the version they used."""
    async with in_transaction():
        rule = await CommissionRule.filter(id=rule_id).select_for_update().first()
        if rule is None:
            raise not_found(["id"], "commission rule")
        if rule.archived:
            raise DomainError(ErrorCode.CONFLICT, ["id"], "an archived rule cannot change")
        program = await _program(rule.program_id)
        errors = ErrorCollector()
        for name in ("conversion_kind", "priority"):
            if name in spec.given() and spec.given()[name] is None:
                errors.invalid([specs.camel(name)], "cannot be cleared")
        changes = specs.columns(errors, spec.given(), program.currency)
        before = _rule_values(rule)
        after = {**before, **changes}
        specs.check_whole(errors, after)
        await _check_scope(errors, program, changes)
        errors.raise_if_any()
        if after == before:
            return rule
        for name, value in changes.items():
            setattr(rule, name, value)
        rule.version += 1
        await rule.save()
        await _save_version(actor, "updateCommissionRule", rule, before, program.currency)
    return rule


async def archive_rule(actor: Actor, rule_id: int) -> CommissionRule:
    """Retire a rule: it ends now (`endsAt`, unless it ended earlier), so conversions that
    happen from now on are not priced by it, while those before keep it, in a recompute too.
    Its entries and history stay."""
    async with in_transaction():
        rule = await CommissionRule.filter(id=rule_id).select_for_update().first()
        if rule is None:
            raise not_found(["id"], "commission rule")
        if rule.archived:
            return rule
        before = _rule_values(rule)
        now = utcnow()
        rule.archived = True
        if rule.ends_at is None or rule.ends_at > now:
            rule.ends_at = now
        rule.version += 1
        await rule.save()
        program = await _program(rule.program_id)
        await _save_version(actor, "archiveCommissionRule", rule, before, program.currency)
    return rule


async def rules_of(program_id: int, include_archived: bool = True) -> list[CommissionRule]:
    query = CommissionRule.filter(program_id=program_id)
    if not include_archived:
        query = query.filter(archived=False)
    return await query.order_by("id")


async def rule_versions(rule_id: int) -> list[CommissionRuleVersion]:
    return await CommissionRuleVersion.filter(rule_id=rule_id).order_by("version")


async def rules_by_ids(ids: list[int]) -> list[CommissionRule | None]:
    return await by_ids(CommissionRule, ids)


# --- entries and balances -------------------------------------------------------------------


async def commissions_by_ids(ids: list[int]) -> list[Commission | None]:
    return await by_ids(Commission, ids)


async def commissions_of(
    enrollment_id: int, status: CommissionStatus | None, page: PageRequest
) -> Page[Commission]:
    """An enrollment's entries, newest first (referee rewards are the program's, not its)."""
    query = Commission.filter(enrollment_id=enrollment_id).exclude(
        kind=CommissionKind.REFEREE_REWARD
    )
    if status is not None:
        query = query.filter(status=status)
    return await paginate(query, PageRequest(page.limit, page.after, descending=True))


async def commissions_of_program(
    program_id: int, status: CommissionStatus | None, page: PageRequest
) -> Page[Commission]:
    query = Commission.filter(program_id=program_id)
    if status is not None:
        query = query.filter(status=status)
    return await paginate(query, PageRequest(page.limit, page.after, descending=True))


@dataclass(frozen=True, slots=True)
class Balance:
    """Per currency, in minor units: the sums of an enrollment's entries by status."""

    pending: dict[str, int]
    approved: dict[str, int]
    paid: dict[str, int]


async def balances(enrollment_ids: Sequence[int]) -> dict[int, Balance]:
    """What each enrollment has pending, approved and paid: always the sum of its entries
    (REVERSED entries offset each other, REJECTED ones count for nothing, referee rewards are
    program costs). One indexed GROUP BY."""
    found: dict[int, dict[str, dict[str, int]]] = {
        e: {"PENDING": {}, "APPROVED": {}, "PAID": {}} for e in enrollment_ids
    }
    for start in range(0, len(enrollment_ids), CHUNK):
        chunk = list(enrollment_ids[start : start + CHUNK])
        rows = await select(  # plain SQL: this is read on every partner's page
            "SELECT enrollment_id, status, currency, SUM(amount_minor) FROM commissions WHERE "
            f"enrollment_id IN ({in_list(len(chunk))}) AND status IN ('PENDING', 'APPROVED', "
            "'PAID') AND kind IN ('COMMISSION', 'BONUS', 'REVERSAL', 'ADJUSTMENT') "
            "GROUP BY enrollment_id, status, currency",
            chunk,
        )
        for enrollment, status, currency, total in rows:
            if total:
                found[enrollment][str(status)][currency] = int(total)
    return {e: Balance(b["PENDING"], b["APPROVED"], b["PAID"]) for e, b in found.items()}


# --- approvals and rejections ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Changed:
    """Entries a mutation moved: how many, and the first of them to show."""

    count: int
    ids: list[int]


async def approve(
    actor: Actor,
    program_id: int,
    ids: Sequence[int] | None = None,
    available_before: datetime | None = None,
    now: datetime | None = None,
) -> Changed:
    """Approve PENDING entries whose hold has ended (`availableAt` at or before the cutoff:
    now, or `available_before` if earlier). Naming `ids` approves those (in this program and
    PENDING) even inside their hold: an admin's explicit decision, audited."""
    now = now or utcnow()
    program = await _program(program_id)
    query = Commission.filter(program_id=program.pk, status=CommissionStatus.PENDING).exclude(
        kind=CommissionKind.REFEREE_REWARD
    )
    if ids is not None:
        wanted = await _own(program, ids)
        query = query.filter(id__in=wanted)
        if available_before is not None:
            query = query.filter(available_at__lte=available_before)
    else:
        cutoff = now if available_before is None or available_before > now else available_before
        query = query.filter(available_at__lte=cutoff)
    async with in_transaction():
        await ledger.lock(program.pk)
        chosen = [row[0] for row in await query.order_by("id").values_list("id")]
        if ids is None:  # what is due: one statement with the same conditions
            moved = await query.update(status=CommissionStatus.APPROVED, decided_at=now)
        else:
            moved = 0
            for start in range(0, len(chosen), CHUNK):
                moved += await Commission.filter(
                    id__in=chosen[start : start + CHUNK], status=CommissionStatus.PENDING
                ).update(status=CommissionStatus.APPROVED, decided_at=now)
        if moved != len(chosen):
            raise DomainError(ErrorCode.CONFLICT, ["ids"], "entries changed meanwhile: retry")
        if chosen:
            after = {"approved": len(chosen), "commissionIds": chosen,
                     "availableBefore": None if available_before is None
                     else available_before.isoformat()}  # fmt: skip
            await audit.record(actor, "approveCommissions", program, after=after)
    return Changed(len(chosen), chosen)


async def _own(program: Program, ids: Sequence[int]) -> list[int]:
    """The ids, all of which must be entries of this program (else NOT_FOUND, nothing done)."""
    wanted = sorted(set(ids))
    found: set[int] = set()
    for start in range(0, len(wanted), CHUNK):
        query = Commission.filter(id__in=wanted[start : start + CHUNK], program_id=program.pk)
        found.update(row[0] for row in await query.values_list("id"))
    missing = [i for i, entry in enumerate(ids) if entry not in found]
    if missing:
        raise not_found(["ids", str(missing[0])], "commission")
    return wanted


async def approve_due(actor: Actor, at: datetime | None = None) -> dict[int, int]:
    """Approve what is due (by now, or by `at` if earlier) in every program: the
    `approve-due` command. Each program in its own transaction."""
    done = {}
    for (program_id,) in await Program.all().order_by("id").values_list("id"):
        changed = await approve(actor, program_id, available_before=at)
        if changed.count:
            done[program_id] = changed.count
    return done


async def reject(actor: Actor, ids: Sequence[int], reason: str) -> Changed:
    """Reject unpaid entries with a reason. Rejecting a COMMISSION rejects the rest of its
    position (the enrollment's other unpaid entries for that conversion) with it; an entry
    that is paid or in a payout cannot be rejected: a REVERSAL or ADJUSTMENT corrects it."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise DomainError(
            ErrorCode.INVALID, ["reason"], f"give a reason of 1 to {MAX_REASON} characters"
        )
    if not ids:
        raise DomainError(ErrorCode.INVALID, ["ids"], "give at least one commission")
    now = utcnow()
    async with in_transaction():
        programs_ = (
            await Commission.filter(id__in=sorted(set(ids))).distinct().values_list("program_id")
        )
        for (program_id,) in sorted(programs_):
            await ledger.lock(program_id)
        entries = {
            c.pk: c for c in await Commission.filter(id__in=sorted(set(ids))).select_for_update()
        }
        for index, entry_id in enumerate(ids):
            entry = entries.get(entry_id)
            path = ["ids", str(index)]
            if entry is None:
                raise not_found(path, "commission")
            if entry.kind is CommissionKind.REFEREE_REWARD:
                raise DomainError(ErrorCode.INVALID, path, "a referee reward is not the partner's")
            if entry.kind is CommissionKind.REVERSAL or entry.amount_minor <= 0:
                message = "only an entry that pays the partner can be rejected (not a reversal)"
                raise DomainError(ErrorCode.INVALID, path, message)
            if entry.status not in UNPAID or entry.payout_item_id is not None:
                raise DomainError(
                    ErrorCode.CONFLICT, path, f"a {entry.status} entry cannot be rejected"
                )
        chosen = set(entries)
        positions = {
            (e.conversion_id, e.enrollment_id)
            for e in entries.values()
            if e.kind is CommissionKind.COMMISSION and e.conversion_id is not None
        }
        conversions = sorted({conversion for conversion, _ in positions})
        for chunk in chunks(conversions):  # the rest of those positions, read at once
            rows = (
                await Commission.filter(conversion_id__in=chunk)
                .exclude(kind=CommissionKind.REFEREE_REWARD)
                .values_list("id", "conversion_id", "enrollment_id", "status", "payout_item_id")
            )
            for entry_id, conversion_id, enrollment_id, status, payout in rows:
                if (conversion_id, enrollment_id) not in positions:
                    continue
                if status == CommissionStatus.PAID or payout is not None:
                    message = "part of this conversion's commission is paid already"
                    raise DomainError(ErrorCode.CONFLICT, ["ids"], message)
                if status in UNPAID:
                    chosen.add(entry_id)
        ordered = sorted(chosen)
        await Commission.filter(id__in=ordered).update(
            status=CommissionStatus.REJECTED, decided_at=now, reason=reason
        )
        programs = {e.program_id for e in entries.values()}
        for program_id in sorted(programs):
            program = await Program.get(id=program_id)
            after = {"rejected": len(ordered), "commissionIds": ordered}
            await audit.record(actor, "rejectCommissions", program, reason=reason, after=after)
    return Changed(len(ordered), ordered)


# --- payouts --------------------------------------------------------------------------------


async def create_payout_batch(
    actor: Actor, program_id: int, minimum_minor: int
) -> PayoutBatch | None:
    """Gather every APPROVED entry not yet in a payout, per enrollment, for the enrollments
    whose total reaches `minimum_minor` (and is above zero: a negative total, a reversal after
    payment, waits to be carried into a later payout). One transaction; the program's ledger
    is locked (refunds, approvals and recomputes of the program wait) and each entry is
    claimed only if still unclaimed, so two admins at once can never put an entry into two
    payouts. None when nothing is due."""
    if minimum_minor < 0:
        raise DomainError(ErrorCode.INVALID, ["minimumAmount"], "must not be negative")
    async with in_transaction():
        program = await _program(program_id)
        await ledger.lock(program.pk, exclusive=True)
        # the unclaimed entries, read once and totalled here: one query, never one per
        # enrollment (the planner's statistics may not know yet how many were just approved)
        entries: dict[int, list[int]] = defaultdict(list)
        totals: dict[int, int] = defaultdict(int)
        for entry_id, enrollment_id, amount in await select(
            "SELECT id, enrollment_id, amount_minor FROM commissions WHERE program_id = {} AND "
            "status = 'APPROVED' AND payout_item_id IS NULL AND kind <> 'REFEREE_REWARD' "
            "AND currency = {}",
            [program.pk, program.currency],
        ):
            entries[enrollment_id].append(entry_id)
            totals[enrollment_id] += amount
        due = sorted(e for e, total in totals.items() if total > 0 and total >= minimum_minor)
        if not due:
            return None
        batch = await PayoutBatch.create(
            program_id=program.pk, currency=program.currency, minimum_minor=minimum_minor
        )
        items = [
            PayoutItem(batch_id=batch.pk, enrollment_id=e, amount_minor=totals[e],
                       currency=program.currency)
            for e in due
        ]  # fmt: skip
        await PayoutItem.bulk_create(items, batch_size=CHUNK)
        item_ids = dict(
            await PayoutItem.filter(batch_id=batch.pk).values_list("id", "enrollment_id")
        )
        for item_id, enrollment_id in item_ids.items():  # by primary key: a plan that never
            ids = entries[enrollment_id]  # depends on how stale the statistics are
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                await select(
                    "UPDATE commissions SET payout_item_id = {} WHERE id IN "
                    f"({in_list(len(chunk))}) AND status = 'APPROVED' AND payout_item_id IS NULL",
                    [item_id, *chunk],
                )
        # then checked against what was read: each item's count and sum
        claimed = 0
        for item_id, count, summed in await select(
            "SELECT payout_item_id, COUNT(*), SUM(amount_minor) FROM commissions WHERE "
            "payout_item_id IN (SELECT id FROM payout_items WHERE batch_id = {}) "
            "GROUP BY payout_item_id",
            [batch.pk],
        ):
            enrollment_id = item_ids[item_id]
            if count != len(entries[enrollment_id]) or int(summed) != totals[enrollment_id]:
                message = "entries changed while the payout was made: retry"
                raise DomainError(ErrorCode.CONFLICT, ["programId"], message)
            claimed += count
        if claimed != sum(len(entries[e]) for e in due):
            raise DomainError(ErrorCode.CONFLICT, ["programId"], "entries changed: retry")
        total = sum(totals[e] for e in due)
        after = {"programId": program.pk, "items": len(due), "entries": claimed, "total": total,
                 "currency": program.currency, "minimumMinor": minimum_minor}  # fmt: skip
        await audit.record(actor, "createPayoutBatch", batch, after=after)
    return batch


async def mark_payout_paid(actor: Actor, batch_id: int, reference: str) -> PayoutBatch:
    """The payment provider paid the batch: its entries become PAID. Marking it again with
    the same reference changes nothing; with another one is a CONFLICT."""
    reference = (reference or "").strip()
    if not (1 <= len(reference) <= MAX_REFERENCE):
        raise DomainError(
            ErrorCode.INVALID, ["reference"], f"must be 1 to {MAX_REFERENCE} characters"
        )
    now = utcnow()
    async with in_transaction():
        batch = await PayoutBatch.filter(id=batch_id).select_for_update().first()
        if batch is None:
            raise not_found(["id"], "payout batch")
        if batch.status is PayoutStatus.PAID:
            if batch.reference == reference:
                return batch
            raise DomainError(ErrorCode.CONFLICT, ["reference"], "the batch is paid already")
        item_ids = [row[0] for row in await PayoutItem.filter(batch_id=batch.pk).values_list("id")]
        for start in range(0, len(item_ids), CHUNK):
            await Commission.filter(payout_item_id__in=item_ids[start : start + CHUNK]).update(
                status=CommissionStatus.PAID, decided_at=now
            )
        batch.status, batch.reference, batch.paid_at = PayoutStatus.PAID, reference, now
        await batch.save(update_fields=["status", "reference", "paid_at"])
        await audit.record(actor, "markPayoutPaid", batch, {"status": "PENDING"},
                           {"status": "PAID", "reference": reference})  # fmt: skip
    return batch


async def payout_batches(program_id: int, page: PageRequest) -> Page[PayoutBatch]:
    return await paginate(
        PayoutBatch.filter(program_id=program_id),
        PageRequest(page.limit, page.after, descending=True),
    )


async def payout_batches_by_ids(ids: list[int]) -> list[PayoutBatch | None]:
    return await by_ids(PayoutBatch, ids)


async def payout_items(batch_ids: Sequence[int]) -> dict[int, list[PayoutItem]]:
    found: dict[int, list[PayoutItem]] = defaultdict(list)
    for item in await PayoutItem.filter(batch_id__in=list(batch_ids)).order_by("id"):
        found[item.batch_id].append(item)
    return found


async def item_commissions(item_ids: Sequence[int]) -> dict[int, list[Commission]]:
    found: dict[int, list[Commission]] = defaultdict(list)
    for start in range(0, len(item_ids), CHUNK):
        chunk = list(item_ids[start : start + CHUNK])
        for entry in await Commission.filter(payout_item_id__in=chunk).order_by("id"):
            if entry.payout_item_id is not None:
                found[entry.payout_item_id].append(entry)
    return found
