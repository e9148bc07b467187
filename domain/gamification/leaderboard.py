"""Leaderboards: a program's active enrollments ranked by a metric over a period.

- Metrics: POINTS (points entries by `createdAt`), REVENUE (credited SALE and RENEWAL amounts
  less their refunds in proportion, in currency units, by the conversion's `occurredAt`),
  CONVERSIONS (credited conversions), REFERRED_CUSTOMERS (distinct customers with a credited
  SALE): the definitions of `domain.gamification.metrics`.
- Periods: THIS_MONTH (since the start of the UTC calendar month), LAST_30_DAYS, ALL_TIME.
- Competition ranking: an entry's rank is 1 + the number of enrollments with a strictly
  greater value, so ties share a rank (1, 2, 2, 4). Within a tie, the earlier enrollment is
  listed first. Only active enrollments compete, and an enrollment whose value is 0 is not
  listed (the values are never negative).
- A partner always gets its own entry, appended after the top when it is not in it (its value
  may be 0: its rank then follows every listed enrollment). What it sees of others follows
  the program's `leaderboard_visibility`: NAMES, others' names; ANONYMIZED, others' entries
  without a name (their rank and value only); OWN_RANK_ONLY, its own entry alone. A partner
  not actively enrolled in the program sees no leaderboard of it.
- Program-wide readers (admins) see every name whatever the visibility.

The ranking is one SQL statement (`metrics.program_values_sql` inside `_RANKED`): the
metric's aggregate over the program's active enrollments, its top by value, ranked, and the
viewer's row; only those rows are read back. bench/gamification.py times it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.clock import utcnow
from domain.db import select
from domain.gamification import metrics
from domain.gamification.models import BadgeMetric
from domain.money import to_decimal
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import LeaderboardVisibility, Program

MAX_ENTRIES = 100


class LeaderboardMetric(StrEnum):
    POINTS = "POINTS"
    REVENUE = "REVENUE"
    CONVERSIONS = "CONVERSIONS"
    REFERRED_CUSTOMERS = "REFERRED_CUSTOMERS"


class LeaderboardPeriod(StrEnum):
    THIS_MONTH = "THIS_MONTH"
    LAST_30_DAYS = "LAST_30_DAYS"
    ALL_TIME = "ALL_TIME"


@dataclass(frozen=True, slots=True)
class Standing:
    """One enrollment's place: its value (currency units for REVENUE) and rank."""

    enrollment_id: int
    name: str
    value: Decimal
    rank: int


@dataclass(frozen=True, slots=True)
class Board:
    """The top standings and the viewer's own (None when no viewer was asked about)."""

    top: list[Standing]
    viewer: Standing | None


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    """A standing as the viewer may see it: `name` is None when it is not to be shown."""

    rank: int
    name: str | None
    value: Decimal
    enrollment_id: int
    is_viewer: bool


def period_start(period: LeaderboardPeriod, at: datetime) -> datetime | None:
    """Where a period begins at `at` (an aware datetime); None for all time."""
    if period is LeaderboardPeriod.THIS_MONTH:
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if period is LeaderboardPeriod.LAST_30_DAYS:
        return at - timedelta(days=30)
    return None


def visible_entries(
    board: Board, visibility: LeaderboardVisibility | None, viewer_enrollment_id: int | None
) -> list[LeaderboardEntry]:
    """What the viewer may see of a board: everything with names for a program-wide reader
    (`visibility` None); for a partner, the top as the program's visibility allows, then its
    own standing when it is not among them."""

    def entry(standing: Standing, named: bool) -> LeaderboardEntry:
        mine = standing.enrollment_id == viewer_enrollment_id
        return LeaderboardEntry(
            rank=standing.rank,
            name=standing.name if named or mine else None,
            value=standing.value,
            enrollment_id=standing.enrollment_id,
            is_viewer=mine,
        )

    if visibility is None:
        return [entry(s, True) for s in board.top]
    if visibility is LeaderboardVisibility.OWN_RANK_ONLY:
        shown = []
    else:
        named = visibility is LeaderboardVisibility.NAMES
        shown = [entry(s, named) for s in board.top]
    if board.viewer is not None and not any(e.is_viewer for e in shown):
        shown.append(entry(board.viewer, True))
    return shown


# The aggregate over active enrollments with a value (materialized once), its top by value
# (ties by enrollment), ranked (the top holds every greater value: RANK() over it is exact),
# then the viewer's row when it is not in the top (1 + how many are greater), with names.
_RANKED = (
    "WITH a(enrollment_id, value) AS ({aggregate}), "
    "v AS MATERIALIZED (SELECT a.enrollment_id, a.value FROM a "
    "JOIN enrollments e ON e.id = a.enrollment_id WHERE e.status = 'ACTIVE' AND a.value > 0), "
    "t AS (SELECT enrollment_id, value FROM v ORDER BY value DESC, enrollment_id LIMIT {{}}), "
    "w AS (SELECT enrollment_id, value, RANK() OVER (ORDER BY value DESC) AS rank FROM t "
    "UNION ALL SELECT x.enrollment_id, x.value, "
    "1 + (SELECT COUNT(*) FROM v g WHERE g.value > x.value) FROM v x "
    "WHERE x.enrollment_id = {{}} AND x.enrollment_id NOT IN (SELECT enrollment_id FROM t)) "
    "SELECT w.enrollment_id, w.value, w.rank, p.name, (SELECT COUNT(*) FROM v) FROM w "
    "JOIN enrollments e ON e.id = w.enrollment_id JOIN partners p ON p.id = e.partner_id "
    "ORDER BY w.value DESC, w.enrollment_id"
)


async def standings(
    program: Program,
    metric: LeaderboardMetric,
    since: datetime | None,
    first: int,
    viewer: Enrollment | None = None,
) -> Board:
    """The program's `first` best active enrollments by `metric` since `since`, and the
    viewer's standing (one statement: the aggregate, ranked, only those rows read back)."""
    aggregate, params = metrics.program_values_sql(program.pk, BadgeMetric(metric), since)
    # at least one row when anything is listed: it carries the count a zero viewer follows
    limit = max(first, 1)
    rows = await select(
        _RANKED.format(aggregate=aggregate), [*params, limit, viewer.pk if viewer else 0]
    )

    def value(raw: object) -> Decimal:
        number = int(str(raw))
        if metric is LeaderboardMetric.REVENUE:
            return to_decimal(number, program.currency)
        return Decimal(number)

    found = [Standing(int(e), str(name), value(raw), int(rank)) for e, raw, rank, name, _ in rows]
    top = found[:first]
    viewer_standing = None
    if viewer is not None:
        mine = [s for s in found if s.enrollment_id == viewer.pk]
        listed = int(rows[0][4]) if rows else 0
        viewer_standing = mine[0] if mine else await _unlisted(viewer, listed + 1)
    return Board(top=top, viewer=viewer_standing)


async def _unlisted(viewer: Enrollment, rank: int) -> Standing:
    """A viewer with nothing to count: value 0, after everyone listed."""
    await viewer.fetch_related("partner")
    return Standing(viewer.pk, viewer.partner.name, Decimal(0), rank)


async def leaderboard(
    program_id: int,
    metric: LeaderboardMetric,
    period: LeaderboardPeriod = LeaderboardPeriod.ALL_TIME,
    first: int = 10,
    viewer_partner_id: int | None = None,
    at: datetime | None = None,
) -> list[LeaderboardEntry]:
    """A program's leaderboard as a viewer sees it: a partner (`viewer_partner_id`) per the
    program's visibility, or a program-wide reader (None). An unknown program, or one the
    partner is not actively enrolled in, has no entries."""
    program = await Program.get_or_none(id=program_id)
    if program is None:
        return []
    viewer = None
    if viewer_partner_id is not None:
        viewer = await Enrollment.get_or_none(
            program_id=program_id, partner_id=viewer_partner_id, status=EnrollmentStatus.ACTIVE
        )
        if viewer is None:
            return []
    first = max(0, min(first, MAX_ENTRIES))
    visibility = None if viewer is None else program.leaderboard_visibility
    if visibility is LeaderboardVisibility.OWN_RANK_ONLY:
        first = 0  # only the viewer's own row is read
    since = period_start(period, at or utcnow())
    board = await standings(program, metric, since, first, viewer)
    return visible_entries(board, visibility, None if viewer is None else viewer.pk)
