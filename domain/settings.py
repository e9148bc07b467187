"""Configuration from `PARTNERGRAPH_*` environment variables (pydantic-settings)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_LENGTH = 32


class ConfigurationError(Exception):
    """A setting is missing or wrong; start-up stops with this message."""


class Settings(BaseSettings):
    """Every setting of the service. Read once at start-up; a bad value stops it."""

    model_config = SettingsConfigDict(env_prefix="PARTNERGRAPH_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite://./partnergraph.sqlite3",
        description="sqlite://PATH (embedded, the default) or postgres://user@host:port/db",
    )
    development: bool = Field(
        default=False,
        description="Development mode: GraphiQL, field suggestions, a generated secret key.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs access tokens; required outside development, 32 characters at least.",
    )
    previous_secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated old keys still accepted for verification while keys rotate.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300, le=365 * 86_400)
    session_check_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long a worker trusts a session it checked (logout, suspension).",
    )
    jwt_issuer: str = Field(default="partnergraph", min_length=1)
    jwt_audience: str = Field(default="partnergraph-api", min_length=1)
    login_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    public_url: str = Field(default="http://localhost:8000")

    @field_validator("previous_secret_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in {"sqlite", "postgres", "postgresql", "asyncpg"}:
            raise ValueError(
                f"unsupported scheme {scheme!r}: use sqlite://PATH or postgres://USER@HOST/DB"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard_origin(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("'*' is not allowed: list the origins that may call the API")
        return value

    @model_validator(mode="after")
    def _secret_key_rules(self) -> Settings:
        key = self.secret_key.get_secret_value() if self.secret_key else None
        if key is not None and len(key) < MIN_SECRET_LENGTH:
            raise ValueError(f"PARTNERGRAPH_SECRET_KEY must be {MIN_SECRET_LENGTH}+ characters")
        if key is None and not self.development:
            raise ValueError(
                "PARTNERGRAPH_SECRET_KEY is required outside development mode "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return urlsplit(self.database_url).scheme == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        rest = self.database_url.split("://", 1)[1].split("?", 1)[0]
        return None if rest == ":memory:" else Path(rest)

    @cached_property
    def signing_key(self) -> str:
        """The key that signs: the configured one, or in development one kept beside the DB."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _development_key(self.sqlite_path)

    @property
    def verification_keys(self) -> list[str]:
        return [self.signing_key, *(k.get_secret_value() for k in self.previous_secret_keys)]


def _development_key(database: Path | None) -> str:
    """Generate the development key once and keep it in a file beside the database."""
    path = (database.parent if database else Path.cwd()) / "partnergraph.secret"
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= MIN_SECRET_LENGTH:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one readable ConfigurationError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"]) or "settings"
            env = f"PARTNERGRAPH_{name.upper()}" if error["loc"] else "settings"
            lines.append(f"  {env}: {error['msg']}")
        raise ConfigurationError("bad configuration:\n" + "\n".join(lines)) from None
