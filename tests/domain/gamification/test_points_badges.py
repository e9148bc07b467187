"""Points, badges and milestones over a real database, through the domain's use cases: point
rules priced on real conversions, refunds taking points back in proportion, recomputes
settling by appending, badges awarded once when a metric crosses its threshold (within a
period, at every multiple for a milestone), an award's points, bonus and event, and two
ingestions at once never awarding twice.

Every expected number is worked by hand in the comment beside it (amounts in EUR).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.audit.models import AuditEntry
from domain.clock import utcnow
from domain.commissions.models import Commission
from domain.errors import DomainError, DomainErrors, ErrorCode
from domain.events.models import Event
from domain.gamification import awards, badges, points
from domain.gamification.criteria import BadgeSpec, PointTerms
from domain.gamification.models import Badge, BadgeAward, BadgeMetric, PointEntry, PointRule
from domain.partners import services as partners
from domain.partners.models import Enrollment
from domain.programs import services as programs
from domain.programs.models import AttributionModelKind, Program
from domain.programs.rules import AttributionSettings
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity, TouchpointSpec
from domain.tracking.models import ConversionKind, TouchpointKind

ADMIN = Actor("admin:ana@example.com")
DATABASE_URL = os.environ.get("PARTNERGRAPH_TEST_DATABASE_URL", "")
IS_POSTGRES = DATABASE_URL.startswith("postgres")
SALE, LEAD = ConversionKind.SALE, ConversionKind.LEAD


@dataclass
class World:
    """One EUR program (30 days' hold); partners A (code ALPHA) and B (BETA)."""

    program: Program
    a: Enrollment
    b: Enrollment


async def make_world(model: AttributionModelKind | None = None) -> World:
    spec = programs.ProgramSpec(
        name="Shop",
        currency="EUR",
        destination_url="https://shop.example.com",
        attribution=None if model is None else AttributionSettings(model=model),
    )
    program = await programs.create_program(ADMIN, spec)
    enrolled = []
    for name, code in (("Alpha", "ALPHA"), ("Beta", "BETA")):
        partner = await partners.create_partner(ADMIN, name, f"{code.lower()}@example.com")
        enrolled.append(await partners.enroll_partner(ADMIN, program.pk, partner.pk, None, code))
    return World(program, *enrolled)


async def set_rules(world: World, *rules: PointTerms) -> None:
    await points.set_point_rules(ADMIN, world.program.pk, list(rules))


async def convert(
    world: World,
    external_id: str,
    amount: str,
    code: str | None = "ALPHA",
    customer: str | None = None,
    at: datetime | None = None,
    kind: ConversionKind = SALE,
) -> None:
    identity = Identity(customer_id=customer, referral_code=code)
    spec = ConversionSpec(external_id, kind, Decimal(amount), "EUR", identity, at)
    await ingest.record_conversion(ADMIN, world.program.pk, spec)


async def touch(world: World, who: Enrollment, customer: str, at: datetime) -> None:
    spec = TouchpointSpec(
        kind=TouchpointKind.LEAD, enrollment_id=who.pk, customer_id=customer, occurred_at=at
    )
    await ingest.record_touchpoint(ADMIN, world.program.pk, spec)


async def shared_sale(world: World, external_id: str, amount: str) -> None:
    """A sale of a customer both A and B touched: LINEAR splits it in halves."""
    customer = f"cust-{external_id}"
    start = utcnow() - timedelta(days=2)
    await touch(world, world.a, customer, start)
    await touch(world, world.b, customer, start + timedelta(hours=1))
    await convert(world, external_id, amount, code=None, customer=customer)


async def refund(world: World, external_id: str, amount: str | None = None) -> None:
    value = None if amount is None else Decimal(amount)
    await ingest.refund_conversion(ADMIN, world.program.pk, external_id, value)


async def ledger(enrollment: Enrollment) -> list[tuple[str, int]]:
    """(kind, points) of the enrollment's entries, oldest first."""
    rows = (
        await PointEntry.filter(enrollment_id=enrollment.pk)
        .order_by("id")
        .values_list("kind", "points")
    )
    return [(str(kind), int(value)) for kind, value in rows]


async def total(enrollment: Enrollment) -> int:
    return (await points.points_of([enrollment.pk]))[enrollment.pk]


async def badge(
    world: World, code: str, metric: BadgeMetric, threshold: str, **more: object
) -> Badge:
    spec = BadgeSpec(code, code.title(), metric, Decimal(threshold), **more)  # type: ignore[arg-type]
    return await badges.create_badge(ADMIN, world.program.pk, spec)


async def held(enrollment: Enrollment) -> list[tuple[str, int]]:
    """(badge code, sequence) of the enrollment's awards, in the order they were made."""
    rows = (
        await BadgeAward.filter(enrollment_id=enrollment.pk)
        .order_by("id")
        .values_list("badge__code", "sequence")
    )
    return [(str(code), int(sequence)) for code, sequence in rows]


# --- point rules ----------------------------------------------------------------------------


async def test_set_point_rules_replaces_every_rule_and_is_audited() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 10, 1), PointTerms(LEAD, 5, 0))
    await set_rules(world, PointTerms(SALE, 20, 2))
    rows = await PointRule.filter(program_id=world.program.pk).values_list(
        "conversion_kind", "points_per_conversion", "points_per_unit"
    )
    assert [(str(k), c, u) for k, c, u in rows] == [("SALE", 20, 2)]
    entry = await AuditEntry.filter(action="setPointRules").order_by("-id").first()
    assert entry is not None
    assert entry.actor == ADMIN.label
    assert entry.before == {
        "rules": [
            {"conversionKind": "LEAD", "pointsPerConversion": 5, "pointsPerUnit": 0},
            {"conversionKind": "SALE", "pointsPerConversion": 10, "pointsPerUnit": 1},
        ]
    }
    assert entry.after == {
        "rules": [{"conversionKind": "SALE", "pointsPerConversion": 20, "pointsPerUnit": 2}]
    }


async def test_refused_point_rules_change_nothing() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 10, 1))
    with pytest.raises(DomainErrors) as refused:
        await set_rules(
            world, PointTerms(SALE, -1, 0), PointTerms(SALE, 1, 1_000_001), PointTerms(LEAD, 1, 1)
        )
    assert [(e.code, e.field) for e in refused.value.errors] == [
        (ErrorCode.INVALID, ["rules", "0", "pointsPerConversion"]),
        (ErrorCode.INVALID, ["rules", "1", "conversionKind"]),
        (ErrorCode.INVALID, ["rules", "1", "pointsPerUnit"]),
    ]
    assert await PointRule.filter(program_id=world.program.pk).count() == 1
    with pytest.raises(DomainError) as many:
        await set_rules(world, *(PointTerms(kind) for kind in [*ConversionKind, SALE]))
    assert (many.value.code, many.value.field) == (ErrorCode.LIMIT_EXCEEDED, ["rules"])
    with pytest.raises(DomainError) as missing:
        await points.set_point_rules(ADMIN, world.program.pk + 1000, [])
    assert missing.value.code == ErrorCode.NOT_FOUND


# --- points of credits ----------------------------------------------------------------------


async def test_a_credit_earns_its_share_of_the_per_conversion_points_plus_whole_units() -> None:
    world = await make_world(AttributionModelKind.LINEAR)
    await set_rules(world, PointTerms(SALE, 7, 2))
    # 41.00 split in halves: 20.50 each. 0.5 x 7 + 2 x 20 units = 3.5 + 40 = 43.5 -> 44 (even)
    await shared_sale(world, "S1", "41.00")
    assert await ledger(world.a) == [("CONVERSION", 44)]
    assert await ledger(world.b) == [("CONVERSION", 44)]
    await set_rules(world, PointTerms(SALE, 5, 1))
    # 40.98 split: 20.49 each. 0.5 x 5 + 1 x 20 = 22.5 -> 22 (half-even rounds to even)
    await shared_sale(world, "S2", "40.98")
    assert await ledger(world.a) == [("CONVERSION", 44), ("CONVERSION", 22)]
    assert await total(world.b) == 66


async def test_a_kind_without_a_rule_earns_no_points() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 10, 1))
    await convert(world, "L1", "0", kind=LEAD)
    assert await ledger(world.a) == []
    await convert(world, "S1", "9.99")  # 10 + 9 units
    assert await ledger(world.a) == [("CONVERSION", 19)]
    entry = await PointEntry.get(enrollment_id=world.a.pk)
    assert entry.reason == "SALE: share 1 x 10 per conversion + 9 units x 1 per unit = 19"


async def test_a_refund_takes_points_back_in_proportion_cumulatively() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 10, 1))
    await convert(world, "S1", "100.00")  # 10 + 100 = 110
    await refund(world, "S1", "25.00")  # worth 110 x 75/100 = 82.5 -> 82: -28
    await refund(world, "S1", "25.00")  # worth 110 x 50/100 = 55: -27
    await refund(world, "S1", "10.00")  # worth 110 x 40/100 = 44: -11
    assert await ledger(world.a) == [
        ("CONVERSION", 110), ("REVERSAL", -28), ("REVERSAL", -27), ("REVERSAL", -11)
    ]  # fmt: skip
    await refund(world, "S1")  # the rest: worth 0
    assert await ledger(world.a) == [
        ("CONVERSION", 110), ("REVERSAL", -28), ("REVERSAL", -27), ("REVERSAL", -11),
        ("REVERSAL", -44),
    ]  # fmt: skip
    assert await total(world.a) == 0


async def test_a_recompute_settles_points_by_appending_the_differences() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 10, 1))
    customer = "cust-1"
    start = utcnow() - timedelta(days=2)
    await touch(world, world.a, customer, start)
    await touch(world, world.b, customer, start + timedelta(hours=1))
    await convert(world, "S1", "100.00", code=None, customer=customer)  # LAST_TOUCH: B, 110
    await refund(world, "S1", "50.00")  # B worth 55: -55
    assert await ledger(world.b) == [("CONVERSION", 110), ("REVERSAL", -55)]
    await programs.update_program(
        ADMIN,
        world.program.pk,
        programs.ProgramSpec(attribution=AttributionSettings(model=AttributionModelKind.LINEAR)),
    )
    await attribution.recompute(ADMIN, world.program.pk, None, None)
    # LINEAR: each earns 0.5 x 10 + 50 = 55, worth 55 x 50/100 = 27.5 -> 28 after the refund.
    # B: earned 110 -> 55 (CONVERSION -55); taken should be 28 - 55 = -27, was -55: +28.
    assert await ledger(world.b) == [
        ("CONVERSION", 110), ("REVERSAL", -55), ("CONVERSION", -55), ("REVERSAL", 28)
    ]  # fmt: skip
    assert await ledger(world.a) == [("CONVERSION", 55), ("REVERSAL", -27)]
    assert (await total(world.a), await total(world.b)) == (28, 28)
    await attribution.recompute(ADMIN, world.program.pk, None, None)  # nothing changed
    assert await PointEntry.all().count() == 6


# --- badges ---------------------------------------------------------------------------------


async def test_a_badge_is_awarded_once_when_its_threshold_is_crossed() -> None:
    world = await make_world()
    await badge(world, "three-sales", BadgeMetric.CONVERSIONS, "3")
    await convert(world, "S1", "10.00")
    await convert(world, "S2", "10.00")
    assert await held(world.a) == []  # 2 of 3
    await convert(world, "S3", "10.00")
    assert await held(world.a) == [("three-sales", 1)]
    await convert(world, "S4", "10.00")
    assert await held(world.a) == [("three-sales", 1)]  # one-off
    assert await held(world.b) == []
    assert (await badges.holders([(await Badge.get()).pk])) == {(await Badge.get()).pk: 1}


async def test_revenue_counts_currency_units_less_refunds() -> None:
    world = await make_world()
    await badge(world, "hundred", BadgeMetric.REVENUE, "100")
    await convert(world, "S1", "60.00")
    await convert(world, "S2", "40.00")  # 60 + 40: reached
    assert await held(world.a) == [("hundred", 1)]
    world2 = await make_world_b()
    await badge(world2, "hundred", BadgeMetric.REVENUE, "100")
    await convert(world2, "T1", "99.99", code="DELTA")
    await refund(world2, "T1", "0.99")  # 99.00 left
    await convert(world2, "T2", "0.99", code="DELTA")  # 99.99: still below
    assert await held(world2.a) == []
    await convert(world2, "T3", "0.01", code="DELTA")  # 100.00
    assert await held(world2.a) == [("hundred", 1)]


async def make_world_b() -> World:
    """A second program (so badge codes may repeat); partner C (DELTA) and D (EPSILON)."""
    program = await programs.create_program(
        ADMIN,
        programs.ProgramSpec(name="Two", currency="EUR", destination_url="https://two.example"),
    )
    enrolled = []
    for name, code in (("Delta", "DELTA"), ("Epsilon", "EPSILON")):
        partner = await partners.create_partner(ADMIN, name, f"{code.lower()}@example.com")
        enrolled.append(await partners.enroll_partner(ADMIN, program.pk, partner.pk, None, code))
    return World(program, *enrolled)


async def test_a_period_counts_only_the_trailing_days() -> None:
    world = await make_world()
    await badge(world, "busy-month", BadgeMetric.LEADS, "2", period_days=30)
    now = utcnow()
    await convert(world, "L1", "0", kind=LEAD, at=now - timedelta(days=40))
    await convert(world, "L2", "0", kind=LEAD, at=now - timedelta(days=1))
    assert await held(world.a) == []  # 2 leads, one of them in the last 30 days
    await convert(world, "S1", "10.00")  # a sale is no lead
    assert await held(world.a) == []
    await convert(world, "L3", "0", kind=LEAD)
    assert await held(world.a) == [("busy-month", 1)]


async def test_a_milestone_is_awarded_at_every_multiple_of_its_threshold() -> None:
    world = await make_world()
    await badge(world, "every-2", BadgeMetric.REFERRED_CUSTOMERS, "2", repeating=True)
    await convert(world, "S1", "10.00", customer="c1")
    await convert(world, "S2", "10.00", customer="c1")  # the same customer: still 1
    assert await held(world.a) == []
    await convert(world, "S3", "10.00", customer="c2")  # 2
    assert await held(world.a) == [("every-2", 1)]
    await convert(world, "S4", "10.00", customer="c3")  # 3
    assert await held(world.a) == [("every-2", 1)]
    items = [
        ConversionSpec(f"B{n}", SALE, Decimal("5.00"), "EUR",
                       Identity(customer_id=f"d{n}", referral_code="ALPHA"))
        for n in range(5)
    ]  # fmt: skip
    outcome = await ingest.record_conversions(ADMIN, [(world.program.pk, i) for i in items])
    assert outcome.errors == []
    # 3 + 5 = 8 customers: multiples 2, 3 and 4 reached in one batch
    assert await held(world.a) == [("every-2", 1), ("every-2", 2), ("every-2", 3), ("every-2", 4)]


async def test_an_active_months_streak_counts_months_in_a_row_up_to_now() -> None:
    world = await make_world()
    await badge(world, "quarter", BadgeMetric.ACTIVE_MONTHS_STREAK, "3")
    now = utcnow()
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    one_back = (first - timedelta(days=1)).replace(day=1)
    two_back = (one_back - timedelta(days=1)).replace(day=1)
    three_back = (two_back - timedelta(days=1)).replace(day=1)
    await convert(world, "S1", "10.00", at=three_back + timedelta(hours=1))
    await convert(world, "S2", "10.00", at=one_back + timedelta(hours=1))
    await convert(world, "S3", "10.00", at=min(now, first + timedelta(hours=1)))
    assert await held(world.a) == []  # a gap two months back: a streak of 2
    await convert(world, "S4", "10.00", at=two_back + timedelta(hours=1))
    assert await held(world.a) == [("quarter", 1)]  # 4 months in a row


async def test_an_award_carries_its_points_bonus_and_event() -> None:
    world = await make_world()
    cup = await badge(world, "first-sale", BadgeMetric.CONVERSIONS, "1", points=50,
                      bonus_amount=Decimal("25.00"))  # fmt: skip
    await convert(world, "S1", "10.00")
    award = await BadgeAward.get(enrollment_id=world.a.pk)
    assert (award.badge_id, award.sequence, award.value) == (cup.pk, 1, "1")
    entry = await PointEntry.get(enrollment_id=world.a.pk)
    assert (str(entry.kind), entry.points, entry.award_id, entry.conversion_id) == (
        "BADGE", 50, award.pk, None
    )  # fmt: skip
    bonus = await Commission.get(enrollment_id=world.a.pk, kind="BONUS")
    assert (bonus.amount_minor, bonus.currency, str(bonus.status), bonus.conversion_id) == (
        2500, "EUR", "PENDING", None
    )  # fmt: skip
    assert bonus.available_at == award.awarded_at + timedelta(days=30)  # the hold
    assert "first-sale" in (bonus.reason or "")
    event = await Event.get(type="badge.awarded")
    assert (event.program_id, event.enrollment_id, event.partner_id) == (
        world.program.pk, world.a.pk, world.a.partner_id
    )  # fmt: skip
    assert event.data == {
        "awardId": award.pk,
        "badgeId": cup.pk,
        "badgeCode": "first-sale",
        "badgeName": "First-Sale",
        "enrollmentId": world.a.pk,
        "sequence": 1,
        "value": "1",
        "awardedAt": award.awarded_at.astimezone(UTC).isoformat(),
        "points": 50,
        "bonusAmount": {"amount": "25.00", "currency": "EUR"},
    }


async def test_badge_points_can_reach_a_points_badge_in_the_same_event() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 40, 0))
    await badge(world, "first", BadgeMetric.CONVERSIONS, "1", points=60)
    await badge(world, "hundred-points", BadgeMetric.POINTS, "100", points=5)
    await badge(world, "hundred-five", BadgeMetric.POINTS, "105")
    await convert(world, "S1", "10.00")  # 40 points, "first" adds 60: 100, then 5 more: 105
    assert await held(world.a) == [("first", 1), ("hundred-points", 1), ("hundred-five", 1)]
    assert await ledger(world.a) == [("CONVERSION", 40), ("BADGE", 60), ("BADGE", 5)]
    assert await Event.filter(type="badge.awarded").count() == 3


async def test_a_refund_takes_points_back_but_not_awards() -> None:
    world = await make_world()
    await set_rules(world, PointTerms(SALE, 0, 1))
    await badge(world, "hundred-points", BadgeMetric.POINTS, "100")
    await convert(world, "S1", "100.00")  # 100 points
    assert await held(world.a) == [("hundred-points", 1)]
    await refund(world, "S1")
    assert await total(world.a) == 0
    assert await held(world.a) == [("hundred-points", 1)]


async def test_a_badge_made_after_the_threshold_was_passed_comes_with_the_next_event() -> None:
    world = await make_world()
    await convert(world, "S1", "10.00")
    await convert(world, "S2", "10.00")
    await badge(world, "two", BadgeMetric.CONVERSIONS, "2")
    assert await held(world.a) == []
    await convert(world, "S3", "10.00")
    assert await held(world.a) == [("two", 1)]


async def test_refused_badges_are_not_created() -> None:
    world = await make_world()
    await badge(world, "taken", BadgeMetric.CLICKS, "10")
    with pytest.raises(DomainError) as taken:
        await badge(world, "taken", BadgeMetric.LEADS, "1")
    assert (taken.value.code, taken.value.field) == (ErrorCode.CONFLICT, ["code"])
    with pytest.raises(DomainErrors) as refused:
        await badge(world, "bad code!", BadgeMetric.CONVERSIONS, "2.5", image_url="http://x.example/a.png",
                    period_days=0, points=-1, bonus_amount=Decimal("0.001"))  # fmt: skip
    assert [e.field for e in refused.value.errors] == [
        ["code"], ["imageUrl"], ["threshold"], ["periodDays"], ["points"], ["bonusAmount"]
    ]  # fmt: skip
    with pytest.raises(DomainErrors) as refused:
        await badge(world, "streak", BadgeMetric.ACTIVE_MONTHS_STREAK, "0", period_days=30)
    assert [e.field for e in refused.value.errors] == [["threshold"], ["periodDays"]]
    with pytest.raises(DomainError) as refused_one:
        await badge(world, "window", BadgeMetric.LEADS, "5", period_days=30, repeating=True)
    assert refused_one.value.field == ["periodDays"]
    with pytest.raises(DomainError) as cents:
        await badge(world, "rich", BadgeMetric.REVENUE, "10.001")
    assert cents.value.field == ["threshold"]
    assert [b.code for b in await Badge.all()] == ["taken"]
    assert await AuditEntry.filter(action="createBadge").count() == 1


# --- concurrency ----------------------------------------------------------------------------


async def test_two_ingestions_at_once_crossing_a_threshold_award_once() -> None:
    world = await make_world()
    await badge(world, "three", BadgeMetric.CONVERSIONS, "3", points=10,
                bonus_amount=Decimal("5.00"))  # fmt: skip
    await convert(world, "S1", "10.00")
    await convert(world, "S2", "10.00")
    for round_ in range(3):  # each one alone would cross: both reach 3 or more
        await asyncio.gather(
            convert(world, f"X{round_}", "10.00"), convert(world, f"Y{round_}", "10.00")
        )
    assert await held(world.a) == [("three", 1)]
    assert await ledger(world.a) == [("BADGE", 10)]
    assert await Commission.filter(kind="BONUS").count() == 1
    assert await Event.filter(type="badge.awarded").count() == 1


async def backends_waiting_on_locks(connection: asyncpg.Connection, count: int) -> None:
    """Wait until `count` other sessions of this database wait for a lock."""
    for _ in range(500):
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited for a lock")


@pytest.mark.skipif(not IS_POSTGRES, reason="PostgreSQL runs transactions side by side")
async def test_ingestions_that_both_cross_wait_for_each_other_and_award_once() -> None:
    """Both transactions have written their conversion and reached the awarding lock, neither
    committed: the one that waits sees the other's conversion and award once it goes on."""
    world = await make_world()
    milestone = await badge(world, "every-2", BadgeMetric.CONVERSIONS, "2", repeating=True)
    await convert(world, "S1", "10.00")
    holder = await asyncpg.connect(DATABASE_URL.replace("postgres://", "postgresql://", 1))
    try:
        hold = holder.transaction()
        await hold.start()
        await holder.execute(
            "SELECT pg_advisory_xact_lock($1, $2)", awards.LOCK_CLASS, awards.lock_slot(world.a.pk)
        )
        both = asyncio.gather(convert(world, "X", "10.00"), convert(world, "Y", "10.00"))
        await backends_waiting_on_locks(holder, 2)
        await hold.rollback()
        await both
    finally:
        await holder.close()
    # 3 conversions: the multiple 2 once (the later transaction counts 3 and holds 1 already)
    assert await held(world.a) == [("every-2", 1)]
    await convert(world, "S4", "10.00")
    assert await held(world.a) == [("every-2", 1), ("every-2", 2)]
    assert await BadgeAward.filter(badge_id=milestone.pk).count() == 2
