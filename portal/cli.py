"""The `partnergraph` command line."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer

from domain.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from portal.demo import DemoCredentials

app = typer.Typer(
    help="PartnerGraph: partner, affiliate and referral programs.", no_args_is_help=True
)


def _settings(development: bool = False) -> Settings:
    if development:
        os.environ["PARTNERGRAPH_DEVELOPMENT"] = "true"
    try:
        return load_settings()
    except ConfigurationError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


async def _with_database(settings: Settings, work: object) -> object:
    from domain import db

    await db.open_database(settings)
    try:
        return await work  # type: ignore[misc]
    finally:
        await db.close_database()


@app.command()
def migrate() -> None:
    """Apply pending database migrations (a fresh database gets them all)."""
    from domain import db

    settings = _settings()
    asyncio.run(db.migrate(settings))
    typer.echo("database is up to date")


@app.command("create-admin")
def create_admin(
    email: str = typer.Option(..., help="The admin's e-mail (the login)."),
    password: str | None = typer.Option(None, help="Asked for when left out."),
) -> None:
    """Create an admin user."""
    from domain import db
    from domain.errors import DomainError, DomainErrors
    from domain.identity import services as identity

    settings = _settings()
    secret = password or getpass.getpass("password: ")
    asyncio.run(db.migrate(settings))
    try:
        asyncio.run(_with_database(settings, identity.create_admin(email, secret)))
    except (DomainError, DomainErrors) as exc:
        typer.secho(f"refused: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"admin {email.strip().lower()} created")


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL that schema.graphql must equal."""
    from api.schema import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")


AT = "'--at'"


def _instant(value: str | None) -> datetime | None:
    """`--at`: an ISO 8601 date-time with an offset, not later than now."""
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date-time", param_hint=AT) from None
    if at.tzinfo is None:
        message = "give an offset, such as 2026-01-31T00:00:00Z or +02:00"
        raise typer.BadParameter(message, param_hint=AT)
    if at > datetime.now(UTC):
        raise typer.BadParameter("must not be later than now", param_hint=AT)
    return at.astimezone(UTC)


def _scheduled(work: Callable[[], Awaitable[object]]) -> object:
    """Run a scheduled job's work on the configured database (no migrations: a job must not
    change the schema under the service). A refusal or a database error exits 1 with why."""
    from tortoise.exceptions import OperationalError

    from domain.errors import DomainError, DomainErrors

    settings = _settings()
    try:
        return asyncio.run(_with_database(settings, work()))
    except (DomainError, DomainErrors) as exc:
        typer.secho(f"refused: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    except OperationalError as exc:
        message = f"database error: {exc} (a new database needs `partnergraph migrate` first)"
        typer.secho(message, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


async def _approve_due(at: datetime | None) -> list[tuple[str, str, int]]:
    """(program name, global ID, entries approved) for each program where some were due."""
    from api.relay import to_global_id
    from domain.actor import Actor
    from domain.commissions import services as commissions
    from domain.programs import services as programs

    done = await commissions.approve_due(Actor.system("approve-due"), at)
    ids = sorted(done)
    found = await programs.programs_by_ids(ids)
    names = {p.pk: p.name for p in found if p is not None}
    return [(names.get(pk, "?"), to_global_id("Program", pk), done[pk]) for pk in ids]


@app.command("approve-due")
def approve_due(
    at: str | None = typer.Option(
        None,
        help="Approve what was due at this ISO 8601 date-time with an offset (default now); "
        "not later than now.",
    ),
) -> None:
    """Approve the PENDING commissions whose hold has ended, in every program (for cron).

    It applies no migrations: a scheduled job must not change the schema under the service."""
    cutoff = _instant(at)
    done = _scheduled(lambda: _approve_due(cutoff))
    total = 0
    for name, program_id, count in cast("list[tuple[str, str, int]]", done):
        typer.echo(f"{name} ({program_id}): {count} approved")
        total += count
    typer.echo(f"total: {total} approved")


async def _evaluate_tiers(
    program: int | None, at: datetime | None
) -> list[tuple[str, str, int, int, int]]:
    """(program name, global ID, promoted, demoted, newly below their tier) per program where
    something changed."""
    from api.relay import to_global_id
    from domain.actor import Actor
    from domain.gamification import tiers
    from domain.programs import services as programs

    actor = Actor.system("evaluate-tiers")
    if program is None:
        done = await tiers.evaluate_all(actor, at)
    else:
        done = {program: await tiers.evaluate_tiers(actor, program, at)}
    ids = sorted(done)
    names = {p.pk: p.name for p in await programs.programs_by_ids(ids) if p is not None}
    rows: list[tuple[str, str, int, int, int]] = []
    for pk in ids:
        found = done[pk]
        up, down, marked = len(found.promoted), len(found.demoted), found.marked
        if up or down or marked:
            rows.append((names.get(pk, "?"), to_global_id("Program", pk), up, down, marked))
    return rows


def _program_id(value: str | None) -> int | None:
    """`--program`: a program's global ID."""
    if value is None:
        return None
    from api.relay import from_global_id

    parsed = from_global_id(value.strip())
    if parsed is None or parsed[0] != "Program":
        raise typer.BadParameter(f"{value!r} is not a program's ID", param_hint="'--program'")
    return parsed[1]


@app.command("evaluate-tiers")
def evaluate_tiers(
    program: str | None = typer.Option(
        None, help="The program's global ID (default: every program with tiers, not archived)."
    ),
    at: str | None = typer.Option(
        None,
        help="Evaluate as of this ISO 8601 date-time with an offset (default now); not later "
        "than now.",
    ),
) -> None:
    """Evaluate tiers (for cron): promote who qualifies higher, mark who fell below its tier,
    demote who has stayed below it for the program's tier grace days.

    It applies no migrations: a scheduled job must not change the schema under the service."""
    cutoff, program_id = _instant(at), _program_id(program)
    done = _scheduled(lambda: _evaluate_tiers(program_id, cutoff))
    promoted = demoted = 0
    for name, global_id, up, down, marked in cast("list[tuple[str, str, int, int, int]]", done):
        line = f"{up} promoted, {down} demoted, {marked} newly below their tier"
        typer.echo(f"{name} ({global_id}): {line}")
        promoted, demoted = promoted + up, demoted + down
    typer.echo(f"total: {promoted} promoted, {demoted} demoted")


def _print_demo(host: str, port: int, creds: DemoCredentials) -> None:
    base = f"http://{'localhost' if host in ('0.0.0.0', '127.0.0.1') else host}:{port}"
    typer.secho("\nPartnerGraph demo is ready", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  GraphQL:  {base}/graphql (GraphiQL in a browser)")
    typer.echo(f"  admin:    {creds.admin_email} / {creds.admin_password}")
    typer.echo(f"  partner:  {creds.partner_email} / {creds.partner_password}")
    typer.echo(
        "  log in:   curl -s -X POST " + base + "/auth/login -H 'Content-Type: application/json' "
        f'-d \'{{"email": "{creds.admin_email}", "password": "{creds.admin_password}"}}\''
    )
    typer.echo("  (demo passwords are new each time the demo starts)\n")


@app.command()
def serve(
    demo: bool = typer.Option(False, help="Fill the database with a demo program; dev mode."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    dev: bool = typer.Option(False, help="Development mode: GraphiQL, a generated secret key."),
) -> None:
    """Run the service; pending migrations are applied first."""
    import uvicorn

    from domain import db

    settings = _settings(development=dev or demo)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(db.migrate(settings))
    if demo:
        from portal.demo import seed_demo

        creds = asyncio.run(_with_database(settings, seed_demo()))
        _print_demo(host, port, creds)  # type: ignore[arg-type]
    _ = settings.signing_key  # generate the development key before workers race for it
    uvicorn.run(
        "portal.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
        app_dir=str(Path.cwd()),
    )


def main() -> None:
    app()
