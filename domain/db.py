"""The database: Tortoise configuration, start-up, migrations and shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from domain.settings import Settings

APP = "partnergraph"
MODEL_MODULES = [
    "domain.identity.models",
    "domain.programs.models",
    "domain.partners.models",
    "domain.audit.models",
    "domain.tracking.models",
    "domain.attribution.models",
    "domain.commissions.models",
    "domain.gamification.models",
    "domain.events.models",
]


def _connection_url(settings: Settings) -> str:
    url = settings.database_url
    if settings.is_sqlite:
        # WAL (Tortoise's default) lets readers run beside the writer; wait for locks a while.
        sep = "&" if "?" in url else "?"
        if "busy_timeout" not in url:
            url = f"{url}{sep}busy_timeout=5000"
        return url
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "asyncpg://" + url[len(scheme) :]
    return url


def tortoise_config(settings: Settings) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_url(settings)},
        "apps": {
            APP: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "domain.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def migrate(settings: Settings) -> None:
    """Apply pending migrations (a fresh database gets all of them), keeping users' data."""
    path = settings.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    await run_migrations(config=tortoise_config(settings))
    await Tortoise.close_connections()


async def open_database(settings: Settings) -> None:
    """Connect the models; the context is global so every request task can use it."""
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


async def ping() -> bool:
    """True when the database answers a trivial query."""
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means "not healthy"
        return False
    return True


async def select(sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of hand-written SQL, `{}` marking each parameter in order, for the bulk reads
    where the ORM's objects and IN filters cost more than the query. Rows index by position."""
    connection = connections.get("default")
    sqlite = connection.capabilities.dialect == "sqlite"
    marks = ["?" if sqlite else f"${n}" for n in range(1, len(params) + 1)]
    _, rows = await connection.execute_query(sql.format(*marks), list(params))
    return list(rows)


def instant(value: datetime | str) -> datetime:
    """A date-time column as read by `select`: SQLite answers ISO 8601 text, PostgreSQL a
    datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value
