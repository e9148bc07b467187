"""The `partnergraph` command line."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
