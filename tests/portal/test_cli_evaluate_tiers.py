"""`partnergraph evaluate-tiers`, run as cron runs it: a real process on the tests' own database
(SQLite or PostgreSQL), the programs built through the domain's services beforehand."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from api.relay import to_global_id
from domain.audit.models import AuditEntry
from domain.gamification.models import TierChange
from domain.partners.models import Enrollment
from domain.programs import services as programs
from domain.programs.models import Program, Tier, TierMetric
from domain.programs.rules import TierSpec
from domain.settings import Settings
from tests.portal import ledger_data

NOW = datetime.now(UTC)


async def evaluate_tiers(database_url: str, *args: str) -> tuple[int, str, str]:
    """Run the command in its own process; answers (exit code, stdout, stderr)."""
    environment = {
        **os.environ,
        "PARTNERGRAPH_DATABASE_URL": database_url,
        "PARTNERGRAPH_SECRET_KEY": "cli-test-secret-0123456789-abcdefghijklmnop",
    }
    environment.pop("PARTNERGRAPH_DEVELOPMENT", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portal", "evaluate-tiers", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def tiered(name: str, code: str, grace_days: int = 10) -> tuple[Program, Enrollment]:
    """A program with Bronze (rank 1, manual) and Silver (rank 2: 100 EUR of revenue in the
    last 30 days); one partner in Bronze, who sold 150 EUR 50 days ago (out of Silver's 30
    days when it was recorded, so still in Bronze)."""
    program = await ledger_data.program(name)
    await programs.update_program(
        ledger_data.ADMIN, program.pk, programs.ProgramSpec(tier_grace_days=grace_days)
    )
    bronze = await programs.create_tier(ledger_data.ADMIN, program.pk, TierSpec("Bronze", 1))
    silver = TierSpec("Silver", 2, TierMetric.REVENUE, Decimal(100), 30)
    await programs.create_tier(ledger_data.ADMIN, program.pk, silver)
    enrollment = await ledger_data.enroll(program.pk, name, f"{code.lower()}@example.com", code)
    await Enrollment.filter(id=enrollment.pk).update(tier_id=bronze.pk)
    await ledger_data.sale(program.pk, f"{code}-1", "150.00", code, NOW - timedelta(days=50))
    return program, enrollment


async def tier_name(enrollment: Enrollment) -> str | None:
    await enrollment.refresh_from_db()
    if enrollment.tier_id is None:
        return None
    return (await Tier.get(id=enrollment.tier_id)).name


def line(program: Program, promoted: int, demoted: int, below: int) -> str:
    changes = f"{promoted} promoted, {demoted} demoted, {below} newly below their tier"
    return f"{program.name} ({to_global_id('Program', program.pk)}): {changes}"


async def test_evaluations_promote_mark_then_demote_after_the_grace(settings: Settings) -> None:
    acme, anna = await tiered("Acme", "ANNA")
    assert await tier_name(anna) == "Bronze"
    url = settings.database_url

    promoted = await evaluate_tiers(url, "--at", (NOW - timedelta(days=45)).isoformat())
    assert promoted[0] == 0, promoted[2]
    assert promoted[1].splitlines() == [line(acme, 1, 0, 0), "total: 1 promoted, 0 demoted"]
    assert await tier_name(anna) == "Silver"

    marked = await evaluate_tiers(url, "--at", (NOW - timedelta(days=15)).isoformat())
    assert marked[1].splitlines() == [line(acme, 0, 0, 1), "total: 0 promoted, 0 demoted"]
    assert await tier_name(anna) == "Silver"

    demoted = await evaluate_tiers(url)  # 15 days below Silver: more than 10 days' grace

    assert demoted[0] == 0, demoted[2]
    assert demoted[1].splitlines() == [line(acme, 0, 1, 0), "total: 0 promoted, 1 demoted"]
    assert await tier_name(anna) == "Bronze"
    changes = await TierChange.filter(enrollment_id=anna.pk).order_by("id")
    assert [(str(c.reason), c.actor) for c in changes] == [
        ("PROMOTED", "evaluate-tiers"),
        ("DEMOTED", "evaluate-tiers"),
    ]
    actors = await AuditEntry.filter(action="evaluateTiers").values_list("actor", flat=True)
    assert list(actors) == ["evaluate-tiers", "evaluate-tiers"]


async def test_program_evaluates_that_program_alone(settings: Settings) -> None:
    acme, anna = await tiered("Acme", "ANNA")
    beta, bob = await tiered("Beta", "BOB")
    at = (NOW - timedelta(days=45)).isoformat()

    code, out, err = await evaluate_tiers(
        settings.database_url, "--program", to_global_id("Program", beta.pk), "--at", at
    )

    assert code == 0, err
    assert out.splitlines() == [line(beta, 1, 0, 0), "total: 1 promoted, 0 demoted"]
    assert (await tier_name(anna), await tier_name(bob)) == ("Bronze", "Silver")


async def test_nothing_to_change_prints_only_the_total(settings: Settings) -> None:
    _, anna = await tiered("Acme", "ANNA")

    code, out, err = await evaluate_tiers(settings.database_url)  # the sale is out of 30 days

    assert code == 0, err
    assert out.splitlines() == ["total: 0 promoted, 0 demoted"]
    assert await tier_name(anna) == "Bronze"


async def test_a_bad_program_or_at_is_refused_and_nothing_changes(settings: Settings) -> None:
    acme, anna = await tiered("Acme", "ANNA", grace_days=0)
    url = settings.database_url
    at = (NOW - timedelta(days=45)).isoformat()

    not_an_id = await evaluate_tiers(url, "--program", "acme", "--at", at)
    a_tier = await evaluate_tiers(url, "--program", to_global_id("Tier", 1), "--at", at)
    unknown = await evaluate_tiers(url, "--program", to_global_id("Program", 999), "--at", at)
    future = await evaluate_tiers(url, "--at", (NOW + timedelta(days=1)).isoformat())
    naive = await evaluate_tiers(url, "--at", "2026-01-31T00:00:00")

    for refused in (not_an_id, a_tier):
        assert refused[0] == 2
        assert "is not a program's ID" in refused[2]
    assert unknown[0] == 1
    assert "refused: program not found" in unknown[2]
    assert (future[0], naive[0]) == (2, 2)
    assert "must not be later than now" in future[2]
    assert "give an offset" in naive[2]
    assert await tier_name(anna) == "Bronze"
    assert await TierChange.all().count() == 0


async def test_an_unmigrated_database_is_left_unmigrated(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"

    code, _, err = await evaluate_tiers(f"sqlite://{path}")

    assert code == 1
    assert "partnergraph migrate" in err
    assert "Traceback" not in err
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == []
