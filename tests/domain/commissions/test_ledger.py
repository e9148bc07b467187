"""The commission ledger over a real database, through the domain's use cases: rules priced
on real conversions, refunds, approvals, rejections, payouts, recomputes, referee rewards,
balances and the audit trail.

Every expected amount is worked by hand in the comment beside it (amounts in euro cents).
Conversions are recorded at fixed instants in the past, so every default hold of 30 days has
ended and `approve` without a cutoff approves everything. The races of a refund with a payout
are ordered with row locks held from another session: PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.audit.models import AuditEntry
from domain.commissions import services
from domain.commissions.models import (
    Commission,
    CommissionRule,
    CommissionRuleVersion,
    PayoutBatch,
    PayoutItem,
)
from domain.commissions.specs import RuleSpec
from domain.errors import DomainError, ErrorCode
from domain.partners import services as partners
from domain.partners.models import Enrollment
from domain.programs import services as programs
from domain.programs.models import AttributionModelKind, Program, RewardKind, Tier
from domain.programs.rules import AttributionSettings, RewardOffer, TierSpec
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity, TouchpointSpec
from domain.tracking.models import Conversion, ConversionKind, TouchpointKind

ADMIN = Actor("admin:ana@example.com")
IS_POSTGRES = os.environ.get("PARTNERGRAPH_TEST_DATABASE_URL", "").startswith("postgres")
T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday in March; "now" is months later
LEDGER_ACTIONS = {
    "createCommissionRule", "updateCommissionRule", "archiveCommissionRule", "recordConversions",
    "refundConversion", "approveCommissions", "rejectCommissions", "createPayoutBatch",
    "markPayoutPaid", "recomputeAttribution",
}  # fmt: skip


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@dataclass
class World:
    """One EUR program; partners A (code ALPHA, tier Gold), B (BETA) and C (GAMMA)."""

    program: Program
    gold: Tier
    a: Enrollment
    b: Enrollment
    c: Enrollment


async def make_world(
    hold_days: int = 30,
    model: AttributionModelKind | None = None,
    reward: RewardOffer | None = None,
) -> World:
    spec = programs.ProgramSpec(
        name="Shop",
        currency="EUR",
        destination_url="https://shop.example.com",
        hold_days=hold_days,
        attribution=None if model is None else AttributionSettings(model=model),
        referee_reward=reward,
    )
    program = await programs.create_program(ADMIN, spec)
    gold = await programs.create_tier(ADMIN, program.pk, TierSpec(name="Gold", rank=2))
    enrolled = []
    for name, code in (("Alpha", "ALPHA"), ("Beta", "BETA"), ("Gamma", "GAMMA")):
        partner = await partners.create_partner(ADMIN, name, f"{code.lower()}@example.com")
        tier = gold.pk if code == "ALPHA" else None
        enrolled.append(await partners.enroll_partner(ADMIN, program.pk, partner.pk, tier, code))
    return World(program, gold, *enrolled)


async def add_rule(world: World, kind: str = "SALE", **terms: Any) -> CommissionRule:
    spec = RuleSpec(conversion_kind=ConversionKind(kind), **terms)
    return await services.create_rule(ADMIN, world.program.pk, spec)


async def convert(
    world: World,
    external_id: str,
    amount: str,
    code: str | None = None,
    customer: str | None = None,
    at: datetime = T0,
    kind: str = "SALE",
) -> Conversion:
    identity = Identity(customer_id=customer, referral_code=code)
    spec = ConversionSpec(external_id, ConversionKind(kind), Decimal(amount), "EUR", identity, at)
    return await ingest.record_conversion(ADMIN, world.program.pk, spec)


async def touch(world: World, who: Enrollment, customer: str, at: datetime) -> None:
    spec = TouchpointSpec(
        kind=TouchpointKind.LEAD, enrollment_id=who.pk, customer_id=customer, occurred_at=at
    )
    await ingest.record_touchpoint(ADMIN, world.program.pk, spec)


async def refund(world: World, external_id: str, amount: str | None = None) -> None:
    value = None if amount is None else Decimal(amount)
    await ingest.refund_conversion(ADMIN, world.program.pk, external_id, value)


async def recompute(world: World) -> None:
    await attribution.recompute(ADMIN, world.program.pk, None, None)


async def entries(
    conversion: Conversion | None = None, enrollment: Enrollment | None = None
) -> list[tuple[str, int, str]]:
    """(kind, amount, status) of the entries, oldest first."""
    query = Commission.all()
    if conversion is not None:
        query = query.filter(conversion_id=conversion.pk)
    if enrollment is not None:
        query = query.filter(enrollment_id=enrollment.pk)
    rows = await query.order_by("id").values_list("kind", "amount_minor", "status")
    return [(str(kind), amount, str(status)) for kind, amount, status in rows]


async def entry(conversion: Conversion, index: int = 0) -> Commission:
    return (await Commission.filter(conversion_id=conversion.pk).order_by("id"))[index]


async def balance(enrollment: Enrollment) -> tuple[int, int, int]:
    """(pending, approved, paid) in EUR."""
    found = (await services.balances([enrollment.pk]))[enrollment.pk]
    return (
        found.pending.get("EUR", 0),
        found.approved.get("EUR", 0),
        found.paid.get("EUR", 0),
    )


async def pay_out(world: World, minimum_minor: int = 0, reference: str = "wire") -> PayoutBatch:
    """Approve what is due, gather it into a batch and mark the batch paid."""
    await services.approve(ADMIN, world.program.pk)
    batch = await services.create_payout_batch(ADMIN, world.program.pk, minimum_minor)
    assert batch is not None
    return await services.mark_payout_paid(ADMIN, batch.pk, reference)


async def items(batch: PayoutBatch) -> list[tuple[int, int]]:
    """(enrollment id, amount) of the batch's items."""
    rows = await PayoutItem.filter(batch_id=batch.pk).order_by("enrollment_id")
    return [(item.enrollment_id, item.amount_minor) for item in rows]


async def actions() -> list[str]:
    return [a for (a,) in await AuditEntry.all().order_by("id").values_list("action")]


# --- pricing --------------------------------------------------------------------------------


async def test_a_percentage_rule_pays_its_share_of_the_credit_rounded_half_even() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("12.5"))
    x1 = await convert(world, "X1", "10.20", code="ALPHA")
    x2 = await convert(world, "X2", "10.60", code="ALPHA")
    x3 = await convert(world, "X3", "100.00", code="BETA")
    assert await entries(x1) == [("COMMISSION", 128, "PENDING")]  # 1020 x 12.5 % = 127.5 -> 128
    assert await entries(x2) == [("COMMISSION", 132, "PENDING")]  # 1060 x 12.5 % = 132.5 -> 132
    assert await entries(x3) == [("COMMISSION", 1250, "PENDING")]  # 10000 x 12.5 % = 1250
    first = await entry(x1)
    assert (first.enrollment_id, first.rule_id, first.rule_version) == (world.a.pk, rule.pk, 1)
    assert (first.credited_minor, first.earned_minor, first.month) == (1020, 128, "2026-03")
    assert first.available_at == day(30)  # the program's default hold of 30 days


async def test_a_flat_rule_pays_its_amount_per_conversion_of_its_kind_only() -> None:
    world = await make_world()
    await add_rule(world, kind="LEAD", flat_amount=Decimal("5.00"))
    lead = await convert(world, "L1", "0", code="ALPHA", kind="LEAD")
    big_lead = await convert(world, "L2", "999.00", code="ALPHA", kind="LEAD")
    sale = await convert(world, "S1", "100.00", code="ALPHA")
    assert await entries(lead) == [("COMMISSION", 500, "PENDING")]
    assert await entries(big_lead) == [("COMMISSION", 500, "PENDING")]
    assert await entries(sale) == []  # no SALE rule: nothing earned, nothing written


async def test_the_most_specific_rule_in_force_at_the_conversion_wins() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"))
    busy = await add_rule(world, percentage=Decimal("12"), priority=5)
    gold = await add_rule(world, percentage=Decimal("15"), tier_id=world.gold.pk)
    own = await add_rule(world, percentage=Decimal("30"), enrollment_id=world.c.pk, priority=-1)
    promo = await add_rule(
        world, percentage=Decimal("50"), priority=9, starts_at=day(10), ends_at=day(20)
    )
    cases = [  # (who, when, rule, earned of 100.00)
        ("BETA", day(0), busy, 1200),  # priority 5 beats the 10 % of priority 0
        ("BETA", day(10), promo, 5000),  # the promotion starts (inclusive)
        ("BETA", day(20), busy, 1200),  # ... and is over at its end (exclusive)
        ("ALPHA", day(10), gold, 1500),  # A's tier beats a program rule of any priority
        ("GAMMA", day(10), own, 3000),  # C's own rule beats the tier and the program
    ]
    for n, (code, at, rule, expected) in enumerate(cases):
        conversion = await convert(world, f"X{n}", "100.00", code=code, at=at)
        assert await entries(conversion) == [("COMMISSION", expected, "PENDING")], n
        assert (await entry(conversion)).rule_id == rule.pk, n


async def test_a_conversion_below_the_minimum_earns_nothing() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"), minimum_amount=Decimal("50.00"))
    below = await convert(world, "X1", "49.99", code="ALPHA")
    at_minimum = await convert(world, "X2", "50.00", code="ALPHA")
    assert await entries(below) == []
    assert await entries(at_minimum) == [("COMMISSION", 500, "PENDING")]  # 5000 x 10 %


async def test_renewals_earn_for_the_recurring_months_after_the_first_sale_then_stop() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"), recurring_months=3)
    first = datetime(2026, 1, 31, 12, tzinfo=UTC)  # 3 months later is April 30 (no April 31)
    sale = await convert(world, "S1", "100.00", code="ALPHA", customer="cust-r", at=first)
    early = datetime(2026, 2, 28, 12, tzinfo=UTC)
    r1 = await convert(world, "R1", "30.00", customer="cust-r", at=early, kind="RENEWAL")
    last = datetime(2026, 4, 30, 11, 59, tzinfo=UTC)
    r2 = await convert(world, "R2", "40.00", customer="cust-r", at=last, kind="RENEWAL")
    over = datetime(2026, 4, 30, 12, tzinfo=UTC)
    r3 = await convert(world, "R3", "50.00", customer="cust-r", at=over, kind="RENEWAL")
    assert await entries(sale) == [("COMMISSION", 1000, "PENDING")]  # 10 % of 10000
    assert await entries(r1) == [("COMMISSION", 300, "PENDING")]  # 10 % of 3000
    assert await entries(r2) == [("COMMISSION", 400, "PENDING")]  # one minute before the end
    assert await entries(r3) == []  # at the end of the 3 months: over
    assert {e.enrollment_id for e in await Commission.all()} == {world.a.pk}


async def test_a_renewal_rule_without_recurring_months_pays_every_renewal() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"), recurring_months=1)
    await add_rule(world, kind="RENEWAL", percentage=Decimal("5"))
    await convert(world, "S1", "100.00", code="ALPHA", customer="cust-r", at=day(0))
    renewal = await convert(world, "R1", "30.00", customer="cust-r", at=day(200), kind="RENEWAL")
    assert await entries(renewal) == [("COMMISSION", 150, "PENDING")]  # 5 % of 3000, forever


async def test_the_reward_halves_every_half_life_since_the_first_touch() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"), half_life_days=10.0)
    await touch(world, world.a, "c1", day(-10))
    await touch(world, world.a, "c2", day(-20))
    await touch(world, world.a, "c2", day(-1))
    await touch(world, world.a, "c3", day(-5))
    x1 = await convert(world, "X1", "100.00", customer="c1")
    x2 = await convert(world, "X2", "100.00", customer="c2")
    x3 = await convert(world, "X3", "100.00", customer="c3")
    x4 = await convert(world, "X4", "100.00", customer="c4", code="ALPHA")
    assert await entries(x1) == [("COMMISSION", 1000, "PENDING")]  # 2000 x 2^-1
    assert await entries(x2) == [("COMMISSION", 500, "PENDING")]  # 2000 x 2^-2: the first touch
    # 2000 x 2^-0.5 = 1414.2135... -> 1414
    assert await entries(x3) == [("COMMISSION", 1414, "PENDING")]
    assert await entries(x4) == [("COMMISSION", 2000, "PENDING")]  # a code at the sale: no time


async def test_decay_counts_from_the_journeys_first_touch_whoever_made_it() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"), half_life_days=10.0)
    await touch(world, world.a, "c1", day(-20))  # the customer's first touch: A's
    await touch(world, world.b, "c1", day(-10))  # the last touch: B is credited
    sale = await convert(world, "X1", "100.00", customer="c1")
    assert (await entry(sale)).enrollment_id == world.b.pk
    assert await entries(sale) == [("COMMISSION", 500, "PENDING")]  # 2000 x 2^-(20/10)


async def test_caps_per_conversion_and_per_enrollment_and_month() -> None:
    world = await make_world()
    await add_rule(
        world,
        percentage=Decimal("10"),
        cap_amount=Decimal("15.00"),
        monthly_cap_amount=Decimal("30.00"),
    )
    march = [
        await convert(world, "A1", "100.00", code="ALPHA", at=day(0)),
        await convert(world, "A2", "300.00", code="ALPHA", at=day(1)),
        await convert(world, "A3", "80.00", code="ALPHA", at=day(2)),
        await convert(world, "A4", "10.00", code="ALPHA", at=day(3)),
    ]
    april = await convert(world, "A5", "100.00", code="ALPHA", at=day(31))
    other = await convert(world, "B1", "100.00", code="BETA", at=day(1))
    assert [await entries(c) for c in march] == [
        [("COMMISSION", 1000, "PENDING")],  # 10 % of 10000; 1000 of the month's 3000 used
        [("COMMISSION", 1500, "PENDING")],  # 3000 capped at 1500; 2500 used
        [("COMMISSION", 500, "PENDING")],  # 800, but only 500 of the month is left
        [],  # the month is used up
    ]
    assert await entries(april) == [("COMMISSION", 1000, "PENDING")]  # April 2: a new month
    assert await entries(other) == [("COMMISSION", 1000, "PENDING")]  # B's own monthly cap


async def test_a_rejected_conversion_does_not_use_the_monthly_cap_after_a_recompute() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"), monthly_cap_amount=Decimal("30.00"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA", at=day(0))  # 2000
    await services.reject(ADMIN, [(await entry(x1)).pk], "fraud")
    x2 = await convert(world, "X2", "100.00", code="ALPHA", at=day(1))  # 2000: X1 earns nothing
    assert await entries(x2) == [("COMMISSION", 2000, "PENDING")]
    await recompute(world)  # nothing changed: X2 still has 3000 of room
    assert await entries(x2) == [("COMMISSION", 2000, "PENDING")]


async def test_a_flat_amount_is_split_between_partners_like_the_credit() -> None:
    world = await make_world(model=AttributionModelKind.LINEAR)
    await add_rule(world, flat_amount=Decimal("10.00"))
    await add_rule(world, kind="LEAD", percentage=Decimal("10"))
    for who, at in ((world.a, day(-3)), (world.b, day(-2)), (world.a, day(-1))):
        await touch(world, who, "cust-s", at)
    sale = await convert(world, "S1", "90.00", customer="cust-s")
    lead = await convert(world, "L1", "90.00", customer="cust-s", kind="LEAD")
    # LINEAR: A has 2 of the 3 touches, B 1: flat 1000 x 2/3 = 666.67 -> 667, x 1/3 -> 333
    rows = await Commission.filter(conversion_id=sale.pk).order_by("enrollment_id")
    assert [(r.enrollment_id, r.amount_minor, r.credited_minor) for r in rows] == [
        (world.a.pk, 667, 6000),
        (world.b.pk, 333, 3000),
    ]
    # a percentage of each credited part: 10 % of 6000 and of 3000
    rows = await Commission.filter(conversion_id=lead.pk).order_by("enrollment_id")
    assert [(r.enrollment_id, r.amount_minor) for r in rows] == [
        (world.a.pk, 600),
        (world.b.pk, 300),
    ]


# --- approvals and rejections ---------------------------------------------------------------


async def test_entries_wait_for_the_programs_hold_days_before_approval() -> None:
    world = await make_world(hold_days=14)
    await add_rule(world, percentage=Decimal("10"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA", at=day(0))
    x2 = await convert(world, "X2", "100.00", code="ALPHA", at=day(10))
    x3 = await convert(world, "X3", "100.00", code="ALPHA", at=day(20))
    firsts = [await entry(x) for x in (x1, x2, x3)]
    assert [e.available_at for e in firsts] == [day(14), day(24), day(34)]
    program = world.program.pk
    assert (await services.approve(ADMIN, program, now=day(13))).count == 0
    cut = await services.approve(ADMIN, program, available_before=day(20), now=day(25))
    assert cut.ids == [firsts[0].pk]  # the earlier of the cutoff and now
    due = await services.approve(ADMIN, program, now=day(25))
    assert due.ids == [firsts[1].pk]  # X3's hold runs until day 34
    chosen = await services.approve(ADMIN, program, ids=[firsts[2].pk], now=day(25))
    assert chosen.ids == [firsts[2].pk]  # an admin's explicit decision, inside the hold
    assert [(await entries(x))[0][2] for x in (x1, x2, x3)] == ["APPROVED"] * 3
    audited = await AuditEntry.filter(action="approveCommissions").order_by("id")
    assert [a.after["commissionIds"] for a in audited if a.after] == [[e.pk] for e in firsts]
    assert {a.actor for a in audited} == {ADMIN.label}


async def test_approving_an_unknown_entry_is_not_found_and_approves_nothing() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    with pytest.raises(DomainError) as refused:
        await services.approve(ADMIN, world.program.pk, ids=[(await entry(x1)).pk, 987654])
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["ids", "1"])
    assert await entries(x1) == [("COMMISSION", 1000, "PENDING")]


async def test_rejecting_a_commission_rejects_its_whole_unpaid_position() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    await refund(world, "X1", "25.00")  # 2000 -> 1500: REVERSAL -500
    changed = await services.reject(ADMIN, [(await entry(x1)).pk], "  self-referral  ")
    assert changed.count == 2
    assert await entries(x1) == [("COMMISSION", 2000, "REJECTED"), ("REVERSAL", -500, "REJECTED")]
    assert {e.reason for e in await Commission.filter(conversion_id=x1.pk)} == {"self-referral"}
    assert await balance(world.a) == (0, 0, 0)
    audited = await AuditEntry.get(action="rejectCommissions")
    assert (audited.reason, audited.entity_type) == ("self-referral", "Program")
    # a rejected position stays rejected: a better rule, a recompute, a refund add nothing
    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("30")))
    await recompute(world)
    await refund(world, "X1")
    assert await entries(x1) == [("COMMISSION", 2000, "REJECTED"), ("REVERSAL", -500, "REJECTED")]


async def test_a_paid_entry_cannot_be_rejected() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    await pay_out(world)
    with pytest.raises(DomainError) as refused:
        await services.reject(ADMIN, [(await entry(x1)).pk], "too late")
    assert refused.value.code == ErrorCode.CONFLICT
    with pytest.raises(DomainError) as refused:
        await services.reject(ADMIN, [(await entry(x1)).pk], "   ")
    assert refused.value.code == ErrorCode.INVALID
    assert await entries(x1) == [("COMMISSION", 2000, "PAID")]
    assert "rejectCommissions" not in await actions()


async def test_the_carried_reversal_of_a_paid_position_cannot_be_rejected() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    await pay_out(world)
    await refund(world, "X1", "50.00")  # 2000 paid, now worth 1000: -1000 carried
    reversal = await entry(x1, 1)
    with pytest.raises(DomainError) as refused:
        await services.reject(ADMIN, [reversal.pk], "waive it")
    assert refused.value.code == ErrorCode.INVALID  # only what pays the partner is rejected
    assert await entries(x1) == [("COMMISSION", 2000, "PAID"), ("REVERSAL", -1000, "APPROVED")]


# --- refunds --------------------------------------------------------------------------------


async def test_refunds_before_payout_reverse_in_proportion_then_in_full() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    commission = await entry(x1)
    await refund(world, "X1", "30.00")  # 2000 x 70/100 = 1400: -600, held like its commission
    reversal = await entry(x1, 1)
    assert (reversal.kind, reversal.amount_minor, reversal.status) == ("REVERSAL", -600, "PENDING")
    assert reversal.available_at == commission.available_at
    await services.approve(ADMIN, world.program.pk)
    await refund(world, "X1", "20.00")  # 2000 x 50/100 = 1000: -400, approved like the rest
    assert await balance(world.a) == (0, 1000, 0)
    await refund(world, "X1")  # all of it: the last -1000 offsets everything
    assert await entries(x1) == [
        ("COMMISSION", 2000, "REVERSED"),
        ("REVERSAL", -600, "REVERSED"),
        ("REVERSAL", -400, "REVERSED"),
        ("REVERSAL", -1000, "REVERSED"),
    ]
    assert await balance(world.a) == (0, 0, 0)
    assert await services.create_payout_batch(ADMIN, world.program.pk, 0) is None
    audited = await AuditEntry.filter(action="refundConversion").order_by("id")
    assert [a.after["reversals"] for a in audited if a.after] == [
        [[world.a.pk, -600]],
        [[world.a.pk, -400]],
        [[world.a.pk, -1000]],
    ]


async def test_partial_refunds_are_computed_from_the_cumulative_refund_and_never_drift() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "10.20", code="ALPHA")  # 20 % of 1020 = 204
    await refund(world, "X1", "3.33")  # 204 x 687/1020 = 137.4 -> 137: -67
    await refund(world, "X1", "3.33")  # 204 x 354/1020 = 70.8 -> 71: -66
    await refund(world, "X1")  # 0: -71
    assert [a for _, a, _ in await entries(x1)] == [204, -67, -66, -71]


async def test_a_refund_after_payout_is_carried_into_the_next_payout() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    await pay_out(world)
    await refund(world, "X1", "40.00")  # 2000 x 60/100 = 1200: -800, the paid entry untouched
    assert await entries(x1) == [("COMMISSION", 2000, "PAID"), ("REVERSAL", -800, "APPROVED")]
    assert await balance(world.a) == (0, -800, 2000)
    assert await services.create_payout_batch(ADMIN, world.program.pk, 0) is None  # -800: wait
    x2 = await convert(world, "X2", "50.00", code="ALPHA")  # 1000
    batch = await pay_out(world)
    assert await items(batch) == [(world.a.pk, 200)]  # 1000 - 800
    assert await entries(x1) == [("COMMISSION", 2000, "PAID"), ("REVERSAL", -800, "PAID")]
    assert await entries(x2) == [("COMMISSION", 1000, "PAID")]
    assert await balance(world.a) == (0, 0, 2200)  # 2000 + 1000 - 800


async def test_a_refund_of_an_entry_in_an_unpaid_batch_leaves_the_batch_alone() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    await services.approve(ADMIN, world.program.pk)
    batch = await services.create_payout_batch(ADMIN, world.program.pk, 0)
    assert batch is not None
    await refund(world, "X1")  # the gathered 2000 is locked: -2000 is carried
    assert await entries(x1) == [("COMMISSION", 2000, "APPROVED"), ("REVERSAL", -2000, "APPROVED")]
    await services.mark_payout_paid(ADMIN, batch.pk, "wire-1")
    assert await items(batch) == [(world.a.pk, 2000)]
    assert await entries(x1) == [("COMMISSION", 2000, "PAID"), ("REVERSAL", -2000, "APPROVED")]


# --- payouts --------------------------------------------------------------------------------


async def test_a_payout_gathers_approved_entries_of_enrollments_reaching_the_minimum() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("20"))
    await convert(world, "C1", "100.00", code="GAMMA", at=day(-40))  # 2000
    await pay_out(world, reference="wire-0")
    await refund(world, "C1")  # C: -2000 carried
    await convert(world, "A1", "100.00", code="ALPHA")  # 2000
    await convert(world, "A2", "25.00", code="ALPHA")  # 500
    await convert(world, "B1", "40.00", code="BETA")  # 800
    await convert(world, "A3", "10.00", code="ALPHA", at=datetime.now(UTC))  # 200, in its hold
    await services.approve(ADMIN, world.program.pk)
    batch = await services.create_payout_batch(ADMIN, world.program.pk, 1000)
    assert batch is not None
    # A: 2500 reaches 1000; B: 800 does not; C: -2000 is below zero; A3 is still PENDING
    assert await items(batch) == [(world.a.pk, 2500)]
    assert (batch.status, batch.currency, batch.minimum_minor) == ("PENDING", "EUR", 1000)
    paid = await services.mark_payout_paid(ADMIN, batch.pk, "  wire-1 ")
    assert (paid.status, paid.reference, paid.paid_at is not None) == ("PAID", "wire-1", True)
    assert await balance(world.a) == (200, 0, 2500)
    assert await balance(world.b) == (0, 800, 0)
    assert await balance(world.c) == (0, -2000, 2000)
    again = await services.mark_payout_paid(ADMIN, batch.pk, "wire-1")  # the same: nothing
    assert again.paid_at == paid.paid_at
    with pytest.raises(DomainError) as refused:
        await services.mark_payout_paid(ADMIN, batch.pk, "wire-2")
    assert refused.value.code == ErrorCode.CONFLICT
    await convert(world, "C2", "150.00", code="GAMMA")  # 3000 for C
    later = await pay_out(world)
    assert await items(later) == [(world.b.pk, 800), (world.c.pk, 1000)]  # C: 3000 - 2000
    assert Counter(await actions())["markPayoutPaid"] == 3


async def test_a_negative_minimum_is_refused() -> None:
    world = await make_world()
    with pytest.raises(DomainError) as refused:
        await services.create_payout_batch(ADMIN, world.program.pk, -1)
    assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["minimumAmount"])
    assert await PayoutBatch.all().count() == 0


async def test_two_admins_paying_out_at_once_never_gather_an_entry_twice() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"))
    codes = ("ALPHA", "BETA", "GAMMA")
    for round_ in range(4):
        for n in range(12):
            await convert(world, f"X{round_}-{n}", f"{10 + n}.00", code=codes[n % 3])
        await services.approve(ADMIN, world.program.pk)
        results = await asyncio.gather(
            services.create_payout_batch(ADMIN, world.program.pk, 0),
            services.create_payout_batch(ADMIN, world.program.pk, 0),
        )
        assert sum(r is not None for r in results) == 1, results  # the other finds nothing
    approved = await Commission.all().values_list("id", "amount_minor", "payout_item_id")
    assert all(item is not None for _, _, item in approved)  # every entry gathered once
    gathered: dict[int, int] = defaultdict(int)
    for _, amount, item in approved:
        gathered[item] += amount
    made = await PayoutItem.all().values_list("id", "amount_minor")
    assert dict(made) == dict(gathered)  # each item is the sum of its own entries
    # 10 % of 10.00 ... 21.00 each round: 100 + 110 + ... + 210 = 1860
    assert sum(amount for _, amount in made) == 4 * 1860
    assert await PayoutBatch.all().count() == 4


async def backends_waiting_on_locks(connection: asyncpg.Connection, count: int) -> None:
    """Wait until `count` other sessions of this database wait for a lock."""
    for _ in range(500):
        await connection.execute("SELECT pg_stat_clear_snapshot()")  # fresh in a transaction
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited for a lock")


async def refund_inside_a_payout(world: World, held: Conversion, refunded: str) -> list[Any]:
    """Run a payout and a refund of `refunded` into each other: another session holds
    `held`'s entry, so the payout stops inside its claim; the refund starts and waits on the
    payout; the hold is let go. Answers both outcomes (results or exceptions)."""
    dsn = os.environ["PARTNERGRAPH_TEST_DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    holder = await asyncpg.connect(dsn)
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute("SELECT id FROM commissions WHERE id = $1 FOR UPDATE",
                             (await entry(held)).pk)  # fmt: skip
        payout = asyncio.create_task(services.create_payout_batch(ADMIN, world.program.pk, 0))
        await backends_waiting_on_locks(holder, 1)
        refunding = asyncio.create_task(refund(world, refunded))
        await backends_waiting_on_locks(holder, 2)
        await hold.rollback()
        return list(await asyncio.gather(payout, refunding, return_exceptions=True))
    finally:
        await holder.close()


POSTGRES_ONLY = pytest.mark.skipif(
    not IS_POSTGRES, reason="row locks: SQLite runs one writer at a time"
)


@POSTGRES_ONLY
async def test_a_refund_racing_a_payout_is_carried_into_the_next_payout() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"))
    await convert(world, "X1", "100.00", code="ALPHA")  # 1000, refunded during the payout
    x2 = await convert(world, "X2", "100.00", code="ALPHA")  # 1000
    await services.approve(ADMIN, world.program.pk)
    results = await refund_inside_a_payout(world, x2, "X1")
    assert [r for r in results if isinstance(r, BaseException)] == []
    gathered = Commission.filter(status="REVERSED", payout_item_id__isnull=False)
    assert await gathered.count() == 0  # a REVERSED entry in a payout would be paid
    for batch in await PayoutBatch.filter(status="PENDING"):
        await services.mark_payout_paid(ADMIN, batch.pk, f"wire-{batch.pk}")
    pending, approved, paid = await balance(world.a)
    assert pending + approved + paid == 1000  # X2 only: what X1 paid is carried back


@POSTGRES_ONLY
async def test_a_refund_racing_a_payout_does_not_deadlock() -> None:
    world = await make_world()
    await add_rule(world, percentage=Decimal("10"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")  # 1000
    await convert(world, "X2", "100.00", code="ALPHA")  # 1000, refunded during the payout
    await services.approve(ADMIN, world.program.pk)
    results = await refund_inside_a_payout(world, x1, "X2")
    assert [type(r).__name__ for r in results if isinstance(r, BaseException)] == []


# --- recompute ------------------------------------------------------------------------------


async def test_an_edited_rule_keeps_its_history_and_a_recompute_settles_positions() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA", at=day(0))  # 2000
    await pay_out(world)
    x2 = await convert(world, "X2", "100.00", code="ALPHA", at=day(1))  # 2000, pending
    x3 = await convert(world, "X3", "100.00", code="BETA", at=day(1))  # 2000
    await services.approve(ADMIN, world.program.pk, ids=[(await entry(x3)).pk])
    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("10")))
    x4 = await convert(world, "X4", "100.00", code="GAMMA", at=day(2))  # new: 1000 by v2
    assert [(await entry(x)).rule_version for x in (x1, x2, x4)] == [1, 1, 2]
    assert await entries(x2) == [("COMMISSION", 2000, "PENDING")]  # kept until a recompute
    versions = await CommissionRuleVersion.filter(rule_id=rule.pk).order_by("version")
    terms = [(v.version, Decimal(v.terms["percentage"])) for v in versions]
    assert terms == [(1, Decimal(20)), (2, Decimal(10))]

    await recompute(world)
    # paid 2000, now worth 1000: the paid entry stays, -1000 is carried
    assert await entries(x1) == [("COMMISSION", 2000, "PAID"), ("ADJUSTMENT", -1000, "APPROVED")]
    for unpaid, status in ((x2, "PENDING"), (x3, "APPROVED")):  # reversed and credited again
        assert await entries(unpaid) == [
            ("COMMISSION", 2000, "REVERSED"),
            ("REVERSAL", -2000, "REVERSED"),
            ("COMMISSION", 1000, "PENDING"),
        ], status
        assert (await entry(unpaid, 2)).rule_version == 2
    assert await entries(x4) == [("COMMISSION", 1000, "PENDING")]  # already right
    assert await balance(world.a) == (1000, -1000, 2000)

    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("30")))
    await recompute(world)
    # X1 is worth 3000: 2000 paid - 1000 carried = 1000, so 2000 more is due
    assert (await entries(x1))[2:] == [("COMMISSION", 2000, "PENDING")]
    assert (await entries(x2))[3:] == [
        ("REVERSAL", -1000, "REVERSED"),
        ("COMMISSION", 3000, "PENDING"),
    ]
    assert await balance(world.a) == (5000, -1000, 2000)  # 2 x 3000 in all
    before = await Commission.all().count()
    await recompute(world)
    assert await Commission.all().count() == before  # nothing changed: nothing appended
    assert Counter(await actions())["updateCommissionRule"] == 2


async def test_a_recompute_after_a_partial_refund_keeps_the_refund() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("20"))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")  # 2000
    await refund(world, "X1", "25.00")  # 1500: -500
    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("10")))
    await recompute(world)
    # now worth 1000 x 75/100 = 750: the unpaid 1500 is reversed, 750 credited
    assert await entries(x1) == [
        ("COMMISSION", 2000, "REVERSED"),
        ("REVERSAL", -500, "REVERSED"),
        ("REVERSAL", -1500, "REVERSED"),
        ("COMMISSION", 750, "PENDING"),
    ]
    await refund(world, "X1")
    assert (await entries(x1))[4:] == [("REVERSAL", -750, "REVERSED")]
    assert await balance(world.a) == (0, 0, 0)


async def test_a_later_refund_uses_what_the_recomputed_rule_earns() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("10.005"))
    x1 = await convert(world, "X1", "200.00", code="ALPHA")  # 20000 x 10.005 % = 2001
    await refund(world, "X1", "100.00")  # 2001 / 2 = 1000.5 -> 1000: -1001
    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("10")))
    await recompute(world)  # earns 2000 now, 2000 / 2 = 1000: still worth 1000, nothing to add
    assert sum(a for _, a, _ in await entries(x1)) == 1000
    await refund(world, "X1", "39.97")  # 6003 of 20000 kept: 2000 x 0.30015 = 600.3 -> 600
    assert sum(a for _, a, _ in await entries(x1)) == 600  # not 2001 x 0.30015 = 600.6 -> 601


async def test_archiving_a_rule_stops_new_pricing_but_a_recompute_keeps_what_it_priced() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("10"))
    x1 = await convert(world, "X1", "200.00", code="ALPHA")  # 2000
    await pay_out(world)
    x2 = await convert(world, "X2", "200.00", code="ALPHA")  # 2000, pending
    await services.archive_rule(ADMIN, rule.pk)  # it ends now
    late = await convert(world, "X3", "200.00", code="ALPHA")  # happened before the end: 2000
    after = await convert(world, "X4", "200.00", code="ALPHA", at=datetime.now(UTC))  # nothing
    await recompute(world)  # e.g. after a change of the attribution model
    assert await entries(after) == []
    assert await entries(late) == [("COMMISSION", 2000, "PENDING")]
    assert await entries(x1) == [("COMMISSION", 2000, "PAID")]
    assert await entries(x2) == [("COMMISSION", 2000, "PENDING")]


# --- double-sided programs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (RewardOffer(RewardKind.FLAT_CREDIT, Decimal("5")), 500),  # 5.00 EUR
        (RewardOffer(RewardKind.PERCENT_DISCOUNT, Decimal("15")), 1200),  # 15 % of 8000
    ],
)
async def test_the_referee_reward_is_a_program_cost_on_the_first_sale_only(
    offer: RewardOffer, expected: int
) -> None:
    world = await make_world(reward=offer)
    await add_rule(world, percentage=Decimal("10"))
    lead = await convert(world, "L1", "0", code="ALPHA", customer="cust-1", at=day(-1), kind="LEAD")
    first = await convert(world, "S1", "80.00", customer="cust-1", at=day(0))
    second = await convert(world, "S2", "60.00", customer="cust-1", at=day(1))
    anonymous = await convert(world, "S3", "80.00", code="BETA", at=day(1))
    assert await entries(lead) == []
    assert await entries(first) == [
        ("COMMISSION", 800, "PENDING"),
        ("REFEREE_REWARD", expected, "PAID"),
    ]
    assert (await entry(first, 1)).enrollment_id == world.a.pk
    assert await entries(second) == [("COMMISSION", 600, "PENDING")]
    assert await entries(anonymous) == [("COMMISSION", 800, "PENDING")]
    await recompute(world)
    assert await Commission.filter(kind="REFEREE_REWARD").count() == 1
    assert await balance(world.a) == (1400, 0, 0)  # the reward is not the partner's
    batch = await pay_out(world)
    assert await items(batch) == [(world.a.pk, 1400), (world.b.pk, 800)]
    reward = await entry(first, 1)
    assert reward.payout_item_id is None
    with pytest.raises(DomainError) as refused:
        await services.reject(ADMIN, [reward.pk], "no")
    assert refused.value.code == ErrorCode.INVALID


# --- balances and audit ---------------------------------------------------------------------


async def test_a_balance_is_the_sum_of_its_entries_by_status() -> None:
    world = await make_world(reward=RewardOffer(RewardKind.FLAT_CREDIT, Decimal("5")))
    await add_rule(world, percentage=Decimal("10"))
    await convert(world, "X1", "100.00", code="ALPHA", customer="k1", at=day(-40))  # 1000
    await pay_out(world)
    await refund(world, "X1", "10.00")  # -100, carried
    await convert(world, "X2", "50.00", code="ALPHA", at=day(-1))  # 500
    await services.approve(ADMIN, world.program.pk)
    x3 = await convert(world, "X3", "30.00", code="ALPHA", at=day(0))  # 300
    x4 = await convert(world, "X4", "70.00", code="ALPHA", at=day(0))  # 700, rejected
    await services.reject(ADMIN, [(await entry(x4)).pk], "duplicate order")
    await services.approve(ADMIN, world.program.pk, ids=[(await entry(x3)).pk])
    await convert(world, "X5", "20.00", code="ALPHA", at=datetime.now(UTC))  # 200
    await refund(world, "X5", "5.00")  # 200 x 15/20 = 150: -50, pending
    # pending: X5 150; approved: X2 500 + X3 300 - X1's carried 100; paid: X1 1000
    assert await balance(world.a) == (150, 700, 1000)
    sums: dict[str, int] = defaultdict(int)
    for kind, amount, status in await entries(enrollment=world.a):
        if kind != "REFEREE_REWARD":
            sums[status] += amount
    assert (sums["PENDING"], sums["APPROVED"], sums["PAID"]) == await balance(world.a)
    assert sums["REJECTED"] == 700


async def test_every_rule_change_and_ledger_movement_is_audited() -> None:
    world = await make_world()
    rule = await add_rule(world, percentage=Decimal("20"))
    await services.update_rule(ADMIN, rule.pk, RuleSpec(percentage=Decimal("10")))
    x1 = await convert(world, "X1", "100.00", code="ALPHA")
    x2 = await convert(world, "X2", "100.00", code="BETA")
    await services.reject(ADMIN, [(await entry(x2)).pk], "fraud")
    await pay_out(world, reference="wire-7")
    await refund(world, "X1", "50.00")
    await recompute(world)
    await services.archive_rule(ADMIN, rule.pk)
    ledger_actions = [a for a in await actions() if a in LEDGER_ACTIONS]
    assert ledger_actions == [
        "createCommissionRule",
        "updateCommissionRule",
        "recordConversions",
        "recordConversions",
        "rejectCommissions",
        "approveCommissions",
        "createPayoutBatch",
        "markPayoutPaid",
        "refundConversion",
        "recomputeAttribution",
        "archiveCommissionRule",
    ]
    audited = {a.action: a for a in await AuditEntry.all()}
    assert {a.actor for a in audited.values()} == {ADMIN.label}
    update = audited["updateCommissionRule"]
    assert Decimal((update.before or {})["percentage"]) == 20
    assert Decimal((update.after or {})["percentage"]) == 10
    assert (update.after or {})["version"] == 2
    assert audited["rejectCommissions"].reason == "fraud"
    assert (audited["approveCommissions"].after or {})["commissionIds"] == [(await entry(x1)).pk]
    batch = audited["createPayoutBatch"].after or {}
    assert (batch["items"], batch["entries"], batch["total"]) == (1, 1, 1000)
    assert (audited["markPayoutPaid"].after or {})["reference"] == "wire-7"
    assert (audited["refundConversion"].after or {})["reversals"] == [[world.a.pk, -500]]
    assert (audited["recordConversions"].after or {})["ledgerEntries"] == 1
    assert (audited["recomputeAttribution"].after or {})["ledgerEntries"] == 0
