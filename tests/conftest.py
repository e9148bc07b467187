"""Test fixtures: a real database (SQLite, or PostgreSQL when PARTNERGRAPH_TEST_DATABASE_URL
names one), migrated once per session and emptied before each test, and the real ASGI app
reached over HTTP with httpx."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from hypothesis import settings as settings_profiles
from tortoise import connections

from domain import db
from domain.settings import Settings, load_settings
from portal.app import create_app
from tests.helpers import Api

TEST_SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"

# No per-example deadline: a shared 2-core machine must not turn a slow example into a failure.
settings_profiles.register_profile("partnergraph", deadline=None)
settings_profiles.load_profile("partnergraph")


def _database_url(tmp: Path) -> str:
    return os.environ.get("PARTNERGRAPH_TEST_DATABASE_URL") or f"sqlite://{tmp / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def settings() -> Settings:
    tmp = Path(tempfile.mkdtemp(prefix="partnergraph-test-"))
    return load_settings(
        database_url=_database_url(tmp),
        secret_key=TEST_SECRET,
        development=False,
        login_max_failures_per_account=5,
        login_max_failures_per_ip=20,
        session_check_seconds=0,  # every request checks its session: tests see changes at once
    )


async def _reset_postgres(url: str) -> None:
    dsn = url.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[list[str]]:
    """Migrate a fresh database once; yields the names of the tables to empty per test."""
    if not settings.is_sqlite:
        await _reset_postgres(settings.database_url)
    await db.migrate(settings)
    await db.open_database(settings)
    conn = connections.get("default")
    if settings.is_sqlite:
        _, rows = await conn.execute_query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        tables = [r["name"] for r in rows]
    else:
        _, rows = await conn.execute_query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        tables = [r["tablename"] for r in rows]
    tables = [t for t in tables if "migration" not in t]
    yield tables
    await db.close_database()


async def empty_tables(tables: list[str], settings: Settings) -> None:
    conn = connections.get("default")
    if settings.is_sqlite:
        for table in tables:
            await conn.execute_script(f'DELETE FROM "{table}"')
    else:
        names = ", ".join(f'"{t}"' for t in tables)
        await conn.execute_script(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(autouse=True)
async def clean_database(database: list[str], settings: Settings) -> None:
    await empty_tables(database, settings)


@pytest.fixture(scope="session")
def app(settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings, manage_database=False)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    return Api(client)
