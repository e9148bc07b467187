"""`partnergraph approve-due`, run as cron runs it: a real process on the tests' own database
(SQLite or PostgreSQL), with the ledger built through the domain's services beforehand."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from api.relay import to_global_id
from domain.audit.models import AuditEntry
from domain.commissions.models import Commission, CommissionStatus
from domain.settings import Settings
from tests.portal import ledger_data

NOW = datetime.now(UTC)


async def approve_due(database_url: str, *args: str) -> tuple[int, str, str]:
    """Run the command in its own process; answers (exit code, stdout, stderr)."""
    environment = {
        **os.environ,
        "PARTNERGRAPH_DATABASE_URL": database_url,
        "PARTNERGRAPH_SECRET_KEY": "cli-test-secret-0123456789-abcdefghijklmnop",
    }
    environment.pop("PARTNERGRAPH_DEVELOPMENT", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "portal", "approve-due", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def statuses(program_id: int) -> dict[str, str]:
    """Each COMMISSION entry's status, by its conversion's external id."""
    rows = await Commission.filter(program_id=program_id).values_list(
        "conversion__external_id", "status"
    )
    return {str(external_id): str(status) for external_id, status in rows}


async def two_programs() -> tuple[int, int]:
    """Acme (30 days' hold): sales 40 and 35 days ago (due), 20 days ago (due in 10 days).
    Beta (7 days' hold): a sale 8 days ago (due) and one today (not due)."""
    acme = await ledger_data.program("Acme", hold_days=30)
    await ledger_data.enroll(acme.pk, "Anna", "anna@example.com", "ANNA")
    for external_id, days in (("a-40", 40), ("a-35", 35), ("a-20", 20)):
        await ledger_data.sale(acme.pk, external_id, "100.00", "ANNA", NOW - timedelta(days=days))
    beta = await ledger_data.program("Beta", hold_days=7)
    await ledger_data.enroll(beta.pk, "Bob", "bob@example.com", "BOB")
    await ledger_data.sale(beta.pk, "b-8", "50.00", "BOB", NOW - timedelta(days=8))
    await ledger_data.sale(beta.pk, "b-0", "50.00", "BOB", NOW - timedelta(minutes=1))
    return acme.pk, beta.pk


async def test_approve_due_approves_what_is_due_in_every_program(settings: Settings) -> None:
    acme, beta = await two_programs()

    code, out, err = await approve_due(settings.database_url)

    assert code == 0, err
    assert out.splitlines() == [
        f"Acme ({to_global_id('Program', acme)}): 2 approved",
        f"Beta ({to_global_id('Program', beta)}): 1 approved",
        "total: 3 approved",
    ]
    assert await statuses(acme) == {"a-40": "APPROVED", "a-35": "APPROVED", "a-20": "PENDING"}
    assert await statuses(beta) == {"b-8": "APPROVED", "b-0": "PENDING"}
    actions = await AuditEntry.filter(action="approveCommissions").values_list("actor", flat=True)
    assert sorted(actions) == ["approve-due", "approve-due"]


async def test_a_second_run_finds_nothing_more_due(settings: Settings) -> None:
    acme, _ = await two_programs()
    first = await approve_due(settings.database_url)
    assert first[0] == 0, first[2]

    code, out, err = await approve_due(settings.database_url)

    assert code == 0, err
    assert out.splitlines() == ["total: 0 approved"]
    assert await statuses(acme) == {"a-40": "APPROVED", "a-35": "APPROVED", "a-20": "PENDING"}


async def test_at_approves_only_what_was_due_at_that_time(settings: Settings) -> None:
    acme, beta = await two_programs()
    # 7 days ago: a-40 was due (3 days before), a-35 not yet (2 days later), b-8 not yet.
    at = (NOW - timedelta(days=7)).isoformat()

    code, out, err = await approve_due(settings.database_url, "--at", at)

    assert code == 0, err
    assert out.splitlines() == [
        f"Acme ({to_global_id('Program', acme)}): 1 approved",
        "total: 1 approved",
    ]
    assert await statuses(acme) == {"a-40": "APPROVED", "a-35": "PENDING", "a-20": "PENDING"}
    assert await statuses(beta) == {"b-8": "PENDING", "b-0": "PENDING"}


async def test_at_accepts_an_offset_other_than_utc(settings: Settings) -> None:
    acme, _ = await two_programs()
    # An hour before a-35 fell due (5 days ago), written in +02:00: its wall-clock time read
    # as UTC would be an hour after, and would approve a-35 too.
    local = timezone(timedelta(hours=2))
    at = (NOW - timedelta(days=5, hours=1)).astimezone(local).isoformat()

    code, out, err = await approve_due(settings.database_url, "--at", at)

    assert code == 0, err
    assert out.splitlines()[-1] == "total: 1 approved"
    assert await statuses(acme) == {"a-40": "APPROVED", "a-35": "PENDING", "a-20": "PENDING"}


async def test_at_later_than_now_is_refused_and_nothing_changes(settings: Settings) -> None:
    acme, beta = await two_programs()
    at = (NOW + timedelta(days=1)).isoformat()

    code, out, err = await approve_due(settings.database_url, "--at", at)

    assert code == 2
    assert "must not be later than now" in err
    assert out == ""
    assert await Commission.filter(status=CommissionStatus.APPROVED).count() == 0


async def test_at_without_an_offset_or_not_a_date_is_refused(settings: Settings) -> None:
    await two_programs()

    naive = await approve_due(settings.database_url, "--at", "2026-01-31T00:00:00")
    garbage = await approve_due(settings.database_url, "--at", "yesterday")

    assert naive[0] == 2
    assert "give an offset" in naive[2]
    assert garbage[0] == 2
    assert "not an ISO 8601 date-time" in garbage[2]
    assert await Commission.filter(status=CommissionStatus.APPROVED).count() == 0


async def test_an_unmigrated_database_is_left_unmigrated(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"

    code, _, err = await approve_due(f"sqlite://{path}")

    assert code == 1
    assert "partnergraph migrate" in err
    assert "Traceback" not in err
    with sqlite3.connect(path) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == []
