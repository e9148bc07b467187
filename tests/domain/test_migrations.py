"""Schema changes are migrations: the committed migrations match the models exactly."""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from domain.db import tortoise_config
from domain.settings import Settings


async def test_models_need_no_migration_that_is_not_committed(
    database: list[str], settings: Settings
) -> None:
    detector = MigrationAutodetector(Tortoise.apps, tortoise_config(settings)["apps"])
    pending = await detector.changes()
    assert [w.name for w in pending] == [], "run: tortoise makemigrations (see README)"


async def test_every_model_has_its_table(database: list[str]) -> None:
    expected = {
        "users",
        "refresh_tokens",
        "login_failures",
        "api_tokens",
        "programs",
        "tiers",
        "partners",
        "enrollments",
        "audit_entries",
    }
    assert expected <= set(database)
