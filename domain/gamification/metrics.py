"""What badges, milestones and tiers measure: one SQL aggregate per metric for many
enrollments at once (never a Python loop over rows).

Every figure counts an enrollment's own activity in one program, optionally only what
happened in `[since, until)` (`occurredAt` of conversions and clicks, `createdAt` of points):

- CLICKS: its counted clicks (bots and repeats excluded).
- LEADS: conversions of kind LEAD credited to it.
- CONVERSIONS: conversions of any kind credited to it.
- REVENUE: its credited SALE and RENEWAL amounts less their refunds in proportion, in the
  currency's units (a Decimal, "1234.50").
- REFERRED_CUSTOMERS: distinct customers whose SALE is credited to it.
- POINTS: the sum of its points entries.
- ACTIVE_MONTHS_STREAK: calendar months (UTC) in a row, ending with the month of `until` (or
  the month before, while the current one has no activity yet), with a credited conversion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from domain.clock import utcnow
from domain.db import is_sqlite, select, stamp
from domain.gamification.models import BadgeMetric
from domain.money import to_decimal
from domain.pagination import chunks, in_list

CHUNK = 500

# `+` keeps SQLite from starting at the program's conversions (every one of them, each probed
# against the IN list: 30 times slower for a batch's enrollments): credits by enrollment first.
_CREDITED = (
    "FROM attribution_credits a JOIN conversions c ON c.id = a.conversion_id "
    "WHERE +c.program_id = {{}} AND a.enrollment_id IN ({ids}){window}"
)
_SQL = {
    BadgeMetric.CLICKS: (
        "SELECT t.enrollment_id, COUNT(*) FROM touchpoints t WHERE t.program_id = {{}} AND "
        "t.enrollment_id IN ({ids}) AND t.kind = 'CLICK' AND NOT t.excluded{window} "
        "GROUP BY t.enrollment_id",
        "t.occurred_at",
    ),
    BadgeMetric.LEADS: (
        f"SELECT a.enrollment_id, COUNT(*) {_CREDITED} AND c.kind = 'LEAD' "
        "GROUP BY a.enrollment_id",
        "c.occurred_at",
    ),
    BadgeMetric.CONVERSIONS: (
        f"SELECT a.enrollment_id, COUNT(*) {_CREDITED} GROUP BY a.enrollment_id",
        "c.occurred_at",
    ),
    BadgeMetric.REVENUE: (
        "SELECT a.enrollment_id, SUM(a.amount_minor - CASE WHEN c.amount_minor > 0 THEN "
        f"a.amount_minor * c.refunded_minor / c.amount_minor ELSE 0 END) {_CREDITED} AND "
        "c.kind IN ('SALE', 'RENEWAL') GROUP BY a.enrollment_id",
        "c.occurred_at",
    ),
    BadgeMetric.REFERRED_CUSTOMERS: (
        f"SELECT a.enrollment_id, COUNT(DISTINCT c.customer_id) {_CREDITED} AND "
        "c.kind = 'SALE' AND c.customer_id IS NOT NULL GROUP BY a.enrollment_id",
        "c.occurred_at",
    ),
    BadgeMetric.POINTS: (
        "SELECT p.enrollment_id, SUM(p.points) FROM point_entries p WHERE p.program_id = {{}} "
        "AND p.enrollment_id IN ({ids}){window} GROUP BY p.enrollment_id",
        "p.created_at",
    ),
}


def _window(
    column: str, since: datetime | None, until: datetime | None
) -> tuple[str, list[datetime]]:
    parts, params = [], []
    if since is not None:
        parts.append(f" AND {column} >= {{}}")
        params.append(since)
    if until is not None:
        parts.append(f" AND {column} < {{}}")
        params.append(until)
    return "".join(parts), params


async def values(
    program_id: int,
    currency: str,
    metric: BadgeMetric,
    enrollment_ids: Sequence[int],
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[int, Decimal]:
    """The metric's value for each enrollment (0 for those with nothing)."""
    found = {e: Decimal(0) for e in enrollment_ids}
    if metric is BadgeMetric.ACTIVE_MONTHS_STREAK:
        found.update(await _streaks(program_id, enrollment_ids, until or utcnow()))
        return found
    template, column = _SQL[metric]
    window, window_params = _window(column, since, until)
    stamps = [stamp(w) for w in window_params]
    for chunk in chunks(enrollment_ids, CHUNK):
        sql = template.format(ids=in_list(len(chunk)), window=window)
        for enrollment, value in await select(sql, [program_id, *chunk, *stamps]):
            number = int(value or 0)
            found[enrollment] = (
                to_decimal(number, currency) if metric is BadgeMetric.REVENUE else Decimal(number)
            )
    return found


def _month_index(at: datetime) -> int:
    return at.year * 12 + at.month - 1


async def _streaks(
    program_id: int, enrollment_ids: Sequence[int], until: datetime
) -> dict[int, Decimal]:
    months: dict[int, set[int]] = defaultdict(set)
    for start in range(0, len(enrollment_ids), CHUNK):
        chunk = list(enrollment_ids[start : start + CHUNK])
        month_sql = (  # stored in UTC: SQLite as ISO 8601 text
            "substr(c.occurred_at, 1, 7)"
            if is_sqlite()
            else "to_char(c.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM')"
        )
        rows = await select(
            f"SELECT DISTINCT a.enrollment_id, {month_sql} FROM attribution_credits a JOIN "
            "conversions c ON c.id = a.conversion_id WHERE +c.program_id = {} AND "
            f"a.enrollment_id IN ({in_list(len(chunk))})",
            [program_id, *chunk],
        )
        for enrollment, year_month in rows:
            year, number = str(year_month).split("-")
            months[enrollment].add(int(year) * 12 + int(number) - 1)
    current = _month_index(until)
    streaks = {}
    for enrollment, active in months.items():
        month = current if current in active else current - 1
        count = 0
        while month in active:
            count, month = count + 1, month - 1
        streaks[enrollment] = Decimal(count)
    return streaks


# The same figures for every enrollment of a program at once (leaderboards), each driven by
# the program's own index: points by (program_id, created_at), conversions by (program_id,
# occurred_at) with each credit found by its conversion. `+` keeps SQLite from grouping along
# the enrollment index, which would read every row for its date or program. All time, SQLite
# sums each enrollment's points from the covering (enrollment_id, points) index (no sort).
_PROGRAM_CREDITED = (
    "FROM conversions c CROSS JOIN attribution_credits a WHERE a.conversion_id = c.id "
    "AND c.program_id = {{}}{window}"
)
_PROGRAM_SQL = {
    BadgeMetric.CONVERSIONS: f"SELECT +a.enrollment_id, COUNT(*) {_PROGRAM_CREDITED} GROUP BY 1",
    BadgeMetric.REVENUE: "SELECT +a.enrollment_id, SUM(a.amount_minor - CASE WHEN "
    "c.amount_minor > 0 THEN a.amount_minor * c.refunded_minor / c.amount_minor ELSE 0 END) "
    f"{_PROGRAM_CREDITED} AND c.kind IN ('SALE', 'RENEWAL') GROUP BY 1",
    BadgeMetric.REFERRED_CUSTOMERS: "SELECT +a.enrollment_id, COUNT(DISTINCT c.customer_id) "
    f"{_PROGRAM_CREDITED} AND c.kind = 'SALE' AND c.customer_id IS NOT NULL GROUP BY 1",
    BadgeMetric.POINTS: "SELECT +p.enrollment_id, SUM(p.points) FROM point_entries p "
    "WHERE p.program_id = {{}}{window} GROUP BY 1",
}
_PROGRAM_POINTS_ALL_TIME = (
    "SELECT e.id, (SELECT SUM(p.points) FROM point_entries p WHERE p.enrollment_id = e.id) "
    "FROM enrollments e WHERE e.program_id = {}"
)
_PROGRAM_COLUMN = {BadgeMetric.POINTS: "p.created_at"}


def program_values_sql(
    program_id: int, metric: BadgeMetric, since: datetime | None
) -> tuple[str, list[object]]:
    """The figures of `values` since `since` (up to now) for every enrollment of a program
    with any, whatever its status: SQL with `{}` marking its parameters, answering rows of
    (enrollment id, raw value: a count, points, or minor units for REVENUE). What a
    program-wide ranking builds on; one aggregate, never a loop."""
    if metric not in _PROGRAM_SQL:
        raise ValueError(f"{metric} is no single program-wide aggregate")
    if metric is BadgeMetric.POINTS and since is None and is_sqlite():
        return _PROGRAM_POINTS_ALL_TIME, [program_id]
    window, stamps = _window(_PROGRAM_COLUMN.get(metric, "c.occurred_at"), since, None)
    params: list[object] = [program_id, *(stamp(w) for w in stamps)]
    return _PROGRAM_SQL[metric].format(window=window), params
