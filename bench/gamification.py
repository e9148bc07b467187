"""Benchmark: gamification (issue 6). The leaderboard part:

    python bench/gamification.py leaderboard [--enrollments 10000] [--points 1000000]
                                             [--conversions 100000] [--runs 30] [--seed 1]
                                             [--postgres URL | --sqlite URL]

Generates one program with `--enrollments` enrollments (1 % suspended), `--points` points
entries spread over the last 400 days (raw multi-row inserts; a few partners earn far more
than most, as in real programs), and `--conversions` credited conversions (SALE, RENEWAL and
LEAD, some refunded, some shared by two partners) over the same days. Then times the domain
call the GraphQL field makes (`domain.gamification.leaderboard.leaderboard`, top 10) for every
metric and period, as an admin and as a partner outside the top (its own row appended):
median and p99 of `--runs` calls after warm-up calls (and the median CPU time of the process,
which a busy machine inflates less than wall time). Checked: the POINTS boards against the
generator's own books (values, competition ranks), the other metrics against
`metrics.values` for the enrollments listed. Shows the plan of each statement (EXPLAIN QUERY
PLAN). Bar (issue 6): under 100 ms on SQLite.

Exit status 2 when a check fails; a missed bar is reported, not an error. `--postgres` runs
the same on an empty PostgreSQL database (migrated, filled and left as it is); `--sqlite`
fills a SQLite file and keeps it (default: a temporary one), and `--reuse` times that file
again without generating (the books read back from it). Figures:
bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from pydantic import SecretStr  # noqa: E402
from tortoise import connections  # noqa: E402

from domain import db  # noqa: E402
from domain.gamification import metrics  # noqa: E402
from domain.gamification.leaderboard import (  # noqa: E402
    LeaderboardMetric,
    LeaderboardPeriod,
    leaderboard,
    period_start,
)
from domain.gamification.models import BadgeMetric, PointEntry  # noqa: E402
from domain.programs.models import Program  # noqa: E402
from domain.settings import Settings  # noqa: E402

BAR_LEADERBOARD_MS = 100.0
NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = 400
CHUNK = 500  # rows per multi-row INSERT
WARM_UP = 3
TOP = 10


@dataclass
class Db:
    """What differs between SQLite and PostgreSQL for the raw SQL of this benchmark."""

    postgres: bool

    def sql(self, query: str) -> str:
        if not self.postgres:
            return query
        parts = query.split("?")
        return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))

    def stamp(self, at: datetime) -> Any:
        """How Tortoise stores an aware datetime in SQLite (checked by `check_format`)."""
        return at if self.postgres else at.isoformat(sep=" ")

    async def execute(self, query: str, values: list[Any] | None = None) -> list[Any]:
        _, rows = await connections.get("default").execute_query(self.sql(query), values or [])
        return list(rows)

    async def insert(self, table: str, columns: str, rows: list[list[Any]]) -> None:
        """Multi-row INSERTs of CHUNK rows each."""
        width = len(columns.split(","))
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            marks = ", ".join(["(" + ", ".join(["?"] * width) + ")"] * len(chunk))
            values = [v for row in chunk for v in row]
            await self.execute(f"INSERT INTO {table} ({columns}) VALUES {marks}", values)


@dataclass
class Books:
    """Points the generator wrote, per enrollment and day, to check the boards against."""

    points: dict[int, list[tuple[datetime, int]]] = field(default_factory=lambda: defaultdict(list))

    def totals(self, since: datetime | None, active: set[int]) -> dict[int, int]:
        return {
            e: sum(p for at, p in rows if since is None or at >= since)
            for e, rows in self.points.items()
            if e in active
        }


async def check_format(dbx: Db, program_id: int, enrollment_id: int) -> None:
    if dbx.postgres:
        return
    at = NOW - timedelta(days=1, microseconds=1)
    row = await PointEntry.create(
        program_id=program_id, enrollment_id=enrollment_id, kind="BADGE", points=0, created_at=at
    )
    stored = await dbx.execute("SELECT created_at FROM point_entries WHERE id = ?", [row.pk])
    assert stored[0][0] == dbx.stamp(at), f"SQLite stores {stored[0][0]}, not {dbx.stamp(at)}"
    await row.delete()


async def setup(dbx: Db, count: int) -> tuple[int, list[int], set[int]]:
    """A program and its enrollments: (program id, enrollment ids, the active ones)."""
    program = await Program.create(
        name="Bench", currency="EUR", destination_url="https://bench.example/"
    )
    now = dbx.stamp(NOW)
    await dbx.insert(
        "partners",
        "name, email, status, created_at",
        [[f"Partner {i}", f"p{i}@bench.example", "ACTIVE", now] for i in range(count)],
    )
    partners = [r[0] for r in await dbx.execute("SELECT id FROM partners ORDER BY id")]
    await dbx.insert(
        "enrollments",
        "program_id, partner_id, status, tier_pinned, referral_code, code_key, created_at",
        [
            [program.pk, p, "SUSPENDED" if p % 100 == 0 else "ACTIVE", False, f"P{p}", f"p{p}", now]
            for p in partners
        ],
    )
    rows = await dbx.execute("SELECT id, status FROM enrollments ORDER BY id")
    enrollments = [r[0] for r in rows]
    await check_format(dbx, program.pk, enrollments[0])
    return program.pk, enrollments, {r[0] for r in rows if r[1] == "ACTIVE"}


def _weights(rng: random.Random, enrollments: list[int]) -> list[float]:
    """A long tail: a few partners do most of the referring."""
    return [rng.paretovariate(1.2) for _ in enrollments]


async def points(
    dbx: Db, rng: random.Random, program_id: int, enrollments: list[int], count: int
) -> Books:
    books = Books()
    chosen = rng.choices(enrollments, weights=_weights(rng, enrollments), k=count)
    rows = []
    for enrollment in chosen:
        at = NOW - timedelta(seconds=rng.randrange(DAYS * 86_400))
        value = rng.choice((10, 10, 10, 25, 50, 100))
        books.points[enrollment].append((at, value))
        rows.append([program_id, enrollment, "CONVERSION", value, dbx.stamp(at)])
    rows.sort(key=lambda r: r[4])  # appended over time, as the ledger is
    await dbx.insert("point_entries", "program_id, enrollment_id, kind, points, created_at", rows)
    return books


async def conversions(
    dbx: Db, rng: random.Random, program_id: int, enrollments: list[int], count: int
) -> None:
    """Customers, conversions and their credits (a tenth shared half and half)."""
    now = dbx.stamp(NOW)
    customers = max(1, count // 2)
    await dbx.insert(
        "customers",
        "program_id, external_id, created_at",
        [[program_id, f"c{i}", now] for i in range(customers)],
    )
    ids = [r[0] for r in await dbx.execute("SELECT id FROM customers ORDER BY id")]
    rows = []
    for i in range(count):
        kind = rng.choice(("SALE", "SALE", "SALE", "RENEWAL", "LEAD"))
        amount = 0 if kind == "LEAD" else rng.randint(1_000, 50_000)
        refunded = amount // 2 if amount and rng.random() < 0.05 else 0
        at = NOW - timedelta(seconds=rng.randrange(DAYS * 86_400))
        rows.append([program_id, f"x{i}", kind, amount, refunded, "EUR", dbx.stamp(at),
                     "CONFIRMED", rng.choice(ids), True, now])  # fmt: skip
    await dbx.insert(
        "conversions",
        "program_id, external_id, kind, amount_minor, refunded_minor, currency, occurred_at, "
        "status, customer_id, verified, created_at",
        rows,
    )
    made = await dbx.execute("SELECT id, amount_minor FROM conversions ORDER BY id")
    weights = _weights(rng, enrollments)
    credits = []
    for conversion, amount in made:
        first, second = rng.choices(enrollments, weights=weights, k=2)
        shares = [(first, amount)]
        if rng.random() < 0.1 and second != first:
            shares = [(first, amount - amount // 2), (second, amount // 2)]
        for enrollment, share in shares:
            credits.append([conversion, enrollment, "LAST_TOUCH", "1", "1", share, "EUR", "[]",
                            now])  # fmt: skip
    await dbx.insert(
        "attribution_credits",
        "conversion_id, enrollment_id, model, points, total, amount_minor, currency, "
        "touchpoints, created_at",
        credits,
    )


def competition_ranks(values: list[int]) -> list[int]:
    """Ranks of values sorted descending: 1 + how many are strictly greater."""
    return [1 + sum(1 for other in values if other > v) for v in values]


async def check_points(program_id: int, books: Books, active: set[int]) -> list[str]:
    """The POINTS boards of every period against the generator's books."""
    problems = []
    for period in LeaderboardPeriod:
        totals = books.totals(period_start(period, NOW), active)
        expected = sorted(((v, -e) for e, v in totals.items() if v > 0), reverse=True)[:TOP]
        board = await leaderboard(program_id, LeaderboardMetric.POINTS, period, TOP, at=NOW)
        got = [(int(entry.value), -entry.enrollment_id) for entry in board]
        if got != expected:
            problems.append(f"POINTS {period}: {got[:3]}... != books {expected[:3]}...")
        everyone = sorted((v for v in totals.values() if v > 0), reverse=True)
        ranks = competition_ranks(everyone)[: len(board)]
        if [entry.rank for entry in board] != ranks:
            problems.append(f"POINTS {period}: ranks {[e.rank for e in board]} != {ranks}")
    return problems


async def check_metric(program: Program, metric: LeaderboardMetric) -> list[str]:
    """A board's values against `metrics.values` for the enrollments it lists."""
    problems = []
    for period in LeaderboardPeriod:
        board = await leaderboard(program.pk, metric, period, TOP, at=NOW)
        ids = [entry.enrollment_id for entry in board]
        found = await metrics.values(
            program.pk, program.currency, BadgeMetric(metric), ids, period_start(period, NOW)
        )
        if [entry.value for entry in board] != [found[i] for i in ids]:
            problems.append(f"{metric} {period}: values differ from metrics.values")
        if [entry.value for entry in board] != sorted((e.value for e in board), reverse=True):
            problems.append(f"{metric} {period}: not in descending order")
    return problems


async def show_plan(dbx: Db, program_id: int, metric: LeaderboardMetric, since: Any) -> None:
    from domain.gamification.leaderboard import _RANKED

    aggregate, params = metrics.program_values_sql(program_id, BadgeMetric(metric), since)
    sql = _RANKED.format(aggregate=aggregate)
    marks = ["?" if not dbx.postgres else f"${n}" for n in range(1, len(params) + 3)]
    sql = sql.format(*marks)
    if dbx.postgres:
        rows = await dbx.execute("EXPLAIN " + sql, [*params, TOP, 0])
        for row in rows:
            print("      " + row[0])
        return
    _, rows = await connections.get("default").execute_query(
        "EXPLAIN QUERY PLAN " + sql, [*params, TOP, 0]
    )
    for row in rows:
        print(f"      {row[3]}")


def percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def time_boards(
    dbx: Db, program_id: int, viewer_partner: int, runs: int
) -> list[tuple[str, float, float]]:
    results = []
    for metric in LeaderboardMetric:
        for period in LeaderboardPeriod:
            since = period_start(period, NOW)
            print(f"  {metric} {period}")
            await show_plan(dbx, program_id, metric, since)
            for who, partner in (("admin", None), ("partner", viewer_partner)):
                for _ in range(WARM_UP):
                    await leaderboard(program_id, metric, period, TOP, partner, at=NOW)
                times, cpu = [], []
                for _ in range(runs):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    board = await leaderboard(program_id, metric, period, TOP, partner, at=NOW)
                    times.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
                median, p99 = statistics.median(times), percentile(times, 0.99)
                verdict = "ok" if median < BAR_LEADERBOARD_MS else "MISSED"
                print(
                    f"    {who:8} {len(board):2} entries  median {median:6.1f} ms  "
                    f"p99 {p99:6.1f} ms  (CPU median {statistics.median(cpu):6.1f} ms)   "
                    f"bar < {BAR_LEADERBOARD_MS:.0f} ms: {verdict}"
                )
                results.append((f"{metric} {period} {who}", median, p99))
    return results


async def reread(dbx: Db) -> tuple[int, set[int], Books]:
    """A kept database's program, its active enrollments and the books of its points (read
    row by row: the check still sums in Python what the boards sum in SQL)."""
    program_id = (await dbx.execute("SELECT MIN(id) FROM programs"))[0][0]
    rows = await dbx.execute(
        "SELECT id FROM enrollments WHERE program_id = ? AND status = 'ACTIVE'", [program_id]
    )
    books = Books()
    entries = await dbx.execute(
        "SELECT enrollment_id, created_at, points FROM point_entries WHERE program_id = ?",
        [program_id],
    )
    for enrollment, at, value in entries:
        books.points[enrollment].append((db.instant(at), value))
    return program_id, {r[0] for r in rows}, books


async def bench_leaderboard(args: argparse.Namespace, dbx: Db) -> int:
    start = time.perf_counter()
    if args.reuse:
        program_id, active, books = await reread(dbx)
        print(f"read back the last run's books in {time.perf_counter() - start:.1f} s")
    else:
        rng = random.Random(args.seed)
        program_id, enrollments, active = await setup(dbx, args.enrollments)
        books = await points(dbx, rng, program_id, enrollments, args.points)
        await conversions(dbx, rng, program_id, enrollments, args.conversions)
        await dbx.execute("VACUUM ANALYZE" if dbx.postgres else "ANALYZE")
        print(
            f"generated {len(enrollments)} enrollments, {args.points} points entries and "
            f"{args.conversions} conversions in {time.perf_counter() - start:.1f} s"
        )
    program = await Program.get(id=program_id)
    problems = await check_points(program_id, books, active)
    for metric in LeaderboardMetric:
        if metric is not LeaderboardMetric.POINTS:
            problems += await check_metric(program, metric)
    # a partner outside the top: the active enrollment with the fewest points
    totals = books.totals(None, active)
    last = min(active, key=lambda e: (totals.get(e, 0), e))
    partner = (await dbx.execute("SELECT partner_id FROM enrollments WHERE id = ?", [last]))[0][0]
    mine = await leaderboard(
        program_id, LeaderboardMetric.POINTS, first=TOP, viewer_partner_id=partner
    )
    if not mine or mine[-1].enrollment_id != last or not mine[-1].is_viewer:
        problems.append("the partner's own entry is not appended")
    results = await time_boards(dbx, program_id, partner, args.runs)
    worst = max(results, key=lambda r: r[1])
    print(f"slowest: {worst[0]}, median {worst[1]:.1f} ms, p99 {worst[2]:.1f} ms")
    for problem in problems:
        print("CHECK FAILED:", problem)
    return 2 if problems else 0


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or args.sqlite or f"sqlite://{tmp}/bench.sqlite3"
        settings = Settings(
            database_url=url, secret_key=SecretStr("bench-" + "x" * 40), development=True
        )
        await db.migrate(settings)
        await db.open_database(settings)
        try:
            return await bench_leaderboard(args, Db(postgres=args.postgres is not None))
        finally:
            await db.close_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    board = parts.add_parser("leaderboard", help="leaderboards over many points entries")
    board.add_argument("--enrollments", type=int, default=10_000)
    board.add_argument("--points", type=int, default=1_000_000)
    board.add_argument("--conversions", type=int, default=100_000)
    board.add_argument("--runs", type=int, default=30)
    board.add_argument("--seed", type=int, default=1)
    board.add_argument("--postgres", help="an empty PostgreSQL database's URL")
    board.add_argument("--sqlite", help="a sqlite:// URL to fill and keep (default: temporary)")
    board.add_argument("--reuse", action="store_true", help="time the --sqlite file as it is")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
