"""The command line, run as a user runs it: a real process on a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PARTNERGRAPH_DATABASE_URL": f"sqlite://{tmp / 'pg.sqlite3'}",
        "PARTNERGRAPH_SECRET_KEY": "cli-test-secret-0123456789-abcdefghijklmnop",
        **env,
    }
    environment.pop("PARTNERGRAPH_DEVELOPMENT", None)
    return subprocess.run(
        [sys.executable, "-m", "portal", *args],
        cwd=tmp,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_export_schema_prints_the_committed_schema(tmp_path: Path) -> None:
    result = run(["export-schema"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text()


def test_migrate_twice_keeps_the_data(tmp_path: Path) -> None:
    first = run(["migrate"], tmp_path)
    assert first.returncode == 0, first.stderr
    created = run(
        ["create-admin", "--email", "Root@Example.com", "--password", "long enough pw"], tmp_path
    )
    assert created.returncode == 0, created.stderr
    again = run(["migrate"], tmp_path)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "pg.sqlite3") as conn:
        rows = conn.execute("SELECT email, kind FROM users").fetchall()
        journal = conn.execute("PRAGMA journal_mode").fetchone()
    assert rows == [("root@example.com", "ADMIN")]
    assert journal == ("wal",)


def test_create_admin_refuses_a_weak_password_and_a_duplicate(tmp_path: Path) -> None:
    weak = run(["create-admin", "--email", "a@example.com", "--password", "short"], tmp_path)
    assert weak.returncode == 1
    assert "password too weak" in weak.stderr
    ok = run(["create-admin", "--email", "a@example.com", "--password", "long enough pw"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    dup = run(
        ["create-admin", "--email", "A@example.com", "--password", "long enough pw"], tmp_path
    )
    assert dup.returncode == 1
    assert "exists" in dup.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PARTNERGRAPH_SECRET_KEY": "short"}, "PARTNERGRAPH_SECRET_KEY"),
        ({"PARTNERGRAPH_DATABASE_URL": "mysql://x"}, "PARTNERGRAPH_DATABASE_URL"),
        ({"PARTNERGRAPH_ACCESS_TOKEN_TTL_SECONDS": "-5"}, "PARTNERGRAPH_ACCESS_TOKEN_TTL_SECONDS"),
        ({"PARTNERGRAPH_CORS_ORIGINS": "*"}, "PARTNERGRAPH_CORS_ORIGINS"),
    ],
)
def test_a_bad_setting_stops_start_up_with_a_clear_message(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = run(["migrate"], tmp_path, **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_secret_key_is_required_outside_development(tmp_path: Path) -> None:
    result = run(["migrate"], tmp_path, PARTNERGRAPH_SECRET_KEY="")
    assert result.returncode == 2
    assert "required outside development" in result.stderr
