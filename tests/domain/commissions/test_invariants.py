"""Ledger invariants for any sequence of conversions, refunds, approvals, payouts, rejections,
rule edits and recomputes, on a real database.

Each example runs in a fresh program (the database is emptied per test, not per example) with
a LINEAR model, three partners, a double-sided reward, and one program-wide rule per kind
(SALE and LEAD), a percentage or a flat amount. Without caps, what each position earned is
recomputed here independently, from the stored credits and the rule terms the position was
last priced with:

    earned = round_half_even(percentage% x credited)  or  round_half_even(flat x share)
    worth  = round_half_even(earned x (amount - refunded) / amount)   (0 once all refunded)

With caps (per conversion and per enrollment and month), what a position earns depends on the
order positions were priced in; there the sequence ends with a recompute, after which every
position must be worth what `rules.earn` (tested alone in test_rules.py) gives for the current
terms, pricing the credits in time order.
"""

from __future__ import annotations

import itertools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tortoise.expressions import Q

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.attribution.models import AttributionCredit
from domain.commissions import rules, services
from domain.commissions.models import (
    Commission,
    CommissionRule,
    PayoutBatch,
    PayoutItem,
)
from domain.commissions.specs import UNSET, RuleSpec
from domain.errors import DomainError, ErrorCode
from domain.partners import services as partners
from domain.partners.models import Enrollment
from domain.programs import services as programs
from domain.programs.models import AttributionModelKind, Program, RewardKind
from domain.programs.rules import AttributionSettings, RewardOffer
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity, TouchpointSpec
from domain.tracking.models import ConversionKind, TouchpointKind

ADMIN = Actor("admin:invariants@example.com")
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
WORLDS = itertools.count()


@dataclass(frozen=True)
class Terms:
    """A rule's terms: a percentage or a flat amount (euros); caps in cents."""

    percentage: Decimal | None = None
    flat: Decimal | None = None
    cap: int | None = None
    monthly_cap: int | None = None


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def half_even(value: Fraction) -> int:
    """Round half to even (what Python's `round` does with a Fraction)."""
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        return floor + 1
    return floor


percentages = st.sampled_from([Decimal("5"), Decimal("12.5"), Decimal("20"), Decimal("33.3333")])
plain_terms = st.one_of(
    st.builds(Terms, percentage=percentages),
    st.builds(Terms, flat=st.integers(1, 5000).map(cents)),
)
capped_terms = st.builds(
    Terms,
    percentage=percentages,
    cap=st.none() | st.integers(100, 3000),
    monthly_cap=st.none() | st.integers(500, 8000),
) | st.builds(Terms, flat=st.integers(1, 5000).map(cents), monthly_cap=st.integers(500, 8000))
converting = st.tuples(  # kind, amount in cents, the partners touching the customer, day
    st.just("convert"),
    st.sampled_from(["SALE", "SALE", "LEAD"]),
    st.integers(0, 50_000),
    st.lists(st.integers(0, 2), min_size=1, max_size=3),
    st.sampled_from([0, 15, 30, 45, 60]),
)
refunding = st.tuples(st.just("refund"), st.integers(0, 99), st.none() | st.integers(1, 10**6))


def correcting(terms: st.SearchStrategy[Terms], rejecting: bool) -> st.SearchStrategy[Any]:
    return st.one_of(  # refunds listed twice: drawn twice as often
        refunding,
        refunding,
        st.tuples(st.just("reject"), st.integers(0, 99), st.integers(0, 2)) if rejecting
        else refunding,
        st.tuples(st.just("edit"), st.sampled_from(["SALE", "LEAD"]), terms),
        st.tuples(st.just("recompute")),
        st.tuples(st.just("pay")),
    )  # fmt: skip


@st.composite
def rounds(
    draw: st.DrawFn, terms: st.SearchStrategy[Terms], rejecting: bool = True
) -> list[tuple[Any, ...]]:
    """Rounds of conversions, corrections, an approval and a payout (each may be left out),
    flattened into one sequence of operations: every example converts, approves and pays."""
    corrections = correcting(terms, rejecting)
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 3))):
        steps += draw(st.lists(converting, min_size=1, max_size=4))
        steps += draw(st.lists(corrections, max_size=2))
        steps += draw(st.lists(st.tuples(st.just("approve"), st.sampled_from([40, 70, 100])),
                               max_size=1))  # fmt: skip
        steps += draw(st.lists(st.tuples(st.just("payout"), st.sampled_from([0, 300, 3000]),
                                         st.booleans()), max_size=1))  # fmt: skip
        steps += draw(st.lists(corrections, max_size=3))
    return steps


@dataclass
class Conv:
    external_id: str
    id: int
    kind: str
    amount: int
    at: datetime
    touches: list[int]  # enrollment ids, in journey order
    priced_with: Terms
    refunded: int = 0


@dataclass
class Model:
    """What the test knows independently of the ledger."""

    program: Program
    enrollments: list[Enrollment]
    rules: dict[str, CommissionRule]
    terms: dict[str, Terms]
    conversions: list[Conv] = field(default_factory=list)
    rejected: set[tuple[int, int]] = field(default_factory=set)


def rule_spec(chosen: Terms, kind: str | None = None) -> RuleSpec:
    """The spec creating a rule of `kind` with these terms, or (no kind) changing one to them."""
    return RuleSpec(
        conversion_kind=UNSET if kind is None else ConversionKind(kind),
        percentage=chosen.percentage,
        flat_amount=chosen.flat,
        cap_amount=None if chosen.cap is None else cents(chosen.cap),
        monthly_cap_amount=None if chosen.monthly_cap is None else cents(chosen.monthly_cap),
    )


async def fresh_model(sale: Terms, lead: Terms, hold_days: int) -> Model:
    n = next(WORLDS)
    spec = programs.ProgramSpec(
        name=f"Shop {n}",
        currency="EUR",
        destination_url="https://shop.example.com",
        hold_days=hold_days,
        attribution=AttributionSettings(model=AttributionModelKind.LINEAR),
        referee_reward=RewardOffer(RewardKind.FLAT_CREDIT, Decimal("2")),
    )
    program = await programs.create_program(ADMIN, spec)
    enrollments = []
    for k in range(3):
        partner = await partners.create_partner(ADMIN, f"P{k}", f"p{k}-{n}@example.com")
        enrollments.append(await partners.enroll_partner(ADMIN, program.pk, partner.pk))
    found = {}
    for kind, chosen in (("SALE", sale), ("LEAD", lead)):
        found[kind] = await services.create_rule(ADMIN, program.pk, rule_spec(chosen, kind))
    return Model(program, enrollments, found, {"SALE": sale, "LEAD": lead})


async def convert(model: Model, kind: str, amount: int, who: list[int], at: int) -> None:
    n = len(model.conversions)
    customer, when = f"k{n}", day(at)
    touches = [model.enrollments[k].pk for k in who]
    for i, enrollment in enumerate(touches):
        moment = when - timedelta(hours=len(touches) - i)
        spec = TouchpointSpec(kind=TouchpointKind.LEAD, enrollment_id=enrollment,
                              customer_id=customer, occurred_at=moment)  # fmt: skip
        await ingest.record_touchpoint(ADMIN, model.program.pk, spec)
    conversion_spec = ConversionSpec(f"X{n}", ConversionKind(kind), cents(amount), "EUR",
                                     Identity(customer_id=customer), when)  # fmt: skip
    stored = await ingest.record_conversion(ADMIN, model.program.pk, conversion_spec)
    model.conversions.append(
        Conv(f"X{n}", stored.pk, kind, amount, when, touches, model.terms[kind])
    )


async def refund(model: Model, pick: int, requested: int | None) -> None:
    open_ = [c for c in model.conversions if c.refunded < c.amount]
    if not open_:
        return
    conv = open_[pick % len(open_)]
    left = conv.amount - conv.refunded
    value = left if requested is None else 1 + requested % left
    amount = None if requested is None else cents(value)
    await ingest.refund_conversion(ADMIN, model.program.pk, conv.external_id, amount)
    conv.refunded += value


async def reject(model: Model, pick: int, who: int) -> None:
    """Reject the newest unpaid COMMISSION of a position, if it has one; refused (CONFLICT)
    when part of the position is paid or in a payout."""
    if not model.conversions:
        return
    conv = model.conversions[pick % len(model.conversions)]
    enrollment = model.enrollments[who].pk
    newest = (
        await Commission.filter(conversion_id=conv.id, enrollment_id=enrollment,
                                kind="COMMISSION", status__in=("PENDING", "APPROVED"))
        .order_by("-id")
        .first()
    )  # fmt: skip
    if newest is None:
        return
    position = Commission.filter(conversion_id=conv.id, enrollment_id=enrollment).exclude(
        kind="REFEREE_REWARD"
    )
    locked = await position.filter(Q(status="PAID") | Q(payout_item_id__isnull=False)).exists()
    if locked:
        with pytest.raises(DomainError) as refused:
            await services.reject(ADMIN, [newest.pk], "generated")
        assert refused.value.code == ErrorCode.CONFLICT
        return
    await services.reject(ADMIN, [newest.pk], "generated")
    model.rejected.add((conv.id, enrollment))


async def pay_pending(model: Model) -> None:
    pending = PayoutBatch.filter(program_id=model.program.pk, status="PENDING")
    for batch in await pending.order_by("id"):
        await services.mark_payout_paid(ADMIN, batch.pk, f"wire-{batch.pk}")


async def run(model: Model, operation: tuple[Any, ...]) -> None:
    name, *args = operation
    program = model.program.pk
    if name == "convert":
        await convert(model, *args)
    elif name == "refund":
        await refund(model, *args)
    elif name == "approve":
        await services.approve(ADMIN, program, now=day(args[0]))
    elif name == "payout":
        batch = await services.create_payout_batch(ADMIN, program, args[0])
        if batch is not None and args[1]:
            await services.mark_payout_paid(ADMIN, batch.pk, f"wire-{batch.pk}")
    elif name == "pay":
        await pay_pending(model)
    elif name == "reject":
        await reject(model, *args)
    elif name == "edit":
        kind, chosen = args
        await services.update_rule(ADMIN, model.rules[kind].pk, rule_spec(chosen))
        model.terms[kind] = chosen
    else:
        await attribution.recompute(ADMIN, program, None, None)
        for conv in model.conversions:
            conv.priced_with = model.terms[conv.kind]


async def credits_of(conv: Conv) -> list[tuple[int, int, Fraction]]:
    """(enrollment, credited amount, share) of the conversion's stored credits, the shares
    checked against the LINEAR model: the enrollment's touches / all touches."""
    credits = await AttributionCredit.filter(conversion_id=conv.id).order_by("enrollment_id")
    assert [c.enrollment_id for c in credits] == sorted(set(conv.touches))
    found = []
    for credit in credits:
        share = Fraction(int(credit.points), int(credit.total))
        assert share == Fraction(conv.touches.count(credit.enrollment_id), len(conv.touches))
        found.append((credit.enrollment_id, credit.amount_minor, share))
    return found


def after_refunds(earned: int, conv: Conv) -> int:
    if not conv.refunded:
        return earned
    return half_even(Fraction(earned * (conv.amount - conv.refunded), conv.amount))


async def worth_by_terms(model: Model) -> dict[tuple[int, int], int]:
    """What each position is worth by the uncapped terms it was last priced with."""
    expected: dict[tuple[int, int], int] = {}
    for conv in model.conversions:
        rule = conv.priced_with
        for enrollment, credited, share in await credits_of(conv):
            if rule.percentage is not None:
                earned = half_even(Fraction(credited) * Fraction(rule.percentage) / 100)
            else:
                earned = half_even(Fraction(rule.flat or 0) * 100 * share)
            key = (conv.id, enrollment)
            expected[key] = 0 if key in model.rejected else after_refunds(earned, conv)
    return expected


async def worth_by_earn(model: Model) -> dict[tuple[int, int], int]:
    """What each position is worth by `rules.earn` on the current terms, credits priced in
    time order (then by conversion and enrollment), each month's cap counting what the
    enrollment's earlier credits earned before refunds."""
    credits = [(conv, *credit) for conv in model.conversions for credit in await credits_of(conv)]
    credits.sort(key=lambda c: (c[0].at, c[0].id, c[1]))
    used: dict[tuple[int, str, str], int] = defaultdict(int)
    expected: dict[tuple[int, int], int] = {}
    for conv, enrollment, credited, share in credits:
        terms = model.terms[conv.kind]
        rule = rules.RuleTerms(
            rule_id=model.rules[conv.kind].pk, version=1, conversion_kind=conv.kind,
            percentage=terms.percentage, cap_minor=terms.cap, monthly_cap_minor=terms.monthly_cap,
            flat_minor=None if terms.flat is None else int(terms.flat * 100),
        )  # fmt: skip
        facts = rules.CreditFacts(conv.kind, conv.amount, credited, share, conv.at)
        month = (enrollment, conv.kind, f"{conv.at:%Y-%m}")
        earned = rules.earn(rule, facts, used[month]).amount_minor
        used[month] += earned
        expected[(conv.id, enrollment)] = after_refunds(earned, conv)
    return expected


async def check(model: Model, expected: dict[tuple[int, int], int]) -> None:
    rows = await Commission.filter(program_id=model.program.pk).order_by("id")
    assert all(type(e.amount_minor) is int for e in rows)  # (c) integer minor units
    ledger = [e for e in rows if e.kind != "REFEREE_REWARD"]
    # (a) every position sums to what its rule says it is worth
    sums: dict[tuple[int, int], int] = defaultdict(int)
    earned: dict[tuple[int, int], int] = defaultdict(int)
    reversed_: dict[tuple[int, int], int] = defaultdict(int)
    for e in ledger:
        assert e.conversion_id is not None
        key = (e.conversion_id, e.enrollment_id)
        if e.status != "REJECTED":
            sums[key] += e.amount_minor
            earned[key] += e.amount_minor if e.kind == "COMMISSION" else 0
            reversed_[key] -= e.amount_minor if e.kind == "REVERSAL" else 0
    assert {k: v for k, v in sums.items() if v} == {k: v for k, v in expected.items() if v}
    # (d) reversals never exceed what was credited
    assert all(reversed_[key] <= earned[key] for key in reversed_)
    await check_payouts(model, rows)
    # (e) balances are the sums of entries by status
    balances = await services.balances([e.pk for e in model.enrollments])
    for enrollment in model.enrollments:
        by_status: dict[str, int] = defaultdict(int)
        for e in ledger:
            if e.enrollment_id == enrollment.pk:
                by_status[str(e.status)] += e.amount_minor
        found = balances[enrollment.pk]
        got = (found.pending.get("EUR", 0), found.approved.get("EUR", 0), found.paid.get("EUR", 0))
        assert got == (by_status["PENDING"], by_status["APPROVED"], by_status["PAID"])
        assert all(type(v) is int for part in (found.pending, found.approved, found.paid)
                   for v in part.values())  # fmt: skip


async def check_payouts(model: Model, rows: list[Commission]) -> None:
    """(b) an entry is gathered at most once, items are the sums of their entries, and PAID
    entries are exactly the entries of PAID batches (referee rewards are never gathered)."""
    batches = {b.pk: b for b in await PayoutBatch.filter(program_id=model.program.pk)}
    items = {i.pk: i for i in await PayoutItem.filter(batch_id__in=list(batches) or [0])}
    gathered: dict[int, int] = defaultdict(int)
    for e in rows:
        if e.kind == "REFEREE_REWARD":
            assert e.payout_item_id is None
            continue
        if e.payout_item_id is None:
            assert e.status != "PAID", e
            continue
        item = items[e.payout_item_id]
        assert item.enrollment_id == e.enrollment_id
        gathered[item.pk] += e.amount_minor
        paid = batches[item.batch_id].status == "PAID"
        assert e.status == ("PAID" if paid else "APPROVED"), e
    assert all(type(i.amount_minor) is int for i in items.values())
    assert {k: i.amount_minor for k, i in items.items()} == dict(gathered)
    assert all(i.amount_minor > 0 for i in items.values())


EXAMPLES = int(os.environ.get("LEDGER_EXAMPLES", "20"))  # per test; raise it to search longer


@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sale=plain_terms,
    lead=plain_terms,
    hold_days=st.sampled_from([0, 7, 30]),
    steps=rounds(plain_terms),
)
async def test_any_sequence_keeps_the_ledger_consistent(
    sale: Terms, lead: Terms, hold_days: int, steps: list[tuple[Any, ...]]
) -> None:
    model = await fresh_model(sale, lead, hold_days)
    for operation in steps:
        await run(model, operation)
    rows = await Commission.filter(program_id=model.program.pk).values_list("kind", "status")
    for kind, status in set(rows):
        event(f"{kind} {status}")
    await check(model, await worth_by_terms(model))


@settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sale=capped_terms,
    lead=capped_terms,
    hold_days=st.sampled_from([0, 7, 30]),
    steps=rounds(capped_terms, rejecting=False),
)
async def test_with_caps_a_recompute_settles_every_position_to_what_the_rules_earn(
    sale: Terms, lead: Terms, hold_days: int, steps: list[tuple[Any, ...]]
) -> None:
    model = await fresh_model(sale, lead, hold_days)
    for operation in steps:
        await run(model, operation)
    await run(model, ("recompute",))
    rows = await Commission.filter(program_id=model.program.pk).values_list("kind", "status")
    for kind, status in set(rows):
        event(f"{kind} {status}")
    await check(model, await worth_by_earn(model))
