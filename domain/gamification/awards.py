"""Awarding badges, in the transaction of the event that can move a metric across a threshold,
for the enrollments that event touched only.

One evaluation reads each metric once for all those enrollments (`metrics.values`: one SQL
aggregate per metric and period, never a query per enrollment), then the highest sequence each
already holds, and inserts the awards that are due with an insert that skips rows the unique
(badge, enrollment, sequence) constraint already holds. Only the rows actually inserted get
their side effects: the badge's points (a BADGE points entry), its bonus (a PENDING BONUS
ledger entry, available when the program's hold ends) and a `badge.awarded` event. Badge
points can reach a POINTS badge: POINTS badges are evaluated again for the enrollments that
gained points, until nothing new is awarded (at most MAX_ROUNDS times).

Never twice under concurrency: on PostgreSQL, evaluating locks the enrollments (transaction
advisory locks on LOCK_SLOTS slots, an enrollment's slot its id modulo LOCK_SLOTS, taken in
order: a batch touching thousands of enrollments holds at most LOCK_SLOTS locks), so a
concurrent event on the same enrollments waits and then sees this one's rows (what it counts
and what it awarded); the unique constraint backs that up. SQLite runs one write transaction
at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise import connections

from domain import db
from domain.clock import utcnow
from domain.db import is_sqlite, select
from domain.events import services as events
from domain.gamification import criteria, metrics, points
from domain.gamification.models import Badge, BadgeMetric, PointKind
from domain.money import to_decimal
from domain.pagination import in_list
from domain.programs.models import Program

LOCK_CLASS = 0x6267  # the advisory locks' first key: "badge awarding"; the second a slot
LOCK_SLOTS = 64
MAX_ROUNDS = 10
CHUNK = 500
INSERT_CHUNK = 200  # award rows per INSERT (5 parameters each)
CONVERSION_METRICS = frozenset(
    {
        BadgeMetric.LEADS,
        BadgeMetric.CONVERSIONS,
        BadgeMetric.REVENUE,
        BadgeMetric.REFERRED_CUSTOMERS,
        BadgeMetric.ACTIVE_MONTHS_STREAK,
        BadgeMetric.POINTS,
    }
)
BADGE_AWARDED = "badge.awarded"


@dataclass(frozen=True, slots=True)
class Awarded:
    """An award this evaluation inserted."""

    award_id: int
    badge: Badge
    enrollment_id: int
    sequence: int
    value: Decimal
    awarded_at: datetime


async def program_badges(program_id: int) -> list[Badge]:
    return await Badge.filter(program_id=program_id).order_by("id")


async def award_badges(
    program: Program,
    enrollment_ids: Iterable[int],
    metrics_moved: Collection[BadgeMetric],
    badges: list[Badge] | None = None,
) -> list[Awarded]:
    """Award the program's badges on `metrics_moved` that these enrollments reached (and the
    POINTS badges their awards' points reach). `badges`: the program's badges, if read
    already. Call inside the transaction of the event."""
    every = await program_badges(program.pk) if badges is None else badges
    todo = [b for b in every if b.metric in metrics_moved]
    ids = sorted(set(enrollment_ids))
    if not todo or not ids:
        return []
    await _lock(ids)
    now = utcnow()
    made: list[Awarded] = []
    for _ in range(MAX_ROUNDS):
        new = await _evaluate(program, todo, ids, now)
        if not new:
            break
        made += new
        await _side_effects(program, new, now)
        ids = sorted({a.enrollment_id for a in new if a.badge.points > 0})
        todo = [b for b in every if b.metric is BadgeMetric.POINTS]
        if not ids or not todo:
            break
    return made


def lock_slot(enrollment_id: int) -> int:
    """The second key of an enrollment's awarding lock."""
    return enrollment_id % LOCK_SLOTS


async def _lock(enrollment_ids: list[int]) -> None:
    """Hold the enrollments' awarding locks until the transaction ends (PostgreSQL), taken in
    slot order so that two events never wait for each other."""
    if is_sqlite():
        return
    slots = sorted({lock_slot(e) for e in enrollment_ids})
    await select(
        "SELECT pg_advisory_xact_lock({}, s.slot) FROM (SELECT unnest({}::int[]) AS slot "
        "ORDER BY 1) s",
        [LOCK_CLASS, slots],
    )


async def _evaluate(
    program: Program, badges: list[Badge], ids: list[int], now: datetime
) -> list[Awarded]:
    held = await _highest([b.pk for b in badges], ids)
    # an enrollment holding a one-off badge needs no figure for it: in a running program most
    # do, and each figure it is left out of is rows not read
    wanted: dict[tuple[BadgeMetric, int | None], set[int]] = {}
    for badge in badges:
        open_ = ids if badge.repeating else [e for e in ids if (badge.pk, e) not in held]
        wanted.setdefault((BadgeMetric(badge.metric), badge.period_days), set()).update(open_)
    values: dict[tuple[BadgeMetric, int | None], dict[int, Decimal]] = {}
    for (metric, period), enrollments in wanted.items():
        if enrollments:
            since = None if period is None else now - timedelta(days=period)
            values[(metric, period)] = await metrics.values(
                program.pk, program.currency, metric, sorted(enrollments), since
            )
    due = []
    for badge in badges:
        figures = values.get((BadgeMetric(badge.metric), badge.period_days), {})
        for enrollment, value in figures.items():
            awarded = held.get((badge.pk, enrollment), 0)
            for sequence in criteria.sequences_due(
                value, badge.threshold, badge.repeating, awarded
            ):
                due.append((badge, enrollment, sequence, value))
    return await _insert(due, now) if due else []


async def _highest(badge_ids: list[int], enrollment_ids: list[int]) -> dict[tuple[int, int], int]:
    """The highest sequence awarded per (badge, enrollment)."""
    found: dict[tuple[int, int], int] = {}
    for start in range(0, len(enrollment_ids), CHUNK):
        chunk = enrollment_ids[start : start + CHUNK]
        rows = await select(
            "SELECT badge_id, enrollment_id, MAX(sequence) FROM badge_awards WHERE badge_id IN "
            f"({in_list(len(badge_ids))}) AND enrollment_id IN ({in_list(len(chunk))}) "
            "GROUP BY badge_id, enrollment_id",
            [*badge_ids, *chunk],
        )
        found.update({(badge, enrollment): int(top) for badge, enrollment, top in rows})
    return found


async def _insert(due: Sequence[tuple[Badge, int, int, Decimal]], now: datetime) -> list[Awarded]:
    """Insert the awards; answers those actually inserted (a concurrent event may have
    inserted some: those are skipped, not failed)."""
    connection = connections.get("default")
    sqlite = is_sqlite()
    stamp = db.stamp(now)
    badges = {badge.pk: badge for badge, _, _, _ in due}
    values = {(badge.pk, enrollment, sequence): value for badge, enrollment, sequence, value in due}
    made = []
    for start in range(0, len(due), INSERT_CHUNK):
        part = due[start : start + INSERT_CHUNK]
        params: list[Any] = []
        for badge, enrollment, sequence, value in part:
            params += [badge.pk, enrollment, sequence, str(value), stamp]
        marks = ["?" if sqlite else f"${n}" for n in range(1, len(params) + 1)]
        rows = ", ".join("({}, {}, {}, {}, {})" for _ in part).format(*marks)
        # execute_query_dict: Tortoise's execute_query drops what an INSERT returns (asyncpg)
        inserted = await connection.execute_query_dict(
            f"INSERT INTO badge_awards (badge_id, enrollment_id, sequence, value, awarded_at) "
            f"VALUES {rows} ON CONFLICT (badge_id, enrollment_id, sequence) DO NOTHING "
            "RETURNING id, badge_id, enrollment_id, sequence",
            params,
        )
        for row in inserted:
            key = (int(row["badge_id"]), int(row["enrollment_id"]), int(row["sequence"]))
            made.append(Awarded(int(row["id"]), badges[key[0]], key[1], key[2], values[key], now))
    made.sort(key=lambda a: a.award_id)
    return made


def award_data(award: Awarded, currency: str) -> dict[str, Any]:
    """The award as the API shows it (ids as plain numbers), for its event."""
    badge = award.badge
    bonus = badge.bonus_minor
    return {
        "awardId": award.award_id,
        "badgeId": badge.pk,
        "badgeCode": badge.code,
        "badgeName": badge.name,
        "enrollmentId": award.enrollment_id,
        "sequence": award.sequence,
        "value": str(award.value),
        "awardedAt": award.awarded_at.isoformat(),
        "points": badge.points,
        "bonusAmount": None
        if bonus is None
        else {"amount": str(to_decimal(bonus, currency)), "currency": currency},
    }


def _label(award: Awarded) -> str:
    badge = award.badge
    label = f"badge {badge.code} ({badge.name})"
    return f"{label}, milestone {award.sequence}" if badge.repeating else label


async def _side_effects(program: Program, awarded: list[Awarded], now: datetime) -> None:
    entries = [
        points.NewPoints(a.enrollment_id, None, PointKind.BADGE, a.badge.points, _label(a),
                         award_id=a.award_id)
        for a in awarded
        if a.badge.points > 0
    ]  # fmt: skip
    await points.write(program, entries, now)
    await _bonuses(program, [a for a in awarded if a.badge.bonus_minor], now)
    partners = await _partners(sorted({a.enrollment_id for a in awarded}))
    for award in awarded:
        await events.record(
            BADGE_AWARDED,
            award_data(award, program.currency),
            program_id=program.pk,
            partner_id=partners.get(award.enrollment_id),
            enrollment_id=award.enrollment_id,
        )


_BONUS_COLUMNS = (
    "program_id", "enrollment_id", "kind", "amount_minor", "currency", "status", "available_at",
    "reason", "created_at",
)  # fmt: skip


async def _bonuses(program: Program, awarded: list[Awarded], now: datetime) -> None:
    """A PENDING BONUS ledger entry per award with a bonus, available when the hold ends."""
    if not awarded:
        return
    available = now + timedelta(days=program.hold_days)
    stamps = [db.stamp(available), db.stamp(now)]
    rows = [
        [program.pk, a.enrollment_id, "BONUS", a.badge.bonus_minor, program.currency, "PENDING",
         stamps[0], f"bonus of {_label(a)}", stamps[1]]
        for a in awarded
    ]  # fmt: skip
    await db.insert_many("commissions", _BONUS_COLUMNS, rows)


async def _partners(enrollment_ids: list[int]) -> dict[int, int]:
    found: dict[int, int] = {}
    for start in range(0, len(enrollment_ids), CHUNK):
        chunk = enrollment_ids[start : start + CHUNK]
        rows = await select(
            f"SELECT id, partner_id FROM enrollments WHERE id IN ({in_list(len(chunk))})", chunk
        )
        found.update({int(e): int(p) for e, p in rows})
    return found
