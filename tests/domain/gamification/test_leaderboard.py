"""Leaderboards over a real database: rankings worked by hand (ties share a rank, listed in
order of enrollment), the three periods and their edges, every metric, active enrollments
only, a partner's own entry outside the top, and what each visibility lets a partner see.

The board is asked "as of" AT, a fixed instant after all the data; every value is worked in
the comment beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.actor import Actor
from domain.gamification import metrics
from domain.gamification.leaderboard import (
    LeaderboardEntry,
    LeaderboardMetric,
    LeaderboardPeriod,
    leaderboard,
    period_start,
)
from domain.gamification.models import BadgeMetric, PointEntry, PointKind
from domain.partners import services as partners
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs import services as programs
from domain.programs.models import LeaderboardVisibility, Program
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity
from domain.tracking.models import ConversionKind

ADMIN = Actor("admin:ana@example.com")
AT = datetime(2026, 3, 20, 12, tzinfo=UTC)  # THIS_MONTH: since March 1; 30 days: since Feb 18
POINTS, REVENUE = LeaderboardMetric.POINTS, LeaderboardMetric.REVENUE
CONVERSIONS, CUSTOMERS = LeaderboardMetric.CONVERSIONS, LeaderboardMetric.REFERRED_CUSTOMERS
MONTH, DAYS_30, ALL = (
    LeaderboardPeriod.THIS_MONTH,
    LeaderboardPeriod.LAST_30_DAYS,
    LeaderboardPeriod.ALL_TIME,
)


def ago(days: float) -> datetime:
    return AT - timedelta(days=days)


@dataclass
class World:
    program: Program
    by_name: dict[str, Enrollment]

    def __getitem__(self, name: str) -> Enrollment:
        return self.by_name[name]


async def make_world(names: str = "ABCDEFG", name: str = "Shop") -> World:
    """A EUR program with one partner per letter (code = the letter x 3)."""
    program = await programs.create_program(
        ADMIN,
        programs.ProgramSpec(name=name, currency="EUR", destination_url="https://shop.example"),
    )
    found = {}
    for letter in names:
        email = f"{letter.lower()}.{program.pk}@example.com"
        partner = await partners.create_partner(ADMIN, f"Partner {letter}", email)
        code = f"{letter * 3}{program.pk}"
        found[letter] = await partners.enroll_partner(ADMIN, program.pk, partner.pk, None, code)
    return World(program, found)


async def earn(world: World, who: str, points: int, at: datetime, kind: str = "CONVERSION") -> None:
    await PointEntry.create(
        program_id=world.program.pk,
        enrollment_id=world[who].pk,
        kind=PointKind(kind),
        points=points,
        created_at=at,
    )


async def suspend(world: World, who: str) -> None:
    await partners.update_enrollment(ADMIN, world[who].pk, status=EnrollmentStatus.SUSPENDED)


async def board(
    world: World,
    metric: LeaderboardMetric = POINTS,
    period: LeaderboardPeriod = ALL,
    first: int = 10,
    viewer: str | None = None,
) -> list[LeaderboardEntry]:
    partner = None if viewer is None else world[viewer].partner_id
    return await leaderboard(world.program.pk, metric, period, first, partner, at=AT)


def rows(world: World, entries: list[LeaderboardEntry]) -> list[tuple[int, str | None, str, bool]]:
    """(rank, who, value, is the viewer) of each entry; `who` is the letter, or None when the
    name is hidden (the letter is then read from the enrollment the entry points at)."""
    letters = {e.pk: letter for letter, e in world.by_name.items()}
    return [
        (
            e.rank,
            letters[e.enrollment_id] if e.name is not None else None,
            str(e.value),
            e.is_viewer,
        )
        for e in entries
    ]


async def points_world() -> World:
    """Points as of AT (March 20):
    A: 100 on Feb 8 (40 days ago), 50 on Mar 10         all 150, 30 days 50, month 50
    B: 150 on Mar 15                                    all 150, 30 days 150, month 150
    C: 150 on Feb 23 (25 days ago)                      all 150, 30 days 150, month 0
    D: 30 on Mar 18 and a badge's 20 on Mar 19          all 50, 30 days 50, month 50
    E: nothing                                          not listed
    F: 500 on Mar 19, then suspended                    never listed
    G: 200 on Mar 17, a refund's reversal of -50 Mar 18 all 150, 30 days 150, month 150
    """
    world = await make_world()
    await earn(world, "A", 100, ago(40))
    await earn(world, "A", 50, ago(10))
    await earn(world, "B", 150, ago(5))
    await earn(world, "C", 150, ago(25))
    await earn(world, "D", 30, ago(2))
    await earn(world, "D", 20, ago(1), kind="BADGE")
    await earn(world, "F", 500, ago(1))
    await suspend(world, "F")
    await earn(world, "G", 200, ago(3))
    await earn(world, "G", -50, ago(2), kind="REVERSAL")
    return world


# --- periods (pure) ---------------------------------------------------------------------------


def test_this_month_starts_at_midnight_utc_on_the_first() -> None:
    at = datetime(2026, 3, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert period_start(MONTH, at) == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_start(MONTH, AT) == datetime(2026, 3, 1, tzinfo=UTC)


def test_last_30_days_is_a_trailing_window_and_all_time_has_no_start() -> None:
    assert period_start(DAYS_30, AT) == datetime(2026, 2, 18, 12, tzinfo=UTC)
    assert period_start(ALL, AT) is None


# --- rankings -------------------------------------------------------------------------------


async def test_all_time_points_ties_share_rank_one_and_the_next_rank_skips() -> None:
    world = await points_world()
    assert rows(world, await board(world)) == [
        (1, "A", "150", False),  # A, B, C and G tie at 150: listed by enrollment
        (1, "B", "150", False),
        (1, "C", "150", False),
        (1, "G", "150", False),
        (5, "D", "50", False),  # four are greater: rank 5; E (0) and F (suspended) are absent
    ]


async def test_this_month_counts_points_since_the_first_of_the_month() -> None:
    world = await points_world()
    assert rows(world, await board(world, period=MONTH)) == [
        (1, "B", "150", False),
        (1, "G", "150", False),
        (3, "A", "50", False),  # A's February 100 is last month
        (3, "D", "50", False),
    ]  # C earned in February only: 0, not listed


async def test_last_30_days_counts_points_of_the_trailing_window() -> None:
    world = await points_world()
    assert rows(world, await board(world, period=DAYS_30)) == [
        (1, "B", "150", False),
        (1, "C", "150", False),  # February 23 is within 30 days
        (1, "G", "150", False),
        (4, "A", "50", False),  # February 8 is not
        (4, "D", "50", False),
    ]


async def test_period_edges_an_entry_at_the_start_counts_one_just_before_does_not() -> None:
    world = await make_world("ABCD")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await earn(world, "A", 10, start)
    await earn(world, "B", 1000, start - timedelta(microseconds=1))
    thirty = AT - timedelta(days=30)
    await earn(world, "C", 5, thirty)
    await earn(world, "D", 7, thirty - timedelta(microseconds=1))
    assert rows(world, await board(world, period=MONTH)) == [(1, "A", "10", False)]
    assert rows(world, await board(world, period=DAYS_30)) == [
        (1, "B", "1000", False),
        (2, "A", "10", False),
        (3, "C", "5", False),
    ]


async def test_first_cuts_the_top_within_a_tie() -> None:
    world = await points_world()
    assert rows(world, await board(world, first=2)) == [
        (1, "A", "150", False),
        (1, "B", "150", False),
    ]
    assert await board(world, first=0) == []


async def test_a_program_without_activity_or_unknown_has_no_entries() -> None:
    world = await make_world("AB")
    assert await board(world) == []
    assert await leaderboard(world.program.pk + 1000, POINTS, ALL, 10, None, at=AT) == []


async def test_another_programs_points_do_not_count() -> None:
    world = await points_world()
    other = await make_world("Z", name="Other")
    await earn(other, "Z", 10_000, ago(1))
    assert [e.value for e in await board(world)][0] == Decimal(150)
    assert rows(other, await board(other)) == [(1, "Z", "10000", False)]


# --- conversion metrics ---------------------------------------------------------------------


async def convert(
    world: World,
    who: str,
    external_id: str,
    amount: str,
    at: datetime,
    customer: str | None = None,
    kind: ConversionKind = ConversionKind.SALE,
) -> None:
    code = f"{who * 3}{world.program.pk}"
    identity = Identity(customer_id=customer, referral_code=code)
    spec = ConversionSpec(external_id, kind, Decimal(amount), "EUR", identity, at)
    await ingest.record_conversion(ADMIN, world.program.pk, spec)


async def sales_world() -> World:
    """Conversions as of AT (March 20), each credited wholly to its partner's code:
    A: SALE 100.00 (customer c1, Feb 8); SALE 50.00 (c2, Mar 15) refunded 20.00; LEAD (Mar 17)
    B: SALE 80.00 (c3, Mar 18); RENEWAL 40.00 (c3, Mar 19)
    C: SALE 10.00 without a customer (Mar 19)
    """
    world = await make_world("ABC")
    await convert(world, "A", "a1", "100.00", ago(40), "c1")
    await convert(world, "A", "a2", "50.00", ago(5), "c2")
    await ingest.refund_conversion(ADMIN, world.program.pk, "a2", Decimal("20.00"))
    await convert(world, "A", "a3", "0", ago(3), kind=ConversionKind.LEAD)
    await convert(world, "B", "b1", "80.00", ago(2), "c3")
    await convert(world, "B", "b2", "40.00", ago(1), "c3", kind=ConversionKind.RENEWAL)
    await convert(world, "C", "c1", "10.00", ago(1))
    return world


async def test_revenue_is_sales_and_renewals_less_refunds_in_currency_units() -> None:
    world = await sales_world()
    assert rows(world, await board(world, REVENUE)) == [
        (1, "A", "130.00", False),  # 100 + (50 - 20); the lead has no revenue
        (2, "B", "120.00", False),  # 80 + 40
        (3, "C", "10.00", False),
    ]
    assert rows(world, await board(world, REVENUE, MONTH)) == [
        (1, "B", "120.00", False),
        (2, "A", "30.00", False),  # the February sale is last month
        (3, "C", "10.00", False),
    ]


async def test_conversions_count_every_credited_kind() -> None:
    world = await sales_world()
    assert rows(world, await board(world, CONVERSIONS)) == [
        (1, "A", "3", False),  # two sales and a lead
        (2, "B", "2", False),
        (3, "C", "1", False),
    ]
    assert rows(world, await board(world, CONVERSIONS, DAYS_30)) == [
        (1, "A", "2", False),  # not the February sale
        (1, "B", "2", False),
        (3, "C", "1", False),
    ]


async def test_referred_customers_are_distinct_customers_with_a_sale() -> None:
    world = await sales_world()
    assert rows(world, await board(world, CUSTOMERS)) == [
        (1, "A", "2", False),  # c1 and c2
        (2, "B", "1", False),  # c3 (its renewal is no second customer)
    ]  # C's sale has no customer: 0, not listed


@pytest.mark.parametrize("metric", list(LeaderboardMetric))
@pytest.mark.parametrize("period", list(LeaderboardPeriod))
async def test_values_agree_with_the_badge_metrics(
    metric: LeaderboardMetric, period: LeaderboardPeriod
) -> None:
    world = await sales_world()
    await earn(world, "A", 7, ago(4))
    await earn(world, "B", 40, ago(20))
    await earn(world, "C", 5, ago(60))
    entries = await board(world, metric, period)
    ids = [e.enrollment_id for e in entries]
    expected = await metrics.values(
        world.program.pk, "EUR", BadgeMetric(metric), ids, period_start(period, AT)
    )
    assert entries, "every metric lists someone here"
    assert [e.value for e in entries] == [expected[i] for i in ids]


# --- the viewer -----------------------------------------------------------------------------


async def test_a_partner_outside_the_top_gets_its_own_entry_appended() -> None:
    world = await points_world()
    assert rows(world, await board(world, first=3, viewer="D")) == [
        (1, "A", "150", False),
        (1, "B", "150", False),
        (1, "C", "150", False),
        (5, "D", "50", True),  # 1 + four greater (G too, beyond the top)
    ]


async def test_a_partner_tied_with_the_top_but_cut_off_keeps_the_shared_rank() -> None:
    world = await points_world()
    entries = await board(world, first=3, viewer="G")
    assert rows(world, entries)[-1] == (1, "G", "150", True)
    assert len(entries) == 4


async def test_a_partner_in_the_top_is_marked_and_not_repeated() -> None:
    world = await points_world()
    assert rows(world, await board(world, first=2, viewer="B")) == [
        (1, "A", "150", False),
        (1, "B", "150", True),
    ]


async def test_a_partner_with_nothing_ranks_after_everyone_listed_with_zero() -> None:
    world = await points_world()
    assert rows(world, await board(world, first=1, viewer="E")) == [
        (1, "A", "150", False),
        (6, "E", "0", True),  # five listed (A, B, C, G, D) are greater
    ]
    only = await board(world, first=0, viewer="E")
    assert rows(world, only) == [(6, "E", "0", True)]


async def test_a_partner_alone_with_nothing_is_first_with_zero() -> None:
    world = await make_world("AB")
    assert rows(world, await board(world, viewer="B")) == [(1, "B", "0", True)]


async def test_a_suspended_or_foreign_partner_sees_no_board() -> None:
    world = await points_world()
    assert await board(world, viewer="F") == []  # suspended
    other = await make_world("Z", name="Other")
    outsider = other["Z"].partner_id
    assert await leaderboard(world.program.pk, POINTS, ALL, 10, outsider, at=AT) == []


# --- visibility -----------------------------------------------------------------------------


async def set_visibility(world: World, visibility: LeaderboardVisibility) -> None:
    spec = programs.ProgramSpec(leaderboard_visibility=visibility)
    await programs.update_program(ADMIN, world.program.pk, spec)


async def test_names_shows_every_partners_name() -> None:
    world = await points_world()
    entries = await board(world, first=2, viewer="D")
    assert [e.name for e in entries] == ["Partner A", "Partner B", "Partner D"]


async def test_anonymized_hides_others_names_but_not_the_viewers() -> None:
    world = await points_world()
    await set_visibility(world, LeaderboardVisibility.ANONYMIZED)
    entries = await board(world, first=2, viewer="B")
    assert [(e.rank, e.name, str(e.value), e.is_viewer) for e in entries] == [
        (1, None, "150", False),
        (1, "Partner B", "150", True),
    ]
    appended = await board(world, first=1, viewer="D")
    assert [(e.rank, e.name, e.is_viewer) for e in appended] == [
        (1, None, False),
        (5, "Partner D", True),
    ]


async def test_own_rank_only_answers_the_viewers_entry_alone() -> None:
    world = await points_world()
    await set_visibility(world, LeaderboardVisibility.OWN_RANK_ONLY)
    assert rows(world, await board(world, viewer="D")) == [(5, "D", "50", True)]
    assert rows(world, await board(world, viewer="A")) == [(1, "A", "150", True)]
    assert rows(world, await board(world, viewer="E")) == [(6, "E", "0", True)]


@pytest.mark.parametrize("visibility", list(LeaderboardVisibility))
async def test_a_program_wide_reader_sees_every_name_whatever_the_visibility(
    visibility: LeaderboardVisibility,
) -> None:
    world = await points_world()
    await set_visibility(world, visibility)
    entries = await board(world)
    assert [e.name for e in entries] == [f"Partner {x}" for x in "ABCGD"]
    assert not any(e.is_viewer for e in entries)
