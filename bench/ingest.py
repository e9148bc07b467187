"""Benchmark: `recordConversions`, 1000 conversions per call, on SQLite with 100k touchpoints.

    python bench/ingest.py [--touchpoints 100000] [--customers 20000] [--partners 1000]
                           [--batches 10] [--codes 0.02] [--database URL]

Generates one LINEAR program with `--partners` enrollments and `--customers` customers, and
`--touchpoints` touchpoints over the 30 days before the sales (random partners, kinds and
roles; 30 % by the customer's visitor cookie only, not yet stitched). Then times `--batches`
calls of the domain function the mutation calls (`domain.tracking.ingest.record_conversions`),
1000 conversions each: each names a known customer (half of them also its visitor, which
stitches that visitor's touchpoints), a few a new customer, `--codes` of them a referral code
entered at checkout; each is attributed and its credits stored in the call. Then one more call
of 1000 through HTTP (the real app, a real admin JWT) to show what GraphQL adds.
Each credit is priced into the commission ledger in the same call (a decaying percentage rule
with a monthly cap, a referee reward on first sales); `--no-commissions` leaves the rule out.
`--gamification` adds point rules, a badge for each metric (a milestone among them) and tiers
partners qualify for by revenue, so each call also earns points, awards badges and promotes:
issue 6's bar is that this adds under 20 % to the time of the same run without it.
Bar (issue 4): at least 2,000 conversions per second on SQLite, attribution included.
Figures: bench/README.md.
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
from decimal import Decimal
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

import httpx  # noqa: E402
from tortoise import connections  # noqa: E402

from api.relay import to_global_id  # noqa: E402
from domain import db  # noqa: E402
from domain.actor import Actor  # noqa: E402
from domain.attribution.models import AttributionCredit  # noqa: E402
from domain.clock import epoch_us  # noqa: E402
from domain.commissions.models import Commission, CommissionRule  # noqa: E402
from domain.gamification import badges, points  # noqa: E402
from domain.gamification.criteria import BadgeSpec, PointTerms  # noqa: E402
from domain.gamification.models import BadgeAward, BadgeMetric, PointEntry  # noqa: E402
from domain.identity import services as identity  # noqa: E402
from domain.identity.models import UserKind  # noqa: E402
from domain.programs import services as programs  # noqa: E402
from domain.programs.models import (  # noqa: E402
    AttributionModelKind,
    Program,
    RewardKind,
    TierMetric,  # noqa: E402
)
from domain.programs.rules import TierSpec  # noqa: E402
from domain.settings import Settings  # noqa: E402
from domain.tracking import ingest  # noqa: E402
from domain.tracking.ingest_rules import ConversionSpec, Identity  # noqa: E402
from domain.tracking.models import Conversion, ConversionKind  # noqa: E402
from portal.app import create_app  # noqa: E402

BAR_PER_SECOND = 2000
BATCH = 1000
SALE_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
KINDS = ["CLICK"] * 6 + ["LEAD", "DEAL", "WEBINAR", "MEETING"]
ROLES = [None, "SOURCE", "INFLUENCE", "CLOSE"]
PASSWORD = "bench password 0123"


def _stamp(at: datetime) -> str:
    """How Tortoise stores an aware datetime in SQLite (bench/preview.py checks it)."""
    return at.isoformat(sep=" ")


async def generate(args: argparse.Namespace, rng: random.Random) -> tuple[int, list[str]]:
    """The program id and its referral codes."""
    conn = connections.get("default")
    program = await Program.create(
        name="Bench", currency="EUR", destination_url="https://bench.example/",
        attribution_model=AttributionModelKind.LINEAR,
        referee_reward_kind=RewardKind.FLAT_CREDIT, referee_reward_value=Decimal("5"),
    )  # fmt: skip
    if not args.no_commissions:  # every credit priced: a decaying percentage, a monthly cap
        await CommissionRule.create(
            program_id=program.pk, conversion_kind=ConversionKind.SALE, percentage=Decimal(20),
            half_life_days=30.0, monthly_cap_minor=500_000,
        )  # fmt: skip
    now = _stamp(datetime.now(UTC))
    await conn.execute_many(
        "INSERT INTO partners (name, email, status, created_at) VALUES (?, ?, 'ACTIVE', ?)",
        [[f"Partner {i}", f"p{i}@bench.example", now] for i in range(args.partners)],
    )
    _, rows = await conn.execute_query("SELECT id FROM partners ORDER BY id")
    await conn.execute_many(
        "INSERT INTO enrollments (program_id, partner_id, status, tier_pinned, referral_code, "
        "code_key, created_at) VALUES (?, ?, 'ACTIVE', 0, ?, ?, ?)",
        [[program.pk, r["id"], f"P{r['id']}", f"p{r['id']}", now] for r in rows],
    )
    _, rows = await conn.execute_query("SELECT id, referral_code FROM enrollments ORDER BY id")
    enrollments = [r["id"] for r in rows]
    codes = [r["referral_code"] for r in rows]
    await conn.execute_many(
        "INSERT INTO customers (program_id, external_id, created_at) VALUES (?, ?, ?)",
        [[program.pk, f"c{i}", now] for i in range(args.customers)],
    )
    _, rows = await conn.execute_query("SELECT id, external_id FROM customers ORDER BY id")
    customers = [(r["id"], r["external_id"]) for r in rows]
    touches = []
    for n in range(args.touchpoints):
        pk, external = customers[n % len(customers)]
        at = SALE_AT - timedelta(days=rng.uniform(0, 29.9))
        by_visitor = rng.random() < 0.3  # a click before the customer was identified
        touches.append([
            program.pk, rng.choice(enrollments), rng.choice(KINDS), rng.choice(ROLES),
            _stamp(at), epoch_us(at), None if by_visitor else pk,
            f"v-{external}" if by_visitor else None, now,
        ])  # fmt: skip
    for chunk in range(0, len(touches), 50_000):
        await conn.execute_many(
            "INSERT INTO touchpoints (program_id, enrollment_id, kind, role, occurred_at, "
            "occurred_us, customer_id, visitor_id, excluded, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            touches[chunk : chunk + 50_000],
        )
    return program.pk, codes


def batch_specs(
    args: argparse.Namespace, rng: random.Random, number: int, codes: list[str]
) -> list[ConversionSpec]:
    specs = []
    for i in range(BATCH):
        n = number * BATCH + i
        known = rng.random() < 0.95
        customer = f"c{rng.randrange(args.customers)}" if known else f"new-{n}"
        visitor = f"v-{customer}" if known and rng.random() < 0.5 else None
        code = rng.choice(codes) if rng.random() < args.codes else None
        specs.append(
            ConversionSpec(
                external_id=f"order-{n}",
                kind=ConversionKind.SALE,
                amount=Decimal(rng.randint(100, 100_000)) / 100,
                currency="EUR",
                identity=Identity(customer_id=customer, visitor_id=visitor, referral_code=code),
                occurred_at=SALE_AT,
            )
        )
    return specs


async def over_http(settings: Settings, program_id: int, specs: list[ConversionSpec]) -> float:
    await identity.create_user("bench@example.com", PASSWORD, UserKind.ADMIN)
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post(
            "/auth/login", json={"email": "bench@example.com", "password": PASSWORD}
        )
        token = login.json()["access_token"]
        items = [
            {
                "programId": to_global_id("Program", program_id),
                "externalId": s.external_id,
                "kind": str(s.kind),
                "amount": str(s.amount),
                "currency": s.currency,
                "customerId": s.identity.customer_id,
                "visitorId": s.identity.visitor_id,
                "referralCode": s.identity.referral_code,
                "occurredAt": SALE_AT.isoformat(),
            }
            for s in specs
        ]
        query = """mutation($input: RecordConversionsInput!) { recordConversions(input: $input) {
          conversions { id credits { share amount { amount } } } userErrors { field code } } }"""
        start = time.perf_counter()
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": {"input": {"conversions": items}}},
            headers={"Authorization": f"Bearer {token}"},
        )
        elapsed = time.perf_counter() - start
        body = response.json()
        assert response.status_code == 200, response.text[:500]
        assert "errors" not in body, response.text[:500]
        assert body["data"]["recordConversions"]["userErrors"] == []
    return elapsed


async def gamify(actor: Actor, program_id: int) -> None:
    """What `--gamification` adds: point rules, seven badges (one per metric, a milestone
    among them) and two tiers partners qualify for, so every call awards and promotes."""
    await points.set_point_rules(
        actor, program_id, [PointTerms(ConversionKind.SALE, per_conversion=10, per_unit=1),
                            PointTerms(ConversionKind.LEAD, per_conversion=2)],
    )  # fmt: skip
    for code, metric, threshold, repeating in (
        ("clicks", BadgeMetric.CLICKS, 100, False),
        ("leads", BadgeMetric.LEADS, 5, False),
        ("ten-sales", BadgeMetric.CONVERSIONS, 10, True),
        ("revenue", BadgeMetric.REVENUE, 500, False),
        ("customers", BadgeMetric.REFERRED_CUSTOMERS, 5, False),
        ("points", BadgeMetric.POINTS, 1000, False),
        ("streak", BadgeMetric.ACTIVE_MONTHS_STREAK, 2, False),
    ):
        spec = BadgeSpec(code=code, name=code.title(), metric=metric,
                         threshold=Decimal(threshold), points=5, repeating=repeating)  # fmt: skip
        await badges.create_badge(actor, program_id, spec)
    for rank, threshold in ((1, None), (2, Decimal(300)), (3, Decimal(2000))):
        spec = TierSpec(
            name=f"Tier {rank}",
            rank=rank,
            qualify_metric=TierMetric.REVENUE if threshold else None,
            qualify_threshold=threshold,
            qualify_period_days=90 if threshold else None,
        )
        await programs.create_tier(actor, program_id, spec)


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite://{tmp}/bench.sqlite3"
        settings = Settings(database_url=url, secret_key="bench-" + "x" * 40, development=True)
        await db.migrate(settings)
        await db.open_database(settings)
        try:
            start = time.perf_counter()
            program_id, codes = await generate(args, rng)
            print(
                f"generated {args.touchpoints} touchpoints in {time.perf_counter() - start:.1f} s"
            )
            actor = Actor.system("bench")
            if args.gamification:
                await gamify(actor, program_id)
            times = []
            for number in range(args.batches):
                items = [(program_id, s) for s in batch_specs(args, rng, number, codes)]
                start = time.perf_counter()
                outcome = await ingest.record_conversions(actor, items)
                times.append(time.perf_counter() - start)
                assert not outcome.errors, outcome.errors[:3]
            total = args.batches * BATCH
            rate = total / sum(times)
            verdict = "ok" if rate >= BAR_PER_SECOND else "FAIL"
            credits = await AttributionCredit.all().count()
            entries = await Commission.all().count()
            awards, points = await BadgeAward.all().count(), await PointEntry.all().count()
            print(
                f"domain: {total} conversions in {sum(times):.2f} s ({credits} credits, "
                f"{entries} ledger entries, {points} points entries, {awards} badge awards): "
                f"{rate:.0f}/s; per call of {BATCH}: best {min(times):.3f} s, median "
                f"{statistics.median(times):.3f} s   bar >= {BAR_PER_SECOND}/s: {verdict}"
            )
            specs = batch_specs(args, rng, args.batches, codes)
            elapsed = await over_http(settings, program_id, specs)
            print(f"HTTP: one call of {BATCH} in {elapsed:.3f} s ({BATCH / elapsed:.0f}/s)")
            assert await Conversion.all().count() == total + BATCH
        finally:
            await db.close_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--touchpoints", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--partners", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--codes", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-commissions", action="store_true", help="no commission rule (attribution only)"
    )
    parser.add_argument(
        "--gamification", action="store_true",
        help="point rules, a badge per metric and qualifying tiers (issue 6's bar: compare)",
    )  # fmt: skip
    parser.add_argument("--database", help="a sqlite:// URL (default: a temporary file)")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
