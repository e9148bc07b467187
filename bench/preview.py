"""Benchmark: `attributionPreview` over a program's stored conversions, on SQLite.

    python bench/preview.py [--conversions 100000] [--touchpoints 1000000] [--partners 1000]
                            [--runs 3] [--database URL] [--keep]

Generates one program with `--partners` enrollments, one customer per conversion, and
`--touchpoints` touchpoints spread over the customers' 30-day windows (random partners, kinds
and roles; some by the customer's visitor cookie rather than its id); then times the domain
call the GraphQL field makes (`domain.attribution.services.preview`, LINEAR against stored
LAST_TOUCH credits, whole history), best and median of --runs, with where the time goes.
Bar (issue 3): under 5 s on SQLite. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from tortoise import connections  # noqa: E402

from domain import db  # noqa: E402
from domain.actor import Actor  # noqa: E402
from domain.attribution import services  # noqa: E402
from domain.attribution.models import AttributionCredit  # noqa: E402
from domain.clock import epoch_us  # noqa: E402
from domain.programs.models import AttributionModelKind, Program  # noqa: E402
from domain.programs.rules import AttributionSettings  # noqa: E402
from domain.settings import Settings  # noqa: E402

BAR_SECONDS = 5.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = ["CLICK"] * 6 + ["LEAD", "DEAL", "WEBINAR", "MEETING"]
ROLES = [None, "SOURCE", "INFLUENCE", "CLOSE"]


def _stamp(at: datetime) -> str:
    """How Tortoise stores an aware datetime in SQLite (checked by `_check_format`)."""
    return at.isoformat(sep=" ")


async def _check_format(program_id: int) -> None:
    from domain.tracking.models import Customer

    row = await Customer.create(program_id=program_id, external_id="format-check")
    conn = connections.get("default")
    _, rows = await conn.execute_query("SELECT created_at FROM customers WHERE id = ?", [row.pk])
    stored = rows[0]["created_at"]
    expected = _stamp(row.created_at)
    assert stored == expected, f"SQLite stores {stored!r}, the bench writes {expected!r}"
    await row.delete()


async def generate(conversions: int, touchpoints: int, partners: int, seed: int) -> int:
    rng = random.Random(seed)
    conn = connections.get("default")
    program = await Program.create(
        name="Bench", currency="EUR", destination_url="https://bench.example/",
        attribution_model=AttributionModelKind.LAST_TOUCH,
    )  # fmt: skip
    await _check_format(program.pk)
    now = _stamp(datetime.now(UTC))
    await conn.execute_many(
        "INSERT INTO partners (name, email, status, created_at) VALUES (?, ?, 'ACTIVE', ?)",
        [[f"Partner {i}", f"p{i}@bench.example", now] for i in range(partners)],
    )
    _, rows = await conn.execute_query("SELECT id FROM partners ORDER BY id")
    await conn.execute_many(
        "INSERT INTO enrollments (program_id, partner_id, status, tier_pinned, referral_code, "
        "code_key, created_at) VALUES (?, ?, 'ACTIVE', 0, ?, ?, ?)",
        [[program.pk, r["id"], f"P{r['id']}", f"p{r['id']}", now] for r in rows],
    )
    _, rows = await conn.execute_query("SELECT id FROM enrollments ORDER BY id")
    enrollments = [r["id"] for r in rows]
    await conn.execute_many(
        "INSERT INTO customers (program_id, external_id, created_at) VALUES (?, ?, ?)",
        [[program.pk, f"c{i}", now] for i in range(conversions)],
    )
    _, rows = await conn.execute_query("SELECT id FROM customers ORDER BY id")
    customers = [r["id"] for r in rows if r["id"]]
    sales = [T0 + timedelta(days=rng.uniform(30, 365)) for _ in customers]
    touches = []
    for n in range(touchpoints):
        i = n % len(customers)
        at = sales[i] - timedelta(days=rng.uniform(0, 29.9))
        by_visitor = rng.random() < 0.3  # a click before the customer was identified
        touches.append([
            program.pk, rng.choice(enrollments), rng.choice(KINDS), rng.choice(ROLES),
            _stamp(at), epoch_us(at), None if by_visitor else customers[i],
            f"v{customers[i]}" if by_visitor else None, now,
        ])  # fmt: skip
    for chunk in range(0, len(touches), 100_000):
        await conn.execute_many(
            "INSERT INTO touchpoints (program_id, enrollment_id, kind, role, occurred_at, "
            "occurred_us, customer_id, visitor_id, excluded, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            touches[chunk : chunk + 100_000],
        )
    await conn.execute_many(
        "INSERT INTO conversions (program_id, external_id, kind, amount_minor, refunded_minor, "
        "currency, occurred_at, status, customer_id, visitor_id, verified, created_at) "
        "VALUES (?, ?, 'SALE', ?, 0, 'EUR', ?, 'CONFIRMED', ?, ?, 1, ?)",
        [
            [program.pk, f"x{i}", rng.randint(100, 100_000), _stamp(at), c, f"v{c}", now]
            for i, (c, at) in enumerate(zip(customers, sales, strict=True))
        ],
    )
    return program.pk


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite://{tmp}/bench.sqlite3"
        settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, development=True)
        await db.migrate(settings)
        await db.open_database(settings)
        try:
            start = time.perf_counter()
            program_id = await generate(
                args.conversions, args.touchpoints, args.partners, args.seed
            )
            print(f"generated in {time.perf_counter() - start:.1f} s")
            start = time.perf_counter()
            await services.recompute(Actor.system("bench"), program_id, None, None)
            credits = await AttributionCredit.all().count()
            print(f"stored LAST_TOUCH credits ({credits}) in {time.perf_counter() - start:.1f} s")
            spec = AttributionSettings(model=AttributionModelKind.LINEAR)
            program = await Program.get(id=program_id)
            start = time.perf_counter()
            journeys = await services.load_journeys(program, None, None)
            loaded = time.perf_counter() - start
            print(f"loading {len(journeys)} journeys alone: {loaded:.2f} s")
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                rows = await services.preview(program_id, spec, None, None)
                times.append(time.perf_counter() - start)
            best, median = min(times), statistics.median(times)
            verdict = "ok" if best < BAR_SECONDS else "FAIL"
            print(
                f"attributionPreview: {len(rows)} enrollments, best {best:.2f} s, "
                f"median {median:.2f} s   bar < {BAR_SECONDS:.0f} s: {verdict}"
            )
        finally:
            await db.close_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--touchpoints", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", help="a sqlite:// URL (default: a temporary file)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
