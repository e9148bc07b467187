"""Benchmark: approving and paying out 100k ledger entries, and balances over 1M entries.

    python bench/ledger.py [--entries 1000000] [--due 100000] [--partners 1000]
                           [--calls 1000] [--seed 1] [--postgres URL]

Generates one program with `--partners` enrollments and `--entries` rows in `commissions`
(raw inserts, in id order oldest first): `--due` PENDING entries whose hold has ended, spread
at random over the enrollments, and a mix the queries must filter out: entries PAID in eleven
older payout batches (commissions, bonuses, reversals and adjustments carried after payment),
PENDING entries still in their hold, REVERSED pairs (an entry and the reversal that offsets it),
REJECTED entries and referee rewards (program costs). Then times the domain calls:

- `services.approve` (everything due), `services.create_payout_batch` (no minimum) and
  `services.mark_payout_paid`; checked: every due entry approved, one item per enrollment
  equal to the sum of its entries (the generator's own books and the rows), all PAID.
  Bar (issue 5): the three under 10 s on SQLite.
- `services.balances([enrollment])`, `--calls` calls for single enrollments (after 10 warm-up
  calls); each checked against a plain SUM over the rows and against the generator's books,
  and the plan of its query printed. Bar: p99 under 5 ms (the median beside it).

Exit status 2 when a check fails; a missed bar is reported, not an error. `--postgres` runs the
same on an empty PostgreSQL database (it is migrated, filled, VACUUM ANALYZEd as autovacuum
would after the load, and left as it is). Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from pydantic import SecretStr  # noqa: E402
from tortoise import connections  # noqa: E402

from domain import db  # noqa: E402
from domain.actor import Actor  # noqa: E402
from domain.commissions import services  # noqa: E402
from domain.commissions.models import Commission, CommissionRule, PayoutItem  # noqa: E402
from domain.programs.models import AttributionModelKind, Program  # noqa: E402
from domain.settings import Settings  # noqa: E402

T = TypeVar("T")
BAR_PAYOUT_SECONDS = 10.0
BAR_BALANCE_MS = 5.0
NOW = datetime.now(UTC).replace(microsecond=0)
HOLD = timedelta(days=30)
PERIOD = timedelta(days=30)  # one old payout batch per period
CHUNK = 50_000
WARM_UP = 10
COLUMNS = (
    "program_id, enrollment_id, kind, amount_minor, currency, status, available_at, rule_id, "
    "rule_version, credit_id, credited_minor, earned_minor, month, reason, payout_item_id, "
    "decided_at, created_at"
)
# Rows per 900k entries that are not due, by age: (from, to) days ago -> kind of row -> count.
# A "reversed" is two rows (an entry and the reversal that offsets it).
MIX = (
    ((365, 60), {"paid": 520_000, "bonus": 25_000, "paid_reversal": 15_000,
                 "paid_adjustment": 10_000, "reversed": 40_000, "rejected": 20_000,
                 "referee": 30_000}),
    ((60, 31), {"reversed": 10_000, "rejected": 5_000, "referee": 5_000}),
    ((29.5, 0), {"future": 140_000, "reversed": 10_000, "rejected": 5_000, "referee": 5_000}),
)  # fmt: skip


def plan(entries: int, due: int) -> list[tuple[tuple[float, float], dict[str, int]]]:
    """The MIX scaled to `entries - due` rows (the rest goes to "future"), due rows added."""
    scale = (entries - due) / 900_000
    segments: list[tuple[tuple[float, float], dict[str, int]]] = [
        (ages, {k: round(n * scale) for k, n in kinds.items()}) for ages, kinds in MIX
    ]
    segments[1][1]["due"] = due
    rows = sum(n * (2 if k == "reversed" else 1) for _, kinds in segments for k, n in kinds.items())
    segments[2][1]["future"] += entries - rows
    return segments


@dataclass
class Books:
    """What the generator wrote, kept apart from the database to check the services."""

    balance: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    due_sum: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    due_count: int = 0
    future_count: int = 0
    item_sum: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, enrollment: int, status: str, amount: int) -> None:
        by_status = self.balance[enrollment]
        by_status[status] = by_status.get(status, 0) + amount


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

    async def execute(self, query: str, values: list[Any] | None = None) -> list[dict[str, Any]]:
        _, rows = await connections.get("default").execute_query(self.sql(query), values or [])
        return [dict(row) for row in rows]

    async def execute_many(self, query: str, values: list[list[Any]]) -> None:
        await connections.get("default").execute_many(self.sql(query), values)


async def check_format(dbx: Db, program_id: int, enrollment_id: int) -> None:
    if dbx.postgres:
        return
    at = NOW - timedelta(days=1, microseconds=1)
    row = await Commission.create(program_id=program_id, enrollment_id=enrollment_id,
                                  kind="COMMISSION", amount_minor=1, currency="EUR",
                                  status="REJECTED", available_at=at)  # fmt: skip
    stored = (await dbx.execute("SELECT available_at FROM commissions WHERE id = ?", [row.pk]))[0]
    assert stored["available_at"] == dbx.stamp(at), f"SQLite stores {stored}, not {dbx.stamp(at)}"
    await row.delete()


async def setup(dbx: Db, partners: int) -> tuple[int, int, list[int]]:
    """A program, its rule and `partners` enrollments: (program id, rule id, enrollment ids)."""
    program = await Program.create(
        name="Bench", currency="EUR", destination_url="https://bench.example/",
        attribution_model=AttributionModelKind.LAST_TOUCH, hold_days=HOLD.days,
    )  # fmt: skip
    rule = await CommissionRule.create(program_id=program.pk, conversion_kind="SALE",
                                       percentage=10, name="10 % of sales")  # fmt: skip
    now = dbx.stamp(NOW)
    await dbx.execute_many(
        "INSERT INTO partners (name, email, status, created_at) VALUES (?, ?, 'ACTIVE', ?)",
        [[f"Partner {i}", f"p{i}@bench.example", now] for i in range(partners)],
    )
    rows = await dbx.execute("SELECT id FROM partners ORDER BY id")
    await dbx.execute_many(
        "INSERT INTO enrollments (program_id, partner_id, status, tier_pinned, referral_code, "
        "code_key, created_at) VALUES (?, ?, 'ACTIVE', FALSE, ?, ?, ?)",
        [[program.pk, r["id"], f"P{r['id']}", f"p{r['id']}", now] for r in rows],
    )
    enrollments = [r["id"] for r in await dbx.execute("SELECT id FROM enrollments ORDER BY id")]
    await check_format(dbx, program.pk, enrollments[0])
    return program.pk, rule.pk, enrollments


async def old_batches(
    dbx: Db, program_id: int, enrollments: list[int], start: datetime, end: datetime
) -> dict[tuple[int, int], tuple[int, datetime]]:
    """PAID batches, one per PERIOD from `start`, with an item for every enrollment (amounts
    set once the entries are written): (batch number, enrollment) -> (item id, paid at)."""
    count = -(-(end - start) // PERIOD)
    paid = [start + (k + 1) * PERIOD + HOLD for k in range(count)]
    await dbx.execute_many(
        "INSERT INTO payout_batches (program_id, status, currency, minimum_minor, reference, "
        "created_at, paid_at) VALUES (?, 'PAID', 'EUR', 0, ?, ?, ?)",
        [[program_id, f"old-{k}", dbx.stamp(at), dbx.stamp(at)] for k, at in enumerate(paid)],
    )
    batches = await dbx.execute("SELECT id FROM payout_batches ORDER BY id")
    await dbx.execute_many(
        "INSERT INTO payout_items (batch_id, enrollment_id, amount_minor, currency) "
        "VALUES (?, ?, 0, 'EUR')",
        [[b["id"], e] for b in batches for e in enrollments],
    )
    number = {b["id"]: k for k, b in enumerate(batches)}
    rows = await dbx.execute("SELECT id, batch_id, enrollment_id FROM payout_items")
    return {
        (number[r["batch_id"]], r["enrollment_id"]): (r["id"], paid[number[r["batch_id"]]])
        for r in rows
    }


@dataclass
class Writer:
    """Makes the rows of one kind of entry and notes them in the books."""

    dbx: Db
    program_id: int
    rule_id: int
    books: Books
    items: dict[tuple[int, int], tuple[int, datetime]]
    old_start: datetime
    rng: random.Random
    credit: int = 0

    def rows(self, what: str, e: int, at: datetime) -> list[list[Any]]:
        a = self.rng.randint(100, 50_000)
        if what == "reversed":
            done = at + timedelta(days=1)
            refund = "refund: all of it"
            return [self._row(e, "COMMISSION", a, "REVERSED", at, done),
                    self._row(e, "REVERSAL", -a, "REVERSED", done, done, refund)]  # fmt: skip
        if what == "referee":
            return [self._row(e, "REFEREE_REWARD", a // 10, "PAID", at, at, "the referee's reward")]
        if what == "rejected":
            return [self._row(e, "COMMISSION", a, "REJECTED", at, at + timedelta(days=2))]
        if what == "due":
            self.books.due_sum[e] += a
            self.books.due_count += 1
        if what == "future":
            self.books.future_count += 1
        if what in ("due", "future"):
            self.books.add(e, "PENDING", a)
            return [self._row(e, "COMMISSION", a, "PENDING", at, None)]
        kind, amount = {"paid": ("COMMISSION", a), "bonus": ("BONUS", a // 5),
                        "paid_reversal": ("REVERSAL", -(a // 10)),
                        "paid_adjustment": ("ADJUSTMENT", -(a // 20))}[what]  # fmt: skip
        item, paid_at = self.items[((at - self.old_start) // PERIOD, e)]
        self.books.item_sum[item] += amount
        self.books.add(e, "PAID", amount)
        return [self._row(e, kind, amount, "PAID", at, paid_at, item=item)]

    def _row(self, e: int, kind: str, amount: int, status: str, at: datetime,
             decided: datetime | None, reason: str | None = None,
             item: int | None = None) -> list[Any]:  # fmt: skip
        priced = kind == "COMMISSION"
        self.credit += priced
        stamp = self.dbx.stamp
        return [
            self.program_id, e, kind, amount, "EUR", status,
            stamp(at if kind == "REFEREE_REWARD" else at + HOLD),
            self.rule_id if priced else None, 1 if priced else None,
            self.credit if priced else None, amount * 10 if priced else None,
            amount if priced else None, at.strftime("%Y-%m"),
            reason or (f"10 % of {amount * 10} EUR minor units credited" if priced else "bonus"),
            item, None if decided is None else stamp(decided), stamp(at),
        ]  # fmt: skip


def segment_rows(writer: Writer, enrollments: list[int], ages: tuple[float, float],
                 kinds: dict[str, int]) -> Iterator[list[Any]]:  # fmt: skip
    """The rows of one age range, oldest first, kinds shuffled, enrollments at random."""
    order = [what for what, n in kinds.items() for _ in range(n)]
    writer.rng.shuffle(order)
    start, span = NOW - timedelta(days=ages[0]), timedelta(days=ages[0] - ages[1])
    for i, what in enumerate(order):
        at = (start + span * ((i + 0.5) / len(order))).replace(microsecond=0)
        yield from writer.rows(what, writer.rng.choice(enrollments), at)


async def generate(dbx: Db, args: argparse.Namespace) -> tuple[int, list[int], Books]:
    """The program id, its enrollments and the books of what was written."""
    program_id, rule_id, enrollments = await setup(dbx, args.partners)
    segments = plan(args.entries, args.due)
    old_start = NOW - timedelta(days=segments[0][0][0])
    items = await old_batches(dbx, program_id, enrollments, old_start,
                              NOW - timedelta(days=segments[0][0][1]))  # fmt: skip
    books = Books()
    writer = Writer(dbx, program_id, rule_id, books, items, old_start, random.Random(args.seed))
    insert = f"INSERT INTO commissions ({COLUMNS}) VALUES ({', '.join('?' * 17)})"
    chunk: list[list[Any]] = []
    for ages, kinds in segments:
        for row in segment_rows(writer, enrollments, ages, kinds):
            chunk.append(row)
            if len(chunk) == CHUNK:
                await dbx.execute_many(insert, chunk)
                chunk = []
    if chunk:
        await dbx.execute_many(insert, chunk)
    await dbx.execute_many("UPDATE payout_items SET amount_minor = ? WHERE id = ?",
                           [[total, item] for item, total in books.item_sum.items()])  # fmt: skip
    unused = [item for item, _ in items.values() if item not in books.item_sum]
    for start in range(0, len(unused), 500):
        part = unused[start : start + 500]
        await dbx.execute(f"DELETE FROM payout_items WHERE id IN ({', '.join('?' * len(part))})",
                          part)  # fmt: skip
    if dbx.postgres:
        await dbx.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    return program_id, enrollments, books


async def timed(label: str, call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """Runs the call; prints and returns its wall time (CPU time of this process beside it:
    on SQLite the database works in this process, on PostgreSQL not)."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = await call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:34} {wall:7.2f} s   (CPU {cpu:.2f} s)")
    return result, wall


async def pay_out(dbx: Db, program_id: int, books: Books, failures: list[str]) -> None:
    actor = Actor.system("bench")
    print(f"approve and pay out {books.due_count} due entries over {len(books.due_sum)} "
          "enrollments:")  # fmt: skip
    changed, t1 = await timed("services.approve", lambda: services.approve(actor, program_id))
    batch, t2 = await timed("services.create_payout_batch",
                            lambda: services.create_payout_batch(actor, program_id, 0))  # fmt: skip
    if batch is None:
        failures.append("create_payout_batch found nothing to pay")
        return
    batch_id = batch.pk
    _, t3 = await timed("services.mark_payout_paid",
                        lambda: services.mark_payout_paid(actor, batch_id, "bench"))  # fmt: skip
    total = t1 + t2 + t3
    verdict = "PASS" if total < BAR_PAYOUT_SECONDS else "FAIL"
    print(f"  {'total':34} {total:7.2f} s   bar < {BAR_PAYOUT_SECONDS:.0f} s: {verdict}")
    if changed.count != books.due_count:
        failures.append(f"approve moved {changed.count} entries, {books.due_count} were due")
    await check_batch(dbx, batch_id, books, failures)
    for e, due in books.due_sum.items():
        books.add(e, "PENDING", -due)
        books.add(e, "PAID", due)


async def check_batch(dbx: Db, batch_id: int, books: Books, failures: list[str]) -> None:
    """The new batch has one item per enrollment with due entries, each what the books say
    was due; every item (the old batches' too) is the sum of its entries, all PAID and of the
    item's enrollment; nothing due is left PENDING. One pass over the entries (no index on
    `payout_item_id` to join through)."""
    before = len(failures)
    items = {i.pk: i for i in await PayoutItem.all()}
    rows = await dbx.execute(
        "SELECT payout_item_id, enrollment_id, status, COUNT(*) AS n, SUM(amount_minor) AS total "
        "FROM commissions WHERE payout_item_id IS NOT NULL "
        "GROUP BY payout_item_id, enrollment_id, status"
    )
    summed: dict[int, int] = defaultdict(int)
    for row in rows:
        item = items.get(row["payout_item_id"])
        if item is None or row["status"] != "PAID" or row["enrollment_id"] != item.enrollment_id:
            failures.append(f"entries in item {row['payout_item_id']} not PAID or not its: {row}")
        summed[row["payout_item_id"]] += int(row["total"])
    new = {i.pk: i.enrollment_id for i in items.values() if i.batch_id == batch_id}
    if sorted(new.values()) != sorted(books.due_sum):
        failures.append(f"{len(new)} payout items, {len(books.due_sum)} enrollments were due")
    for pk, e in new.items():
        books.item_sum[pk] = books.due_sum.get(e, 0)
    for item in items.values():
        amounts = (item.amount_minor, summed.get(item.pk), books.item_sum.get(item.pk))
        if len(set(amounts)) != 1:
            failures.append(f"item {item.pk}: amount, sum of entries, books: {amounts}")
    paid = sum(int(r["n"]) for r in rows if r["payout_item_id"] in new)
    left = await dbx.execute("SELECT COUNT(*) AS n FROM commissions WHERE status = 'PENDING'")
    if paid != books.due_count or int(left[0]["n"]) != books.future_count:
        failures.append(f"{paid} entries paid ({books.due_count} due), {left[0]['n']} "
                        f"PENDING left ({books.future_count} not due)")  # fmt: skip
    print(f"  checked: {len(new)} items, {paid} entries PAID; each of the {len(items)} items "
          f"(old batches too) the sum of its entries: "
          f"{'ok' if len(failures) == before else 'FAILED'}")  # fmt: skip


async def plain_sums(dbx: Db) -> dict[int, dict[str, int]]:
    """Every enrollment's entries summed by status, referee rewards aside: no service code."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    rows = await dbx.execute(
        "SELECT enrollment_id, status, SUM(amount_minor) AS total FROM commissions "
        "WHERE kind <> 'REFEREE_REWARD' AND currency = 'EUR' GROUP BY enrollment_id, status"
    )
    for row in rows:
        found[row["enrollment_id"]][row["status"]] = int(row["total"])
    return found


class Captured(logging.Handler):
    """The last query Tortoise sent, with its values."""

    query: tuple[str, list[Any]] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 2 and isinstance(args[1], list | None):
            self.query = (str(args[0]), list(args[1] or []))


async def balance_query(enrollment_id: int) -> tuple[str, list[Any]]:
    """The SQL `services.balances` sends for one enrollment, as Tortoise logs it."""
    logger, handler = logging.getLogger("tortoise.db_client"), Captured()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        await services.balances([enrollment_id])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    assert handler.query is not None, "services.balances sent no query"
    return handler.query


async def show_plan(dbx: Db, enrollment_id: int) -> None:
    query, values = await balance_query(enrollment_id)
    print(f"  the query: {query}")
    explain = "EXPLAIN " if dbx.postgres else "EXPLAIN QUERY PLAN "
    _, rows = await connections.get("default").execute_query(explain + query, values)
    lines = [str(dict(r).get("QUERY PLAN") or dict(r).get("detail")) for r in rows]
    for line in lines:
        print(f"    {line}")
    indexed = any("INDEX" in line.upper() for line in lines)
    print(f"  an index serves it: {'yes' if indexed else 'NO'}")


async def read_balances(
    dbx: Db, enrollments: list[int], books: Books, calls: int, seed: int, failures: list[str]
) -> None:
    count = await dbx.execute("SELECT COUNT(*) AS n FROM commissions")
    print(f"services.balances([enrollment]), {calls} calls, {count[0]['n']} entries in the table:")
    rng = random.Random(seed + 1)
    order = rng.sample(enrollments, len(enrollments)) * (calls // len(enrollments) + 1)
    order = order[:calls]
    for e in order[:WARM_UP]:
        await services.balances([e])
    times, got = [], {}
    for e in order:
        start = time.perf_counter()
        result = await services.balances([e])
        times.append((time.perf_counter() - start) * 1000)
        got[e] = result[e]
    times.sort()
    median, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    verdict = "PASS" if p99 < BAR_BALANCE_MS else "FAIL"
    print(f"  median {median:.2f} ms, p99 {p99:.2f} ms, max {times[-1]:.2f} ms   "
          f"bar < {BAR_BALANCE_MS:.0f} ms: {verdict}")  # fmt: skip
    every = await services.balances(enrollments)
    plain = await plain_sums(dbx)
    wrong = [e for e, balance in got.items() if balance != every[e]]
    for e, balance in every.items():
        sums, kept = plain.get(e, {}), {k: v for k, v in books.balance[e].items() if v}
        shown = {s: b["EUR"] for s, b in (("PENDING", balance.pending), ("APPROVED",
                 balance.approved), ("PAID", balance.paid)) if b}  # fmt: skip
        rows = {s: v for s, v in sums.items() if s in ("PENDING", "APPROVED", "PAID") and v}
        if not shown == rows == kept or sums.get("REVERSED", 0) != 0:
            wrong.append(e)
            failures.append(f"enrollment {e}: balances {shown}, rows {sums}, books {kept}")
    print(f"  checked: the {len(got)} enrollments read equal one call for all {len(every)}, "
          f"each a plain SUM of its rows and the generator's books (REVERSED rows sum to 0): "
          f"{'FAILED' if wrong else 'ok'}")  # fmt: skip
    await show_plan(dbx, order[0])


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def run(args: argparse.Namespace) -> list[str]:
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite://{tmp}/bench.sqlite3"
        settings = Settings(
            database_url=url, secret_key=SecretStr("bench-" + "x" * 40), development=True
        )
        await db.migrate(settings)
        await db.open_database(settings)
        dbx = Db(postgres=args.postgres is not None)
        try:
            if await Commission.all().exists():
                raise SystemExit("give an empty database: this one has ledger entries")
            start = time.perf_counter()
            program_id, enrollments, books = await generate(dbx, args)
            size = ""
            if settings.sqlite_path is not None:
                size = f", {settings.sqlite_path.stat().st_size / 2**20:.0f} MB"
            print(f"generated {args.entries} entries in {time.perf_counter() - start:.1f} s"
                  f"{size}; {load()}")  # fmt: skip
            await pay_out(dbx, program_id, books, failures)
            await read_balances(dbx, enrollments, books, args.calls, args.seed, failures)
            print(load())
        finally:
            await db.close_database()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="rows in commissions")
    parser.add_argument("--due", type=int, default=100_000, help="PENDING entries due")
    parser.add_argument("--partners", type=int, default=1000, help="enrollments")
    parser.add_argument("--calls", type=int, default=1000, help="balances calls timed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", help="postgres:// URL of an empty database")
    args = parser.parse_args()
    engine = "PostgreSQL" if args.postgres else "SQLite"
    version = "" if args.postgres else f" {sqlite3.sqlite_version}"
    print(f"Python {sys.version.split()[0]}, {engine}{version}; {load()}")
    failures = asyncio.run(run(args))
    for failure in failures[:20]:
        print(f"CHECK FAILED: {failure}", file=sys.stderr)
    if failures:
        sys.exit(2)


if __name__ == "__main__":
    main()
