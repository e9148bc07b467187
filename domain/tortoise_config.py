"""The configuration Tortoise's own command line reads (`tortoise makemigrations`).

pyproject.toml points `[tool.tortoise]` here. Only that tool imports this module.
"""

from __future__ import annotations

from domain.db import tortoise_config
from domain.settings import load_settings

TORTOISE_ORM = tortoise_config(load_settings(development=True))
