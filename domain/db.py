"""The database: Tortoise configuration, start-up, migrations and shutdown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate as run_migrations

from domain.settings import Settings

APP = "partnergraph"
INSERT_CHUNK = 500  # rows per executemany
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


def is_sqlite() -> bool:
    """Whether the connection (of the transaction, inside one) speaks SQLite's dialect."""
    return bool(connections.get("default").capabilities.dialect == "sqlite")


def _marks(count: int) -> list[str]:
    return ["?" if is_sqlite() else f"${n}" for n in range(1, count + 1)]


async def select(sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of hand-written SQL, `{}` marking each parameter in order, for the bulk reads
    where the ORM's objects and IN filters cost more than the query. Rows index by position."""
    _, rows = await connections.get("default").execute_query(
        sql.format(*_marks(len(params))), list(params)
    )
    return list(rows)


def stamp(at: datetime | None) -> Any:
    """A date-time as a plain parameter: ISO 8601 text for SQLite (as Tortoise stores it), the
    datetime itself for PostgreSQL."""
    return at.isoformat(sep=" ") if at is not None and is_sqlite() else at


async def insert_many(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Append plain rows with `executemany`, `chunk` rows per call, for the writes that run on
    every ingested batch (no ORM object per row). Date-times must already be `stamp`ed."""
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(_marks(len(columns)))})"
    )
    connection = connections.get("default")
    for start in range(0, len(rows), INSERT_CHUNK):
        await connection.execute_many(insert, list(rows[start : start + INSERT_CHUNK]))


def instant(value: datetime | str) -> datetime:
    """A date-time column as read by `select`: SQLite answers ISO 8601 text, PostgreSQL a
    datetime."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value
