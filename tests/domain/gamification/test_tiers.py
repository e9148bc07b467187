"""Tiers partners earn, over a real database, through the domain's use cases: promotion as
conversions are credited (ingestion, pixel confirmation, recompute), the periodic evaluation
with its grace period, pinned and hand-set tiers, and the history, audit and events of each
change. Amounts in euros; "N days ago" is counted from the test's start."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.audit.models import AuditEntry
from domain.commissions import services as commissions
from domain.commissions.models import Commission
from domain.commissions.specs import RuleSpec
from domain.errors import DomainError, ErrorCode
from domain.events.models import Event
from domain.gamification import tiers
from domain.gamification.models import PointEntry, PointKind, TierChange
from domain.partners import services as partners
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs import services as programs
from domain.programs.models import Program, ProgramStatus, Tier, TierMetric
from domain.programs.rules import TierSpec
from domain.tracking import ingest, pixel
from domain.tracking.ingest_rules import ConversionSpec, Identity
from domain.tracking.models import ConversionKind

ADMIN = Actor("admin:ana@example.com")
CRON = Actor.system("evaluate-tiers")
NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class World:
    """A EUR program with a 10-day tier grace: Bronze (rank 1, manual: the entry tier),
    Silver (rank 2: 100 EUR of revenue, all time), Gold (rank 3: 500 EUR in the last 30
    days). A (code ALPHA) starts in Bronze, B (code BETA) in no tier."""

    program: Program
    bronze: Tier
    silver: Tier
    gold: Tier
    a: Enrollment
    b: Enrollment


async def make_world(grace_days: int = 10) -> World:
    spec = programs.ProgramSpec(
        name="Shop",
        currency="EUR",
        destination_url="https://shop.example.com",
        tier_grace_days=grace_days,
    )
    program = await programs.create_program(ADMIN, spec)
    revenue = TierMetric.REVENUE
    bronze = await programs.create_tier(ADMIN, program.pk, TierSpec(name="Bronze", rank=1))
    silver = await programs.create_tier(
        ADMIN, program.pk, TierSpec("Silver", 2, revenue, Decimal("100"))
    )
    gold = await programs.create_tier(
        ADMIN, program.pk, TierSpec("Gold", 3, revenue, Decimal("500"), 30)
    )
    a = await enroll(program, "Alpha", "ALPHA", bronze.pk)
    b = await enroll(program, "Beta", "BETA", None)
    return World(program, bronze, silver, gold, a, b)


async def enroll(program: Program, name: str, code: str, tier_id: int | None) -> Enrollment:
    partner = await partners.create_partner(ADMIN, name, f"{code.lower()}@example.com")
    return await partners.enroll_partner(ADMIN, program.pk, partner.pk, tier_id, code)


async def sell(
    program: Program, external_id: str, amount: str, code: str, at: datetime | None = None
) -> None:
    spec = ConversionSpec(
        external_id,
        ConversionKind.SALE,
        Decimal(amount),
        "EUR",
        Identity(referral_code=code),
        at or ago(0.01),
    )
    await ingest.record_conversion(ADMIN, program.pk, spec)


async def tier_of(enrollment: Enrollment) -> int | None:
    await enrollment.refresh_from_db()
    return enrollment.tier_id


async def history(enrollment: Enrollment) -> list[tuple[int | None, int | None, str, str]]:
    """(from, to, reason, actor) of its tier changes, oldest first."""
    rows = await TierChange.filter(enrollment_id=enrollment.pk).order_by("id")
    return [(r.from_tier_id, r.to_tier_id, str(r.reason), r.actor) for r in rows]


async def audited(action: str) -> list[tuple[int | None, Any, Any]]:
    rows = await AuditEntry.filter(action=action, entity_type="Enrollment").order_by("id")
    return [(r.entity_pk, r.before, r.after) for r in rows]


async def tier_events() -> list[Event]:
    return list(await Event.filter(type="tier.changed").order_by("id"))


# --- promotion as credits arrive -------------------------------------------------------------


async def test_crossing_a_threshold_during_ingestion_promotes_at_once() -> None:
    w = await make_world()
    await sell(w.program, "S1", "60.00", "ALPHA")
    assert await tier_of(w.a) == w.bronze.pk  # 60 < 100

    await sell(w.program, "S2", "40.00", "ALPHA")  # 100: Silver's threshold reached

    assert await tier_of(w.a) == w.silver.pk
    assert await history(w.a) == [(w.bronze.pk, w.silver.pk, "PROMOTED", ADMIN.label)]
    before = {"tierId": w.bronze.pk, "tierPinned": False}
    after = {"tierId": w.silver.pk, "tierPinned": False, "reason": "PROMOTED"}
    assert await audited("tierPromotion") == [(w.a.pk, before, after)]
    [event] = await tier_events()
    assert (event.program_id, event.partner_id, event.enrollment_id) == (
        w.program.pk,
        w.a.partner_id,
        w.a.pk,
    )
    change = await TierChange.get(enrollment_id=w.a.pk)
    assert event.data == {
        "enrollmentId": w.a.pk,
        "fromTierId": w.bronze.pk,
        "toTierId": w.silver.pk,
        "reason": "PROMOTED",
        "at": change.at.isoformat(),
    }


async def test_one_sale_can_lift_past_several_tiers_in_one_change() -> None:
    w = await make_world()

    await sell(w.program, "S1", "600.00", "BETA")

    assert await tier_of(w.b) == w.gold.pk
    assert await history(w.b) == [(None, w.gold.pk, "PROMOTED", ADMIN.label)]


async def test_only_the_credited_enrollments_are_evaluated() -> None:
    w = await make_world()
    # A's revenue in Silver's range, recorded before Silver existed: nothing promoted it.
    await Tier.filter(id=w.silver.pk).update(qualify_threshold=Decimal("1000"))
    await sell(w.program, "S1", "150.00", "ALPHA")
    await Tier.filter(id=w.silver.pk).update(qualify_threshold=Decimal("100"))

    await sell(w.program, "S2", "150.00", "BETA")

    assert await tier_of(w.b) == w.silver.pk
    assert await tier_of(w.a) == w.bronze.pk  # qualifies, but was not credited now


async def test_ingestion_never_demotes_not_even_after_a_refund() -> None:
    w = await make_world()
    await sell(w.program, "S1", "600.00", "ALPHA")
    assert await tier_of(w.a) == w.gold.pk

    await ingest.refund_conversion(ADMIN, w.program.pk, "S1", None)  # revenue back to 0
    await sell(w.program, "S2", "10.00", "ALPHA")

    assert await tier_of(w.a) == w.gold.pk
    assert len(await history(w.a)) == 1


async def test_meeting_no_criterion_gives_no_tier_not_even_the_entry_tier() -> None:
    w = await make_world()

    await sell(w.program, "S1", "10.00", "BETA")
    done = await tiers.evaluate_tiers(CRON, w.program.pk)

    assert await tier_of(w.b) is None
    assert (done.promoted, done.demoted, done.marked) == ([], [], 0)
    assert await TierChange.all().count() == 0


async def test_a_confirmed_pixel_conversion_promotes_when_it_is_credited() -> None:
    w = await make_world()
    hit = pixel.PixelHit(w.program.pk, "P1", amount="150.00", referral_code="ALPHA")
    assert await pixel.record_pixel(hit) is pixel.PixelOutcome.RECORDED
    assert await tier_of(w.a) == w.bronze.pk  # unverified: not credited yet

    await pixel.confirm_conversion(ADMIN, w.program.pk, "P1")

    assert await tier_of(w.a) == w.silver.pk
    assert [a for _, _, a in (await audited("tierPromotion"))] == [
        {"tierId": w.silver.pk, "tierPinned": False, "reason": "PROMOTED"}
    ]


async def test_a_recompute_promotes_whom_the_new_credits_qualify() -> None:
    w = await make_world()
    await sell(w.program, "S1", "150.00", "ALPHA")
    await partners.update_enrollment(ADMIN, w.a.pk, tier_id=w.bronze.pk)  # back by hand
    assert await tier_of(w.a) == w.bronze.pk

    await attribution.recompute(ADMIN, w.program.pk, None, None)

    assert await tier_of(w.a) == w.silver.pk
    assert [reason for _, _, reason, _ in await history(w.a)] == ["PROMOTED", "PROMOTED"]


async def test_a_tier_scoped_rule_prices_conversions_after_the_promotion_only() -> None:
    w = await make_world()
    base = RuleSpec(conversion_kind=ConversionKind.SALE, percentage=Decimal("10"))
    silver = RuleSpec(
        conversion_kind=ConversionKind.SALE, percentage=Decimal("30"), tier_id=w.silver.pk
    )
    base_rule = await commissions.create_rule(ADMIN, w.program.pk, base)
    silver_rule = await commissions.create_rule(ADMIN, w.program.pk, silver)

    await sell(w.program, "S1", "100.00", "ALPHA")  # priced in Bronze, then promoted
    await sell(w.program, "S2", "100.00", "ALPHA")  # priced in Silver

    rows = (
        await Commission.filter(enrollment_id=w.a.pk)
        .order_by("id")
        .values_list("conversion__external_id", "amount_minor", "rule_id")
    )
    assert list(rows) == [("S1", 1000, base_rule.pk), ("S2", 3000, silver_rule.pk)]


async def test_concurrent_sales_crossing_together_promote_once() -> None:
    w = await make_world()

    await asyncio.gather(
        sell(w.program, "S1", "150.00", "ALPHA"), sell(w.program, "S2", "150.00", "ALPHA")
    )

    assert await tier_of(w.a) == w.silver.pk
    assert await history(w.a) == [(w.bronze.pk, w.silver.pk, "PROMOTED", ADMIN.label)]
    assert len(await tier_events()) == 1


# --- the periodic evaluation -----------------------------------------------------------------


async def gold_fallen_from(w: World) -> None:
    """A sells 600 EUR 50 days ago: Silver at once (all time); Gold at an evaluation 45 days
    ago (its 30 days hold the sale); below Gold at an evaluation 15 days ago (they do not)."""
    await sell(w.program, "S1", "600.00", "ALPHA", ago(50))
    assert await tier_of(w.a) == w.silver.pk  # Gold's last 30 days hold nothing
    promoted = await tiers.evaluate_tiers(CRON, w.program.pk, ago(45))
    assert [e.pk for e in promoted.promoted] == [w.a.pk]
    assert await tier_of(w.a) == w.gold.pk
    marked = await tiers.evaluate_tiers(CRON, w.program.pk, ago(15))
    assert (marked.promoted, marked.demoted, marked.marked) == ([], [], 1)


async def test_below_its_tier_an_enrollment_is_marked_then_demoted_after_the_grace() -> None:
    w = await make_world(grace_days=10)
    await gold_fallen_from(w)
    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.unqualified_since) == (w.gold.pk, ago(15))

    within = await tiers.evaluate_tiers(CRON, w.program.pk, ago(6))  # 9 days below
    await w.a.refresh_from_db()
    assert (within.demoted, within.marked) == ([], 0)
    assert (w.a.tier_id, w.a.unqualified_since) == (w.gold.pk, ago(15))  # the first mark

    done = await tiers.evaluate_tiers(CRON, w.program.pk, ago(5))  # 10 days below

    assert [e.pk for e in done.demoted] == [w.a.pk]
    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.unqualified_since) == (w.silver.pk, None)  # still Silver's 600
    assert await history(w.a) == [
        (w.bronze.pk, w.silver.pk, "PROMOTED", ADMIN.label),
        (w.silver.pk, w.gold.pk, "PROMOTED", CRON.label),
        (w.gold.pk, w.silver.pk, "DEMOTED", CRON.label),
    ]
    assert [(a["tierId"], a["reason"]) for _, _, a in await audited("evaluateTiers")] == [
        (w.gold.pk, "PROMOTED"),
        (w.silver.pk, "DEMOTED"),
    ]
    assert [e.data["reason"] for e in await tier_events()] == ["PROMOTED", "PROMOTED", "DEMOTED"]


async def test_qualifying_again_through_a_sale_clears_the_mark() -> None:
    w = await make_world()
    await gold_fallen_from(w)

    await sell(w.program, "S2", "500.00", "ALPHA")  # Gold's 30 days hold 500 again

    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.unqualified_since) == (w.gold.pk, None)
    done = await tiers.evaluate_tiers(CRON, w.program.pk)
    assert (done.demoted, done.marked) == ([], 0)
    assert len(await history(w.a)) == 2  # clearing a mark is no tier change


async def test_an_evaluation_clears_the_mark_of_one_that_qualifies_again() -> None:
    w = await make_world(grace_days=0)
    await sell(w.program, "S1", "150.00", "ALPHA")
    await ingest.refund_conversion(ADMIN, w.program.pk, "S1", Decimal("100.00"))  # 50 left
    marked = await mark_below_within_grace(w)
    assert (marked.tier_id, marked.unqualified_since is not None) == (w.silver.pk, True)

    await programs.update_tier(ADMIN, w.silver.pk, TierSpec(qualify_threshold=Decimal("50")))
    done = await tiers.evaluate_tiers(CRON, w.program.pk)

    assert (done.cleared, done.demoted) == (1, [])
    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.unqualified_since) == (w.silver.pk, None)


async def mark_below_within_grace(w: World) -> Enrollment:
    """Give the program 10 days of grace and evaluate: A (below Silver) is marked."""
    await programs.update_program(ADMIN, w.program.pk, programs.ProgramSpec(tier_grace_days=10))
    done = await tiers.evaluate_tiers(CRON, w.program.pk)
    assert done.marked == 1
    await w.a.refresh_from_db()
    return w.a


async def test_with_no_grace_and_no_entry_tier_a_demotion_leaves_no_tier() -> None:
    w = await make_world(grace_days=0)
    await Tier.filter(id=w.bronze.pk).delete()  # no entry tier any more
    await sell(w.program, "S1", "150.00", "BETA")
    await ingest.refund_conversion(ADMIN, w.program.pk, "S1", None)

    done = await tiers.evaluate_tiers(CRON, w.program.pk)

    assert [e.pk for e in done.demoted] == [w.b.pk]
    assert done.demoted[0].tier_id is None
    assert await tier_of(w.b) is None
    assert (await history(w.b))[-1] == (w.silver.pk, None, "DEMOTED", CRON.label)


async def test_a_demotion_lands_on_the_entry_tier_when_nothing_else_is_met() -> None:
    w = await make_world(grace_days=0)
    await sell(w.program, "S1", "150.00", "BETA")  # no tier -> Silver
    await ingest.refund_conversion(ADMIN, w.program.pk, "S1", None)

    await tiers.evaluate_tiers(CRON, w.program.pk)

    assert await tier_of(w.b) == w.bronze.pk


async def test_points_and_conversions_count_as_their_tiers_measure() -> None:
    w = await make_world()
    conversions = TierSpec(qualify_metric=TierMetric.CONVERSIONS, qualify_threshold=Decimal(2))
    points = TierSpec(qualify_metric=TierMetric.POINTS, qualify_threshold=Decimal(1000))
    await programs.update_tier(ADMIN, w.silver.pk, conversions)
    await programs.update_tier(ADMIN, w.gold.pk, points)  # within 30 days
    await sell(w.program, "S1", "1.00", "ALPHA")
    assert await tier_of(w.a) == w.bronze.pk  # one conversion
    await sell(w.program, "S2", "1.00", "ALPHA")
    assert await tier_of(w.a) == w.silver.pk  # two
    await PointEntry.create(
        program_id=w.program.pk,
        enrollment_id=w.a.pk,
        kind=PointKind.CONVERSION,
        points=1000,
        created_at=ago(1),
    )

    done = await tiers.evaluate_tiers(CRON, w.program.pk)

    assert [e.pk for e in done.promoted] == [w.a.pk]
    assert await tier_of(w.a) == w.gold.pk


async def test_pinned_and_suspended_enrollments_never_change_automatically() -> None:
    w = await make_world(grace_days=0)
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.bronze.pk, pinned=True)
    await tiers.set_enrollment_tier(ADMIN, w.b.pk, w.gold.pk, pinned=True)  # earns nothing
    c = await enroll(w.program, "Gamma", "GAMMA", w.gold.pk)
    await partners.update_enrollment(ADMIN, c.pk, status=EnrollmentStatus.SUSPENDED)

    await sell(w.program, "S1", "600.00", "ALPHA")  # qualifies for Gold
    first = await tiers.evaluate_tiers(CRON, w.program.pk, ago(1))
    second = await tiers.evaluate_tiers(CRON, w.program.pk)

    for done in (first, second):
        assert (done.promoted, done.demoted, done.marked) == ([], [], 0)
    for enrollment, tier in ((w.a, w.bronze), (w.b, w.gold), (c, w.gold)):
        await enrollment.refresh_from_db()
        assert (enrollment.tier_id, enrollment.unqualified_since) == (tier.pk, None)
    assert [r for _, _, r, _ in await history(w.a)] == ["PINNED"]
    assert [r for _, _, r, _ in await history(w.b)] == ["PINNED"]


async def test_unpinning_lets_automatic_changes_resume() -> None:
    w = await make_world(grace_days=0)
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.bronze.pk, pinned=True)
    await sell(w.program, "S1", "150.00", "ALPHA")
    assert await tier_of(w.a) == w.bronze.pk

    await tiers.set_enrollment_tier(ADMIN, w.a.pk, pinned=False, keep_tier=True)
    done = await tiers.evaluate_tiers(CRON, w.program.pk)

    assert [e.pk for e in done.promoted] == [w.a.pk]
    assert await tier_of(w.a) == w.silver.pk
    assert [r for _, _, r, _ in await history(w.a)] == ["PINNED", "UNPINNED", "PROMOTED"]


async def test_evaluate_all_covers_every_program_with_tiers_but_archived_ones() -> None:
    w = await make_world()
    other = await make_world_named("Other", "OTHERA")
    archived = await make_world_named("Old", "OLDA")
    await programs.update_program(
        ADMIN, archived.pk, programs.ProgramSpec(status=ProgramStatus.ARCHIVED)
    )
    await programs.create_program(
        ADMIN,
        programs.ProgramSpec(name="No tiers", currency="EUR", destination_url="https://x.example"),
    )

    done = await tiers.evaluate_all(CRON)

    assert sorted(done) == sorted([w.program.pk, other.pk])


async def make_world_named(name: str, code: str) -> Program:
    spec = programs.ProgramSpec(name=name, currency="EUR", destination_url="https://x.example")
    program = await programs.create_program(ADMIN, spec)
    await programs.create_tier(ADMIN, program.pk, TierSpec(name="Entry", rank=1))
    await enroll(program, name, code, None)
    return program


async def test_an_evaluation_later_than_now_is_refused_and_changes_nothing() -> None:
    w = await make_world(grace_days=0)
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.gold.pk)  # earns nothing: would fall

    for run in (
        tiers.evaluate_tiers(CRON, w.program.pk, NOW + timedelta(days=1)),
        tiers.evaluate_all(CRON, NOW + timedelta(days=1)),
    ):
        with pytest.raises(DomainError) as refused:
            await run
        assert (refused.value.code, refused.value.field) == (ErrorCode.INVALID, ["at"])
    assert await tier_of(w.a) == w.gold.pk


async def test_evaluating_an_unknown_program_is_not_found() -> None:
    with pytest.raises(DomainError) as refused:
        await tiers.evaluate_tiers(CRON, 999)
    assert (refused.value.code, refused.value.field) == (ErrorCode.NOT_FOUND, ["programId"])


# --- by hand ---------------------------------------------------------------------------------


async def test_an_admin_sets_pins_unpins_and_clears_a_tier() -> None:
    w = await make_world()

    pinned = await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.gold.pk, pinned=True)
    again = await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.gold.pk, pinned=True)  # no change
    unpinned = await tiers.set_enrollment_tier(ADMIN, w.a.pk, keep_tier=True, pinned=False)
    moved = await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.silver.pk)
    cleared = await tiers.set_enrollment_tier(ADMIN, w.a.pk, None)

    assert (pinned.tier_id, pinned.tier_pinned) == (w.gold.pk, True)
    assert (again.tier_id, again.tier_pinned) == (w.gold.pk, True)
    assert (unpinned.tier_id, unpinned.tier_pinned) == (w.gold.pk, False)
    assert (moved.tier_id, moved.tier_pinned) == (w.silver.pk, False)
    assert (cleared.tier_id, cleared.tier_pinned) == (None, False)
    assert await tier_of(w.a) is None
    assert await history(w.a) == [
        (w.bronze.pk, w.gold.pk, "PINNED", ADMIN.label),
        (w.gold.pk, w.gold.pk, "UNPINNED", ADMIN.label),
        (w.gold.pk, w.silver.pk, "SET", ADMIN.label),
        (w.silver.pk, None, "SET", ADMIN.label),
    ]
    assert [(b, a) for _, b, a in await audited("setEnrollmentTier")] == [
        ({"tierId": w.bronze.pk, "tierPinned": False},
         {"tierId": w.gold.pk, "tierPinned": True, "reason": "PINNED"}),
        ({"tierId": w.gold.pk, "tierPinned": True},
         {"tierId": w.gold.pk, "tierPinned": False, "reason": "UNPINNED"}),
        ({"tierId": w.gold.pk, "tierPinned": False},
         {"tierId": w.silver.pk, "tierPinned": False, "reason": "SET"}),
        ({"tierId": w.silver.pk, "tierPinned": False},
         {"tierId": None, "tierPinned": False, "reason": "SET"}),
    ]  # fmt: skip
    assert [(e.data["fromTierId"], e.data["toTierId"]) for e in await tier_events()] == [
        (w.bronze.pk, w.gold.pk),
        (w.gold.pk, w.gold.pk),
        (w.gold.pk, w.silver.pk),
        (w.silver.pk, None),
    ]


async def test_setting_a_tier_forgets_the_mark_of_the_old_one() -> None:
    w = await make_world()
    await gold_fallen_from(w)

    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.gold.pk, pinned=False)  # only the mark
    unchanged = len(await history(w.a))
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.silver.pk)

    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.unqualified_since) == (w.silver.pk, None)
    assert len(await history(w.a)) == unchanged + 1


async def test_another_programs_tier_or_an_unknown_enrollment_is_not_found() -> None:
    w = await make_world()
    other = await make_world_named("Other", "OTHERA")
    foreign = await Tier.get(program_id=other.pk)

    with pytest.raises(DomainError) as tier_refused:
        await tiers.set_enrollment_tier(ADMIN, w.a.pk, foreign.pk, pinned=True)
    with pytest.raises(DomainError) as enrollment_refused:
        await tiers.set_enrollment_tier(ADMIN, 999, w.gold.pk)

    assert (tier_refused.value.code, tier_refused.value.field) == (ErrorCode.NOT_FOUND, ["tierId"])
    assert (enrollment_refused.value.code, enrollment_refused.value.field) == (
        ErrorCode.NOT_FOUND,
        ["enrollmentId"],
    )
    await w.a.refresh_from_db()
    assert (w.a.tier_id, w.a.tier_pinned) == (w.bronze.pk, False)
    assert await TierChange.all().count() == 0
    assert await audited("setEnrollmentTier") == []


async def test_history_is_newest_first_per_enrollment() -> None:
    w = await make_world()
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.silver.pk)
    await tiers.set_enrollment_tier(ADMIN, w.a.pk, w.gold.pk)
    await tiers.set_enrollment_tier(ADMIN, w.b.pk, w.bronze.pk)

    found = await tiers.tier_history_by_enrollments([w.b.pk, w.a.pk, 999])

    assert [[c.to_tier_id for c in rows] for rows in found] == [
        [w.bronze.pk],
        [w.gold.pk, w.silver.pk],
        [],
    ]
