from __future__ import annotations

from pathlib import Path

import pytest

from domain.settings import ConfigurationError, load_settings


def test_development_key_is_generated_once_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'data' / 'pg.sqlite3'}"
    first = load_settings(development=True, database_url=url, secret_key=None)
    key = first.signing_key
    assert len(key) >= 32
    kept = tmp_path / "data" / "partnergraph.secret"
    assert kept.read_text().strip() == key
    assert kept.stat().st_mode & 0o077 == 0  # readable by its owner only
    again = load_settings(development=True, database_url=url, secret_key=None)
    assert again.signing_key == key


def test_a_configured_key_is_used_as_is_and_previous_keys_verify() -> None:
    settings = load_settings(secret_key="k" * 40, previous_secret_keys="o" * 40 + ", " + "p" * 40)
    assert settings.verification_keys == ["k" * 40, "o" * 40, "p" * 40]


def test_default_database_is_a_sqlite_file_in_the_working_directory() -> None:
    settings = load_settings(secret_key="k" * 40)
    assert settings.is_sqlite
    assert settings.sqlite_path == Path("./partnergraph.sqlite3")


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"secret_key": "too short"}, "PARTNERGRAPH_SECRET_KEY"),
        ({"database_url": "oracle://x"}, "PARTNERGRAPH_DATABASE_URL"),
        ({"access_token_ttl_seconds": 0}, "PARTNERGRAPH_ACCESS_TOKEN_TTL_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        load_settings(**{"secret_key": "k" * 40, **overrides})
    assert name in str(error.value)
