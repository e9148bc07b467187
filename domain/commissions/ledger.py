"""The ledger: credits priced into entries, refunds reversed, recomputes settled.

A *position* is all of one enrollment's entries for one conversion. Every change (a new
credit, a refund, a recompute) computes what the position should now be worth, its *target*,
and appends entries that move it there; no entry is ever edited or deleted, only its status
moves. Entries that are PAID or gathered into a payout are *locked*: a later correction never
touches them, it appends an entry that the next payout carries.

- A new credit: a COMMISSION entry of what the rule earns (PENDING until the hold ends).
- A refund: one REVERSAL entry, in proportion to the refunded part of the conversion. When it
  offsets the unpaid entries of a position in full, they and it become REVERSED.
- A recompute: the position's unpaid entries are reversed (REVERSAL, all REVERSED) and what
  the new credit earns beyond the locked entries is credited again: a COMMISSION when more is
  due, an ADJUSTMENT (APPROVED, carried into the next payout) when less.
- A rejected position stays rejected: later changes append nothing to it.

Call these inside the transaction of the change they follow.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from domain import db
from domain.clock import from_epoch_us, utcnow
from domain.commissions import rules
from domain.commissions.models import (
    Commission,
    CommissionKind,
    CommissionRule,
    CommissionStatus,
)
from domain.db import instant, is_sqlite, select
from domain.errors import DomainError, ErrorCode
from domain.money import minor_units
from domain.pagination import chunks, in_list
from domain.programs.models import Program

UNPAID = (CommissionStatus.PENDING, CommissionStatus.APPROVED)
PRICED = (CommissionKind.COMMISSION, CommissionKind.REVERSAL, CommissionKind.ADJUSTMENT)
REFEREE_REASON = "the referred customer's reward, given by the merchant: a program cost"


LOCK_CLASS = 0x6C64  # the advisory locks' first key: "ledger", the second the program


async def lock(program_id: int, exclusive: bool = False) -> None:
    """Take the program's ledger lock for the rest of the transaction (PostgreSQL; SQLite runs
    one writer at a time). Payouts take it exclusive; refunds, recomputes, approvals and
    rejections shared: a payout never interleaves with a change to the entries it gathers,
    and it is an advisory lock, not the program row, so inserts (whose foreign key takes a
    key-share lock on the program) never wait on a payout in a deadlock."""
    if is_sqlite():
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await select(f"SELECT {function}({{}}, {{}})", [LOCK_CLASS, program_id])


def terms_of(rule: CommissionRule) -> rules.RuleTerms:
    return rules.RuleTerms(
        rule_id=rule.pk,
        version=rule.version,
        conversion_kind=str(rule.conversion_kind),
        percentage=rule.percentage,
        flat_minor=rule.flat_minor,
        tier_id=rule.tier_id,
        enrollment_id=rule.enrollment_id,
        priority=rule.priority,
        starts_at=rule.starts_at,
        ends_at=rule.ends_at,
        recurring_months=rule.recurring_months,
        half_life_days=rule.half_life_days,
        cap_minor=rule.cap_minor,
        monthly_cap_minor=rule.monthly_cap_minor,
        minimum_minor=rule.minimum_minor,
        archived=rule.archived,
    )


@dataclass(slots=True)
class _Position:
    """One enrollment's entries for one conversion, as far as settling needs them."""

    net: int = 0  # every entry but REJECTED
    unpaid: list[tuple[int, int, datetime]] = field(default_factory=list)  # id, amount, available
    locked_net: int = 0  # PAID or in a payout
    earned: int | None = None  # what the newest priced entry says the position earned
    earned_id: int = 0
    rejected: bool = False
    approved: bool = False  # some unpaid entry is APPROVED


@dataclass(frozen=True, slots=True)
class _Conv:
    id: int
    kind: str
    amount: int
    refunded: int
    currency: str
    occurred_at: datetime
    customer_id: int | None


@dataclass(slots=True)
class _Priced:
    conversion: _Conv
    enrollment_id: int
    earned: rules.Earned | None  # None: no rule applies (earns nothing)
    rule: rules.RuleTerms | None
    credit_id: int | None
    credited: int


async def _conversions(ids: Sequence[int]) -> dict[int, _Conv]:
    found: dict[int, _Conv] = {}
    for chunk in chunks(ids):
        rows = await select(
            "SELECT id, kind, amount_minor, refunded_minor, currency, occurred_at, customer_id "
            f"FROM conversions WHERE id IN ({in_list(len(chunk))})",
            chunk,
        )
        for conv, kind, amount, refunded, currency, at, customer in rows:
            found[conv] = _Conv(conv, kind, amount, refunded, currency, instant(at), customer)
    return found


async def _positions(ids: Sequence[int]) -> dict[tuple[int, int], _Position]:
    positions: dict[tuple[int, int], _Position] = defaultdict(_Position)
    for chunk in chunks(ids):
        rows = await select(
            "SELECT id, conversion_id, enrollment_id, amount_minor, status, payout_item_id, "
            "earned_minor, available_at FROM commissions WHERE conversion_id IN "
            f"({in_list(len(chunk))}) AND kind IN ('COMMISSION', 'REVERSAL', 'ADJUSTMENT') "
            "ORDER BY id",
            chunk,
        )
        for entry_id, conv, enrollment, amount, status, payout, earned, at in rows:
            available = instant(at)
            position = positions[(conv, enrollment)]
            if status == CommissionStatus.REJECTED:
                position.rejected = position.rejected or earned is not None
                continue
            position.net += amount
            if status == CommissionStatus.PAID or payout is not None:
                position.locked_net += amount
            elif status in UNPAID:
                position.unpaid.append((entry_id, amount, available))
                position.approved = position.approved or status == CommissionStatus.APPROVED
            if earned is not None and entry_id > position.earned_id:
                position.earned, position.earned_id = earned, entry_id
    return positions


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry one settle appended, as plain values (the columns of `_COLUMNS`)."""

    enrollment_id: int
    conversion_id: int
    kind: CommissionKind
    amount_minor: int
    currency: str
    status: CommissionStatus
    available_at: datetime
    decided_at: datetime | None
    month: str
    reason: str | None
    rule_id: int | None = None
    rule_version: int | None = None
    credit_id: int | None = None
    credited_minor: int | None = None
    earned_minor: int | None = None


def summary(entries: Sequence[NewEntry]) -> dict[str, Any]:
    """What a settle appended, for the audit log: counts and sums per kind and status."""
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in entries:
        group = groups[f"{entry.kind.value} {entry.status.value} {entry.currency}"]
        group[0] += 1
        group[1] += entry.amount_minor
    return {
        "ledgerEntries": len(entries),
        "byKind": {
            key: {"count": n, "amountMinor": total} for key, (n, total) in sorted(groups.items())
        },
    }


_COLUMNS = (
    "enrollment_id", "conversion_id", "kind", "amount_minor", "currency", "status",
    "available_at", "decided_at", "month", "reason", "rule_id", "rule_version", "credit_id",
    "credited_minor", "earned_minor",
)  # fmt: skip


@dataclass
class _Writer:
    """Collects the entries one settle appends and the unpaid entries it marks REVERSED, and
    writes them as plain rows (settling runs for every ingested batch: no ORM object each)."""

    program: Program
    now: datetime
    reason: str | None
    entries: list[NewEntry] = field(default_factory=list)
    reversed_ids: list[int] = field(default_factory=list)

    def add(self, conv: _Conv, enrollment_id: int, kind: CommissionKind, amount: int,
            status: CommissionStatus, available_at: datetime, **extra: Any) -> None:  # fmt: skip
        self.entries.append(
            NewEntry(
                enrollment_id=enrollment_id,
                conversion_id=conv.id,
                kind=kind,
                amount_minor=amount,
                currency=conv.currency,
                status=status,
                available_at=available_at,
                decided_at=self.now if status != CommissionStatus.PENDING else None,
                month=rules.month_of(conv.occurred_at),
                reason=extra.pop("reason", self.reason),
                **extra,
            )
        )

    async def flush(self) -> list[NewEntry]:
        for chunk in chunks(self.reversed_ids):
            moved = await Commission.filter(
                id__in=chunk, status__in=UNPAID, payout_item_id__isnull=True
            ).update(status=CommissionStatus.REVERSED, decided_at=self.now)
            if moved != len(chunk):  # gathered into a payout meanwhile: settle again
                raise DomainError(ErrorCode.CONFLICT, None, "entries changed meanwhile: retry")
        if not self.entries:
            return self.entries
        stamps: dict[datetime | None, Any] = {}

        def stamp(at: datetime | None) -> Any:  # many entries share an instant: format once
            if at not in stamps:
                stamps[at] = db.stamp(at)
            return stamps[at]

        rows = [
            [
                self.program.pk, e.enrollment_id, e.conversion_id, e.kind.value, e.amount_minor,
                e.currency, e.status.value, stamp(e.available_at), stamp(e.decided_at), e.month,
                e.reason, e.rule_id, e.rule_version, e.credit_id, e.credited_minor,
                e.earned_minor, stamp(self.now),
            ]
            for e in self.entries
        ]  # fmt: skip
        await db.insert_many("commissions", ("program_id", *_COLUMNS, "created_at"), rows)
        return self.entries


def _hold_until(program: Program, conv: _Conv) -> datetime:
    return conv.occurred_at + timedelta(days=program.hold_days)


def _priced_extra(priced: _Priced) -> dict[str, Any]:
    rule = priced.rule
    return {
        "rule_id": None if rule is None else rule.rule_id,
        "rule_version": None if rule is None else rule.version,
        "credit_id": priced.credit_id,
        "credited_minor": priced.credited,
        "earned_minor": 0 if priced.earned is None else priced.earned.amount_minor,
        "reason": "no commission rule applies"
        if priced.earned is None
        else priced.earned.explanation,
    }


def _settle_priced(writer: _Writer, priced: _Priced, position: _Position | None) -> None:
    """Move a repriced position to what its new credit earns (after the conversion's refunds)."""
    conv = priced.conversion
    earned = 0 if priced.earned is None else priced.earned.amount_minor
    target = rules.position_target(earned, conv.amount, conv.refunded)
    if position is None:
        if target > 0:
            writer.add(conv, priced.enrollment_id, CommissionKind.COMMISSION, target,
                       CommissionStatus.PENDING, _hold_until(writer.program, conv),
                       **_priced_extra(priced))  # fmt: skip
        return
    if position.rejected:
        return
    extra = _priced_extra(priced)
    if target == position.net:
        if position.earned != extra["earned_minor"]:  # worth the same after refunds, but
            # repriced: a zero entry keeps the new earned amount for later refunds
            extra["reason"] = f"repriced, worth unchanged ({extra['reason']})"
            writer.add(conv, priced.enrollment_id, CommissionKind.ADJUSTMENT, 0,
                       CommissionStatus.APPROVED, writer.now, **extra)  # fmt: skip
        return
    unpaid_net = sum(amount for _, amount, _ in position.unpaid)
    if unpaid_net > 0:
        writer.reversed_ids.extend(entry_id for entry_id, _, _ in position.unpaid)
        writer.add(conv, priced.enrollment_id, CommissionKind.REVERSAL, -unpaid_net,
                   CommissionStatus.REVERSED, writer.now, reason="recomputed: "
                   + (writer.reason or "attribution or rules changed"),
                   earned_minor=extra["earned_minor"])  # fmt: skip
        rest = target - position.locked_net
    else:
        rest = target - position.net
    if rest > 0:
        writer.add(conv, priced.enrollment_id, CommissionKind.COMMISSION, rest,
                   CommissionStatus.PENDING, _hold_until(writer.program, conv),
                   **extra)  # fmt: skip
    elif rest < 0:
        extra["reason"] = (
            f"less than already paid: carried into the next payout ({extra['reason']})"
        )
        writer.add(conv, priced.enrollment_id, CommissionKind.ADJUSTMENT, rest,
                   CommissionStatus.APPROVED, writer.now, **extra)  # fmt: skip


def _settle_refund(writer: _Writer, conv: _Conv, enrollment_id: int, position: _Position) -> None:
    """Reverse a position in proportion to what of its conversion is refunded so far."""
    if position.rejected or position.earned is None:
        return
    target = rules.position_target(position.earned, conv.amount, conv.refunded)
    delta = target - position.net
    if delta >= 0:
        return
    reason = f"refund: {conv.refunded} of {conv.amount} refunded, position now worth {target}"
    if position.locked_net:  # paid already: the next payout carries it
        status, available = CommissionStatus.APPROVED, writer.now
    elif target == 0:  # nothing of it was paid and nothing is left: all of it is offset
        writer.reversed_ids.extend(entry_id for entry_id, _, _ in position.unpaid)
        status, available = CommissionStatus.REVERSED, writer.now
    else:
        status = CommissionStatus.APPROVED if position.approved else CommissionStatus.PENDING
        available = max((at for _, _, at in position.unpaid), default=writer.now)
    writer.add(conv, enrollment_id, CommissionKind.REVERSAL, delta, status, available,
               reason=reason)  # fmt: skip


async def reverse_refunds(program: Program, conversion_ids: Sequence[int]) -> list[NewEntry]:
    """Append the REVERSAL entries the conversions' refunds so far call for."""
    await lock(program.pk)
    writer = _Writer(program, utcnow(), None)
    conversions = await _conversions(conversion_ids)
    for (conv_id, enrollment_id), position in (await _positions(conversion_ids)).items():
        _settle_refund(writer, conversions[conv_id], enrollment_id, position)
    return await writer.flush()


# --- pricing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Credit:
    id: int
    conversion_id: int
    enrollment_id: int
    amount: int
    share: Fraction
    touchpoint_ids: tuple[int, ...]


async def _credits(ids: Sequence[int]) -> tuple[list[_Credit], dict[int, int | None]]:
    """The credits of these conversions, and the tier of each credited enrollment."""
    found, tiers = [], {}
    for chunk in chunks(ids):
        rows = await select(
            "SELECT a.id, a.conversion_id, a.enrollment_id, a.amount_minor, a.points, a.total, "
            "a.touchpoints, e.tier_id FROM attribution_credits a JOIN enrollments e ON "
            f"e.id = a.enrollment_id WHERE a.conversion_id IN ({in_list(len(chunk))})",
            chunk,
        )
        for credit_id, conv, enrollment, amount, points, total, touches, tier in rows:
            share = Fraction(int(points), int(total)) if int(total) else Fraction(0)
            explained = json.loads(touches) if isinstance(touches, str) else touches
            ids_ = tuple(int(t[0]) for t in explained or ())
            found.append(_Credit(credit_id, conv, enrollment, amount, share, ids_))
            tiers[enrollment] = tier
    return found, tiers


async def _touch_times(ids: Iterable[int]) -> dict[int, datetime]:
    wanted = sorted(set(ids))
    times: dict[int, datetime] = {}
    for chunk in chunks(wanted):
        rows = await select(
            f"SELECT id, occurred_us FROM touchpoints WHERE id IN ({in_list(len(chunk))})", chunk
        )
        times.update((touch, from_epoch_us(us)) for touch, us in rows)
    return times


async def _first_touches(conversions: Iterable[_Conv]) -> dict[int, datetime]:
    """When each conversion's customer was first touched (by any partner, credited or not),
    if before the conversion: where decay starts. One covering-index read per customer
    (`customer_id, occurred_us, ..., excluded`); conversions without a customer start from
    their credited touchpoints."""
    by_customer: dict[int, list[_Conv]] = defaultdict(list)
    for conv in conversions:
        if conv.customer_id is not None:
            by_customer[conv.customer_id].append(conv)
    first: dict[int, datetime] = {}
    for chunk in chunks(sorted(by_customer)):
        rows = await select(
            "SELECT customer_id, MIN(occurred_us) FROM touchpoints WHERE customer_id IN "
            f"({in_list(len(chunk))}) AND NOT excluded GROUP BY customer_id",
            chunk,
        )
        for customer, us in rows:
            at = from_epoch_us(us)
            first.update((c.id, at) for c in by_customer[customer] if at <= c.occurred_at)
    return first


async def _first_sales(program: Program, customers: Iterable[int]) -> dict[int, datetime]:
    """Each customer's first verified SALE."""
    wanted = sorted(set(customers))
    first: dict[int, datetime] = {}
    for chunk in chunks(wanted):
        rows = await select(
            "SELECT customer_id, MIN(occurred_at) FROM conversions WHERE program_id = {} AND "
            f"customer_id IN ({in_list(len(chunk))}) AND kind = 'SALE' AND verified "
            "GROUP BY customer_id",
            [program.pk, *chunk],
        )
        first.update((customer, instant(at)) for customer, at in rows)
    return first


async def _month_used(
    program: Program, keys: set[tuple[int, int, str]], skip: set[tuple[int, int]]
) -> dict[tuple[int, int, str], int]:
    """What each (enrollment, rule, month) already earned, positions being repriced excluded."""
    used: dict[tuple[int, int, str], int] = defaultdict(int)
    if not keys:
        return used
    enrollments = sorted({k[0] for k in keys})
    rule_ids = sorted({k[1] for k in keys})
    months = sorted({k[2] for k in keys})
    latest: dict[tuple[int, int], tuple[int, int, int, str]] = {}
    for chunk in chunks(enrollments):
        rows = await (
            Commission.filter(
                program_id=program.pk, enrollment_id__in=chunk, rule_id__in=rule_ids,
                month__in=months, earned_minor__isnull=False,
            )
            .exclude(status=CommissionStatus.REJECTED)
            .values_list("id", "conversion_id", "enrollment_id", "rule_id", "month", "earned_minor")
        )  # fmt: skip
        for entry_id, conv, enrollment, rule_id, month, earned in rows:
            key = (conv, enrollment)
            if key in skip or (key in latest and latest[key][0] > entry_id):
                continue
            latest[key] = (entry_id, rule_id, earned, month)
    for (_, enrollment), (_, rule_id, earned, month) in latest.items():
        if (enrollment, rule_id, month) in keys:
            used[(enrollment, rule_id, month)] += earned
    return used


async def _price(
    program: Program, conversion_ids: Sequence[int], rejected: set[tuple[int, int]]
) -> list[_Priced]:
    """Price every credit of these conversions with the rules in force at each conversion
    (`rejected` positions earn nothing, so they use no room under a monthly cap)."""
    conversions = await _conversions(conversion_ids)
    credits, tiers = await _credits(conversion_ids)
    program_rules = [
        terms_of(r) for r in await CommissionRule.filter(program_id=program.pk).order_by("id")
    ]
    touch_times = await _touch_times(t for c in credits for t in c.touchpoint_ids)
    referred = await _first_touches(conversions.values())
    for credit in credits:
        for touch in credit.touchpoint_ids:
            at = touch_times.get(touch)
            if at is not None and (credit.conversion_id not in referred
                                   or at < referred[credit.conversion_id]):  # fmt: skip
                referred[credit.conversion_id] = at
    first_sales = await _first_sales(
        program, (c.customer_id for c in conversions.values() if c.customer_id is not None)
    )
    credits.sort(key=lambda c: (conversions[c.conversion_id].occurred_at, c.conversion_id,
                                c.enrollment_id))  # fmt: skip
    chosen = [
        rules.select_rule(
            program_rules,
            conversions[c.conversion_id].kind,
            c.enrollment_id,
            tiers.get(c.enrollment_id),
            conversions[c.conversion_id].occurred_at,
        )
        for c in credits
    ]
    capped = {
        (c.enrollment_id, r.rule_id, rules.month_of(conversions[c.conversion_id].occurred_at))
        for c, r in zip(credits, chosen, strict=True)
        if r is not None and r.monthly_cap_minor is not None
    }
    used = await _month_used(program, capped, {(c.conversion_id, c.enrollment_id) for c in credits})
    priced = []
    for credit, rule in zip(credits, chosen, strict=True):
        conv = conversions[credit.conversion_id]
        if rule is None:
            priced.append(_Priced(conv, credit.enrollment_id, None, None, credit.id, credit.amount))
            continue
        facts = rules.CreditFacts(
            kind=conv.kind,
            conversion_minor=conv.amount,
            credited_minor=credit.amount,
            share=credit.share,
            occurred_at=conv.occurred_at,
            referred_at=referred.get(conv.id),
            first_sale_at=None if conv.customer_id is None else first_sales.get(conv.customer_id),
        )
        key = (credit.enrollment_id, rule.rule_id, rules.month_of(conv.occurred_at))
        earned = rules.earn(rule, facts, used.get(key, 0))
        if key in capped and (conv.id, credit.enrollment_id) not in rejected:
            used[key] = used.get(key, 0) + earned.amount_minor
        priced.append(_Priced(conv, credit.enrollment_id, earned, rule, credit.id, credit.amount))
    return priced


async def price_conversions(
    program: Program, conversion_ids: Sequence[int], reason: str | None = None
) -> list[NewEntry]:
    """Price the credits of these conversions and settle their positions: COMMISSION entries
    for new ones, corrections for ones priced before (a recompute). Positions of enrollments
    that lost their credit are settled to zero. Referee rewards of double-sided programs are
    recorded on each referred customer's first sale."""
    await lock(program.pk)
    writer = _Writer(program, utcnow(), reason)
    positions = await _positions(conversion_ids)
    rejected = {key for key, position in positions.items() if position.rejected}
    priced = await _price(program, conversion_ids, rejected)
    seen = set()
    for item in priced:
        key = (item.conversion.id, item.enrollment_id)
        seen.add(key)
        _settle_priced(writer, item, positions.get(key))
    gone = [key for key in positions if key not in seen]
    if gone:
        conversions = await _conversions(sorted({conv for conv, _ in gone}))
        for conv_id, enrollment_id in gone:
            nothing = _Priced(conversions[conv_id], enrollment_id, None, None, None, 0)
            _settle_priced(writer, nothing, positions[(conv_id, enrollment_id)])
    await _referee_rewards(writer, priced)
    return await writer.flush()


async def _referee_rewards(writer: _Writer, priced: list[_Priced]) -> None:
    program = writer.program
    if program.referee_reward_kind is None or program.referee_reward_value is None:
        return
    sales: dict[int, _Priced] = {}
    for item in priced:  # the customer's referrer: the enrollment with the largest credit
        conv = item.conversion
        if conv.kind != "SALE" or conv.customer_id is None:
            continue
        best = sales.get(conv.id)
        if best is None or (item.credited, -item.enrollment_id) > (
            best.credited,
            -best.enrollment_id,
        ):
            sales[conv.id] = item
    if not sales:
        return
    customers = sorted(
        {c for c in (item.conversion.customer_id for item in sales.values()) if c is not None}
    )
    rewarded: set[int] = set()
    first: dict[int, tuple[datetime, int]] = {}
    for chunk in chunks(customers):
        rows = await select(
            "SELECT DISTINCT c.customer_id FROM commissions m JOIN conversions c ON "
            "c.id = m.conversion_id WHERE m.program_id = {} AND m.kind = 'REFEREE_REWARD' AND "
            f"c.customer_id IN ({in_list(len(chunk))})",
            [program.pk, *chunk],
        )
        rewarded.update(row[0] for row in rows)
        rows = await select(
            "SELECT customer_id, occurred_at, id FROM conversions WHERE program_id = {} AND "
            f"customer_id IN ({in_list(len(chunk))}) AND kind = 'SALE' AND verified",
            [program.pk, *chunk],
        )
        for customer, at, conv_id in rows:
            key = (instant(at), conv_id)
            if customer not in first or key < first[customer]:
                first[customer] = key
    digits = minor_units(program.currency)
    value = Decimal(program.referee_reward_value)
    for conv_id, item in sorted(sales.items()):
        customer = item.conversion.customer_id
        if (
            customer is None
            or customer in rewarded
            or first.get(customer, (None, -1))[1] != conv_id
        ):
            continue
        rewarded.add(customer)
        cost = rules.referee_reward_minor(
            str(program.referee_reward_kind), value, item.conversion.amount, digits
        )
        if cost > 0:
            offer = f"{program.referee_reward_kind} {program.referee_reward_value}"
            writer.add(item.conversion, item.enrollment_id, CommissionKind.REFEREE_REWARD, cost,
                       CommissionStatus.PAID, writer.now,
                       reason=f"{offer}: {REFEREE_REASON}")  # fmt: skip
