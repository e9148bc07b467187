"""Tiers that partners earn: promotion when credits arrive, the periodic evaluation that also
demotes after the program's grace days, tiers set (and pinned) by hand, and their history.

The decisions are `tier_rules`; here they are measured (one SQL aggregate per metric for all
the enrollments concerned, `metrics.values`) and written. Every change is a `TierChange` row,
an audit entry and a `tier.changed` event, in the transaction of the change. Pricing reads an
enrollment's current tier, so tier-scoped commission rules apply from the change on: the
conversion whose credit lifts a partner into a tier is priced before the promotion, by the
tier it had.

An automatic change is a compare-and-set on the enrollment's tier (and not pinned): of two
transactions deciding the same promotion, or an admin's setEnrollmentTier beside one, only
the first changes anything; the other finds the tier moved and leaves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.clock import utcnow
from domain.db import instant, select
from domain.errors import DomainError, ErrorCode, not_found
from domain.events import services as events
from domain.gamification import metrics
from domain.gamification import tier_rules as rules
from domain.gamification.models import BadgeMetric, TierChange, TierChangeReason
from domain.gamification.tier_rules import Move, Standing, TierCriterion
from domain.pagination import in_list
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import Program, ProgramStatus, Tier

CHUNK = 500
PROMOTION = "tierPromotion"  # the audit action of a promotion made by ingestion


@dataclass
class Evaluation:
    """What one program's evaluation changed."""

    promoted: list[Enrollment] = field(default_factory=list)
    demoted: list[Enrollment] = field(default_factory=list)
    marked: int = 0  # fell below their tier: demoted once the grace days have passed
    cleared: int = 0  # qualify again for the tier they were below


async def _criteria(program_id: int) -> list[TierCriterion]:
    rows = (
        await Tier.filter(program_id=program_id)
        .order_by("rank")
        .values_list("id", "rank", "qualify_metric", "qualify_threshold", "qualify_period_days")
    )
    return [
        TierCriterion(int(i), int(rank), None if m is None else str(m), threshold, days)
        for i, rank, m, threshold, days in rows
    ]


async def _met(
    program: Program,
    tiers: Sequence[TierCriterion],
    wanted: Mapping[int, Collection[int]],
    at: datetime,
    until: datetime | None,
) -> dict[int, set[int]]:
    """Per enrollment, which of the earned tiers asked about (`wanted`: enrollment -> tier
    ids) it meets at `at`: one aggregate per distinct (metric, period), over the enrollments
    asking about a tier it measures."""
    met: dict[int, set[int]] = defaultdict(set)
    by_measure: dict[tuple[str, int | None], list[TierCriterion]] = defaultdict(list)
    for tier in tiers:
        if tier.earned:
            by_measure[tier.measure].append(tier)
    for (metric, days), judged in sorted(by_measure.items(), key=lambda item: str(item[0])):
        asked = {t.tier_id for t in judged}
        ids = [e for e, tier_ids in wanted.items() if asked.intersection(tier_ids)]
        if not ids:
            continue
        since = None if days is None else at - timedelta(days=days)
        found = await metrics.values(
            program.pk, program.currency, BadgeMetric(metric), ids, since, until
        )
        for tier in judged:
            for enrollment in ids:
                if tier.tier_id in wanted[enrollment] and rules.meets(tier, found[enrollment]):
                    met[enrollment].add(tier.tier_id)
    return met


def _snapshot(enrollment: Enrollment) -> dict[str, Any]:
    return {"tierId": enrollment.tier_id, "tierPinned": enrollment.tier_pinned}


async def _record(
    actor: Actor,
    action: str,
    enrollment: Enrollment,
    before: dict[str, Any],
    reason: TierChangeReason,
) -> None:
    """The change's history row, audit entry and event (the enrollment already changed)."""
    now = utcnow()
    await TierChange.create(
        enrollment_id=enrollment.pk,
        from_tier_id=before["tierId"],
        to_tier_id=enrollment.tier_id,
        reason=reason,
        actor=actor.label,
        at=now,
    )
    after = {**_snapshot(enrollment), "reason": str(reason)}
    await audit.record(actor, action, enrollment, before, after)
    data = {
        "enrollmentId": enrollment.pk,
        "fromTierId": before["tierId"],
        "toTierId": enrollment.tier_id,
        "reason": str(reason),
        "at": now.isoformat(),
    }
    await events.record(
        "tier.changed",
        data,
        program_id=enrollment.program_id,
        partner_id=enrollment.partner_id,
        enrollment_id=enrollment.pk,
    )


async def _move(
    actor: Actor,
    action: str,
    enrollment: Enrollment,
    standing: Standing,
    to_tier_id: int | None,
    reason: TierChangeReason,
) -> bool:
    """Change an unpinned enrollment's tier if it still is `standing`'s; False if it moved."""
    same_tier = (
        {"tier_id__isnull": True} if standing.tier_id is None else {"tier_id": standing.tier_id}
    )
    changed = await Enrollment.filter(id=enrollment.pk, tier_pinned=False, **same_tier).update(
        tier_id=to_tier_id, unqualified_since=None
    )
    if not changed:
        return False
    before = {"tierId": standing.tier_id, "tierPinned": False}
    enrollment.tier_id, enrollment.tier_pinned = to_tier_id, False
    enrollment.unqualified_since = None
    await _record(actor, action, enrollment, before, reason)
    return True


async def _load(ids: Sequence[int]) -> dict[int, Enrollment]:
    found: dict[int, Enrollment] = {}
    for start in range(0, len(ids), CHUNK):
        for row in await Enrollment.filter(id__in=list(ids[start : start + CHUNK])):
            found[row.pk] = row
    return found


# --- promotion as credits arrive -------------------------------------------------------------


async def _credited(conversion_ids: Sequence[int]) -> list[Standing]:
    """The active, unpinned enrollments credited with these conversions."""
    found: dict[int, Standing] = {}
    for start in range(0, len(conversion_ids), CHUNK):
        chunk = list(conversion_ids[start : start + CHUNK])
        rows = await select(
            "SELECT DISTINCT e.id, e.tier_id, e.unqualified_since FROM attribution_credits a "
            "JOIN enrollments e ON e.id = a.enrollment_id WHERE a.conversion_id IN "
            f"({in_list(len(chunk))}) AND NOT e.tier_pinned AND e.status = {{}}",
            [*chunk, str(EnrollmentStatus.ACTIVE)],
        )
        for enrollment, tier, since in rows:
            found[enrollment] = Standing(
                enrollment, tier, None if since is None else instant(since)
            )
    return list(found.values())


async def promote_credited(
    actor: Actor, program: Program, conversion_ids: Sequence[int]
) -> list[Enrollment]:
    """Promote the enrollments these conversions credit that now qualify for a higher tier;
    clear the mark of those that meet their own tier again. Never demotes. Call it inside the
    transaction that credited them (after points and badges, which POINTS tiers count)."""
    if not conversion_ids:
        return []
    tiers = await _criteria(program.pk)
    if not any(t.earned for t in tiers):
        return []
    standings, wanted = [], {}
    for standing in await _credited(conversion_ids):
        judged = rules.judged_on_credit(tiers, standing)
        if judged:  # one at the top of the ladder, unmarked, has nothing to earn
            standings.append(standing)
            wanted[standing.enrollment_id] = judged
    met = await _met(program, tiers, wanted, utcnow(), None)
    decisions = [(s, rules.on_credit(tiers, s, met.get(s.enrollment_id, ()))) for s in standings]
    cleared = [s.enrollment_id for s, d in decisions if d.move is Move.CLEAR]
    for start in range(0, len(cleared), CHUNK):
        chunk = cleared[start : start + CHUNK]
        await Enrollment.filter(id__in=chunk).update(unqualified_since=None)
    promotions = [(s, d) for s, d in decisions if d.move is Move.PROMOTE]
    rows = await _load([s.enrollment_id for s, _ in promotions])
    promoted = []
    for standing, decision in promotions:
        row = rows[standing.enrollment_id]
        reason = TierChangeReason.PROMOTED
        if await _move(actor, PROMOTION, row, standing, decision.to_tier_id, reason):
            promoted.append(row)
    return promoted


# --- the periodic evaluation -----------------------------------------------------------------


def ensure_not_future(at: datetime, now: datetime) -> None:
    if at > now:
        raise DomainError(ErrorCode.INVALID, ["at"], "must not be later than now")


async def _standings(program_id: int) -> list[Standing]:
    rows = await Enrollment.filter(
        program_id=program_id, status=EnrollmentStatus.ACTIVE, tier_pinned=False
    ).values_list("id", "tier_id", "unqualified_since")
    return [Standing(int(i), tier, since) for i, tier, since in rows]


async def _mark(standings: Sequence[Standing], at: datetime) -> int:
    """Remember since when these are below their tier (if still on it and unmarked)."""
    count = 0
    by_tier: dict[int | None, list[int]] = defaultdict(list)
    for standing in standings:
        by_tier[standing.tier_id].append(standing.enrollment_id)
    for tier_id, ids in by_tier.items():
        for start in range(0, len(ids), CHUNK):
            count += await Enrollment.filter(
                id__in=ids[start : start + CHUNK],
                tier_id=tier_id,
                tier_pinned=False,
                unqualified_since__isnull=True,
            ).update(unqualified_since=at)
    return count


async def _clear(ids: Sequence[int]) -> int:
    count = 0
    for start in range(0, len(ids), CHUNK):
        chunk = list(ids[start : start + CHUNK])
        count += await Enrollment.filter(id__in=chunk).update(unqualified_since=None)
    return count


async def _evaluate(actor: Actor, program: Program, at: datetime) -> Evaluation:
    tiers = await _criteria(program.pk)
    standings = await _standings(program.pk)
    ids = [s.enrollment_id for s in standings]
    earned = [t.tier_id for t in tiers if t.earned]
    met = await _met(program, tiers, dict.fromkeys(ids, earned), at, at) if earned else {}
    grace = program.tier_grace_days
    decisions = [
        (s, rules.on_evaluation(tiers, s, met.get(s.enrollment_id, ()), at, grace))
        for s in standings
    ]
    result = Evaluation()
    result.marked = await _mark([s for s, d in decisions if d.move is Move.MARK], at)
    result.cleared = await _clear([s.enrollment_id for s, d in decisions if d.move is Move.CLEAR])
    moves = [(s, d) for s, d in decisions if d.move in (Move.PROMOTE, Move.DEMOTE)]
    rows = await _load([s.enrollment_id for s, _ in moves])
    for standing, decision in moves:
        row = rows[standing.enrollment_id]
        up = decision.move is Move.PROMOTE
        reason = TierChangeReason.PROMOTED if up else TierChangeReason.DEMOTED
        if await _move(actor, "evaluateTiers", row, standing, decision.to_tier_id, reason):
            (result.promoted if up else result.demoted).append(row)
    return result


async def evaluate_tiers(actor: Actor, program_id: int, at: datetime | None = None) -> Evaluation:
    """Evaluate every active, unpinned enrollment of the program as of `at` (default now,
    never later): promote who qualifies higher; mark who is below its earned tier, and demote
    who has been below it for the program's tier grace days (to the tier it qualifies for, or
    the entry tier, or none); clear the mark of who qualifies again. One transaction."""
    now = utcnow()
    when = now if at is None else at
    ensure_not_future(when, now)
    async with in_transaction():
        program = await Program.get_or_none(id=program_id)
        if program is None:
            raise not_found(["programId"], "program")
        return await _evaluate(actor, program, when)


async def evaluate_all(actor: Actor, at: datetime | None = None) -> dict[int, Evaluation]:
    """Evaluate every program that has tiers and is not archived, each in its own
    transaction: program id -> what changed (for cron)."""
    now = utcnow()
    when = now if at is None else at
    ensure_not_future(when, now)
    program_ids = await (
        Program.filter(tiers__id__isnull=False)
        .exclude(status=ProgramStatus.ARCHIVED)
        .distinct()
        .order_by("id")
        .values_list("id", flat=True)
    )
    done = {}
    for program_id in program_ids:
        done[int(str(program_id))] = await evaluate_tiers(actor, int(str(program_id)), when)
    return done


# --- by hand ---------------------------------------------------------------------------------


async def set_enrollment_tier(
    actor: Actor,
    enrollment_id: int,
    tier_id: int | None = None,
    pinned: bool | None = None,
    keep_tier: bool = False,
) -> Enrollment:
    """An admin sets an enrollment's tier (`keep_tier`: leave it) and whether it is pinned
    (None: as it was). A pinned tier never changes automatically; unpinning lets promotions
    and evaluations resume from the tier it has. Setting what is already there changes
    nothing; a change also forgets since when the enrollment was below its old tier."""
    async with in_transaction():
        enrollment = await Enrollment.filter(id=enrollment_id).select_for_update().first()
        if enrollment is None:
            raise not_found(["enrollmentId"], "enrollment")
        target = enrollment.tier_id if keep_tier else tier_id
        of_program = Tier.filter(id=target, program_id=enrollment.program_id)
        if target is not None and not await of_program.exists():
            raise not_found(["tierId"], "tier of this program")
        now_pinned = enrollment.tier_pinned if pinned is None else pinned
        reason = rules.manual_reason(enrollment.tier_id, target, enrollment.tier_pinned, now_pinned)
        if reason is None:
            return enrollment
        before = _snapshot(enrollment)
        enrollment.tier_id, enrollment.tier_pinned = target, now_pinned
        enrollment.unqualified_since = None
        await enrollment.save(update_fields=["tier_id", "tier_pinned", "unqualified_since"])
        await _record(actor, "setEnrollmentTier", enrollment, before, reason)
    return enrollment


# --- history ---------------------------------------------------------------------------------


async def tier_history_by_enrollments(ids: list[int]) -> list[list[TierChange]]:
    """Each enrollment's tier changes, newest first, in the order of `ids`."""
    grouped: dict[int, list[TierChange]] = {i: [] for i in ids}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for row in await TierChange.filter(enrollment_id__in=chunk).order_by("-id"):
            grouped[row.enrollment_id].append(row)
    return [grouped[i] for i in ids]
